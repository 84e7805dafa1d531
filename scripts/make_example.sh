#!/usr/bin/env bash
# Rebuilds the bundled example (examples/requests.jsonl + examples/labels.jsonl) with the
# simulator, from the bundled, permissively licensed corpora only (data/corpora;
# --permissive-only keeps it so even when extra corpora are configured): 24 benign accounts
# (people, heavy users, bulk business workloads, benchmark runs, narrow integrations) and two
# planted campaigns (a hydra network eliciting chain-of-thought, a rubric-grading sweep).
# Deterministic: same corpora and seed, same files.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
target/release/distillguard simulate --permissive-only --seed 5 \
  --accounts 24 --campaigns 2 --days 2 \
  --kinds benign_human,heavy_user,bulk_business,benchmark_eval,narrow_integration,hydra_cot,rubric_grading \
  --account-prefix user --campaign-prefix campaign \
  --out examples/requests.jsonl --labels examples/labels.jsonl
