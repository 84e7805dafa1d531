#!/usr/bin/env bash
# Copied from the project's shared/cuda/setup-cuda13-toolchain.sh (see ../shared/cuda/README.md).
# Assemble a CUDA 13.0 *build* toolchain from NVIDIA's PyPI wheels on a machine with
# no GPU, no driver and no CUDA toolkit. Prints the env vars to export.
# Pinned to 13.0.x: PTX made by nvcc 13.N has ISA 9.N and only loads on drivers >= 13.N
# (driver 580 = CUDA 13.0), and cudarc 0.19.10 knows CUDA versions up to 13.4 only.
set -euo pipefail
DEST=$(realpath -m "${1:-.cuda13}")
PY=${PYTHON:-python3}
CU="$DEST/nvidia/cu13"
if [ ! -x "$CU/bin/nvcc" ]; then
  # one pip call: all wheels merge into nvidia/cu13/{bin,include,lib,nvvm}
  "$PY" -m pip install --quiet --no-deps --target "$DEST" \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 \
    nvidia-curand==10.4.0.35 nvidia-cublas==13.0.2.14
fi
# the wheels ship only versioned sonames; the linker wants lib<name>.so
cd "$CU/lib"
for l in cudart nvrtc cublas cublasLt; do ln -sf "lib$l.so.13" "lib$l.so"; done
ln -sf libcurand.so.10 libcurand.so
# libcuda.so comes with the driver, not with any wheel: make a link-time stub
# (SONAME libcuda.so.1; every entry point returns 34 = CUDA_ERROR_STUB_LIBRARY,
# like NVIDIA's own stubs). Never ship it next to the binary.
mkdir -p stubs
if [ ! -f stubs/libcuda.so ]; then
  echo '#include <cuda.h>' | gcc -E -I"$CU/include" -x c - | tr '\n' ' ' \
    | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | sed -E 's/[[:space:]]*\($//' | sort -u \
    | awk '{print "int " $1 "(void){return 34;}"}' > stubs/libcuda_stub.c
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o stubs/libcuda.so stubs/libcuda_stub.c
fi
cat <<ENV
export CUDA_HOME=$CU
export PATH=$CU/bin:\$PATH
export CUDA_COMPUTE_CAP=90
export CUDAFORGE_THREADS=\$(nproc)
ENV
