#!/usr/bin/env bash
# Rebuilds the bundled example (examples/requests.jsonl + examples/labels.jsonl) with the
# simulator, from permissively licensed corpora only (--permissive-only): 24 benign accounts
# (people, heavy users, bulk business workloads, benchmark runs, narrow integrations) and two
# planted campaigns (a hydra network eliciting chain-of-thought, a rubric-grading sweep).
# Deterministic: same corpora and seed, same files.
set -euo pipefail
cd "$(dirname "$0")/.."
CORPORA=${CORPORA:-../shared/data/corpora}
cargo build --release --quiet
target/release/distillguard simulate --corpora "$CORPORA" --permissive-only --seed 5 \
  --accounts 24 --campaigns 2 --days 2 \
  --kinds benign_human,heavy_user,bulk_business,benchmark_eval,narrow_integration,hydra_cot,rubric_grading \
  --account-prefix user --campaign-prefix campaign \
  --out examples/requests.jsonl --labels examples/labels.jsonl
