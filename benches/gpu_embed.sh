#!/usr/bin/env bash
# Embedding throughput on a GPU against the compute ceiling. Ready for a session that has a GPU
# (not yet run: see benches/README.md).
# usage: benches/gpu_embed.sh BIN CORPORA_DIR [N=100000]
#   N distinct prompts cut from the corpora's human turns to at most 20 words (about 30 tokens
#   with [CLS]/[SEP], "typical prompts"), embedded with `embed --device $DEVICE` (default cuda,
#   f16) in large length-bucketed batches; prints prompts/s, tokens/s and the fraction of the
#   ceiling: all-MiniLM-L6-v2 costs about 21.5 MFLOP per token at 32 tokens, an H100 does about
#   800 TFLOP/s in f16 on large GEMMs.
#   DEVICE=cpu tries the script on the CPU (use a small N).
set -euo pipefail
bin="$1"; corpora="$2"; n="${3:-100000}"; device="${DEVICE:-cuda}"
out="${OUT:-target/bench/gpu_embed_$n}"; mkdir -p "$out"
python3 - "$corpora" "$n" > "$out/prompts.jsonl" <<'PY'
import json, sys
corpora, n = sys.argv[1], int(sys.argv[2])
seen, i = set(), 0
for name in ("sharegpt_v3_dev.jsonl", "hh_rlhf_harmless_test.jsonl", "gsm8k.jsonl", "lima.jsonl"):
    for line in open(f"{corpora}/{name}", encoding="utf-8"):
        words = json.loads(line)["text"].split()
        for start in range(0, max(len(words) - 4, 1), 20):
            text = " ".join(words[start:start + 20])
            if len(text) < 8 or text in seen:
                continue
            seen.add(text)
            print(json.dumps({"account_id": f"a{i % 1000}", "timestamp": 1763856000000 + i,
                              "prompt": text}, ensure_ascii=False))
            i += 1
            if i == n:
                sys.exit(0)
sys.exit(f"only {i} distinct prompts in the corpora")
PY
rm -rf "$out/run"
"$bin" embed --input "$out/prompts.jsonl" --out "$out/run" --device "$device" \
  --batch-tokens 65536 --max-batch 2048 --max-seq-len 128 --quiet
python3 - "$out/run/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); e, t = m["embeddings"], m["timing"]
tok_s = e["tokens"] / t["model_seconds"]
print(f"{e['rows']} prompts, {e['tokens']} tokens ({e['tokens'] / e['rows']:.1f} per prompt) on {m['device']}")
print(f"model: {e['rows'] / t['model_seconds']:.0f} prompts/s, {tok_s:.0f} tokens/s; "
      f"wall (tokenize + model + I/O): {e['rows'] / t['wall_seconds']:.0f} prompts/s")
print(f"compute: {tok_s * 21.5e6 / 1e12:.1f} TFLOP/s = {100 * tok_s * 21.5e6 / 800e12:.2f}% of 800 TFLOP/s")
PY
