// Similarity kernels over L2-normalised prompt embeddings (f32, row-major [N, D]).
// CUDA twins of the CPU ops in src/similarity/ (near_dup.rs, coverage.rs), which are their
// test oracle: same inputs, same packed outputs, same conventions:
//   - a pair is a near-duplicate when dot >= threshold (f32 dots, not clamped);
//   - a best match over an empty set is NO_MATCH (-1).
// Compiled to PTX by build.rs only under the `cuda` cargo feature.
//
// Work layout: one warp per query row; the 32 lanes split the D dimensions of each dot
// product and reduce with shuffles, so no similarity matrix is ever written to global memory
// (each block keeps only per-row running counts and maxima in registers).

#include <stdint.h>

#define NO_MATCH (-1.0f)
#define WARP 32

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = WARP / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float dot_row(const float* a, const float* b, int d, int lane) {
    float s = 0.0f;
    for (int k = lane; k < d; k += WARP) s += a[k] * b[k];
    return warp_sum(s);
}

// Near-duplicates inside accounts.
// start[i], end[i]: the row range of row i's account. For each row i: out[2i] = number of
// other rows j of its account with dot(i, j) >= threshold, out[2i + 1] = bits of the highest
// dot(i, j) over j != i (NO_MATCH when the account has one row).
extern "C" __global__ void near_dup_f32(const float* __restrict__ emb,
                                        const uint32_t* __restrict__ start,
                                        const uint32_t* __restrict__ end, uint32_t n, uint32_t d,
                                        float threshold, uint32_t* __restrict__ out) {
    const uint32_t warps_per_block = blockDim.x / WARP;
    const uint32_t row = blockIdx.x * warps_per_block + threadIdx.x / WARP;
    const int lane = threadIdx.x % WARP;
    if (row >= n) return;
    const float* q = emb + (size_t)row * d;
    uint32_t degree = 0;
    float best = NO_MATCH;
    for (uint32_t j = start[row]; j < end[row]; ++j) {
        if (j == row) continue;
        const float s = dot_row(q, emb + (size_t)j * d, (int)d, lane);
        if (s >= threshold) ++degree;
        best = fmaxf(best, s);
    }
    if (lane == 0) {
        out[2 * (size_t)row] = degree;
        out[2 * (size_t)row + 1] = __float_as_uint(best);
    }
}

// Set-to-set coverage for account pairs.
// offsets[a]..offsets[a + 1]: rows of account a. pairs[2p], pairs[2p + 1]: accounts A and B of
// pair p. One block per pair; its warps share the rows of A (then of B), each finds the row's
// best match in the other account. out[4p..4p + 4] = mean best of A's rows in B, fraction of
// them >= threshold, the same for B in A; (NO_MATCH, 0) for both when A or B is empty.
extern "C" __global__ void coverage_f32(const float* __restrict__ emb,
                                        const uint32_t* __restrict__ offsets,
                                        const uint32_t* __restrict__ pairs, uint32_t n_pairs,
                                        uint32_t d, float threshold, float* __restrict__ out) {
    __shared__ float sum_best[2];
    __shared__ uint32_t above[2];
    const uint32_t p = blockIdx.x;
    if (p >= n_pairs) return;
    const uint32_t a = pairs[2 * p], b = pairs[2 * p + 1];
    const uint32_t a0 = offsets[a], a1 = offsets[a + 1], b0 = offsets[b], b1 = offsets[b + 1];
    if (a1 == a0 || b1 == b0) {
        if (threadIdx.x == 0) {
            out[4 * p] = NO_MATCH;
            out[4 * p + 1] = 0.0f;
            out[4 * p + 2] = NO_MATCH;
            out[4 * p + 3] = 0.0f;
        }
        return;
    }
    if (threadIdx.x < 2) {
        sum_best[threadIdx.x] = 0.0f;
        above[threadIdx.x] = 0;
    }
    __syncthreads();
    const uint32_t warp = threadIdx.x / WARP, warps = blockDim.x / WARP;
    const int lane = threadIdx.x % WARP;
    for (int dir = 0; dir < 2; ++dir) {
        const uint32_t q0 = dir == 0 ? a0 : b0, q1 = dir == 0 ? a1 : b1;
        const uint32_t t0 = dir == 0 ? b0 : a0, t1 = dir == 0 ? b1 : a1;
        for (uint32_t i = q0 + warp; i < q1; i += warps) {
            const float* q = emb + (size_t)i * d;
            float best = NO_MATCH;
            for (uint32_t j = t0; j < t1; ++j) best = fmaxf(best, dot_row(q, emb + (size_t)j * d, (int)d, lane));
            if (lane == 0) {
                atomicAdd(&sum_best[dir], best);
                if (best >= threshold) atomicAdd(&above[dir], 1u);
            }
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        const float na = (float)(a1 - a0), nb = (float)(b1 - b0);
        out[4 * p] = sum_best[0] / na;
        out[4 * p + 1] = (float)above[0] / na;
        out[4 * p + 2] = sum_best[1] / nb;
        out[4 * p + 3] = (float)above[1] / nb;
    }
}
