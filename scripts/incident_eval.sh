#!/usr/bin/env bash
# Retraining on an incident (docs/evaluation.md, "Retraining on an incident"). For each
# extraction kind K (KINDS, default: every kind of the training traffic), incident weight W
# (WEIGHTS, default 1) and way of fitting F (FITS, default `auto warm refit`: train's default,
# which fine-tunes unless the base misses the incident; fine-tune the base's members always,
# `warm-E-LR` with E epochs at learning rate LR (decimal: 0.0001), or train a new ensemble on the base's
# rows plus the incident's):
#   1. the base: the default recipe trained without K (as in leave-one-kind-out), with its
#      training set;
#   2. the incident: one campaign of K from another week (seed 3, starting 2025-06-09) and the
#      training corpus slice (0/2, never the test's), among that week's ordinary traffic; only
#      the campaign's accounts are labelled, as an investigation would confirm them. The
#      task-endpoint kinds have no campaign: their incident is the K accounts of a quiz
#      endpoint in a third week (seed 4, starting 2025-06-16, slice 0/2), with 5 of its
#      students cleared as benign;
#   3. `train --base` adds it at weight W (with --refit for F=refit); both models score the test traffic of
#      scripts/evaluate.sh; eval reports every kind against the test's benign accounts.
# Writes runs/eval/incident/summary.md: K's recall at 1% FPR before and after, K's mean score
# on the test before and after (whether the incident was learnt where recall was already
# full), the largest change of any other kind (in accounts), and the benign accounts flagged
# before and after.
# Needs runs/eval from scripts/evaluate.sh; results already in runs/eval/incident are kept
# (delete the folder after changing the code). About 3 minutes per kind and weight on 2 cores
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
# shellcheck source=scripts/world.sh
. scripts/world.sh
KINDS=${KINDS:-$(kinds_of "$D/train.labels.jsonl" 1)}
WEIGHTS=${WEIGHTS:-1}
FITS=${FITS:-auto warm refit}

# Each week is simulated and embedded only when a kind asked for needs it.
campaign_week=false
endpoint_week=false
for k in $KINDS; do
  case $k in
    endpoint_*) endpoint_week=true ;;
    *) campaign_week=true ;;
  esac
done
if $campaign_week && [ ! -f "$I/week.run/features.safetensors" ]; then
  # shellcheck disable=SC2086
  "$B" simulate --out "$I/week.jsonl" --labels "$I/week.labels.jsonl" --seed 3 --slice 0/2 \
    --start 2025-06-09T00:00:00Z --accounts 200 --campaigns 17 --phrasings train \
    --account-prefix in --campaign-prefix inc $PEOPLE_ARGS -q
  # Embeds the week once; the labels here only need to be valid (every campaign, at weight 1).
  "$B" train --input "$I/week.jsonl" --labels "$I/week.labels.jsonl" --run-dir "$I/week.run" \
    --out "$I/week.model" --quiet
fi

if $endpoint_week && [ ! -f "$I/endpoint_week.run/features.safetensors" ]; then
  # shellcheck disable=SC2086
  "$B" simulate --out "$I/endpoint_week.jsonl" --labels "$I/endpoint_week.labels.jsonl" --seed 4 \
    --slice 0/2 --start 2025-06-16T00:00:00Z --accounts 20 --campaigns 1 \
    --kinds benign_human,agentic_sweep --phrasings train --task-endpoint 40 --endpoint-task quiz \
    --account-prefix ie --campaign-prefix iec $PEOPLE_ARGS -q
  "$B" train --input "$I/endpoint_week.jsonl" --labels "$I/endpoint_week.labels.jsonl" \
    --run-dir "$I/endpoint_week.run" --out "$I/endpoint_week.model" --quiet
fi

for k in $KINDS; do
  case $k in
    endpoint_*) week=$I/endpoint_week ;;
    *) week=$I/week ;;
  esac
  if ! grep -q "\"kind\":\"$k\"" "$week.labels.jsonl"; then
    echo "incident: no $k accounts in $week.labels.jsonl; skipped" >&2
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
  { grep "\"kind\":\"$k\"" "$week.labels.jsonl"
    [ "$week" = "$I/week" ] || grep -m 5 '"kind":"endpoint_user"' "$week.labels.jsonl"
  } > "$I/incident_$k.labels.jsonl"
  for w in $WEIGHTS; do for fit in $FITS; do
    m="$I/with_${k}_w${w}_$fit"
    # Kept from an earlier run (delete runs/eval/incident to start over).
    [ -f "$m.json" ] && continue
    # auto: train's default (fine-tune, or refit when the base misses the incident); warm: the
    # default fine-tuning always; warm-E-LR: E epochs at learning rate LR; refit: afresh.
    case $fit in
      auto) refit=() ;;
      warm) refit=(--warm) ;;
      warm-*) IFS=- read -r _ e lr <<< "$fit"; refit=(--warm --fine-tune-epochs "$e" --fine-tune-lr "$lr") ;;
      refit) refit=(--refit) ;;
      *) echo "incident: unknown fit $fit (auto, warm, warm-E-LR or refit)" >&2; exit 2 ;;
    esac
    "$B" train --input "$week.jsonl" --labels "$I/incident_$k.labels.jsonl" \
      --run-dir "$week.run" --base "$I/base_$k.model" --incident-weight "$w" "${refit[@]}" \
      --out "$m.model" --quiet
    "$B" score --input "$D/test.jsonl" --run-dir "$D/test.run" --out "$m.scores.jsonl" \
      --campaigns "$m.campaigns.jsonl" --model "$m.model" --no-summary --quiet
    "$B" eval --scores "$m.scores.jsonl" --labels "$D/test.labels.jsonl" --out "$m.json" > /dev/null
    echo "incident: $k at weight $w ($fit) done" >&2
  done; done
done

python3 - "$I" "$WEIGHTS" "$FITS" $KINDS > "$I/summary.md" <<'PY'
import json, sys
d, weights, fits, kinds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4:]
load = lambda n: json.load(open(f"{d}/{n}.json"))
def rows(rep):
    return {k["kind"]: k for k in rep["kinds"]}
def tp(row):  # extraction accounts caught at 1% FPR
    return round(row["recall_at_1pct_fpr"] * row["accounts"])
kind_of = {}
for line in open(f"{d}/../test.labels.jsonl"):
    l = json.loads(line)
    kind_of[l["account_id"]] = l.get("kind")
def mean_score(n, k):  # mean score of kind k's test accounts
    s = [r["score"] for r in map(json.loads, open(f"{d}/{n}.scores.jsonl")) if kind_of.get(r["account_id"]) == k]
    return sum(s) / max(len(s), 1)
print("| held-out kind | weight | fit | kind R@1%FPR before | after | kind mean score before | after | largest change of another kind (accounts at 1% FPR) | benign flagged before | after |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
for k in kinds:
    try:
        base = rows(load(f"base_{k}"))
    except FileNotFoundError:
        continue
    if k not in base:
        continue
    for w, fit in [(w, f) for w in weights for f in fits]:
        new = rows(load(f"with_{k}_w{w}_{fit}"))
        others = [abs(tp(new[o]) - tp(base[o])) for o in base
                  if o != k and base[o]["label"] == 1 and base[o]["recall_at_1pct_fpr"] is not None]
        fb = sum(r["flagged"] for r in base.values() if r["label"] == 0)
        fa = sum(r["flagged"] for r in new.values() if r["label"] == 0)
        print(f"| {k} | {w} | {fit} | {base[k]['recall_at_1pct_fpr']:.3f} | {new[k]['recall_at_1pct_fpr']:.3f} | "
              f"{mean_score(f'base_{k}', k):.3f} | {mean_score(f'with_{k}_w{w}_{fit}', k):.3f} | "
              f"{max(others, default=0)} | {fb} | {fa} |")
PY
echo "wrote $I/summary.md" >&2
