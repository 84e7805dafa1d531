#!/usr/bin/env bash
# The main job on the bundled example log: fetch the model if needed, build, and score
# examples/requests.jsonl with the default classifier (models/classifier/). Writes
# runs/example/scores.jsonl, runs/example/campaigns.jsonl and the run directory
# runs/example/scores.run/ (embeddings, account index), and prints a summary.
# Extra flags go to `distillguard score` (e.g. --device cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
target/release/distillguard score --input examples/requests.jsonl --out runs/example/scores.jsonl "$@"
