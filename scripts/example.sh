#!/usr/bin/env bash
# The main job on the bundled example log: fetch the model if needed, build, embed
# examples/requests.jsonl into runs/example/ and show the manifest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
target/release/distillguard embed --input examples/requests.jsonl --out runs/example "$@"
echo "run directory: runs/example (manifest.json, embeddings.safetensors, requests.jsonl)" >&2
