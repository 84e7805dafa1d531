#!/usr/bin/env bash
# Time and peak memory of `distillguard score` per stage, normalised per 10,000 requests.
# usage: benches/score_stages.sh [SEED=2] [CAMPAIGNS=8] [ACCOUNTS=200] [BIN=target/release/distillguard]
# Simulates a week of labelled traffic (ACCOUNTS benign accounts + CAMPAIGNS campaigns, corpus
# slice 1/2), scores it with the default model on the CPU, and prints one table row per stage from
# the run directory's score.json (each stage's wall time and its own peak RSS, measured from a
# reset high-water mark; the process peak is the largest of them: resetting the mark also
# resets what GNU time would report).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seed="${1:-2}"; campaigns="${2:-8}"; accounts="${3:-200}"; bin="${4:-target/release/distillguard}"
corpora="${CORPORA:-$root/../shared/data/corpora}"
out="target/bench/score_s${seed}_c${campaigns}_a${accounts}"; mkdir -p "$out"
"$bin" simulate --corpora "$corpora" --out "$out/traffic.jsonl" --labels "$out/labels.jsonl" \
  --seed "$seed" --slice 1/2 --campaigns "$campaigns" --accounts "$accounts" --quiet
rm -rf "$out/scores.run"
"$bin" score --input "$out/traffic.jsonl" --out "$out/scores.jsonl" --device cpu --quiet --no-summary
python3 - "$out/scores.run/score.json" "$out/scores.run/manifest.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); m = json.load(open(sys.argv[2]))
peak = max(st["peak_rss_mib"] or 0 for st in s["stages"])
req = m["input"]["requests"]; per = 10000 / req
print(f"{req} requests, {s['accounts']} accounts, {m['embeddings']['rows']} distinct prompts, "
      f"{m['threads']} threads, process peak RSS {peak:.0f} MiB")
print("| stage | seconds | seconds per 10k requests | stage peak RSS (MiB) |")
print("|---|---:|---:|---:|")
total = 0
for st in s["stages"]:
    total += st["seconds"]
    rss = st["peak_rss_mib"]
    print(f"| {st['name']} | {st['seconds']:.2f} | {st['seconds'] * per:.2f} | "
          f"{rss:.0f} |" if rss is not None else "| - |")
print(f"| total | {total:.2f} | {total * per:.2f} | {peak:.0f} (process) |")
PY
