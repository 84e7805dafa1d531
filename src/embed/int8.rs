//! Int8 linear layers for the CPU encoder (`--precision int8`).
//!
//! Contract: [`QLinear::forward`] computes `x · W` for an f32 `[M, K]` matrix `x` and the
//! `[K, N]` weight given at construction, with
//! - weights quantised once, symmetrically per output column, to `[-W_MAX, W_MAX]`;
//! - activations quantised at run time, symmetrically to `[-A_MAX, A_MAX]`, with one scale per
//!   row and group of [`GROUP`] consecutive inputs, and stored offset by `ZERO` as u8, so that
//!   AVX2's `vpmaddubsw` (u8 × i8) can multiply them;
//! - each group's products summed exactly in i32, the offset's share (`ZERO · Σ w_q` over the
//!   group, precomputed) removed, then `y[m][n] = s_col[n] · Σ_g s_row[m][g] · acc_g[m][n]` in
//!   f32, one fused multiply-add per group.
//!
//! Why these choices (measurements in benches/README.md):
//! - `vpmaddubsw` adds two u8 × i8 products into a *saturating* i16. With activations up to 255
//!   and weights up to ±64 a pair sums to at most 2·255·64 = 32,640: it never saturates, so the
//!   kernel is exact. Keeping all 8 weight bits instead needs `vpsignb` tricks that cost more
//!   time than int8 saves on this machine kind (no VNNI).
//! - Groups, because BERT's hidden states carry a few outlier channels that, with one scale per
//!   row, coarsen every other channel of the row; activations are the sensitive side.
//!
//! [`QLinear::forward_portable`] (plain loops, the same f32 operations in the same order) is the
//! AVX2 kernel's twin and test oracle: the two agree bit for bit. The caller keeps LayerNorm,
//! softmax, GELU, attention and pooling in f32 (`super::bert`).

use rayon::prelude::*;

/// Largest quantised weight magnitude (see the module comment for why not 127).
pub const W_MAX: i32 = 64;
/// Largest quantised activation magnitude before the offset.
pub const A_MAX: i32 = 127;
/// Offset that turns a quantised activation in `[-A_MAX, A_MAX]` into a u8.
pub const ZERO: i32 = 128;
/// Inputs per activation scale (a multiple of 4; the kernel consumes four inputs per step).
pub const GROUP: usize = 64;

/// Columns per packed panel (one AVX2 register of eight i32 accumulators).
const NR: usize = 8;
/// Rows per micro-tile.
const MR: usize = 4;

/// A linear layer without bias whose weight is held as int8.
pub struct QLinear {
    k: usize,
    n: usize,
    /// `k` rounded up to a multiple of [`GROUP`]; the padding holds zeros on both sides.
    kp: usize,
    /// Weights in panels of `NR` columns: `[n_panels][kp / 4][NR][4]`, zero-padded.
    packed: Vec<i8>,
    /// Per output column: the weight's dequantisation scale.
    col_scale: Vec<f32>,
    /// Per group of inputs and output column (`[kp / GROUP][n]`): `ZERO · Σ w_q` over the
    /// group, the offset's share of the group's integer sum.
    group_offset: Vec<i32>,
}

impl QLinear {
    /// Quantise a row-major `[k, n]` weight (`w[i * n + j]` multiplies input `i` into output
    /// `j`).
    pub fn new(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "weight is not [{k}, {n}]");
        let kp = k.div_ceil(GROUP) * GROUP;
        let panels = n.div_ceil(NR);
        let mut packed = vec![0i8; panels * kp * NR];
        let mut col_scale = vec![0f32; n];
        let mut group_offset = vec![0i32; (kp / GROUP) * n];
        for j in 0..n {
            let max = (0..k).map(|i| w[i * n + j].abs()).fold(0f32, f32::max);
            let scale = if max > 0.0 { max / W_MAX as f32 } else { 1.0 };
            col_scale[j] = scale;
            let inv = 1.0 / scale;
            for i in 0..k {
                let q = ((w[i * n + j] * inv).round_ties_even() as i32).clamp(-W_MAX, W_MAX);
                packed[Self::at(kp, i, j)] = q as i8;
                group_offset[(i / GROUP) * n + j] += ZERO * q;
            }
        }
        QLinear {
            k,
            n,
            kp,
            packed,
            col_scale,
            group_offset,
        }
    }

    /// Index of weight `(i, j)` in the packed layout.
    #[inline(always)]
    fn at(kp: usize, i: usize, j: usize) -> usize {
        ((j / NR) * (kp / 4) + i / 4) * NR * 4 + (j % NR) * 4 + i % 4
    }

    pub fn in_dim(&self) -> usize {
        self.k
    }

    pub fn out_dim(&self) -> usize {
        self.n
    }

    /// The quantised weight `w_q[i][j]`.
    pub fn weight_q(&self, i: usize, j: usize) -> i8 {
        self.packed[Self::at(self.kp, i, j)]
    }

    /// Per output column, the factor that turns `w_q` back into the weight.
    pub fn col_scale(&self) -> &[f32] {
        &self.col_scale
    }

    /// `x · W` for row-major `x` of `m` rows; row-major `[m, n]` output. Uses the AVX2 kernel
    /// when the CPU has AVX2 and FMA, else [`QLinear::forward_portable`]; both give the same
    /// bits.
    pub fn forward(&self, x: &[f32], m: usize) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::avx2_fma() {
            return self.run(x, m, |q, rows, out| {
                // SAFETY: AVX2 and FMA are present (checked above); `rows` holds a multiple of
                // MR quantised rows of `kp` bytes and `out` has room for its valid rows.
                unsafe { q.rows_avx2(rows, out) }
            });
        }
        self.forward_portable(x, m)
    }

    /// The twin of [`QLinear::forward`] in plain loops: the test oracle.
    pub fn forward_portable(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.run(x, m, |q, rows, out| q.rows_portable(rows, out))
    }

    /// Quantise `x` and run `kernel` over blocks of rows in parallel.
    fn run(
        &self,
        x: &[f32],
        m: usize,
        kernel: impl Fn(&Self, &Rows, &mut [f32]) + Sync,
    ) -> Vec<f32> {
        assert_eq!(x.len(), m * self.k, "input is not [{m}, {}]", self.k);
        let mut out = vec![0f32; m * self.n];
        if m == 0 || self.n == 0 {
            return out;
        }
        // Rows per task: a multiple of MR, enough tasks to keep every thread busy on short
        // batches, at most 64 rows so that a task's quantised rows stay in L1/L2.
        let threads = rayon::current_num_threads().max(1);
        let per_task = (m.div_ceil(threads * 4)).div_ceil(MR) * MR;
        let per_task = per_task.clamp(MR, 64);
        let (k, kp, n) = (self.k, self.kp, self.n);
        let groups = kp / GROUP;
        out.par_chunks_mut(per_task * n)
            .enumerate()
            .for_each(|(t, out)| {
                let r0 = t * per_task;
                let valid = out.len() / n;
                let padded = valid.div_ceil(MR) * MR;
                // Padding rows and inputs are quantised zeros (the offset) with scale 0.
                let mut q = vec![ZERO as u8; padded * kp];
                let mut scale = vec![0f32; padded * groups];
                for r in 0..valid {
                    let row = &x[(r0 + r) * k..(r0 + r + 1) * k];
                    for (g, chunk) in row.chunks(GROUP).enumerate() {
                        let at = r * kp + g * GROUP;
                        scale[r * groups + g] = quantize(chunk, &mut q[at..at + chunk.len()]);
                    }
                }
                let rows = Rows {
                    q,
                    scale,
                    padded,
                    valid,
                };
                kernel(self, &rows, out);
            });
        out
    }

    fn rows_portable(&self, a: &Rows, out: &mut [f32]) {
        let (kp, n) = (self.kp, self.n);
        let groups = kp / GROUP;
        for r in 0..a.valid {
            for j in 0..n {
                let mut y = 0f32;
                for g in 0..groups {
                    let mut acc = 0i32;
                    for i in g * GROUP..(g + 1) * GROUP {
                        acc += a.q[r * kp + i] as i32 * self.packed[Self::at(kp, i, j)] as i32;
                    }
                    let acc = acc - self.group_offset[g * n + j];
                    y = (acc as f32).mul_add(a.scale[r * groups + g], y);
                }
                out[r * n + j] = y * self.col_scale[j];
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows_avx2(&self, rows: &Rows, out: &mut [f32]) {
        use std::arch::x86_64::*;
        let (kp, n) = (self.kp, self.n);
        let groups = kp / GROUP;
        let a = &rows.q;
        debug_assert!(rows.padded % MR == 0 && a.len() >= rows.padded * kp);
        debug_assert!(out.len() >= rows.valid * n);
        let ones = _mm256_set1_epi16(1);
        for p in 0..n.div_ceil(NR) {
            let panel = self.packed.as_ptr().add(p * (kp / 4) * NR * 4);
            for r0 in (0..rows.padded).step_by(MR) {
                let a0 = a.as_ptr().add(r0 * kp);
                let mut y = [_mm256_setzero_ps(); MR];
                for g in 0..groups {
                    let mut acc = [_mm256_setzero_si256(); MR];
                    for s in g * GROUP / 4..(g + 1) * GROUP / 4 {
                        let b = _mm256_loadu_si256(panel.add(s * NR * 4) as *const __m256i);
                        for (r, acc) in acc.iter_mut().enumerate() {
                            // Four consecutive inputs of row r, broadcast to every column.
                            let v = _mm256_set1_epi32(
                                (a0.add(r * kp + s * 4) as *const i32).read_unaligned(),
                            );
                            let p = _mm256_maddubs_epi16(v, b);
                            *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(p, ones));
                        }
                    }
                    let mut off = [0i32; NR];
                    let cols = (n - p * NR).min(NR);
                    off[..cols].copy_from_slice(&self.group_offset[g * n + p * NR..][..cols]);
                    let off = _mm256_loadu_si256(off.as_ptr() as *const __m256i);
                    for (r, (y, acc)) in y.iter_mut().zip(&acc).enumerate() {
                        let s = _mm256_set1_ps(*rows.scale.get_unchecked((r0 + r) * groups + g));
                        let a = _mm256_cvtepi32_ps(_mm256_sub_epi32(*acc, off));
                        *y = _mm256_fmadd_ps(a, s, *y);
                    }
                }
                let cols = (n - p * NR).min(NR);
                let mut cs = [0f32; NR];
                cs[..cols].copy_from_slice(&self.col_scale[p * NR..][..cols]);
                let cs = _mm256_loadu_ps(cs.as_ptr());
                for (r, y) in y.iter().enumerate().take(rows.valid.saturating_sub(r0)) {
                    let o = out.as_mut_ptr().add((r0 + r) * n + p * NR);
                    let v = _mm256_mul_ps(*y, cs);
                    if cols == NR {
                        _mm256_storeu_ps(o, v);
                    } else {
                        let mut lanes = [0f32; NR];
                        _mm256_storeu_ps(lanes.as_mut_ptr(), v);
                        std::ptr::copy_nonoverlapping(lanes.as_ptr(), o, cols);
                    }
                }
            }
        }
    }
}

/// One task's quantised input rows: `padded` rows of `kp` bytes (a multiple of MR; rows from
/// `valid` on are padding), and a scale per row and group (`[padded][kp / GROUP]`).
struct Rows {
    q: Vec<u8>,
    scale: Vec<f32>,
    padded: usize,
    valid: usize,
}

/// Quantise one group of inputs to `[-A_MAX, A_MAX]` plus `ZERO` (rounding half to even);
/// returns its scale. The AVX2 version and the portable one give the same bytes.
fn quantize(x: &[f32], q: &mut [u8]) -> f32 {
    let max = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { max / A_MAX as f32 } else { 1.0 };
    let inv = 1.0 / scale;
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::avx2() {
        // SAFETY: AVX2 is present; the function reads and writes within `x` and `q`.
        unsafe { quantize_avx2(x, inv, q) };
        return scale;
    }
    quantize_portable(x, inv, q);
    scale
}

fn quantize_portable(x: &[f32], inv: f32, q: &mut [u8]) {
    for (q, &v) in q.iter_mut().zip(x) {
        *q = (((v * inv).round_ties_even() as i32).clamp(-A_MAX, A_MAX) + ZERO) as u8;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_avx2(x: &[f32], inv: f32, q: &mut [u8]) {
    use std::arch::x86_64::*;
    let len = x.len().min(q.len());
    let vinv = _mm256_set1_ps(inv);
    let (lo, hi) = (_mm256_set1_epi32(-A_MAX), _mm256_set1_epi32(A_MAX));
    let zero = _mm256_set1_epi32(ZERO);
    let mut i = 0;
    while i + 8 <= len {
        // cvtps rounds half to even (the default MXCSR mode), as `round_ties_even`.
        let v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x.as_ptr().add(i)), vinv));
        let v = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(v, lo), hi), zero);
        // 8 x i32 in 0..=255 -> bytes; the packs work per 128-bit lane, so lane 0 ends with
        // elements 0-3 in its first four bytes and lane 1 with elements 4-7.
        let w = _mm256_packus_epi32(v, v);
        let b = _mm256_packus_epi16(w, w);
        let p = q.as_mut_ptr().add(i) as *mut i32;
        p.write_unaligned(_mm256_cvtsi256_si32(b));
        p.add(1).write_unaligned(_mm256_extract_epi32::<4>(b));
        i += 8;
    }
    quantize_portable(&x[i..len], inv, &mut q[i..len]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len).map(|_| lcg(&mut s)).collect()
    }

    #[test]
    fn avx2_kernel_matches_the_portable_twin_bit_for_bit() {
        // Odd sizes: row, column and input remainders all exercised.
        for &(m, k, n) in &[
            (1, 4, 1),
            (7, 13, 17),
            (37, 384, 48),
            (130, 96, 1152 / 8 + 5),
        ] {
            let w = random(k * n, 1 + m as u64);
            let x = random(m * k, 7 + n as u64);
            let q = QLinear::new(&w, k, n);
            assert_eq!(q.forward(&x, m), q.forward_portable(&x, m), "{m}x{k}x{n}");
        }
    }

    #[test]
    fn vector_quantiser_matches_the_portable_one() {
        // Values on rounding ties (x.5 after scaling) and beyond the row maximum's range.
        let mut x: Vec<f32> = (0..77).map(|i| (i as f32 - 38.0) * 0.5).collect();
        x.extend(random(300, 5));
        for len in [1, 7, 8, 9, 77, 377] {
            let row = &x[..len];
            let mut a = vec![0u8; len];
            let mut b = vec![0u8; len];
            let scale = quantize(row, &mut a);
            quantize_portable(row, 1.0 / scale, &mut b);
            assert_eq!(a, b, "length {len}");
        }
    }

    #[test]
    fn extreme_values_do_not_saturate() {
        // Every activation at ±max (u8 255 or 1) against every weight at +max: the worst case
        // of vpmaddubsw's i16 pair sum. The result must be exact.
        let (m, k, n) = (4, 64, 16);
        let w = vec![1.0f32; k * n];
        let x = vec![1.0f32; m * k];
        let q = QLinear::new(&w, k, n);
        for v in q.forward(&x, m) {
            assert!((v - k as f32).abs() < 1e-3, "{v}");
        }
        let xn = vec![-1.0f32; m * k];
        for v in q.forward(&xn, m) {
            assert!((v + k as f32).abs() < 1e-3, "{v}");
        }
    }

    #[test]
    fn close_to_the_f32_product() {
        let (m, k, n) = (33, 384, 64);
        let w = random(k * n, 3);
        let x = random(m * k, 4);
        let y = QLinear::new(&w, k, n).forward(&x, m);
        for r in 0..m {
            let exact: Vec<f32> = (0..n)
                .map(|j| (0..k).map(|i| x[r * k + i] * w[i * n + j]).sum())
                .collect();
            let dot: f32 = exact
                .iter()
                .zip(&y[r * n..(r + 1) * n])
                .map(|(a, b)| a * b)
                .sum();
            let na: f32 = exact.iter().map(|a| a * a).sum::<f32>().sqrt();
            let nb: f32 = y[r * n..(r + 1) * n]
                .iter()
                .map(|a| a * a)
                .sum::<f32>()
                .sqrt();
            assert!(
                dot / (na * nb) > 0.999,
                "row {r}: cosine {}",
                dot / (na * nb)
            );
        }
    }

    #[test]
    fn zero_rows_and_weights_give_zero() {
        let q = QLinear::new(&[0.0; 8 * 5], 8, 5);
        assert_eq!(q.forward(&[0.5; 3 * 8], 3), vec![0.0; 15]);
        let q = QLinear::new(&random(8 * 5, 9), 8, 5);
        assert_eq!(q.forward(&[0.0; 2 * 8], 2), vec![0.0; 10]);
        assert!(q.forward(&[], 0).is_empty());
    }
}
