#!/usr/bin/env bash
# Rebuilds the default classifier in models/classifier/ from scratch:
#   1. simulate the training traffic (seed 1, corpus slice 0 of 2, 400 benign accounts,
#      34 campaigns with randomised strategies (`simulate --randomise`: accounts, volumes,
#      cover, system prompts, networks, pacing and wording drawn per campaign), the train
#      phrasing bank: the test traffic of scripts/evaluate.sh uses wording never seen here and
#      the fixed presets; a quiz endpoint with 100 students and 50 off-task accounts, so the
#      model sees honest narrow users of a task endpoint; the evaluation's endpoint serves
#      another task, math); people as in scripts/world.sh (task items, prompting habits),
#      each person's share of task items drawn around its mean (`--randomise`),
#   2. embed it and compute features (run directory runs/eval/train.run),
#   3. train with the default options (seed 0, target FPR 1%).
# The evaluation (scripts/evaluate.sh) uses slice 1 of 2 with other seeds, so no corpus item
# the model was trained on appears in its test traffic.
# Uses only the corpora bundled in data/corpora, so a clone rebuilds the committed weights and
# model.json byte for byte on the machine and build that made them (elsewhere, in the low
# digits: README.md "Rebuilding the default model"). CORPORA=DIR adds a folder of the
# optional corpora (ShareGPT, LIMA, ...; data/corpora/README.md): a different model, for
# experiments, not the committed one.
# Time: see README.md ("Rebuilding the default model").
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=runs/eval
# DISTILLGUARD_BIN=FILE runs that binary instead of building target/release (to keep working
# on the tree while this runs).
BIN=${DISTILLGUARD_BIN:-target/release/distillguard}

# shellcheck source=scripts/world.sh
. scripts/world.sh

scripts/setup.sh
[ -n "${DISTILLGUARD_BIN:-}" ] || cargo build --release --quiet
mkdir -p "$DIR"
# shellcheck disable=SC2086
"$BIN" simulate ${CORPORA:+--corpora "$CORPORA"} --out "$DIR/train.jsonl" --labels "$DIR/train.labels.jsonl" \
  --seed 1 --slice 0/2 --accounts 400 --campaigns 34 --randomise --phrasings train \
  --task-endpoint 100 --endpoint-task quiz \
  --account-prefix tr --campaign-prefix trc $PEOPLE_ARGS
"$BIN" train --input "$DIR/train.jsonl" --labels "$DIR/train.labels.jsonl" \
  --run-dir "$DIR/train.run" --out models/classifier --seed 0
