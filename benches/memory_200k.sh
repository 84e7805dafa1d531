#!/usr/bin/env bash
# Peak memory of `distillguard embed` on 200,000 distinct short prompts (streaming check).
# usage: benches/memory_200k.sh [N=200000] [BIN=target/release/distillguard]
# Builds the log from the GSM8K and ShareGPT corpora: sentences cut to at most 12 words, each
# tagged with its index so that all N prompts are distinct, 2,000 accounts. Prints the
# manifest's timing and the peak RSS (GNU time's maximum resident set size).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
n="${1:-200000}"; bin="${2:-target/release/distillguard}"
corpora="${CORPORA:-$root/../shared/data/corpora}"
out="target/bench"; mkdir -p "$out"
log="$out/short_$n.jsonl"
python3 - "$corpora" "$n" > "$log" <<'PY'
import json, re, sys
corpora, n = sys.argv[1], int(sys.argv[2])
frags = []
for name in ("gsm8k.jsonl", "sharegpt_v3_dev.jsonl"):
    for line in open(f"{corpora}/{name}", encoding="utf-8"):
        for s in re.split(r"(?<=[.?!])\s+", json.loads(line)["text"]):
            w = s.split()
            if 3 <= len(w):
                frags.append(" ".join(w[:12]))
for i in range(n):
    print(json.dumps({"account_id": f"acct-{i % 2000:04d}", "timestamp": 1763856000000 + i * 1000,
                      "prompt": f"{frags[i % len(frags)]} (#{i})"}, ensure_ascii=False))
PY
/usr/bin/time -v "$bin" embed --input "$log" --out "$out/run_short_$n" --max-seq-len 64 --quiet \
  2> "$out/time_short_$n.txt"
peak=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/time_short_$n.txt")
python3 - "$out/run_short_$n/manifest.json" "$peak" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); peak_mb = int(sys.argv[2]) / 1024
e, t = m["embeddings"], m["timing"]
print(f"{m['input']['requests']} requests, {e['rows']} rows, {e['tokens']} tokens: "
      f"wall {t['wall_seconds']:.0f}s ({e['rows'] / t['wall_seconds']:.0f} prompts/s), "
      f"peak RSS {peak_mb:.0f} MiB ({peak_mb * 1048576 / e['rows']:.0f} bytes per row)")
PY
