#!/usr/bin/env bash
# End-to-end `score` on a GPU, per stage, with the detection stages also timed on the CPU over
# the same embeddings. Ready for a session that has a GPU (not yet run: see benches/README.md).
# usage: benches/gpu_score.sh BIN CORPORA_DIR [ACCOUNTS=7000] [CAMPAIGNS=140]
#   BIN: a `--features cuda` release binary; CORPORA_DIR: ../shared/data/corpora (24 MB).
#   The defaults simulate about 1 million requests from about 20,000 accounts.
#   DEVICE=cpu runs the whole thing on the CPU (to try the script on a small log).
# Needs the real model in models/all-MiniLM-L6-v2 (or DISTILLGUARD_MODEL_DIR) and python3.
set -euo pipefail
bin="$1"; corpora="$2"; accounts="${3:-7000}"; campaigns="${4:-140}"; device="${DEVICE:-cuda}"
out="${OUT:-target/bench/gpu_score_a${accounts}_c${campaigns}}"; mkdir -p "$out"
"$bin" simulate --corpora "$corpora" --out "$out/traffic.jsonl" --labels "$out/labels.jsonl" \
  --seed 5 --accounts "$accounts" --campaigns "$campaigns" --quiet
rm -rf "$out/run"
"$bin" score --input "$out/traffic.jsonl" --out "$out/gpu.scores.jsonl" --run-dir "$out/run" \
  --device "$device" --quiet --no-summary
cp "$out/run/score.json" "$out/gpu.score.json"
# Same embeddings (reused), detection stages on the CPU.
"$bin" score --input "$out/traffic.jsonl" --out "$out/cpu.scores.jsonl" --run-dir "$out/run" \
  --device cpu --quiet --no-summary
cp "$out/run/score.json" "$out/cpu.score.json"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
m = json.load(open(f"{out}/run/manifest.json"))
g = json.load(open(f"{out}/gpu.score.json")); c = json.load(open(f"{out}/cpu.score.json"))
req, rows = m["input"]["requests"], m["embeddings"]["rows"]
print(f"{req} requests, {g['accounts']} accounts, {rows} distinct prompts, "
      f"{m['embeddings']['tokens']} tokens, embedded on {m['device']}")
print("| stage | device run (s) | CPU run (s) |")
print("|---|---:|---:|")
for a, b in zip(g["stages"], c["stages"]):
    print(f"| {a['name']} | {a['seconds']:.2f} | {b['seconds']:.2f} |")
e = g["stages"][0]["seconds"]
print(f"embedding: {rows / e:.0f} prompts/s, {m['embeddings']['tokens'] / e:.0f} tokens/s")
load = lambda f: {json.loads(l)["account_id"]: json.loads(l) for l in open(f)}
sg, sc = load(f"{out}/gpu.scores.jsonl"), load(f"{out}/cpu.scores.jsonl")
diff = max(abs(sg[a]["score"] - sc[a]["score"]) for a in sg)
flips = sum(sg[a]["flagged"] != sc[a]["flagged"] for a in sg)
print(f"scores, detection on the device vs the CPU: max |diff| {diff:.2e}, flag flips {flips}")
PY
