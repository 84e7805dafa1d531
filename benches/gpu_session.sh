#!/usr/bin/env bash
# Everything issue 4 needs a GPU for, in three steps, for a session that is lent one (the GPU
# machine has CUDA, PyTorch and sentence-transformers but no Rust and no registry, and a device
# call carries at most 64 MiB). Not yet run on a GPU: see benches/README.md.
#
#   benches/gpu_session.sh pack      here: builds the `--features cuda` release binaries (the
#                                    CLI, the similarity bench, the lib and parity test
#                                    binaries) with scripts/cuda-toolchain.sh and packs them,
#                                    zstd-compressed, with the corpora and MiniLM's config and
#                                    tokenizer into gpu/pack/; the parity test binary with the
#                                    real weights as f16 into gpu/parity/, for their own call
#                                    (each must stay under 64 MiB: `pack` prints the sizes).
#   benches/gpu_session.sh run       there, carrying gpu/pack: the GPU tests of the kernels
#                                    against the CPU ops, the kernels against cuBLAS
#                                    (similarity bench), our embedding against PyTorch fp16 on
#                                    one random-weight MiniLM (benches/gpu_vs_torch.sh, also
#                                    prompts/s against the compute ceiling) and `score` on ~1M
#                                    requests / ~20k accounts per stage (benches/gpu_score.sh,
#                                    on the random-weight model: same cost per token).
#   benches/gpu_session.sh parity    there, carrying gpu/parity: the real model
#                                    in f16 and bf16 on the GPU against the CPU's f32
#                                    (cosine >= 0.999 per prompt, tests/parity.rs).
# `run` and `parity` write logs under $OUT (the device tool brings them back); `run` takes about
# 10 minutes on an H100 (mostly simulating and scoring the 1M-request log); set SCORE_ACCOUNTS
# smaller to shorten it.
# Device calls: run(command="benches/gpu_session.sh run", carry=["gpu/pack"]), then
# run(command="benches/gpu_session.sh parity", carry=["gpu/parity"]).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:?usage: benches/gpu_session.sh pack|run|parity}"
pack=gpu/pack
parity=gpu/parity

case "$mode" in
pack)
  command -v zstd >/dev/null || { echo "needs zstd (apt-get install zstd)" >&2; exit 1; }
  scripts/setup.sh
  eval "$(scripts/cuda-toolchain.sh target/cuda13)"
  export CARGO_TARGET_DIR=target/cuda-release
  rm -rf "$pack" "$parity" && mkdir -p "$pack/bin" "$pack/shape" "$parity/bin" "$parity/weights"
  # Each target's executable as cargo reports it: TARGET-KIND (distillguard-bin,
  # distillguard-lib, parity-test, similarity-bench).
  {
    cargo build --release --features cuda --bin distillguard --bench similarity \
      --message-format=json
    cargo test --release --features cuda --lib --test parity --no-run --message-format=json
  } | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"] + "-" + m["target"]["kind"][0], m["executable"])' \
    | while read -r name exe; do
      to="$pack"; [ "$name" = parity-test ] && to="$parity"
      strip --strip-debug -o "$to/bin/$name" "$exe" # the release profile keeps debug info
      zstd -q -19 -f --rm "$to/bin/$name" -o "$to/bin/$name.zst"
    done
  cp models/all-MiniLM-L6-v2/{config.json,tokenizer.json} "$pack/shape/"
  tar -C ../shared/data -cf - corpora | zstd -q -19 -o "$pack/corpora.tar.zst"
  python3 - models/all-MiniLM-L6-v2 "$parity/weights" <<'PY'
import shutil, sys
from safetensors.numpy import load_file, save_file
src, dst = sys.argv[1:3]
t = {k: (v.astype("float16") if v.dtype.kind == "f" else v) for k, v in load_file(f"{src}/model.safetensors").items()}
save_file(t, f"{dst}/model.safetensors", metadata={"format": "pt"})
for f in ("config.json", "tokenizer.json"):
    shutil.copy(f"{src}/{f}", f"{dst}/{f}")
PY
  zstd -q -19 -f --rm "$parity/weights/model.safetensors"
  du -sh --apparent-size "$pack" "$parity"
  ;;
run | parity)
  out="${OUT:-target/gpu_session}"; mkdir -p "$out" target/gpu
  from="$pack"; [ "$mode" = parity ] && from="$parity"
  for f in "$from"/bin/*.zst; do
    zstd -q -d -f "$f" -o "target/gpu/$(basename "${f%.zst}")"
  done
  chmod +x target/gpu/*
  export CARGO_MANIFEST_DIR="$PWD" # test binaries find tests/fixtures through it
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
  if [ "$mode" = parity ]; then
    mkdir -p target/gpu/weights
    zstd -q -d -f "$parity/weights/model.safetensors.zst" -o target/gpu/weights/model.safetensors
    cp "$parity"/weights/{config.json,tokenizer.json} target/gpu/weights/
    DISTILLGUARD_MODEL_DIR=target/gpu/weights target/gpu/parity-test cuda_ --ignored --nocapture 2>&1 \
      | tee "$out/parity.log"
    exit "${PIPESTATUS[0]}"
  fi
  mkdir -p target/gpu/corpora && zstd -q -d -c "$pack/corpora.tar.zst" | tar -C target/gpu -xf -
  corpora=target/gpu/corpora
  echo "== kernels: GPU against the CPU ops" | tee "$out/summary.txt"
  target/gpu/distillguard-lib cuda_ --ignored --nocapture 2>&1 | tee "$out/kernel_tests.log" | tail -3 \
    | tee -a "$out/summary.txt"
  echo "== kernels against cuBLAS (candle matmul + threshold)" | tee -a "$out/summary.txt"
  DEVICE=cuda target/gpu/similarity-bench 20000 64 200000 2>&1 | tee -a "$out/summary.txt"
  echo "== embedding: ours against PyTorch fp16, same random-weight MiniLM" | tee -a "$out/summary.txt"
  OUT="$out/vs_torch" benches/gpu_vs_torch.sh target/gpu/distillguard-bin "$corpora" "$pack/shape" \
    "${EMBED_PROMPTS:-100000}" 2>&1 | grep -v '^Loading' | tee -a "$out/summary.txt"
  echo "== score on ~1M requests (random-weight model)" | tee -a "$out/summary.txt"
  DISTILLGUARD_MODEL_DIR="$out/vs_torch/model" OUT="$out/score" benches/gpu_score.sh \
    target/gpu/distillguard-bin "$corpora" "${SCORE_ACCOUNTS:-7000}" 2>&1 | tee -a "$out/summary.txt"
  ;;
*)
  echo "usage: benches/gpu_session.sh pack|run|parity" >&2
  exit 2
  ;;
esac
