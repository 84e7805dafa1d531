//! Fused CPU kernels for the encoder's element-wise steps, each with the plain candle ops as its
//! twin (used on other devices, and as the test oracle).
//!
//! Profiling the CPU encoder (benches/README.md) showed candle's element-wise ops taking a third
//! of the time next to the GEMMs: `gelu_erf` evaluates erf in f64 on one thread, softmax and the
//! bias/residual adds are separate single-threaded passes. Here each step is one pass over the
//! data, parallel over rows with rayon, written so that the compiler vectorises it; on x86_64
//! the same loops are compiled for AVX-512 and for AVX2+FMA too, and the widest the CPU has
//! runs (`multiversioned!`, checked at run time).
//! - [`BiasGelu`]: `gelu_erf(x + bias)`, erf by a rational approximation (max error ~1e-7).
//! - [`masked_softmax`]: softmax over the real keys of each sequence; padded keys get 0.
//! - [`AddNorm`]: `layer_norm(y + bias + residual)`.
//! - [`Attention`]: multi-head self-attention straight from the fused QKV projection (bias
//!   added while gathering a head, scores, masked softmax and the weighted sum of values in one
//!   pass per sequence, over its real tokens only), written in the output projection's layout.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_storage::contiguous_f32;

/// Rows per rayon task: enough work per task to amortise scheduling.
const ROWS_PER_TASK: usize = 64;

fn use_fused(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32 && x.is_contiguous()
}

/// Defines `fn $name(args)` three times over one body, compiled for AVX-512, for AVX2+FMA and
/// for the baseline target; each call runs the widest version the CPU supports (checked at
/// run time). The body must sit in a function of its own: a closure passed in from outside a
/// `target_feature` function is compiled on its own, for the baseline (SSE2 on x86_64).
macro_rules! multiversioned {
    ($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if crate::cpu::avx512() {
                    // SAFETY: the CPU supports the features enabled for this call.
                    return unsafe { avx512($($arg),*) };
                }
                if crate::cpu::avx2_fma() {
                    // SAFETY: the CPU supports the features enabled for this call.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// Lanes of the partial sums and maxima below: one AVX2 register of f32.
const LANES: usize = 8;

/// Sum of `f(v)` over `x` in [`LANES`] partial sums (so that it vectorises; f32 addition is
/// not associative, so a single running sum would not).
#[inline(always)]
fn sum_of(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|&v| f(v)).sum::<f32>()
}

/// Largest element of `x` (`-inf` when empty), lane-wise like [`sum_of`].
#[inline(always)]
fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    acc.iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

// ---------------------------------------------------------------------------------------------
// Scalar building blocks, branch-free so that loops over them vectorise.

/// e^x for f32, Cephes-style: range reduction by ln 2, degree-6 polynomial, exponent by bits.
/// Relative error ~2e-7 for x in [-87, 88]; inputs outside are clamped.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to the nearest integer
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + MAGIC;
    let k = shifted - MAGIC;
    let r = x - k * 0.693_359_4 - k * -2.121_944_4e-4;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^k from `shifted`'s bits: it lies in [2^23, 2^24), where one unit of its last bit is 1,
    // so its bits minus MAGIC's are k. The same value as `k as i32`, by integer operations that
    // vectorise (the saturating float-to-int cast does not).
    let k_int = shifted.to_bits().wrapping_sub(MAGIC.to_bits());
    y * f32::from_bits(k_int.wrapping_add(127) << 23)
}

/// erf(x) for f32 as x·P(x²)/Q(x²) on [-4, 4] (erf is ±1 in f32 outside); max error ~1e-7.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = -2.726_142_3e-10_f32;
    let p = p * x2 + 2.770_681_4e-8;
    let p = p * x2 + -2.101_024e-6;
    let p = p * x2 + -5.692_506_4e-5;
    let p = p * x2 + -7.349_906e-4;
    let p = p * x2 + -2.954_6e-3;
    let p = p * x2 + -1.609_603_3e-2;
    let q = -1.456_607_2e-5_f32;
    let q = q * x2 + -2.133_740_6e-4;
    let q = q * x2 + -1.682_827e-3;
    let q = q * x2 + -7.373_329e-3;
    let q = q * x2 + -1.426_474e-2;
    x * p / q
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

// ---------------------------------------------------------------------------------------------
// bias + GELU

pub fn bias_gelu_slow(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.broadcast_add(bias)?.gelu_erf()
}

/// `gelu_erf(x + bias)` with its bias held for the layer: as an op ([`Self::forward`]), or in
/// place on rows a GEMM has just written ([`Self::in_place`]), the same bits either way.
pub struct BiasGelu {
    bias: Tensor,
    bias_f32: Vec<f32>,
}

impl BiasGelu {
    pub fn new(bias: Tensor) -> Result<Self> {
        Ok(BiasGelu {
            bias_f32: bias.to_dtype(DType::F32)?.to_vec1()?,
            bias,
        })
    }

    /// `gelu_erf(x + bias)` for `x: [n, k]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if use_fused(x) {
            x.apply_op1_no_bwd(self)
        } else {
            bias_gelu_slow(x, &self.bias)
        }
    }

    /// `x = gelu_erf(x + bias)` on whole rows of `bias.len()`, in place.
    pub fn in_place(&self, x: &mut [f32]) {
        bias_gelu_in_place(x, &self.bias_f32)
    }
}

multiversioned! {
    /// `x = gelu(x + bias)` over rows of `bias.len()`, in place.
    fn bias_gelu_in_place(x: &mut [f32], bias: &[f32]) {
        for x in x.chunks_exact_mut(bias.len()) {
            for (x, &b) in x.iter_mut().zip(bias) {
                *x = gelu(*x + b);
            }
        }
    }
}

impl CustomOp1 for BiasGelu {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, self.name())?;
        let k = self.bias_f32.len();
        if l.dims().last() != Some(&k) {
            candle_core::bail!("bias-gelu: last dim {:?} but bias has {k}", l.dims());
        }
        let mut out = x.to_vec();
        out.par_chunks_mut(k * ROWS_PER_TASK)
            .for_each(|o| bias_gelu_in_place(o, &self.bias_f32));
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// masked softmax

/// Which keys of each sequence are padding, made once per batch and shared by every layer:
/// the lengths for the fused CPU kernel, and for other devices or dtypes the additive mask
/// `[B, 1, 1, L]` (0 for real keys, -inf for padding), already on the device.
pub struct KeyMask {
    lengths: Vec<usize>,
    additive: Option<Tensor>,
}

impl KeyMask {
    /// Mask for a batch of `lengths.len()` sequences padded to `l` tokens, for scores of
    /// `dtype` on `device`.
    pub fn new(lengths: &[usize], l: usize, device: &Device, dtype: DType) -> Result<Self> {
        let additive = if device.is_cpu() && dtype == DType::F32 {
            None
        } else {
            Some(additive_mask(lengths, l, device, dtype)?)
        };
        Ok(KeyMask {
            lengths: lengths.to_vec(),
            additive,
        })
    }
}

/// Softmax over the last dim of attention scores `[B, H, L, L]`, where only the first
/// `lengths[b]` keys of sequence `b` are real (see [`KeyMask`]): padded keys get probability 0.
pub fn masked_softmax(scores: &Tensor, mask: &KeyMask) -> Result<Tensor> {
    if use_fused(scores) {
        scores.apply_op1_no_bwd(&MaskedSoftmax {
            lengths: mask.lengths.clone(),
        })
    } else if let Some(add) = &mask.additive {
        softmax_f32_stats(&scores.broadcast_add(add)?)
    } else {
        masked_softmax_slow(scores, &mask.lengths)
    }
}

/// `[B, 1, 1, L]`: 0 for the first `lengths[b]` keys, -inf for the rest.
fn additive_mask(lengths: &[usize], l: usize, device: &Device, dtype: DType) -> Result<Tensor> {
    let b = lengths.len();
    let mut add = vec![0f32; b * l];
    for (i, &n) in lengths.iter().enumerate() {
        add[i * l + n.min(l)..(i + 1) * l]
            .iter_mut()
            .for_each(|v| *v = f32::NEG_INFINITY);
    }
    Tensor::from_vec(add, (b, 1, 1, l), device)?.to_dtype(dtype)
}

/// The plain-ops twin of [`masked_softmax`] (test oracle).
pub fn masked_softmax_slow(scores: &Tensor, lengths: &[usize]) -> Result<Tensor> {
    let (_, _, _, l) = scores.dims4()?;
    let add = additive_mask(lengths, l, scores.device(), scores.dtype())?;
    softmax_f32_stats(&scores.broadcast_add(&add)?)
}

/// candle's softmax over the last dim with its max and sum in f32 for half-precision input:
/// candle's CUDA kernel accumulates in f32 already, its CPU one in the input type (an f16 sum
/// of 256 probabilities loses the small ones), so on the CPU half input goes through f32.
fn softmax_f32_stats(x: &Tensor) -> Result<Tensor> {
    let half = matches!(x.dtype(), DType::F16 | DType::BF16);
    if half && x.device().is_cpu() {
        candle_nn::ops::softmax_last_dim(&x.to_dtype(DType::F32)?)?.to_dtype(x.dtype())
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
}

struct MaskedSoftmax {
    lengths: Vec<usize>,
}

multiversioned! {
    /// Softmax of rows of `k` scores, row `first + r` of the whole tensor at `r`; a sequence
    /// spans `per_seq` scores and only its first `lengths[seq]` keys are real (the rest stay 0).
    fn softmax_rows(
        o: &mut [f32],
        x: &[f32],
        k: usize,
        first: usize,
        per_seq: usize,
        lengths: &[usize],
    ) {
        for (r, (o, x)) in o.chunks_exact_mut(k).zip(x.chunks_exact(k)).enumerate() {
            let n = lengths[(first + r) * k / per_seq];
            let (o, x) = (&mut o[..n], &x[..n]);
            let max = max(x);
            for (o, &x) in o.iter_mut().zip(x) {
                *o = exp(x - max);
            }
            let inv = 1.0 / sum_of(o, |v| v);
            o.iter_mut().for_each(|o| *o *= inv);
        }
    }
}

impl CustomOp1 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, self.name())?;
        let &[b, h, q, k] = l.dims() else {
            candle_core::bail!("masked-softmax: expected [B, H, L, L], got {:?}", l.dims())
        };
        if self.lengths.len() != b || self.lengths.iter().any(|&n| n == 0 || n > k) {
            candle_core::bail!(
                "masked-softmax: {} lengths in 1..={k} for batch {b}",
                self.lengths.len()
            );
        }
        let per_seq = h * q * k;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(k * ROWS_PER_TASK)
            .zip(x.par_chunks(k * ROWS_PER_TASK))
            .enumerate()
            .for_each(|(task, (o, x))| {
                let first = task * ROWS_PER_TASK;
                softmax_rows(o, x, k, first, per_seq, &self.lengths)
            });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// bias + residual + LayerNorm

/// Parameters of `layer_norm(y + bias + residual)`.
pub struct AddNorm {
    bias: Tensor,
    gamma: Tensor,
    beta: Tensor,
    eps: f64,
    op: AddNormOp,
}

struct AddNormOp {
    bias: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl AddNorm {
    pub fn new(bias: Tensor, gamma: Tensor, beta: Tensor, eps: f64) -> Result<Self> {
        let v = |t: &Tensor| t.to_dtype(DType::F32)?.to_vec1::<f32>();
        let op = AddNormOp {
            bias: v(&bias)?,
            gamma: v(&gamma)?,
            beta: v(&beta)?,
            eps: eps as f32,
        };
        Ok(AddNorm {
            bias,
            gamma,
            beta,
            eps,
            op,
        })
    }

    /// `layer_norm(y + bias + residual)` for `y, residual: [n, h]`.
    pub fn forward(&self, y: &Tensor, residual: &Tensor) -> Result<Tensor> {
        if use_fused(y) && residual.is_contiguous() {
            y.apply_op2_no_bwd(residual, &self.op)
        } else {
            self.forward_slow(y, residual)
        }
    }

    /// `y = layer_norm(y + bias + residual)` on whole rows of `y` and the same rows of the
    /// residual, in place: the same bits as [`Self::forward`] on the CPU in f32.
    pub fn in_place(&self, y: &mut [f32], residual: &[f32]) {
        let o = &self.op;
        add_norm_in_place(y, residual, &o.bias, &o.gamma, &o.beta, o.eps)
    }

    /// The number of features of a row.
    pub fn dim(&self) -> usize {
        self.op.bias.len()
    }

    /// The twin of [`Self::forward`]: the sum in the input's dtype, then candle's LayerNorm op,
    /// which keeps its mean and variance in f32 for half-precision input on the CPU and on CUDA
    /// (so the GPU path needs no casts for it).
    pub fn forward_slow(&self, y: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let x = (y.broadcast_add(&self.bias)? + residual)?;
        candle_nn::ops::layer_norm(&x, &self.gamma, &self.beta, self.eps as f32)
    }
}

multiversioned! {
    /// `y = layer_norm(y + bias + residual)` over rows of `bias.len()`, in place.
    fn add_norm_in_place(
        y: &mut [f32],
        residual: &[f32],
        bias: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
    ) {
        let h = bias.len();
        for (y, r) in y.chunks_exact_mut(h).zip(residual.chunks_exact(h)) {
            for ((y, &r), &b) in y.iter_mut().zip(r).zip(bias) {
                *y = *y + r + b;
            }
            let mean = sum_of(y, |v| v) / h as f32;
            y.iter_mut().for_each(|y| *y -= mean);
            let var = sum_of(y, |v| v * v);
            let inv = 1.0 / (var / h as f32 + eps).sqrt();
            for ((y, &g), &b) in y.iter_mut().zip(gamma).zip(beta) {
                *y = *y * inv * g + b;
            }
        }
    }
}

impl CustomOp2 for AddNormOp {
    fn name(&self) -> &'static str {
        "bias-residual-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = contiguous_f32(s1, l1, self.name())?;
        let r = contiguous_f32(s2, l2, self.name())?;
        let h = self.bias.len();
        if l1.dims() != l2.dims() || l1.dims().last() != Some(&h) {
            candle_core::bail!(
                "{}: shapes {:?} and {:?} with {h} features",
                self.name(),
                l1.dims(),
                l2.dims()
            );
        }
        let mut out = y.to_vec();
        out.par_chunks_mut(h * ROWS_PER_TASK)
            .zip(r.par_chunks(h * ROWS_PER_TASK))
            .for_each(|(o, r)| {
                add_norm_in_place(o, r, &self.bias, &self.gamma, &self.beta, self.eps)
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// attention

/// Multi-head self-attention over a fused Q/K/V projection.
///
/// Input `qkv: [B*L, 3H]` is the projection without its bias: Q, K and V side by side, heads
/// in order inside each, the 1/sqrt(d) scale already folded into Q. The output is the context
/// `[B*L, H]`, heads side by side, ready for the output projection. Keys are the first
/// `lengths[b]` tokens of each sequence ([`KeyMask`]).
///
/// The rows of padding tokens are unspecified: the fused kernel leaves them 0, the twin computes
/// them over the real keys. Neither reaches a real token (keys are real tokens only) nor the
/// pooled output, so the pooled embedding does not depend on which ran.
pub struct Attention {
    /// `[3H]`, on the model's device and dtype (the twin's).
    bias: Tensor,
    /// The same in f32 (the fused kernel's).
    bias_f32: Vec<f32>,
    heads: usize,
    /// The widest kernel this CPU has for the head size.
    kernel: AttentionKernel,
}

impl Attention {
    pub fn new(bias: Tensor, heads: usize) -> Result<Self> {
        let h3 = bias.dims1()?;
        if heads == 0 || h3 == 0 || h3 % (3 * heads) != 0 {
            candle_core::bail!("attention: bias of {h3} for {heads} heads");
        }
        Ok(Attention {
            bias_f32: bias.to_dtype(DType::F32)?.to_vec1()?,
            bias,
            heads,
            kernel: AttentionKernel::available(h3 / 3 / heads)[0],
        })
    }

    /// The context for `qkv: [B*L, 3H]` of `batch` sequences (see [`Attention`]).
    pub fn forward(&self, qkv: &Tensor, mask: &KeyMask, batch: usize) -> Result<Tensor> {
        if use_fused(qkv) {
            qkv.apply_op1_no_bwd(&AttentionOp {
                bias: &self.bias_f32,
                heads: self.heads,
                lengths: &mask.lengths,
                batch,
                kernel: self.kernel,
            })
        } else {
            self.forward_slow(qkv, mask, batch)
        }
    }

    /// [`Self::forward`] on the CPU in f32 with a given kernel, one of
    /// [`AttentionKernel::available`] for this head size (the test of each against the others).
    pub fn forward_with(
        &self,
        kernel: AttentionKernel,
        qkv: &Tensor,
        mask: &KeyMask,
        batch: usize,
    ) -> Result<Tensor> {
        if !AttentionKernel::available(self.head_size()).contains(&kernel) {
            candle_core::bail!("attention: no {kernel:?} kernel on this CPU for this head size");
        }
        let qkv = qkv.to_dtype(DType::F32)?.contiguous()?;
        qkv.apply_op1_no_bwd(&AttentionOp {
            bias: &self.bias_f32,
            heads: self.heads,
            lengths: &mask.lengths,
            batch,
            kernel,
        })
    }

    fn head_size(&self) -> usize {
        self.bias_f32.len() / 3 / self.heads
    }

    /// The twin of [`Self::forward`] in candle ops (other devices and dtypes; the test oracle):
    /// heads regrouped by a permuted copy that adds the bias, batched matmuls, the masked
    /// softmax.
    pub fn forward_slow(&self, qkv: &Tensor, mask: &KeyMask, batch: usize) -> Result<Tensor> {
        let (rows, h3) = qkv.dims2()?;
        let (nh, hidden) = (self.heads, h3 / 3);
        let (d, l) = (hidden / nh, rows / batch.max(1));
        let qkv = qkv
            .reshape((batch, l, 3, nh, d))?
            .permute((2, 0, 3, 1, 4))?
            .broadcast_add(&self.bias.reshape((3, 1, nh, 1, d))?)?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let probs = masked_softmax(&q.matmul(&k.t()?)?, mask)?;
        probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((batch * l, hidden))
    }
}

struct AttentionOp<'a> {
    bias: &'a [f32],
    heads: usize,
    lengths: &'a [usize],
    batch: usize,
    /// One of [`AttentionKernel::available`] for this head size.
    kernel: AttentionKernel,
}

/// `acc[j] += a · x[j]` over the shorter of the two: a loop the compiler vectorises.
#[inline(always)]
fn axpy(acc: &mut [f32], a: f32, x: &[f32]) {
    for (o, &x) in acc.iter_mut().zip(x) {
        *o += a * x;
    }
}

/// The softmax weights of the scores `row` before normalising, in place: `exp(x - max)`;
/// returns 1 / their sum (the attention kernels scale the context by it instead).
#[inline(always)]
fn exp_shifted(row: &mut [f32]) -> f32 {
    let m = max(row);
    row.iter_mut().for_each(|x| *x = exp(*x - m));
    1.0 / sum_of(row, |x| x)
}

/// `o = x + b` element-wise (a function, not a closure, so that it is compiled with the
/// caller's target features: see [`multiversioned!`]).
#[inline(always)]
fn add_into(o: &mut [f32], x: &[f32], b: &[f32]) {
    for ((o, &x), &b) in o.iter_mut().zip(x).zip(b) {
        *o = x + b;
    }
}

/// Head `h` of the first `q.len() / d` rows of `qkv`, with its bias: Q and V row-major
/// (`[n, d]`), K transposed with rows `np` apart (`kt[c * np + j]`, `np >= n`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gather_head(
    q: &mut [f32],
    kt: &mut [f32],
    v: &mut [f32],
    np: usize,
    qkv: &[f32],
    bias: &[f32],
    h: usize,
    heads: usize,
) {
    let hidden = bias.len() / 3;
    let d = hidden / heads;
    let (qc, vc) = (h * d, 2 * hidden + h * d);
    let (qb, vb) = (&bias[qc..qc + d], &bias[vc..vc + d]);
    for ((row, qj), vj) in qkv
        .chunks_exact(3 * hidden)
        .zip(q.chunks_exact_mut(d))
        .zip(v.chunks_exact_mut(d))
    {
        add_into(qj, &row[qc..qc + d], qb);
        add_into(vj, &row[vc..vc + d], vb);
    }
    transpose_keys(kt, np, &qkv[..q.len() / d * 3 * hidden], bias, h, heads);
}

/// K of head `h` of the rows of `qkv`, with its bias, transposed with rows `np` apart
/// (`kt[c * np + j]`).
#[inline(always)]
fn transpose_keys(kt: &mut [f32], np: usize, qkv: &[f32], bias: &[f32], h: usize, heads: usize) {
    let hidden = bias.len() / 3;
    let d = hidden / heads;
    let kc = hidden + h * d;
    let kb = &bias[kc..kc + d];
    for (j, row) in qkv.chunks_exact(3 * hidden).enumerate() {
        for (c, (&x, &b)) in row[kc..kc + d].iter().zip(kb).enumerate() {
            kt[c * np + j] = x + b;
        }
    }
}

/// [`transpose_keys`] eight keys by eight columns at a time, by an in-register transpose: the
/// same sums in the same places (padding columns `n..np` untouched). Needs `d` a multiple of 8.
///
/// # Safety
/// The CPU has AVX2; `kt` holds `d` rows of `np >= n` (`n = qkv.len() / bias.len()`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn transpose_keys_avx2(
    kt: &mut [f32],
    np: usize,
    qkv: &[f32],
    bias: &[f32],
    h: usize,
    heads: usize,
) {
    use std::arch::x86_64::*;
    let (hidden, h3) = (bias.len() / 3, bias.len());
    let d = hidden / heads;
    let kc = hidden + h * d;
    let n = qkv.len() / h3;
    debug_assert!(d.is_multiple_of(8) && np >= n && kt.len() >= d * np);
    let full = n / 8 * 8;
    let (src, dst) = (qkv.as_ptr(), kt.as_mut_ptr());
    for j0 in (0..full).step_by(8) {
        for c0 in (0..d).step_by(8) {
            let b = _mm256_loadu_ps(bias.as_ptr().add(kc + c0));
            let r: [__m256; 8] = std::array::from_fn(|i| {
                _mm256_add_ps(_mm256_loadu_ps(src.add((j0 + i) * h3 + kc + c0)), b)
            });
            // Pairs of rows interleaved, then quads, then the 128-bit halves exchanged.
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let cols = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (c, col) in cols.into_iter().enumerate() {
                _mm256_storeu_ps(dst.add((c0 + c) * np + j0), col);
            }
        }
    }
    for j in full..n {
        for c in 0..d {
            *dst.add(c * np + j) = *src.add(j * h3 + kc + c) + *bias.get_unchecked(kc + c);
        }
    }
}

multiversioned! {
    /// The context rows of one sequence (`out`: `[L, H]`, zeros on entry) from its `n` real
    /// rows of `qkv` (`[n, 3H]`). Per head: Q and V gathered row-major and K transposed, each
    /// with its bias; per query row, the scores as `d` passes of `axpy` over K's rows, the
    /// softmax over them, and the context as `n` passes of `axpy` over V's rows (each pass a
    /// vectorised loop over data that stays in L1).
    fn attend_sequence(out: &mut [f32], qkv: &[f32], bias: &[f32], n: usize, heads: usize) {
        let hidden = bias.len() / 3;
        let d = hidden / heads;
        let mut q = vec![0f32; n * d];
        let mut kt = vec![0f32; d * n];
        let mut v = vec![0f32; n * d];
        let mut s = vec![0f32; n];
        let mut ctx = vec![0f32; d];
        for h in 0..heads {
            gather_head(&mut q, &mut kt, &mut v, n, qkv, bias, h, heads);
            for (i, qi) in q.chunks_exact(d).enumerate() {
                s.fill(0.0);
                for (&qc, k) in qi.iter().zip(kt.chunks_exact(n)) {
                    axpy(&mut s, qc, k);
                }
                let inv = exp_shifted(&mut s);
                ctx.fill(0.0);
                for (&p, vj) in s.iter().zip(v.chunks_exact(d)) {
                    axpy(&mut ctx, p, vj);
                }
                let o = &mut out[i * hidden + h * d..i * hidden + (h + 1) * d];
                for (o, &c) in o.iter_mut().zip(&ctx) {
                    *o = c * inv;
                }
            }
        }
    }
}

/// Defines the register-blocked twin of [`attend_sequence`] for one x86 vector width: a
/// module `$m` with `sequence(out, qkv, bias, n, heads)`, compiled with `$feat`, for head
/// sizes that are a multiple of twice the width `W`. Query rows go in blocks of `R`, so that
/// every key or value register loaded serves `R` rows, and each row's score (or context
/// column) broadcast serves two registers of `W` keys (or context columns). K is transposed
/// with its rows padded to whole pairs of registers of keys (zeros); the scores of padding
/// keys are never read. One body for both widths, so
/// the AVX-512 and AVX2 kernels cannot drift apart.
macro_rules! blocked_attention {
    ($m:ident, $feat:literal, $w:literal, $zero:ident, $load:ident, $store:ident,
     $fmadd:ident, $set1:ident, $mul:ident) => {
        #[cfg(target_arch = "x86_64")]
        mod $m {
            use super::{add_into, exp_shifted, transpose_keys_avx2};
            use std::arch::x86_64::*;

            /// Lanes per register.
            pub const W: usize = $w;
            /// Query rows per block.
            const R: usize = 4;

            /// # Safety
            /// The CPU has the features of `$feat`; `d = bias.len() / 3 / heads` is a multiple
            /// of `2 * W`; `qkv` holds at least `n` rows of `bias.len()` and `out` at least `n`
            /// rows of `bias.len() / 3`.
            #[target_feature(enable = $feat)]
            pub unsafe fn sequence(
                out: &mut [f32],
                qkv: &[f32],
                bias: &[f32],
                n: usize,
                heads: usize,
            ) {
                let hidden = bias.len() / 3;
                let d = hidden / heads;
                debug_assert!(d.is_multiple_of(2 * W));
                debug_assert!(qkv.len() >= n * 3 * hidden && out.len() >= n * hidden);
                let np = n.div_ceil(2 * W) * 2 * W;
                let mut q = vec![0f32; R * d];
                let mut kt = vec![0f32; d * np];
                let mut s = vec![0f32; R * np];
                let h3 = 3 * hidden;
                for h in 0..heads {
                    // Only K is copied (transposed, with its bias); Q is read a block of rows
                    // at a time, and V where it lies, its bias added to the context at the end
                    // (the softmax weights sum to 1).
                    transpose_keys_avx2(&mut kt, np, &qkv[..n * h3], bias, h, heads);
                    let (qc, vc) = (h * d, 2 * hidden + h * d);
                    let (qb, vb) = (&bias[qc..qc + d], &bias[vc..vc + d]);
                    let v = &qkv[vc..];
                    let mut i = 0;
                    while i < n {
                        let rows = (n - i).min(R);
                        for (r, qr) in q.chunks_exact_mut(d).take(rows).enumerate() {
                            add_into(qr, &qkv[(i + r) * h3 + qc..][..d], qb);
                        }
                        let o = &mut out[i * hidden + h * d..];
                        match rows {
                            4 => block::<4>(o, hidden, &q, &kt, v, h3, vb, &mut s, n, d),
                            3 => block::<3>(o, hidden, &q, &kt, v, h3, vb, &mut s, n, d),
                            2 => block::<2>(o, hidden, &q, &kt, v, h3, vb, &mut s, n, d),
                            _ => block::<1>(o, hidden, &q, &kt, v, h3, vb, &mut s, n, d),
                        }
                        i += rows;
                    }
                }
            }

            /// `B` query rows of one head: `q` the block's rows (with bias), `out` from its first
            /// output row (rows `stride` apart), V's rows `v_stride` apart from the start of
            /// `v` and its bias `vb`, `s` scratch of `B` rows of the padded key count.
            ///
            /// # Safety
            /// As [`sequence`], with `B` rows left in `q` and `out`.
            #[target_feature(enable = $feat)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn block<const B: usize>(
                out: &mut [f32],
                stride: usize,
                q: &[f32],
                kt: &[f32],
                v: &[f32],
                v_stride: usize,
                vb: &[f32],
                s: &mut [f32],
                n: usize,
                d: usize,
            ) {
                let np = kt.len() / d;
                debug_assert!(q.len() >= B * d && s.len() >= B * np && vb.len() >= d);
                debug_assert!(v.len() >= (n - 1) * v_stride + d);
                debug_assert!(out.len() >= (B - 1) * stride + d);
                let (q, kt, v, sp) = (q.as_ptr(), kt.as_ptr(), v.as_ptr(), s.as_mut_ptr());
                for jb in (0..np).step_by(2 * W) {
                    let mut acc = [[$zero(); 2]; B];
                    for c in 0..d {
                        let k0 = $load(kt.add(c * np + jb));
                        let k1 = $load(kt.add(c * np + jb + W));
                        for (r, acc) in acc.iter_mut().enumerate() {
                            let x = $set1(*q.add(r * d + c));
                            acc[0] = $fmadd(x, k0, acc[0]);
                            acc[1] = $fmadd(x, k1, acc[1]);
                        }
                    }
                    for (r, acc) in acc.iter().enumerate() {
                        $store(sp.add(r * np + jb), acc[0]);
                        $store(sp.add(r * np + jb + W), acc[1]);
                    }
                }
                let mut inv = [0f32; B];
                for (r, inv) in inv.iter_mut().enumerate() {
                    *inv = exp_shifted(&mut s[r * np..r * np + n]);
                }
                let (sp, op) = (s.as_ptr(), out.as_mut_ptr());
                for cb in (0..d).step_by(2 * W) {
                    let mut acc = [[$zero(); 2]; B];
                    for j in 0..n {
                        let v0 = $load(v.add(j * v_stride + cb));
                        let v1 = $load(v.add(j * v_stride + cb + W));
                        for (r, acc) in acc.iter_mut().enumerate() {
                            let p = $set1(*sp.add(r * np + j));
                            acc[0] = $fmadd(p, v0, acc[0]);
                            acc[1] = $fmadd(p, v1, acc[1]);
                        }
                    }
                    let b0 = $load(vb.as_ptr().add(cb));
                    let b1 = $load(vb.as_ptr().add(cb + W));
                    for (r, acc) in acc.iter().enumerate() {
                        let inv = $set1(inv[r]);
                        $store(op.add(r * stride + cb), $fmadd(acc[0], inv, b0));
                        $store(op.add(r * stride + cb + W), $fmadd(acc[1], inv, b1));
                    }
                }
            }
        }
    };
}

blocked_attention!(
    avx512,
    "avx512f,avx512bw,avx2,fma",
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_set1_ps,
    _mm512_mul_ps
);
blocked_attention!(
    avx2,
    "avx2,fma",
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_set1_ps,
    _mm256_mul_ps
);

/// Which attention kernel runs the fused op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionKernel {
    /// [`blocked_attention!`] with 16-lane registers (head sizes a multiple of 32).
    Avx512,
    /// [`blocked_attention!`] with 8-lane registers (head sizes a multiple of 16).
    Avx2,
    /// [`attend_sequence`]: loops the compiler vectorises, any head size.
    Portable,
}

impl AttentionKernel {
    /// Every kernel this CPU can run for head size `d`, widest first (the first is the one
    /// [`Attention::forward`] uses).
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables, unused_mut))]
    pub fn available(d: usize) -> Vec<AttentionKernel> {
        let mut k = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if crate::cpu::avx512() && d.is_multiple_of(2 * avx512::W) {
                k.push(AttentionKernel::Avx512);
            }
            if crate::cpu::avx2_fma() && d.is_multiple_of(2 * avx2::W) {
                k.push(AttentionKernel::Avx2);
            }
        }
        k.push(AttentionKernel::Portable);
        k
    }
}

impl CustomOp1 for AttentionOp<'_> {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = contiguous_f32(s, l, self.name())?;
        let (rows, h3) = l.shape().dims2()?;
        let b = self.batch;
        if h3 != self.bias.len() || b == 0 || rows % b != 0 {
            candle_core::bail!(
                "attention: qkv {:?} for a batch of {b} and a bias of {}",
                l.dims(),
                self.bias.len()
            );
        }
        let len = rows / b;
        if self.lengths.len() != b || self.lengths.iter().any(|&n| n == 0 || n > len) {
            candle_core::bail!(
                "attention: {} lengths in 1..={len} for batch {b}",
                self.lengths.len()
            );
        }
        let hidden = h3 / 3;
        let mut out = vec![0f32; rows * hidden];
        out.par_chunks_mut(len * hidden)
            .zip(qkv.par_chunks(len * h3))
            .zip(self.lengths.par_iter())
            .for_each(|((o, x), &n)| {
                #[cfg(target_arch = "x86_64")]
                match self.kernel {
                    // SAFETY: `AttentionKernel::available` offered the kernel for this head size
                    // on this CPU; `o` and `x` hold the sequence's `len >= n` rows.
                    AttentionKernel::Avx512 => {
                        return unsafe { avx512::sequence(o, x, self.bias, n, self.heads) }
                    }
                    AttentionKernel::Avx2 => {
                        return unsafe { avx2::sequence(o, x, self.bias, n, self.heads) }
                    }
                    AttentionKernel::Portable => {}
                }
                attend_sequence(o, x, self.bias, n, self.heads)
            });
        Ok((CpuStorage::F32(out), Shape::from((rows, hidden))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn exp_and_erf_match_libm() {
        let mut worst_exp = 0f64;
        let mut worst_erf = 0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 4.35e-4; // [-87, 87]
            let e = (x as f64).exp();
            worst_exp = worst_exp.max(((exp(x) as f64 - e) / e).abs());
            let x = i as f32 * 3e-5; // [-6, 6]
            worst_erf = worst_erf.max((erf(x) as f64 - libm_erf(x as f64)).abs());
        }
        assert!(worst_exp < 5e-7, "exp relative error {worst_exp}");
        assert!(worst_erf < 5e-7, "erf absolute error {worst_erf}");
    }

    /// erf in f64 by its Taylor series / continued fraction, independent of the code under test.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() > 3.0 {
            // erfc continued fraction (Lentz), accurate for large |x|.
            let z = x.abs();
            let mut f = 0.0;
            for n in (1..60).rev() {
                f = (n as f64 / 2.0) / (z + f);
            }
            let erfc = (-z * z).exp() / (std::f64::consts::PI.sqrt() * (z + f));
            return x.signum() * (1.0 - erfc);
        }
        let mut sum = 0.0;
        let mut term = x;
        for n in 0..200 {
            sum += term / (2 * n + 1) as f64;
            term *= -x * x / (n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn bias_gelu_matches_plain_ops() {
        let x = Tensor::randn(0f32, 3.0, (130, 96), &Device::Cpu).unwrap();
        let b = Tensor::randn(0f32, 1.0, 96, &Device::Cpu).unwrap();
        let d = max_abs_diff(
            &BiasGelu::new(b.clone()).unwrap().forward(&x).unwrap(),
            &bias_gelu_slow(&x, &b).unwrap(),
        );
        assert!(d < 2e-6, "{d}");
    }

    #[test]
    fn masked_softmax_matches_plain_ops_and_zeroes_padding() {
        let s = Tensor::randn(0f32, 4.0, (3, 2, 70, 70), &Device::Cpu).unwrap();
        let lengths = [70, 1, 33];
        let mask = KeyMask::new(&lengths, 70, &Device::Cpu, DType::F32).unwrap();
        let fast = masked_softmax(&s, &mask).unwrap();
        let slow = masked_softmax_slow(&s, &lengths).unwrap();
        assert!(max_abs_diff(&fast, &slow) < 1e-6);
        // The prebuilt additive mask (the path of other devices and dtypes) agrees too.
        let f64_mask = KeyMask::new(&lengths, 70, &Device::Cpu, DType::F64).unwrap();
        assert!(f64_mask.additive.is_some());
        let other = masked_softmax(&s.to_dtype(DType::F64).unwrap(), &f64_mask).unwrap();
        assert!(max_abs_diff(&other.to_dtype(DType::F32).unwrap(), &slow) < 1e-6);
        let v = fast
            .get(2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for row in v.chunks(70) {
            assert!(row[33..].iter().all(|&p| p == 0.0));
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn attention_matches_plain_ops_on_real_rows_and_leaves_padding_zero() {
        let dev = Device::Cpu;
        // d = 32 (MiniLM's: every kernel), d = 24 (the portable loops only) and d = 16 (AVX2
        // but not AVX-512); lengths with query-row tails of every size and a sequence of one
        // token.
        for (heads, d) in [(3, 32), (2, 24), (4, 16)] {
            let hidden = heads * d;
            let (b, l) = (4, 37);
            let lengths = [37, 1, 19, 34];
            let qkv = Tensor::randn(0f32, 1.0, (b * l, 3 * hidden), &dev).unwrap();
            let bias = Tensor::randn(0f32, 0.5, 3 * hidden, &dev).unwrap();
            let attn = Attention::new(bias, heads).unwrap();
            let mask = KeyMask::new(&lengths, l, &dev, DType::F32).unwrap();
            let fast = attn.forward(&qkv, &mask, b).unwrap();
            let slow = attn.forward_slow(&qkv, &mask, b).unwrap();
            // Every kernel this CPU has agrees with the one `forward` chose.
            for kernel in AttentionKernel::available(d) {
                let other = attn.forward_with(kernel, &qkv, &mask, b).unwrap();
                assert!(max_abs_diff(&other, &fast) < 1e-5, "{kernel:?}");
            }
            assert_eq!(fast.dims(), &[b * l, hidden]);
            let (fast, slow) = (
                fast.to_vec2::<f32>().unwrap(),
                slow.to_vec2::<f32>().unwrap(),
            );
            for (seq, &n) in lengths.iter().enumerate() {
                for i in 0..l {
                    let (f, s) = (&fast[seq * l + i], &slow[seq * l + i]);
                    if i < n {
                        let diff = f
                            .iter()
                            .zip(s)
                            .map(|(a, b)| (a - b).abs())
                            .fold(0f32, f32::max);
                        assert!(diff < 1e-5, "d {d}, sequence {seq}, row {i}: {diff}");
                    } else {
                        assert!(f.iter().all(|&v| v == 0.0), "padding row {i} of {seq}");
                    }
                }
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn vector_key_transpose_matches_the_scalar_one() {
        // Every machine this project builds and tests on has AVX2; a CPU without it fails
        // here rather than passing untested.
        assert!(crate::cpu::avx2(), "this test needs a CPU with AVX2");
        let (heads, d) = (3, 32);
        let hidden = heads * d;
        let bias = crate::embed::int8::tests::random(3 * hidden, 7);
        // Key counts with and without a tail of fewer than eight.
        for n in [1, 7, 8, 9, 16, 37] {
            let qkv = crate::embed::int8::tests::random(n * 3 * hidden, n as u64);
            let np = n.div_ceil(16) * 16;
            for h in 0..heads {
                let (mut a, mut b) = (vec![-1f32; d * np], vec![-1f32; d * np]);
                transpose_keys(&mut a, np, &qkv, &bias, h, heads);
                // SAFETY: AVX2 is present (asserted above); d is a multiple of 8, `b` holds
                // `d` rows of `np >= n`.
                unsafe { transpose_keys_avx2(&mut b, np, &qkv, &bias, h, heads) };
                assert_eq!(a, b, "n {n}, head {h}");
            }
        }
    }

    #[test]
    fn attention_refuses_bad_shapes() {
        let dev = Device::Cpu;
        assert!(Attention::new(Tensor::zeros(10, DType::F32, &dev).unwrap(), 2).is_err());
        assert!(Attention::new(Tensor::zeros(0, DType::F32, &dev).unwrap(), 2).is_err());
        let attn = Attention::new(Tensor::zeros(12, DType::F32, &dev).unwrap(), 2).unwrap();
        let qkv = Tensor::zeros((6, 12), DType::F32, &dev).unwrap();
        let mask = |lengths: &[usize]| KeyMask::new(lengths, 3, &dev, DType::F32).unwrap();
        assert!(attn.forward(&qkv, &mask(&[3, 3]), 2).is_ok());
        assert!(attn.forward(&qkv, &mask(&[3]), 2).is_err());
        assert!(attn.forward(&qkv, &mask(&[3, 4]), 2).is_err());
        assert!(attn.forward(&qkv, &mask(&[3, 0]), 2).is_err());
        assert!(attn.forward(&qkv, &mask(&[2, 2, 2, 2]), 4).is_err());
    }

    #[test]
    fn add_norm_matches_plain_ops() {
        let d = Device::Cpu;
        let an = AddNorm::new(
            Tensor::randn(0f32, 1.0, 48, &d).unwrap(),
            Tensor::randn(1f32, 0.1, 48, &d).unwrap(),
            Tensor::randn(0f32, 0.1, 48, &d).unwrap(),
            1e-12,
        )
        .unwrap();
        let y = Tensor::randn(0f32, 2.0, (131, 48), &d).unwrap();
        let r = Tensor::randn(0f32, 2.0, (131, 48), &d).unwrap();
        let diff = max_abs_diff(
            &an.forward(&y, &r).unwrap(),
            &an.forward_slow(&y, &r).unwrap(),
        );
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn bad_shapes_are_errors() {
        let x = Tensor::zeros((4, 8), DType::F32, &Device::Cpu).unwrap();
        let gelu7 = BiasGelu::new(Tensor::zeros(7, DType::F32, &Device::Cpu).unwrap()).unwrap();
        assert!(gelu7.forward(&x).is_err());
        let s = Tensor::zeros((2, 1, 3, 3), DType::F32, &Device::Cpu).unwrap();
        let mask = |lengths: &[usize]| KeyMask::new(lengths, 3, &Device::Cpu, DType::F32).unwrap();
        assert!(masked_softmax(&s, &mask(&[3])).is_err());
        assert!(masked_softmax(&s, &mask(&[3, 4])).is_err());
        assert!(masked_softmax(&s, &mask(&[3, 0])).is_err());
    }
}
