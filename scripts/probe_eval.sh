#!/usr/bin/env bash
# The adversary's next move, measured: every probe kind of the simulator (campaign kinds
# written against the detector after it was built, never in default traffic, so no model has
# been trained on them; `simulate` lists them under "probes") in a week of its own, scored by
# the default model, with the baselines beside it.
#
# A probe week holds the test week's settings (seed 2, corpus slice 1 of 2, 300 benign
# accounts of every benign kind, the test phrasing bank) and two campaigns of the probe kind:
# held out at once are the kind, the phrasings and the corpus slice.
#
# Also an honest probe: a task endpoint no model has seen (`probe_code_endpoint`, below).
#
# Needs the training run of scripts/train_default.sh (runs/eval/train.run) for the
# mean-embedding and TF-IDF baselines. Writes runs/eval/<kind>.* and
# runs/eval/probes.md. Run by scripts/evaluate.sh (its last step), or alone.
set -euo pipefail
cd "$(dirname "$0")/.."
D=runs/eval
B=${DISTILLGUARD_BIN:-target/release/distillguard}
[ -f "$D/train.run/features.safetensors" ] || scripts/train_default.sh
[ -n "${DISTILLGUARD_BIN:-}" ] || cargo build --release --quiet
# shellcheck source=scripts/labels.sh
. scripts/labels.sh
# shellcheck source=scripts/world.sh
. scripts/world.sh
BENIGN=$(kinds_of "$D/train.labels.jsonl" 0 | grep -v '^endpoint_user$' | paste -sd,)
PROBES=${PROBES:-probe_plain_thin probe_sticky_thin probe_form_only probe_chat_topics}
SKLEARN_PY=$(eval_venv)
# week PREFIX ARGS: simulates PREFIX.jsonl with `simulate ARGS` unless it is there from the same
# arguments and corpora, then scores it with the default model.
week() {
  local p=$1 args=$2
  if [ ! -f "$p.jsonl" ] || [ "$(cat "$p.args" 2>/dev/null)" != "$args ${CORPORA:-}" ]; then
    # shellcheck disable=SC2086
    "$B" simulate ${CORPORA:+--corpora "$CORPORA"} --out "$p.jsonl" --labels "$p.labels.jsonl" $args
    echo "$args ${CORPORA:-}" > "$p.args"
  fi
  "$B" score --input "$p.jsonl" --run-dir "$p.run" --out "$p.scores.jsonl" \
    --campaigns "$p.campaigns.jsonl" --model models/classifier --no-summary
}
for k in $PROBES; do
  P="$D/$k"
  week "$P" "--seed 2 --slice 1/2 --accounts 300 --campaigns 2 --phrasings test --kinds $BENIGN,$k --account-prefix pr- --campaign-prefix prc- $PEOPLE_ARGS"
  "$B" eval --scores "$P.scores.jsonl" --labels "$P.labels.jsonl" --run-dir "$P.run" \
    --train-run-dir "$D/train.run" --train-labels "$D/train.labels.jsonl" --out "$P.json" > "$P.txt"
  "$SKLEARN_PY" scripts/tfidf_baseline.py "$D/train.jsonl" "$D/train.labels.jsonl" \
    "$P.jsonl" "$P.labels.jsonl" "$P.tfidf.json"
done

# The honest side: a task endpoint no model has been trained on (code tutoring, `simulate
# --endpoint-task code`; the training traffic's endpoint is a quiz, the test weeks' maths) in a
# week of its own with the test week's settings and no campaign. Its students are honest
# accounts of a workload no model has seen (a narrow app: one system prompt, one-off pasted
# exercises full of code); its off-task accounts are a second task-endpoint case.
E="$D/probe_code_endpoint"
week "$E" "--seed 2 --slice 1/2 --accounts 300 --campaigns 0 --phrasings test --task-endpoint 100 --endpoint-task code --account-prefix pe- --campaign-prefix pec- $PEOPLE_ARGS"
"$B" eval --scores "$E.scores.jsonl" --labels "$E.labels.jsonl" --out "$E.json" > "$E.txt"
for k in endpoint_extraction endpoint_extraction_mixed; do
  only "$E.labels.jsonl" "endpoint_user|$k" > "$E.$k.labels.jsonl"
  "$B" eval --scores "$E.scores.jsonl" --labels "$E.$k.labels.jsonl" --out "$E.$k.json" > /dev/null
done

# The adversary's move against the endpoint-relative features: on an endpoint the model has no
# medians for, the typical account is the log's median account, so extractors who outnumber
# the honest users set it. The same week with 80 of the 100 students left out (the first 20 by
# id stay): 50 off-task accounts against 20 students.
M="$D/probe_code_majority"
python3 - "$E" "$M" <<'PY'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
labels = [json.loads(l) for l in open(f"{src}.labels.jsonl")]
students = sorted(l["account_id"] for l in labels if l["kind"] == "endpoint_user")
drop = set(students[20:])
with open(f"{dst}.labels.jsonl", "w") as out:
    for l in labels:
        if l["account_id"] not in drop:
            out.write(json.dumps(l, separators=(",", ":")) + "\n")
with open(f"{src}.jsonl") as inp, open(f"{dst}.jsonl", "w") as out:
    for line in inp:
        if json.loads(line)["account_id"] not in drop:
            out.write(line)
PY
"$B" score --input "$M.jsonl" --run-dir "$M.run" --out "$M.scores.jsonl" \
  --campaigns "$M.campaigns.jsonl" --model models/classifier --no-summary
"$B" eval --scores "$M.scores.jsonl" --labels "$M.labels.jsonl" --out "$M.json" > "$M.txt"
for k in endpoint_extraction endpoint_extraction_mixed; do
  only "$M.labels.jsonl" "endpoint_user|$k" > "$M.$k.labels.jsonl"
  "$B" eval --scores "$M.scores.jsonl" --labels "$M.$k.labels.jsonl" --out "$M.$k.json" > /dev/null
done

python3 - "$D" $PROBES > "$D/probes.md" <<'PY'
import json, sys
d, probes = sys.argv[1], sys.argv[2:]
load = lambda n: json.load(open(f"{d}/{n}.json"))
f = lambda v: "-" if v is None else f"{v:.3f}"
print("| probe kind | accounts | default AUROC | default R@1%FPR | at its flags: recall / benign flagged | in reported campaigns | campaign pairs R | shift alone R@1%FPR | mean-emb LR R@1%FPR | TF-IDF LR R@1%FPR |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for k in probes:
    rep, tf = load(k), load(f"{k}.tfidf")
    row = next(r for r in rep["kinds"] if r["kind"] == k)
    b = rep["baselines"]
    benign = sum(r["flagged"] for r in rep["kinds"] if r["label"] == 0)
    negatives = sum(r["accounts"] for r in rep["kinds"] if r["label"] == 0)
    print(f"| {k} | {row['accounts']} | {f(row['auroc'])} | {f(row['recall_at_1pct_fpr'])} | "
          f"{row['flagged'] / row['accounts']:.3f} / {benign} of {negatives} | "
          f"{row.get('in_campaigns', '-')} | {f(row.get('pair_recall'))} | "
          f"{f(b['shift (zero-shot)']['recall_at_1pct_fpr'])} | "
          f"{f(b['mean_embedding_logreg']['recall_at_1pct_fpr'])} | "
          f"{f(tf['all'].get(k, {}).get('recall_at_1pct_fpr'))} |")
print()
for week, title in (("probe_code_endpoint", "An unseen task endpoint (`probe_code_endpoint`: code tutoring, no campaign)"),
                    ("probe_code_majority", "The same endpoint with its off-task accounts the majority (`probe_code_majority`: 20 of its students kept)")):
    print(f"{title}, at the default model's flags:\n")
    print("| accounts | kind | flagged |")
    print("|---|---|---:|")
    for r in load(week)["kinds"]:
        print(f"| {'honest' if r['label'] == 0 else 'extraction'} | {r['kind']} | {r['flagged']} of {r['accounts']} |")
    for k in ("endpoint_extraction", "endpoint_extraction_mixed"):
        row = next(r for r in load(f"{week}.{k}")["kinds"] if r["kind"] == k)
        print(f"\n{k} against the endpoint's students: AUROC {f(row['auroc'])}, R@1%FPR {f(row['recall_at_1pct_fpr'])}", end="")
    print("\n")
PY
echo "wrote $D/probes.md" >&2
