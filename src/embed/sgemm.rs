//! The encoder's f32 linear layers on the CPU: `y = x · W` with `W` packed once, at load, into
//! panels of [`NR`] columns, and an AVX2+FMA micro-kernel of [`MR`] rows by [`NR`] columns (12
//! accumulator registers: two 8-lane registers of weights per input, each row's input
//! broadcast). Why not candle's matmul (the gemm crate): on the 2-core machines this project
//! runs on it stays well below what two FMA ports allow on the encoder's shapes (measured in
//! benches/README.md), and the weights never change, so they need packing once, not on every
//! call.
//!
//! Each output is one fused multiply-add per input, in input order from zero, in every kernel:
//! [`PackedF32::forward_portable`] (plain loops with `f32::mul_add`) is the vector kernel's
//! bit-for-bit twin and its test oracle. Against candle's matmul the sums differ only in
//! rounding order.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Columns per panel (two 8-lane registers).
pub const NR: usize = 16;
/// Rows per micro-kernel call.
const MR: usize = 6;

/// The `[m, n]` output of a GEMM computed in parallel tasks of consecutive rows:
/// `task(first_row, out)` gets its rows' outputs (`out.len() / n` rows, all real), and must
/// write every one of them: the output is not zeroed first (for the int8 GEMM that memset cost
/// more than quantising the input). Rows per task: a multiple of `mr`, enough tasks to keep
/// every thread busy on short batches, and at most 60 (a multiple of both GEMMs' `mr`) so that
/// a task's rows stay in L2 while every panel of weights passes over them. Shared by
/// [`PackedF32`] and the int8 GEMM.
///
/// `then(first_row, out)` runs on each task's rows once the task has written them, while they
/// are still in cache: the step that follows the GEMM (bias and GELU, bias and residual and
/// LayerNorm), fused into it instead of a pass of its own over the whole output.
pub(super) fn rows_in_parallel(
    m: usize,
    n: usize,
    mr: usize,
    task: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
    then: Then,
) -> Vec<f32> {
    if m == 0 || n == 0 {
        return vec![0f32; m * n];
    }
    let threads = rayon::current_num_threads().max(1);
    let per_task = m.div_ceil(threads * 4).div_ceil(mr) * mr;
    let per_task = per_task.clamp(mr, 60);
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    out.spare_capacity_mut()[..m * n]
        .par_chunks_mut(per_task * n)
        .enumerate()
        .for_each(|(t, out)| {
            task(t * per_task, out);
            // SAFETY: the task wrote every output of its rows (the contract above), and f32
            // has no invalid values.
            let out = unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) };
            then(t * per_task, out)
        });
    // SAFETY: every task wrote all of its outputs (the contract above).
    unsafe { out.set_len(m * n) };
    out
}

/// What runs on a GEMM's output rows as soon as they are written: `then(first_row, rows)`,
/// in place ([`rows_in_parallel`]).
pub type Then<'a> = &'a (dyn Fn(usize, &mut [f32]) + Sync);

/// The [`Then`] that leaves the output as the GEMM wrote it.
pub const NOTHING_THEN: Then<'static> = &|_, _| {};

/// A linear layer without bias run by our own GEMMs on the CPU ([`PackedF32`], and
/// [`super::int8::QLinear`]): `x · W` for row-major `x` of `m` rows, with the widest kernel
/// this CPU has.
pub trait CpuLinear: Sync {
    fn in_dim(&self) -> usize;
    fn out_dim(&self) -> usize;
    /// `x · W` as row-major `[m, out_dim]`, with `then` run on each task's rows once they are
    /// written ([`rows_in_parallel`]).
    fn forward_then(&self, x: &[f32], m: usize, then: Then) -> Vec<f32>;
    /// `x · W` as row-major `[m, out_dim]`.
    fn forward(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.forward_then(x, m, NOTHING_THEN)
    }
}

/// A `[k, n]` f32 weight packed for [`PackedF32::forward`].
pub struct PackedF32 {
    k: usize,
    n: usize,
    /// Panel `p` holds columns `p * NR..(p + 1) * NR` (zeros past `n`), input by input:
    /// `packed[(p * k + i) * NR + c]`.
    packed: Vec<f32>,
}

impl PackedF32 {
    /// Packs `w`, row-major `[k, n]` (inputs by outputs).
    pub fn new(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "weight is not [{k}, {n}]");
        let panels = n.div_ceil(NR);
        let mut packed = vec![0f32; panels * k * NR];
        for p in 0..panels {
            let cols = (n - p * NR).min(NR);
            for i in 0..k {
                let dst = &mut packed[(p * k + i) * NR..][..cols];
                dst.copy_from_slice(&w[i * n + p * NR..][..cols]);
            }
        }
        PackedF32 { k, n, packed }
    }

    /// The weight as given to [`Self::new`], row-major `[k, n]`.
    pub fn unpack(&self) -> Vec<f32> {
        let (k, n) = (self.k, self.n);
        let mut w = vec![0f32; k * n];
        for i in 0..k {
            for j in 0..n {
                w[i * n + j] = self.packed[((j / NR) * k + i) * NR + j % NR];
            }
        }
        w
    }

    /// [`CpuLinear::forward`] in plain loops: any CPU, and the test oracle (the same bits).
    pub fn forward_portable(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.run(x, m, Self::rows_portable, NOTHING_THEN)
    }

    /// Runs `kernel(self, x, first_row, rows, out)` over tasks of rows in parallel
    /// ([`rows_in_parallel`]).
    fn run(
        &self,
        x: &[f32],
        m: usize,
        kernel: impl Fn(&Self, &[f32], usize, usize, &mut [MaybeUninit<f32>]) + Sync,
        then: Then,
    ) -> Vec<f32> {
        assert_eq!(x.len(), m * self.k, "input is not [{m}, {}]", self.k);
        let n = self.n;
        rows_in_parallel(
            m,
            n,
            MR,
            |r0, out| kernel(self, x, r0, out.len() / n, out),
            then,
        )
    }

    fn rows_portable(&self, x: &[f32], r0: usize, rows: usize, out: &mut [MaybeUninit<f32>]) {
        let (k, n) = (self.k, self.n);
        for r in 0..rows {
            let xr = &x[(r0 + r) * k..][..k];
            for j in 0..n {
                let (p, c) = (j / NR, j % NR);
                let mut acc = 0f32;
                for (i, &a) in xr.iter().enumerate() {
                    acc = a.mul_add(self.packed[(p * k + i) * NR + c], acc);
                }
                out[r * n + j].write(acc);
            }
        }
    }

    /// # Safety
    /// The CPU has AVX2 and FMA; `x` holds rows `r0..r0 + rows` of `k`; `out` holds `rows * n`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows_avx2(&self, x: &[f32], r0: usize, rows: usize, out: &mut [MaybeUninit<f32>]) {
        debug_assert!(x.len() >= (r0 + rows) * self.k && out.len() >= rows * self.n);
        for p in 0..self.n.div_ceil(NR) {
            let mut r = 0;
            while r < rows {
                let take = (rows - r).min(MR);
                let (x, o) = (&x[(r0 + r) * self.k..], &mut out[r * self.n..]);
                match take {
                    6 => self.tile_avx2::<6>(x, p, o),
                    5 => self.tile_avx2::<5>(x, p, o),
                    4 => self.tile_avx2::<4>(x, p, o),
                    3 => self.tile_avx2::<3>(x, p, o),
                    2 => self.tile_avx2::<2>(x, p, o),
                    _ => self.tile_avx2::<1>(x, p, o),
                }
                r += take;
            }
        }
    }

    /// `R` rows (from the start of `x` and `out`) times panel `p`.
    ///
    /// # Safety
    /// As [`Self::rows_avx2`], with `R` rows left in `x` and `out`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile_avx2<const R: usize>(&self, x: &[f32], p: usize, out: &mut [MaybeUninit<f32>]) {
        use std::arch::x86_64::*;
        let (k, n) = (self.k, self.n);
        debug_assert!(x.len() >= R * k && out.len() >= (R - 1) * n + (n - p * NR).min(NR));
        let b = self.packed.as_ptr().add(p * k * NR);
        let a = x.as_ptr();
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for i in 0..k {
            let b0 = _mm256_loadu_ps(b.add(i * NR));
            let b1 = _mm256_loadu_ps(b.add(i * NR + 8));
            for (r, acc) in acc.iter_mut().enumerate() {
                let v = _mm256_set1_ps(*a.add(r * k + i));
                acc[0] = _mm256_fmadd_ps(v, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(v, b1, acc[1]);
            }
        }
        let cols = (n - p * NR).min(NR);
        for (r, acc) in acc.iter().enumerate() {
            let o = (out.as_mut_ptr() as *mut f32).add(r * n + p * NR);
            if cols == NR {
                _mm256_storeu_ps(o, acc[0]);
                _mm256_storeu_ps(o.add(8), acc[1]);
            } else {
                let mut lanes = [0f32; NR];
                _mm256_storeu_ps(lanes.as_mut_ptr(), acc[0]);
                _mm256_storeu_ps(lanes.as_mut_ptr().add(8), acc[1]);
                std::ptr::copy_nonoverlapping(lanes.as_ptr(), o, cols);
            }
        }
    }
}

impl CpuLinear for PackedF32 {
    fn in_dim(&self) -> usize {
        self.k
    }

    fn out_dim(&self) -> usize {
        self.n
    }

    fn forward_then(&self, x: &[f32], m: usize, then: Then) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA.
            return self.run(
                x,
                m,
                |s, x, r0, rows, out| unsafe { s.rows_avx2(x, r0, rows, out) },
                then,
            );
        }
        self.run(x, m, Self::rows_portable, then)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::int8::tests::random;

    #[test]
    fn vector_kernel_is_the_portable_twin_bit_for_bit_and_close_to_the_plain_product() {
        // Row counts with every tail of MR, column counts with and without a partial panel,
        // input counts of one and of several.
        for (m, k, n) in [
            (1, 1, 1),
            (7, 5, 16),
            (13, 33, 40),
            (64, 384, 48),
            (6, 17, 15),
        ] {
            let (x, w) = (random(m * k, m as u64), random(k * n, n as u64 + 7));
            let p = PackedF32::new(&w, k, n);
            assert_eq!(p.unpack(), w);
            let (fast, slow) = (p.forward(&x, m), p.forward_portable(&x, m));
            assert_eq!(fast, slow, "m {m}, k {k}, n {n}");
            for r in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|i| x[r * k + i] as f64 * w[i * n + j] as f64)
                        .sum();
                    assert!((fast[r * n + j] as f64 - want).abs() < 1e-4 * (k as f64).sqrt());
                }
            }
        }
    }

    /// A `then` that reads its first row: row `r` of the output becomes `2 y + r`.
    fn mark(r0: usize, rows: &mut [f32], n: usize) {
        for (i, row) in rows.chunks_exact_mut(n).enumerate() {
            row.iter_mut().for_each(|v| *v = 2.0 * *v + (r0 + i) as f32);
        }
    }

    #[test]
    fn then_runs_once_on_every_row_with_its_index() {
        // Enough rows for several tasks, and a last task of fewer rows.
        let (m, k, n) = (157, 24, 20);
        let (x, w) = (random(m * k, 3), random(k * n, 4));
        let want = |y: Vec<f32>| {
            y.chunks_exact(n)
                .enumerate()
                .flat_map(|(r, row)| row.iter().map(move |v| 2.0 * v + r as f32))
                .collect::<Vec<f32>>()
        };
        let p = PackedF32::new(&w, k, n);
        let then: Then = &|r0, rows| mark(r0, rows, n);
        assert_eq!(p.forward_then(&x, m, then), want(p.forward(&x, m)));
        let q = crate::embed::int8::QLinear::new(&w, k, n);
        assert_eq!(q.forward_then(&x, m, then), want(q.forward(&x, m)));
    }

    #[test]
    fn empty_input_gives_empty_output() {
        let p = PackedF32::new(&random(12, 1), 3, 4);
        assert!(p.forward(&[], 0).is_empty());
    }
}
