#!/usr/bin/env bash
# Retraining on an incident (docs/evaluation.md, "Retraining on an incident"). For each
# extraction kind K (KINDS, default: every kind of the training traffic) and incident weight W
# (WEIGHTS, default 1 3 10):
#   1. the base: the default recipe trained without K (as in leave-one-kind-out), with its
#      training set;
#   2. the incident: one campaign of K from another week (seed 3, starting 2025-06-09) and the
#      training corpus slice (0/2, never the test's), among that week's ordinary traffic; only
#      the campaign's accounts are labelled, as an investigation would confirm them;
#   3. `train --base` adds it at weight W; both models score the test traffic of
#      scripts/evaluate.sh; eval reports every kind against the test's benign accounts.
# Writes runs/eval/incident/summary.md: K's recall at 1% FPR before and after, the largest
# change of any other kind (in accounts), and the benign accounts flagged before and after.
# Needs runs/eval from scripts/evaluate.sh. About 3 minutes per kind and weight on 2 cores
# once the incident week is embedded (about 10 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
D=runs/eval
I=$D/incident
B=${DISTILLGUARD_BIN:-target/release/distillguard}
[ -n "${DISTILLGUARD_BIN:-}" ] || cargo build --release --quiet
[ -f "$D/test.run/features.safetensors" ] || { echo "run scripts/evaluate.sh first" >&2; exit 1; }
mkdir -p "$I"
# shellcheck source=scripts/labels.sh
. scripts/labels.sh
KINDS=${KINDS:-$(kinds_of "$D/train.labels.jsonl" 1)}
WEIGHTS=${WEIGHTS:-1 3 10}

if [ ! -f "$I/week.run/features.safetensors" ]; then
  "$B" simulate --out "$I/week.jsonl" --labels "$I/week.labels.jsonl" --seed 3 --slice 0/2 \
    --start 2025-06-09T00:00:00Z --accounts 200 --campaigns 17 --phrasings train \
    --account-prefix in --campaign-prefix inc -q
  # Embeds the week once; the labels here only need to be valid (every campaign, at weight 1).
  "$B" train --input "$I/week.jsonl" --labels "$I/week.labels.jsonl" --run-dir "$I/week.run" \
    --out "$I/week.model" --quiet
fi

for k in $KINDS; do
  if ! grep -q "\"kind\":\"$k\"" "$I/week.labels.jsonl"; then
    echo "incident: no $k campaign in the incident week (the task-endpoint kinds have no campaign); skipped" >&2
    continue
  fi
  grep -v "\"kind\":\"$k\"" "$D/train.labels.jsonl" > "$I/base_$k.train.labels.jsonl"
  [ -f "$I/base_$k.model/training_set.safetensors" ] ||
    "$B" train --input "$D/train.jsonl" --labels "$I/base_$k.train.labels.jsonl" \
      --run-dir "$D/train.run" --out "$I/base_$k.model" --seed 0 --quiet
  "$B" score --input "$D/test.jsonl" --run-dir "$D/test.run" --out "$I/base_$k.scores.jsonl" \
    --campaigns "$I/base_$k.campaigns.jsonl" --model "$I/base_$k.model" --no-summary --quiet
  "$B" eval --scores "$I/base_$k.scores.jsonl" --labels "$D/test.labels.jsonl" \
    --out "$I/base_$k.json" > /dev/null
  grep "\"kind\":\"$k\"" "$I/week.labels.jsonl" > "$I/incident_$k.labels.jsonl"
  for w in $WEIGHTS; do
    m="$I/with_${k}_w$w"
    "$B" train --input "$I/week.jsonl" --labels "$I/incident_$k.labels.jsonl" \
      --run-dir "$I/week.run" --base "$I/base_$k.model" --incident-weight "$w" \
      --out "$m.model" --seed 0 --quiet
    "$B" score --input "$D/test.jsonl" --run-dir "$D/test.run" --out "$m.scores.jsonl" \
      --campaigns "$m.campaigns.jsonl" --model "$m.model" --no-summary --quiet
    "$B" eval --scores "$m.scores.jsonl" --labels "$D/test.labels.jsonl" --out "$m.json" > /dev/null
    echo "incident: $k at weight $w done" >&2
  done
done

python3 - "$I" "$WEIGHTS" $KINDS > "$I/summary.md" <<'PY'
import json, sys
d, weights, kinds = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
load = lambda n: json.load(open(f"{d}/{n}.json"))
def rows(rep):
    return {k["kind"]: k for k in rep["kinds"]}
def tp(row):  # extraction accounts caught at 1% FPR
    return round(row["recall_at_1pct_fpr"] * row["accounts"])
print("| held-out kind | weight | kind R@1%FPR before | after | largest change of another kind (accounts at 1% FPR) | benign flagged before | after |")
print("|---|---:|---:|---:|---:|---:|---:|")
for k in kinds:
    try:
        base = rows(load(f"base_{k}"))
    except FileNotFoundError:
        continue
    if k not in base:
        continue
    for w in weights:
        new = rows(load(f"with_{k}_w{w}"))
        others = [abs(tp(new[o]) - tp(base[o])) for o in base
                  if o != k and base[o]["label"] == 1 and base[o]["recall_at_1pct_fpr"] is not None]
        fb = sum(r["flagged"] for r in base.values() if r["label"] == 0)
        fa = sum(r["flagged"] for r in new.values() if r["label"] == 0)
        print(f"| {k} | {w} | {base[k]['recall_at_1pct_fpr']:.3f} | {new[k]['recall_at_1pct_fpr']:.3f} | "
              f"{max(others, default=0)} | {fb} | {fa} |")
PY
echo "wrote $I/summary.md" >&2
