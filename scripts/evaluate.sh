#!/usr/bin/env bash
# Reproduces docs/evaluation.md.
#   1. Training traffic as in scripts/train_default.sh (seed 1, corpus slice 0/2, 32 campaigns);
#      test traffic from the other half of every corpus (seed 2, slice 1/2, 11 campaigns, other
#      account and campaign ids).
#   2. The default model (models/classifier) scored on the test traffic, with both baselines.
#   3. Held-out campaign kinds: the extraction kinds are split into two folds; for each fold a
#      model is trained with the default recipe on the training traffic's labels for benign
#      accounts and the *other* fold's kinds only, then evaluated on the test traffic's benign
#      accounts and this fold's kinds, which it has never seen labelled.
# Reports go to runs/eval/*.txt (tables) and *.json. About 20 minutes on 2 CPU cores when
# nothing is embedded yet (embedding dominates); minutes when the run directories exist.
set -euo pipefail
cd "$(dirname "$0")/.."
# Corpora: the bundled data/corpora; CORPORA=DIR adds the optional ones (as in train_default.sh).
D=runs/eval
B=target/release/distillguard
# The training run is the one scripts/train_default.sh makes (training is reproducible, so
# running it again rebuilds the committed weights byte for byte).
[ -f "$D/train.run/features.safetensors" ] || scripts/train_default.sh
[ -f "$D/test.jsonl" ] || "$B" simulate ${CORPORA:+--corpora "$CORPORA"} --out "$D/test.jsonl" \
  --labels "$D/test.labels.jsonl" --seed 2 --slice 1/2 --campaigns 11 \
  --account-prefix te- --campaign-prefix tec-

score() { # model scores-file
  "$B" score --input "$D/test.jsonl" --run-dir "$D/test.run" --out "$2" \
    --campaigns "${2%.jsonl}.campaigns.jsonl" --model "$1" --no-summary
}
evaluate() { # scores labels train-labels name
  "$B" eval --scores "$1" --labels "$2" --run-dir "$D/test.run" --train-run-dir "$D/train.run" \
    --train-labels "$3" --out "$D/$4.json" | tee "$D/$4.txt"
}

# The default model on the test traffic (all kinds).
score models/classifier "$D/default.scores.jsonl"
evaluate "$D/default.scores.jsonl" "$D/test.labels.jsonl" "$D/train.labels.jsonl" default

# Held-out kinds.
BENIGN='benchmark_eval|benign_human|bulk_business|heavy_user|narrow_integration'
FOLD_A='agentic_sweep|cot_multilingual|mixed_cover|single_heavy|thin_wrappers'
FOLD_B='coding_sweep|hydra_cot|low_and_slow|rubric_grading|agent_sybil_cover|cot_varied_tasks'
for fold in A B; do
  if [ $fold = A ]; then held=$FOLD_A; seen=$FOLD_B; else held=$FOLD_B; seen=$FOLD_A; fi
  grep -E "\"kind\":\"($BENIGN|$seen)\"" "$D/train.labels.jsonl" > "$D/heldout$fold.train.labels.jsonl"
  grep -E "\"kind\":\"($BENIGN|$held)\"" "$D/test.labels.jsonl" > "$D/heldout$fold.test.labels.jsonl"
  "$B" train --input "$D/train.jsonl" --labels "$D/heldout$fold.train.labels.jsonl" \
    --run-dir "$D/train.run" --out "$D/heldout$fold.model" --seed 0
  score "$D/heldout$fold.model" "$D/heldout$fold.scores.jsonl"
  evaluate "$D/heldout$fold.scores.jsonl" "$D/heldout$fold.test.labels.jsonl" \
    "$D/heldout$fold.train.labels.jsonl" "heldout$fold"
done
