//! The one hot loop: dot products between two blocks of at most [`TILE`] rows.
//!
//! Both similarity ops reduce to "dot every row of block A with every row of block B, then
//! threshold or take maxima", so they share this kernel and differ only in what they do with a
//! tile of results. Rows are read in place (row-major, `d` floats each, no packing). A 4x2
//! register block of 8-lane accumulators keeps four rows of A and two of B in flight, so each
//! loaded chunk of 8 floats feeds several multiply-adds.
//!
//! There are two builds of the register block. The portable one is plain indexed code over
//! fixed 8-float chunks that LLVM vectorises for whatever the target offers. On x86_64 with
//! AVX2 and FMA (checked at run time; the default target only assumes SSE2) an explicit
//! `std::arch` version is used instead: LLVM's vectoriser proved fragile here, turning the
//! block into scalar code after unrelated changes to the loops around it, at a 5-10x cost.

/// Rows per tile: a tile of results is `TILE * TILE` floats (16 KiB), and a 64-row block of
/// 384-d embeddings (96 KiB) stays in L2 while it is reused.
pub(crate) const TILE: usize = 64;

/// Floats per accumulator chunk (one AVX register).
const LANES: usize = 8;
/// Rows of A per register block.
const MR: usize = 4;
/// Rows of B per register block.
const NR: usize = 2;

/// Write `dot(a_i, b_j)` to `out[i * TILE + j]` for every row `i` of `a` and `j` of `b`.
///
/// `a` and `b` hold whole rows of length `d` (at most [`TILE`] rows each); `out` holds at
/// least `TILE * TILE` floats. With `upper`, `a` and `b` are the same block and only the
/// entries with `j > i` are guaranteed to be written (blocks wholly on or below the diagonal
/// are skipped, roughly halving the work of a diagonal tile).
pub(crate) fn dot_tile(a: &[f32], b: &[f32], d: usize, upper: bool, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::cpu::avx2_fma() {
            // SAFETY: the running CPU has AVX2 and FMA.
            unsafe { x86::dot_tile_avx2(a, b, d, upper, out) };
            return;
        }
    }
    dot_tile_portable(a, b, d, upper, out)
}

/// The dot product of two equal-length vectors, with AVX2 and FMA where the CPU has them (the
/// hot loop of the account index's distance, and of the per-pair checks of linking).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if crate::cpu::avx2_fma() {
            // SAFETY: the running CPU has AVX2 and FMA.
            return unsafe { x86::dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

/// [`dot`] without CPU features: eight independent accumulators, so that LLVM vectorises it
/// for the target's baseline (its test oracle).
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (xa, xb) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += xa[i] * xb[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// [`dot_tile`] with the portable, autovectorised register block (no FMA).
pub(crate) fn dot_tile_portable(a: &[f32], b: &[f32], d: usize, upper: bool, out: &mut [f32]) {
    // SAFETY: the portable block needs no CPU features.
    unsafe { tile::<Portable>(a, b, d, upper, out) }
}

/// One way of computing an `R x C` register block of dot products: rows `i..i + R` of `a`
/// against rows `j..j + C` of `b`, written to `out[(i + r) * TILE + j + c]`.
trait Block {
    /// # Safety
    /// The CPU must have the features the implementation is built for; the rows must exist.
    unsafe fn block<const R: usize, const C: usize>(
        a: &[f32],
        i: usize,
        b: &[f32],
        j: usize,
        d: usize,
        out: &mut [f32],
    );
}

/// Tiling shared by both builds: full `MR x NR` register blocks only, for tiles that big.
///
/// # Safety
/// As for `K::block`.
#[inline(always)]
unsafe fn tile<K: Block>(a: &[f32], b: &[f32], d: usize, upper: bool, out: &mut [f32]) {
    debug_assert!(d > 0 && a.len().is_multiple_of(d) && b.len().is_multiple_of(d));
    let na = a.len() / d;
    let nb = b.len() / d;
    assert!(na <= TILE && nb <= TILE && out.len() >= TILE * TILE);
    if na < MR || nb < NR {
        // Too small for a register block: one dot product at a time.
        for i in 0..na {
            for j in if upper { i + 1 } else { 0 }..nb {
                // SAFETY: passed on from the caller; rows i and j exist.
                unsafe { K::block::<1, 1>(a, i, b, j, d, out) };
            }
        }
        return;
    }
    // The last block of rows (and of columns) is shifted back to end at the edge: it
    // recomputes a few dot products (bit for bit the same) instead of running narrower blocks.
    let mut i = 0;
    while i < na {
        let bi = i.min(na - MR);
        // Blocks of columns wholly below the diagonal are skipped when `upper`.
        let mut j = if upper { bi / NR * NR } else { 0 };
        while j < nb {
            // SAFETY: passed on from the caller; bi + MR <= na and j.min(nb - NR) + NR <= nb.
            unsafe { K::block::<MR, NR>(a, bi, b, j.min(nb - NR), d, out) };
            j += NR;
        }
        i += MR;
    }
}

/// The row slices of a register block.
#[inline(always)]
fn rows<const R: usize>(m: &[f32], i: usize, d: usize) -> [&[f32]; R] {
    std::array::from_fn(|r| &m[(i + r) * d..(i + r + 1) * d])
}

/// Plain code over 8-float chunks, left to LLVM's vectoriser.
struct Portable;

impl Block for Portable {
    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // the indices walk several arrays in step
    unsafe fn block<const R: usize, const C: usize>(
        a: &[f32],
        i: usize,
        b: &[f32],
        j: usize,
        d: usize,
        out: &mut [f32],
    ) {
        let ar = rows::<R>(a, i, d);
        let br = rows::<C>(b, j, d);
        let mut acc = [[[0f32; LANES]; C]; R];
        let full = d - d % LANES;
        let mut k = 0;
        while k < full {
            let bv: [&[f32]; C] = std::array::from_fn(|c| &br[c][k..k + LANES]);
            for r in 0..R {
                let av = &ar[r][k..k + LANES];
                for c in 0..C {
                    for l in 0..LANES {
                        acc[r][c][l] += av[l] * bv[c][l];
                    }
                }
            }
            k += LANES;
        }
        for r in 0..R {
            for c in 0..C {
                let v = acc[r][c];
                let mut s = ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
                for k in full..d {
                    s += ar[r][k] * br[c][k];
                }
                out[(i + r) * TILE + j + c] = s;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;

    use super::{rows, tile, Block, LANES, TILE};

    /// [`super::dot_tile`] with AVX2 and fused multiply-add.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn dot_tile_avx2(
        a: &[f32],
        b: &[f32],
        d: usize,
        upper: bool,
        out: &mut [f32],
    ) {
        // SAFETY: passed on from the caller.
        unsafe { tile::<Avx2>(a, b, d, upper, out) }
    }

    /// [`super::dot`] with AVX2 and FMA: four 8-lane accumulators (32 floats per step, so that
    /// successive FMAs do not wait on each other), then 8-lane and scalar tails.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut k = 0;
        // SAFETY (all loads): k + the loaded width <= n, the length of both slices.
        while k + 4 * LANES <= n {
            for (r, acc) in acc.iter_mut().enumerate() {
                let o = k + r * LANES;
                let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(o)), _mm256_loadu_ps(pb.add(o))) };
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            k += 4 * LANES;
        }
        while k + LANES <= n {
            let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(k)), _mm256_loadu_ps(pb.add(k))) };
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            k += LANES;
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        // Horizontal sum of the 8 lanes.
        let half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
        let quad = _mm_add_ps(half, _mm_movehl_ps(half, half));
        let one = _mm_add_ss(quad, _mm_shuffle_ps(quad, quad, 1));
        let mut total = _mm_cvtss_f32(one);
        while k < n {
            total += a[k] * b[k];
            k += 1;
        }
        total
    }

    struct Avx2;

    impl Block for Avx2 {
        #[inline(always)]
        unsafe fn block<const R: usize, const C: usize>(
            a: &[f32],
            i: usize,
            b: &[f32],
            j: usize,
            d: usize,
            out: &mut [f32],
        ) {
            // SAFETY: passed on from the caller.
            unsafe { block_avx2::<R, C>(a, i, b, j, d, out) }
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::needless_range_loop)] // the indices walk several arrays in step
    unsafe fn block_avx2<const R: usize, const C: usize>(
        a: &[f32],
        i: usize,
        b: &[f32],
        j: usize,
        d: usize,
        out: &mut [f32],
    ) {
        let ar = rows::<R>(a, i, d);
        let br = rows::<C>(b, j, d);
        let full = d - d % LANES;
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        let mut bv = [_mm256_setzero_ps(); C];
        let mut k = 0;
        while k < full {
            // SAFETY (loads): k + LANES <= full <= d, the length of every row slice.
            for c in 0..C {
                bv[c] = unsafe { _mm256_loadu_ps(br[c].as_ptr().add(k)) };
            }
            for r in 0..R {
                let av = unsafe { _mm256_loadu_ps(ar[r].as_ptr().add(k)) };
                for c in 0..C {
                    acc[r][c] = _mm256_fmadd_ps(av, bv[c], acc[r][c]);
                }
            }
            k += LANES;
        }
        for r in 0..R {
            for c in 0..C {
                let v = acc[r][c];
                let s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
                let s1 = _mm_add_ss(s2, _mm_shuffle_ps::<1>(s2, s2));
                let mut s = _mm_cvtss_f32(s1);
                for k in full..d {
                    s = ar[r][k].mul_add(br[c][k], s);
                }
                out[(i + r) * TILE + j + c] = s;
            }
        }
    }
}

/// Runs `tile(acc, ti, buf)` for the row tiles `0..tiles` of one account or pair and returns
/// the accumulated result: in order on this thread when `parallel` is false (small work, the
/// caller is already parallel over accounts), else over rayon with one accumulator and one
/// `TILE x TILE` scratch block per split, combined with `merge`.
pub(super) fn over_row_tiles<A: Send>(
    tiles: usize,
    parallel: bool,
    new: impl Fn() -> A + Sync + Send,
    tile: impl Fn(&mut A, usize, &mut [f32]) + Sync + Send,
    merge: impl Fn(A, A) -> A + Sync + Send,
) -> A {
    use rayon::prelude::*;
    if !parallel {
        let mut acc = new();
        let mut buf = vec![0f32; TILE * TILE];
        for ti in 0..tiles {
            tile(&mut acc, ti, &mut buf);
        }
        return acc;
    }
    (0..tiles)
        .into_par_iter()
        .fold(
            || (new(), vec![0f32; TILE * TILE]),
            |(mut acc, mut buf), ti| {
                tile(&mut acc, ti, &mut buf);
                (acc, buf)
            },
        )
        .map(|(acc, _)| acc)
        .reduce_with(merge)
        .unwrap_or_else(new)
}
