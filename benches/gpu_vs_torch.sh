#!/usr/bin/env bash
# Our GPU embedding against PyTorch sentence-transformers in fp16 on the same GPU, same prompts,
# same MiniLM-shaped model with random weights (made on the spot by benches/random_minilm.py:
# the real f32 weights do not fit in a device call). Ready for a session that has a GPU (not yet
# run: see benches/README.md). The GPU machines hold torch and sentence-transformers.
# usage: benches/gpu_vs_torch.sh BIN CORPORA_DIR SHAPE_DIR [N=100000]
#   SHAPE_DIR: a folder with MiniLM's config.json and tokenizer.json (carry those two files of
#   models/all-MiniLM-L6-v2). Prints both throughputs and their ratio (ours / PyTorch).
#   DEVICE=cpu tries the script on the CPU (use a small N; PyTorch then runs in f32).
set -euo pipefail
bin="$1"; corpora="$2"; shape="$3"; n="${4:-100000}"; device="${DEVICE:-cuda}"
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-target/bench/gpu_vs_torch_$n}"; mkdir -p "$out"
python3 "$here/random_minilm.py" "$shape" "$out/model" --seed 0
# Ours (prompts.jsonl, embedding and throughput lines from gpu_embed.sh).
DISTILLGUARD_MODEL_DIR="$out/model" OUT="$out/ours" "$here/gpu_embed.sh" "$bin" "$corpora" "$n" \
  | tee "$out/ours.txt"
# PyTorch on the same prompts, in the same order.
python3 -c 'import json, sys
for l in open(sys.argv[1], encoding="utf-8"):
    print(json.dumps({"text": json.loads(l)["prompt"]}, ensure_ascii=False))' \
  "$out/ours/prompts.jsonl" > "$out/texts.jsonl"
fp16=(); [ "$device" = cuda ] && fp16=(--fp16)
python3 "$here/reference_st.py" "$out/texts.jsonl" "$out/model" --device "$device" "${fp16[@]}" \
  --batch "${TORCH_BATCH:-512}" --max-seq-len 128 --threads "$(nproc)" --repeat 3 \
  | tee "$out/torch.json"
# Same model on both sides: cosine between our embeddings and PyTorch's, first 512 prompts.
python3 - "$out/ours/run" "$out/texts.jsonl" "$out/model" "$device" <<'PY'
import json, sys
import numpy as np
from safetensors.numpy import load_file
from sentence_transformers import SentenceTransformer
run, texts, model, device = sys.argv[1:5]
emb = load_file(f"{run}/embeddings.safetensors")["embeddings"]
rows = [json.loads(l)["row"] for l in open(f"{run}/requests.jsonl")][:512]
texts = [json.loads(l)["text"] for l in open(texts, encoding="utf-8")][:512]
st = SentenceTransformer(model, device=device)
st.max_seq_length = 128
ref = st.encode(texts, batch_size=64, normalize_embeddings=True)
cos = (emb[rows] * ref).sum(1) / np.linalg.norm(emb[rows], axis=1)
print(f"parity with PyTorch f32 on {len(rows)} prompts: cosine min {cos.min():.5f}, mean {cos.mean():.5f}")
PY
python3 - "$out/ours/run/manifest.json" "$out/torch.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); t = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
ours = m["embeddings"]["rows"] / m["timing"]["wall_seconds"]
print(f"ours (wall: tokenize + model + I/O): {ours:.0f} prompts/s; PyTorch {t['torch']} "
      f"sentence-transformers (encode, tokenization included): {t['prompts_per_s']:.0f} prompts/s; "
      f"ratio {ours / t['prompts_per_s']:.2f}")
PY
