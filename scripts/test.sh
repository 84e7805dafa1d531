#!/usr/bin/env bash
# The test command: fetch and verify the model if needed, then run every test on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test "$@"
