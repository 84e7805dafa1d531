//! Int8 linear layers for the CPU encoder (`--precision int8`).
//!
//! Contract: [`QLinear`]'s [`CpuLinear::forward`] computes `x · W` for an f32 `[M, K]` matrix `x` and the
//! `[K, N]` weight given at construction, with
//! - weights quantised once, symmetrically per output column, to 8 bits (`[-W_MAX, W_MAX]`);
//! - activations quantised at run time, symmetrically per row, to `[-a_max, a_max]` with
//!   `a_max` up to [`A_MAX`] (14 bits), held as i16;
//! - every product summed exactly in i32, then `y[m][n] = (acc · s_row[m]) · s_col[n]` in f32.
//!
//! Why 8-bit weights against 16-bit activations (measurements in benches/README.md):
//! - On AVX2 without VNNI, `vpmaddwd` (i16 × i16, pairs summed into i32) multiplies as many
//!   products per cycle as the u8 × i8 `vpmaddubsw` route, which needs a second multiply to
//!   widen its *saturating* i16 pair sums. So wide activations cost nothing in multiplies, and
//!   the sum is exact with no saturation to guard against. With VNNI, `vpdpwssd` multiplies
//!   and accumulates in one instruction ([`Kernel`]: 512-bit where AVX-512 VNNI is, else
//!   256-bit), on the same packed layout.
//! - AMX (Intel, from Sapphire Rapids) multiplies int8 tiles only. A 16-bit activation is its
//!   high byte (signed) times 256 plus its low byte (unsigned), so two tile products against
//!   the same weight tile (`tdpbssd`, `tdpbusd`) give the same exact sum ([`Kernel::Amx`]).
//!   Each partial sum may wrap in i32, but the combination is computed modulo 2^32 and the
//!   true sum fits, so the result is exact.
//! - BERT's hidden states carry a few outlier channels; with 8-bit activations and one scale per
//!   row they coarsen every other channel of the row (worst cosine 0.97 on ShareGPT), and groups
//!   of inputs with their own scales cost a rescaling pass per group. With 14 bits, one scale
//!   per row leaves the activations' rounding far below the weights'.
//! - `a_max` is 8,191 unless `K · a_max · W_MAX` would overflow i32; then it is lowered.
//!
//! [`QLinear::forward_portable`] (plain loops, the same f32 operations in the same order) is
//! every kernel's twin and test oracle: they agree bit for bit. The caller keeps LayerNorm,
//! softmax, GELU, attention and pooling in f32 (`super::bert`).

use std::mem::MaybeUninit;

use super::sgemm::{rows_in_parallel, CpuLinear, Then, NOTHING_THEN};

/// Largest quantised weight magnitude.
pub const W_MAX: i32 = 127;
/// Largest quantised activation magnitude (smaller for very long inputs: see the module
/// comment).
pub const A_MAX: i32 = 8191;

/// Columns per packed panel (two AVX2 registers of eight i32 accumulators).
const NR: usize = 16;
/// Rows per micro-tile.
const MR: usize = 6;

/// A linear layer without bias whose weight is held as int8 (widened to i16 for the kernel).
pub struct QLinear {
    k: usize,
    n: usize,
    /// `k` rounded up to even (the kernel consumes two inputs per step); the padding is zero.
    kp: usize,
    /// Largest quantised activation for this `k`.
    a_max: i32,
    /// Weights in panels of `NR` columns: `[n_panels][kp / 2][NR][2]`, zero-padded.
    packed: Vec<i16>,
    /// Per output column (padded to whole panels with zeros): the weight's dequantisation scale.
    col_scale: Vec<f32>,
    /// The same weights as AMX tiles, only where [`Kernel::Amx`] can run (else empty):
    /// `[n_panels][k_blocks][16][NR][4]` i8, a tile per panel and block of [`AMX_K`] inputs,
    /// input `4r + i` of the block and column `c` of the panel at row `r`, byte `4c + i`.
    tiles: Vec<i8>,
}

/// Inputs per AMX tile row (64 bytes of int8).
const AMX_K: usize = 64;
/// Rows per AMX tile.
const AMX_ROWS: usize = 16;

impl QLinear {
    /// Quantise a row-major `[k, n]` weight (`w[i * n + j]` multiplies input `i` into output
    /// `j`).
    pub fn new(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "weight is not [{k}, {n}]");
        let kp = k.div_ceil(2) * 2;
        let a_max = (i32::MAX as i64 / (kp.max(1) as i64 * W_MAX as i64)).min(A_MAX as i64) as i32;
        assert!(
            a_max >= 127,
            "an input of {k} features is too long for the int8 kernel"
        );
        let panels = n.div_ceil(NR);
        let mut packed = vec![0i16; panels * kp * NR];
        let mut col_scale = vec![0f32; panels * NR];
        for j in 0..n {
            let max = (0..k).map(|i| w[i * n + j].abs()).fold(0f32, f32::max);
            let scale = if max > 0.0 { max / W_MAX as f32 } else { 1.0 };
            col_scale[j] = scale;
            let inv = 1.0 / scale;
            for i in 0..k {
                let q = ((w[i * n + j] * inv).round_ties_even() as i32).clamp(-W_MAX, W_MAX);
                packed[Self::at(kp, i, j)] = q as i16;
            }
        }
        let mut q = QLinear {
            k,
            n,
            kp,
            a_max,
            packed,
            col_scale,
            tiles: Vec::new(),
        };
        if Kernel::Amx.available() {
            q.tiles = q.amx_tiles();
        }
        q
    }

    /// The weights in the AMX tile layout (see `tiles`), from the packed ones.
    fn amx_tiles(&self) -> Vec<i8> {
        let (panels, blocks) = (self.n.div_ceil(NR), self.k.div_ceil(AMX_K));
        let mut t = vec![0i8; panels * blocks * AMX_ROWS * NR * 4];
        for j in 0..self.n {
            for i in 0..self.k {
                let (p, c, b, r) = (j / NR, j % NR, i / AMX_K, (i % AMX_K) / 4);
                let at = ((p * blocks + b) * AMX_ROWS + r) * NR * 4 + c * 4 + i % 4;
                t[at] = self.packed[Self::at(self.kp, i, j)] as i8;
            }
        }
        t
    }

    /// Index of weight `(i, j)` in the packed layout.
    #[inline(always)]
    fn at(kp: usize, i: usize, j: usize) -> usize {
        ((j / NR) * (kp / 2) + i / 2) * NR * 2 + (j % NR) * 2 + i % 2
    }

    /// The twin of [`CpuLinear::forward`] in plain loops: the test oracle.
    pub fn forward_portable(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.forward_with(Kernel::Portable, x, m)
    }

    /// `x · W` with a given kernel; one this CPU lacks is refused (a panic: a caller's bug).
    /// The portable kernel quantises with the portable quantiser too, so that it is an oracle
    /// independent of every SIMD path.
    pub fn forward_with(&self, kernel: Kernel, x: &[f32], m: usize) -> Vec<f32> {
        self.forward_with_then(kernel, x, m, NOTHING_THEN)
    }

    fn forward_with_then(&self, kernel: Kernel, x: &[f32], m: usize, then: Then) -> Vec<f32> {
        assert!(
            kernel.available(),
            "the {kernel:?} kernel needs CPU features this one lacks"
        );
        let simd_quantiser = kernel != Kernel::Portable;
        let kernel = |q: &Self, rows: &Rows, out: &mut [MaybeUninit<f32>]| match kernel {
            Kernel::Portable => q.rows_portable(rows, out),
            // SAFETY (all three): the kernel's CPU features are present (asserted above);
            // `rows` holds a multiple of MR quantised rows of `kp` values and `out` has room for
            // its valid rows.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { q.rows_avx2(rows, out) },
            #[cfg(target_arch = "x86_64")]
            Kernel::AvxVnni => unsafe { q.rows_avx_vnni(rows, out) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => unsafe { q.rows_avx512_vnni(rows, out) },
            // SAFETY: as above; `tiles` was built at construction, since the kernel is
            // available.
            #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
            Kernel::Amx => unsafe { q.rows_amx(rows, out) },
            #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
            Kernel::Amx => unreachable!("the AMX kernel runs on x86_64 Linux only"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the portable kernel is available off x86_64"),
        };
        self.run(x, m, simd_quantiser, kernel, then)
    }

    /// Quantise `x` and run `kernel` over blocks of rows in parallel ([`rows_in_parallel`]:
    /// every kernel writes every column of every valid row it is given), then `then`.
    fn run(
        &self,
        x: &[f32],
        m: usize,
        simd_quantiser: bool,
        kernel: impl Fn(&Self, &Rows, &mut [MaybeUninit<f32>]) + Sync,
        then: Then,
    ) -> Vec<f32> {
        assert_eq!(x.len(), m * self.k, "input is not [{m}, {}]", self.k);
        let (k, kp, n) = (self.k, self.kp, self.n);
        let task = |r0: usize, out: &mut [MaybeUninit<f32>]| {
            let valid = out.len() / n;
            let padded = valid.div_ceil(MR) * MR;
            // Padding rows and inputs are zeros with scale 0.
            let mut q = vec![0i16; padded * kp];
            let mut scale = vec![0f32; padded];
            for r in 0..valid {
                let row = &x[(r0 + r) * k..(r0 + r + 1) * k];
                let q = &mut q[r * kp..r * kp + k];
                scale[r] = quantize(row, self.a_max, q, simd_quantiser);
            }
            let rows = Rows {
                q,
                scale,
                padded,
                valid,
            };
            kernel(self, &rows, out);
        };
        rows_in_parallel(m, n, MR, task, then)
    }

    fn rows_portable(&self, a: &Rows, out: &mut [MaybeUninit<f32>]) {
        let (kp, n) = (self.kp, self.n);
        for r in 0..a.valid {
            for j in 0..n {
                let mut acc = 0i32;
                for i in 0..kp {
                    acc += a.q[r * kp + i] as i32 * self.packed[Self::at(kp, i, j)] as i32;
                }
                out[r * n + j].write((acc as f32 * a.scale[r]) * self.col_scale[j]);
            }
        }
    }

    /// Quantised rows times the packed weight, 256-bit: `acc += a · b` per pair of inputs by
    /// `vpmaddwd` + `vpaddd` (AVX2) or one `vpdpwssd` (AVX-VNNI).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows_avx2(&self, rows: &Rows, out: &mut [MaybeUninit<f32>]) {
        use std::arch::x86_64::*;
        rows_256!(self, rows, out, |acc, v, b| _mm256_add_epi32(
            acc,
            _mm256_madd_epi16(v, b)
        ))
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,avxvnni")]
    unsafe fn rows_avx_vnni(&self, rows: &Rows, out: &mut [MaybeUninit<f32>]) {
        use std::arch::x86_64::*;
        rows_256!(self, rows, out, |acc, v, b| _mm256_dpwssd_avx_epi32(
            acc, v, b
        ))
    }

    /// The 512-bit kernel: a panel's pair of inputs is one register, two panels (32 columns)
    /// per micro-tile, `vpdpwssd` accumulating.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn rows_avx512_vnni(&self, rows: &Rows, out: &mut [MaybeUninit<f32>]) {
        let panels = self.n.div_ceil(NR);
        let mut p = 0;
        while p < panels {
            if p + 1 < panels {
                self.tile_avx512_vnni::<2>(rows, out, p);
                p += 2;
            } else {
                self.tile_avx512_vnni::<1>(rows, out, p);
                p += 1;
            }
        }
    }

    /// Panels `p0..p0 + P` against every row of `rows`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile_avx512_vnni<const P: usize>(
        &self,
        rows: &Rows,
        out: &mut [MaybeUninit<f32>],
        p0: usize,
    ) {
        use std::arch::x86_64::*;
        let (kp, n) = (self.kp, self.n);
        let pairs = kp / 2;
        let a = &rows.q;
        debug_assert!(rows.padded.is_multiple_of(MR) && a.len() >= rows.padded * kp);
        debug_assert!(out.len() >= rows.valid * n);
        let panel = |i: usize| self.packed.as_ptr().add((p0 + i) * pairs * NR * 2);
        for r0 in (0..rows.padded).step_by(MR) {
            let a0 = a.as_ptr().add(r0 * kp);
            let mut acc = [[_mm512_setzero_si512(); P]; MR];
            for s in 0..pairs {
                let mut b = [_mm512_setzero_si512(); P];
                for (i, b) in b.iter_mut().enumerate() {
                    *b = _mm512_loadu_si512(panel(i).add(s * NR * 2) as *const __m512i);
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    // Two consecutive inputs of row r, broadcast to every column.
                    let v =
                        _mm512_set1_epi32((a0.add(r * kp + s * 2) as *const i32).read_unaligned());
                    for (acc, &b) in acc.iter_mut().zip(&b) {
                        *acc = _mm512_dpwssd_epi32(*acc, v, b);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate().take(rows.valid.saturating_sub(r0)) {
                let rs = _mm512_set1_ps(*rows.scale.get_unchecked(r0 + r));
                for (i, acc) in acc.iter().enumerate() {
                    let p = p0 + i;
                    let cols = (n - p * NR).min(NR);
                    let cs = _mm512_loadu_ps(self.col_scale.as_ptr().add(p * NR));
                    let y = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(*acc), rs), cs);
                    let o = (out.as_mut_ptr() as *mut f32).add((r0 + r) * n + p * NR);
                    _mm512_mask_storeu_ps(o, ((1u32 << cols) - 1) as __mmask16, y);
                }
            }
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
impl QLinear {
    /// Quantised rows times the weight tiles with AMX: per block of 16 rows, the rows' high
    /// and low bytes as two A tiles, two panels (32 columns) at a time, four accumulator tiles
    /// (high and low, per panel).
    ///
    /// # Safety
    /// [`crate::cpu::amx_int8`] is true, `self.tiles` is built, and `rows`/`out` are as for the
    /// other kernels.
    unsafe fn rows_amx(&self, rows: &Rows, out: &mut [MaybeUninit<f32>]) {
        use std::arch::asm;
        let (k, kp, n) = (self.k, self.kp, self.n);
        let blocks = k.div_ceil(AMX_K);
        let kw = blocks * AMX_K;
        let panels = n.div_ceil(NR);
        let row_blocks = rows.valid.div_ceil(AMX_ROWS);
        // Split every activation into high (signed) and low (unsigned) bytes, rows padded to
        // whole tiles and inputs to whole blocks with zeros.
        let mut hi = vec![0i8; row_blocks * AMX_ROWS * kw];
        let mut lo = vec![0u8; row_blocks * AMX_ROWS * kw];
        for r in 0..rows.valid {
            for (i, &a) in rows.q[r * kp..r * kp + k].iter().enumerate() {
                hi[r * kw + i] = (a >> 8) as i8;
                lo[r * kw + i] = (a & 0xff) as u8;
            }
        }
        // Every tile is 16 rows of 64 bytes.
        #[repr(C, align(64))]
        struct Config([u8; 64]);
        let mut cfg = Config([0; 64]);
        cfg.0[0] = 1;
        for t in 0..8 {
            cfg.0[16 + 2 * t..18 + 2 * t].copy_from_slice(&(AMX_K as u16).to_le_bytes());
            cfg.0[48 + t] = AMX_ROWS as u8;
        }
        #[repr(C, align(64))]
        struct Acc([i32; 4 * AMX_ROWS * NR]);
        let mut acc = Acc([0; 4 * AMX_ROWS * NR]);
        // A panel of zeros stands in for the second panel when the count is odd.
        let zeros = if panels % 2 == 1 {
            vec![0i8; blocks * AMX_ROWS * NR * 4]
        } else {
            Vec::new()
        };
        let tile = AMX_ROWS * NR * 4;
        asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        for rb in 0..row_blocks {
            let (h, l) = (
                hi.as_ptr().add(rb * AMX_ROWS * kw),
                lo.as_ptr().add(rb * AMX_ROWS * kw),
            );
            for p in (0..panels).step_by(2) {
                let b0 = self.tiles.as_ptr().add(p * blocks * tile);
                let b1 = if p + 1 < panels {
                    self.tiles.as_ptr().add((p + 1) * blocks * tile)
                } else {
                    zeros.as_ptr()
                };
                asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    options(nostack, nomem)
                );
                for b in 0..blocks {
                    asm!(
                        "tileloadd tmm4, [{h} + {ks}*1]",
                        "tileloadd tmm5, [{l} + {ks}*1]",
                        "tileloadd tmm6, [{b0} + {bs}*1]",
                        "tileloadd tmm7, [{b1} + {bs}*1]",
                        "tdpbssd tmm0, tmm4, tmm6",
                        "tdpbusd tmm1, tmm5, tmm6",
                        "tdpbssd tmm2, tmm4, tmm7",
                        "tdpbusd tmm3, tmm5, tmm7",
                        h = in(reg) h.add(b * AMX_K),
                        l = in(reg) l.add(b * AMX_K),
                        b0 = in(reg) b0.add(b * tile),
                        b1 = in(reg) b1.add(b * tile),
                        ks = in(reg) kw,
                        bs = in(reg) NR * 4,
                        options(nostack, readonly),
                    );
                }
                let c = acc.0.as_mut_ptr();
                asm!(
                    "tilestored [{c0} + {s}*1], tmm0",
                    "tilestored [{c1} + {s}*1], tmm1",
                    "tilestored [{c2} + {s}*1], tmm2",
                    "tilestored [{c3} + {s}*1], tmm3",
                    c0 = in(reg) c,
                    c1 = in(reg) c.add(AMX_ROWS * NR),
                    c2 = in(reg) c.add(2 * AMX_ROWS * NR),
                    c3 = in(reg) c.add(3 * AMX_ROWS * NR),
                    s = in(reg) NR * 4,
                    options(nostack),
                );
                for r in 0..AMX_ROWS.min(rows.valid - rb * AMX_ROWS) {
                    let row = rb * AMX_ROWS + r;
                    for half in 0..2 {
                        let pp = p + half;
                        if pp >= panels {
                            break;
                        }
                        let (high, low) =
                            (2 * half * AMX_ROWS * NR, (2 * half + 1) * AMX_ROWS * NR);
                        for col in 0..(n - pp * NR).min(NR) {
                            let sum = acc.0[high + r * NR + col]
                                .wrapping_mul(256)
                                .wrapping_add(acc.0[low + r * NR + col]);
                            let j = pp * NR + col;
                            out[row * n + j]
                                .write((sum as f32 * rows.scale[row]) * self.col_scale[j]);
                        }
                    }
                }
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

/// With the fastest [`Kernel`] this CPU has; every kernel gives the same bits as
/// [`QLinear::forward_portable`].
impl CpuLinear for QLinear {
    fn in_dim(&self) -> usize {
        self.k
    }

    fn out_dim(&self) -> usize {
        self.n
    }

    fn forward_then(&self, x: &[f32], m: usize, then: Then) -> Vec<f32> {
        self.forward_with_then(Kernel::best(), x, m, then)
    }
}

/// The 256-bit micro-kernel over `$rows` for every panel, with `$acc(acc, v, b)` adding the
/// products of broadcast input pairs `v` and a panel's weights `b` to `acc` (one macro so
/// that the AVX2 and AVX-VNNI kernels cannot drift apart).
#[cfg(target_arch = "x86_64")]
macro_rules! rows_256 {
    ($q:expr, $rows:expr, $out:expr, $acc:expr) => {{
        let (q, rows, out): (&QLinear, &Rows, &mut [MaybeUninit<f32>]) = ($q, $rows, $out);
        let (kp, n) = (q.kp, q.n);
        let pairs = kp / 2;
        let a = &rows.q;
        debug_assert!(rows.padded % MR == 0 && a.len() >= rows.padded * kp);
        debug_assert!(out.len() >= rows.valid * n);
        for p in 0..n.div_ceil(NR) {
            let panel = q.packed.as_ptr().add(p * pairs * NR * 2);
            let cols = (n - p * NR).min(NR);
            let cs0 = _mm256_loadu_ps(q.col_scale.as_ptr().add(p * NR));
            let cs1 = _mm256_loadu_ps(q.col_scale.as_ptr().add(p * NR + 8));
            for r0 in (0..rows.padded).step_by(MR) {
                let a0 = a.as_ptr().add(r0 * kp);
                let mut acc = [[_mm256_setzero_si256(); 2]; MR];
                for s in 0..pairs {
                    let b = panel.add(s * NR * 2);
                    let b0 = _mm256_loadu_si256(b as *const __m256i);
                    let b1 = _mm256_loadu_si256(b.add(16) as *const __m256i);
                    for (r, acc) in acc.iter_mut().enumerate() {
                        // Two consecutive inputs of row r, broadcast to every column.
                        let v = _mm256_set1_epi32(
                            (a0.add(r * kp + s * 2) as *const i32).read_unaligned(),
                        );
                        acc[0] = $acc(acc[0], v, b0);
                        acc[1] = $acc(acc[1], v, b1);
                    }
                }
                for (r, acc) in acc.iter().enumerate().take(rows.valid.saturating_sub(r0)) {
                    let rs = _mm256_set1_ps(*rows.scale.get_unchecked(r0 + r));
                    let y0 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[0]), rs), cs0);
                    let y1 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[1]), rs), cs1);
                    let o = (out.as_mut_ptr() as *mut f32).add((r0 + r) * n + p * NR);
                    if cols == NR {
                        _mm256_storeu_ps(o, y0);
                        _mm256_storeu_ps(o.add(8), y1);
                    } else {
                        let mut lanes = [0f32; NR];
                        _mm256_storeu_ps(lanes.as_mut_ptr(), y0);
                        _mm256_storeu_ps(lanes.as_mut_ptr().add(8), y1);
                        std::ptr::copy_nonoverlapping(lanes.as_ptr(), o, cols);
                    }
                }
            }
        }
    }};
}
#[cfg(target_arch = "x86_64")]
use rows_256;

/// The GEMM kernels, fastest first; all give the same bits (exact integer sums, then the same
/// two f32 multiplies per output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// AMX int8 tiles: each 16-bit activation split into its high byte (signed, `tdpbssd`)
    /// and low byte (unsigned, `tdpbusd`), both against the same weight tile; `high · 256 +
    /// low` in wrapping i32 arithmetic is the exact sum, since the true sum fits in i32.
    Amx,
    /// 512-bit, `vpdpwssd` (AVX-512 VNNI).
    Avx512Vnni,
    /// 256-bit, `vpdpwssd` (AVX-VNNI).
    AvxVnni,
    /// 256-bit, `vpmaddwd` + `vpaddd` (AVX2).
    Avx2,
    /// Plain loops: any CPU, and the test oracle.
    Portable,
}

impl Kernel {
    pub const ALL: [Kernel; 5] = [
        Kernel::Amx,
        Kernel::Avx512Vnni,
        Kernel::AvxVnni,
        Kernel::Avx2,
        Kernel::Portable,
    ];

    /// Whether this CPU can run the kernel.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Kernel::Amx => crate::cpu::amx_int8(),
                Kernel::Avx512Vnni => crate::cpu::avx512() && has!("avx512vnni"),
                Kernel::AvxVnni => crate::cpu::avx2_fma() && has!("avxvnni"),
                Kernel::Avx2 => crate::cpu::avx2_fma(),
                Kernel::Portable => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Kernel::Portable
        }
    }

    /// The fastest kernel this CPU can run.
    pub fn best() -> Kernel {
        Kernel::ALL
            .into_iter()
            .find(|k| k.available())
            .unwrap_or(Kernel::Portable)
    }
}

/// One task's quantised input rows: `padded` rows of `kp` values (a multiple of MR; rows from
/// `valid` on are padding), and a scale per row.
struct Rows {
    q: Vec<i16>,
    scale: Vec<f32>,
    padded: usize,
    valid: usize,
}

/// Quantise one row to `[-a_max, a_max]` (rounding half to even), with the AVX2 quantiser
/// when `simd` and the CPU has AVX2; returns its scale. Both give the same values for every
/// input: NaN quantises to 0, ±inf to ±a_max, and a row too small for its scale's inverse to
/// be finite counts as all zero.
fn quantize(x: &[f32], a_max: i32, q: &mut [i16], simd: bool) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd && crate::cpu::avx2() {
        // SAFETY: AVX2 is present; the functions read and write within `x` and `q`.
        unsafe {
            let scale = row_scale(max_abs_avx2(x), a_max);
            quantize_avx2(x, 1.0 / scale, a_max, q);
            return scale;
        }
    }
    let _ = simd;
    let scale = row_scale(x.iter().fold(0f32, |m, v| m.max(v.abs())), a_max);
    quantize_portable(x, 1.0 / scale, a_max, q);
    scale
}

/// The scale that maps a row's largest magnitude `max` to `a_max`; 1 for an all-zero row, or
/// one whose scale would have no finite inverse.
fn row_scale(max: f32, a_max: i32) -> f32 {
    if max > 0.0 && (a_max as f32 / max).is_finite() {
        max / a_max as f32
    } else {
        1.0
    }
}

/// `max |x|` (0 when empty), skipping NaN like the portable `f32::max` fold: exact, so the
/// same value.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn max_abs_avx2(x: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
    let mut m = _mm256_setzero_ps();
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        // maxps returns its second operand when either is NaN: the running maximum survives.
        m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(c.as_ptr()), abs), m);
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), m);
    lanes.iter().chain(rest).fold(0f32, |m, v| m.max(v.abs()))
}

fn quantize_portable(x: &[f32], inv: f32, a_max: i32, q: &mut [i16]) {
    let lim = a_max as f32;
    for (q, &v) in q.iter_mut().zip(x) {
        let v = v * inv;
        let v = if v.is_nan() { 0.0 } else { v.clamp(-lim, lim) };
        *q = v.round_ties_even() as i16;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_avx2(x: &[f32], inv: f32, a_max: i32, q: &mut [i16]) {
    use std::arch::x86_64::*;
    let len = x.len().min(q.len());
    let vinv = _mm256_set1_ps(inv);
    let (lo, hi) = (_mm256_set1_ps(-a_max as f32), _mm256_set1_ps(a_max as f32));
    let mut i = 0;
    while i + 8 <= len {
        let v = _mm256_mul_ps(_mm256_loadu_ps(x.as_ptr().add(i)), vinv);
        // NaN lanes to 0, then the clamp (bounds are integers, so clamping before rounding
        // is the same as after), then cvtps, which rounds half to even (the default MXCSR
        // mode) as `round_ties_even` does.
        let v = _mm256_and_ps(v, _mm256_cmp_ps::<_CMP_ORD_Q>(v, v));
        let v = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
        // The pack works per 128-bit lane: elements 0-3 land in qword 0 and 4-7 in qword 2.
        let w = _mm256_permute4x64_epi64::<0b1000>(_mm256_packs_epi32(v, v));
        _mm_storeu_si128(
            q.as_mut_ptr().add(i) as *mut __m128i,
            _mm256_castsi256_si128(w),
        );
        i += 8;
    }
    quantize_portable(&x[i..len], inv, a_max, &mut q[i..len]);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// `len` numbers in [-1, 1) from a fixed generator (the GEMM tests' inputs).
    pub(crate) fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len).map(|_| lcg(&mut s)).collect()
    }

    /// Each of `kernels` against the portable twin, bit for bit, on odd sizes: row, column,
    /// panel and input remainders all exercised.
    fn kernels_match_the_portable_twin(kernels: &[Kernel]) {
        for &(m, k, n) in &[
            (1, 4, 1),
            (7, 13, 17),
            (37, 384, 48),
            (130, 96, 1152 / 8 + 5),
            (61, 1536, 384),
        ] {
            let w = random(k * n, 1 + m as u64);
            let x = random(m * k, 7 + n as u64);
            let q = QLinear::new(&w, k, n);
            let want = q.forward_portable(&x, m);
            for &kernel in kernels {
                assert_eq!(
                    q.forward_with(kernel, &x, m),
                    want,
                    "{kernel:?} {m}x{k}x{n}"
                );
            }
        }
    }

    #[test]
    fn every_kernel_this_cpu_has_matches_the_portable_twin() {
        let here: Vec<Kernel> = Kernel::ALL.into_iter().filter(|k| k.available()).collect();
        eprintln!(
            "int8 kernels on this CPU: {here:?} (forward uses {:?})",
            Kernel::best()
        );
        assert_eq!(Kernel::best(), here[0]);
        kernels_match_the_portable_twin(&here);
    }

    #[test]
    #[ignore = "needs a CPU with AVX-512 VNNI and AVX-VNNI (Zen 5, Sapphire Rapids): run with --ignored on one"]
    fn the_vnni_kernels_match_the_portable_twin() {
        let vnni = [Kernel::Avx512Vnni, Kernel::AvxVnni];
        for k in vnni {
            assert!(k.available(), "this CPU lacks the {k:?} kernel's features");
        }
        kernels_match_the_portable_twin(&vnni);
    }

    #[test]
    fn vector_quantiser_matches_the_portable_one() {
        // Values on rounding ties (x.5 after scaling) and beyond the row maximum's range.
        let mut x: Vec<f32> = (0..77).map(|i| (i as f32 - 38.0) * 0.5).collect();
        x.extend(random(300, 5));
        // NaN and ±inf inside a row, and a row too small for its scale to invert.
        let mut odd = random(40, 6);
        odd[3] = f32::NAN;
        odd[17] = f32::INFINITY;
        odd[30] = f32::NEG_INFINITY;
        let tiny: Vec<f32> = random(24, 7).iter().map(|v| v * 1e-37).collect();
        let rows: Vec<&[f32]> = [1, 7, 8, 9, 77, 377]
            .iter()
            .map(|&len| &x[..len])
            .chain([&odd[..], &odd[..9], &tiny[..]])
            .collect();
        for row in rows {
            let len = row.len();
            let mut a = vec![0i16; len];
            let mut b = vec![0i16; len];
            let sa = quantize(row, A_MAX, &mut a, true);
            let sb = quantize(row, A_MAX, &mut b, false);
            assert_eq!(sa, sb, "length {len}");
            assert_eq!(a, b, "length {len}");
        }
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        // Every activation at ±a_max against every weight at +W_MAX, over the longest input
        // the encoder has and one far longer (a_max lowered): the worst case of the i32 sum.
        // The result must be exact.
        for k in [1536, 100_000] {
            let (m, n) = (4, 16);
            let w = vec![1.0f32; k * n];
            let q = QLinear::new(&w, k, n);
            assert!(k as i64 * q.a_max as i64 * W_MAX as i64 <= i32::MAX as i64);
            for sign in [1.0f32, -1.0] {
                for v in q.forward(&vec![sign; m * k], m) {
                    assert!((v - sign * k as f32).abs() <= 1e-3 * k as f32, "{k}: {v}");
                }
            }
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
