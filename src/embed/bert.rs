//! BERT encoder (all-MiniLM-L6-v2 shape) that turns token ids into pooled sentence vectors.
//!
//! This file only turns tensors into tensors; the caller owns device, dtype and batching.
//! Choices made for speed on the CPU (candle's stock BERT is several times slower than PyTorch
//! at small batches, candle #2877 and #2204):
//! - Q, K and V are one fused `[3H, H]` projection, and the 1/sqrt(d) attention scale is folded
//!   into the Q rows at load time, so attention costs one GEMM and no extra scaling pass.
//! - Every projection runs on the flattened `[tokens, H]` matrix (one large GEMM, not a batch of
//!   small ones); only the attention itself is batched per sequence and head. On the CPU in
//!   f32 the GEMM is our own, over weights packed once at load ([`PackedF32`]).
//! - On the CPU in f32, attention reads the QKV projection as it is and writes its context in
//!   the output projection's layout ([`fused::Attention`]): no regrouped copy of the heads, no
//!   score tensor, and no work on padding; other devices and dtypes regroup heads by one copy.
//! - Element-wise steps are fused and multi-threaded on the CPU ([`super::fused`]): bias+GELU,
//!   masked softmax (padding excluded by length, no additive mask), bias+residual+LayerNorm.
//!   After our own GEMMs (packed f32, int8), bias+GELU and bias+residual+LayerNorm run on each
//!   task's rows as soon as they are written ([`Then`]), not as a pass of their own.
//!
//! The pooled output is the mean over real tokens (mask excludes padding), L2-normalised, exactly
//! as sentence-transformers' `mean` pooling + `Normalize` modules.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use serde::Deserialize;

use candle_core::Result;

use super::fused::{self, AddNorm, Attention, BiasGelu};
use super::int8::QLinear;
use super::sgemm::{self, CpuLinear, PackedF32};
use crate::cpu_storage::contiguous_f32;

/// The fields of a Hugging Face `config.json` that the encoder needs.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

/// A dense layer without bias. In float its weight is stored transposed (`[in, out]`), so that
/// the GEMM reads both operands in their natural layout: on the CPU in f32 packed once at load
/// for our own kernel ([`PackedF32`]), elsewhere a contiguous tensor for candle's matmul; in
/// int8 it is quantised once at load ([`QLinear`], CPU only). Each bias is applied by the step
/// that follows the GEMM, in the same pass as other work.
enum Dense {
    Float(Tensor),
    Packed(PackedF32),
    Int8(QLinear),
}

impl Dense {
    /// The transposed weight (`[in, out]`) and the bias of a Hugging Face `Linear`.
    fn load(vb: &VarBuilder, in_dim: usize, out_dim: usize) -> Result<(Tensor, Tensor)> {
        let w = vb.get((out_dim, in_dim), "weight")?;
        Ok((w.t()?.contiguous()?, vb.get(out_dim, "bias")?))
    }

    /// A float layer of the transposed weight `w` (`[in, out]`): packed on the CPU in f32.
    fn float(w: Tensor) -> Result<Self> {
        if w.device().is_cpu() && w.dtype() == DType::F32 {
            let (k, n) = w.dims2()?;
            let data = w.flatten_all()?.to_vec1::<f32>()?;
            return Ok(Dense::Packed(PackedF32::new(&data, k, n)));
        }
        Ok(Dense::Float(w.contiguous()?))
    }

    /// The same layer with int8 weights (from f32 weights on the CPU).
    fn to_int8(&self) -> Result<Self> {
        match self {
            // `Dense::float` packs every f32 layer on the CPU, so a float tensor here is on
            // another device or of another dtype.
            Dense::Float(_) => {
                candle_core::bail!("int8 layers are made from f32 layers on the CPU")
            }
            Dense::Packed(p) => Ok(Dense::Int8(QLinear::new(
                &p.unpack(),
                p.in_dim(),
                p.out_dim(),
            ))),
            Dense::Int8(_) => candle_core::bail!("layer is already int8"),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_then(x, Then::Nothing)
    }

    /// `then(x · W)`: in our own GEMMs fused into them ([`sgemm::Then`]), each task's rows
    /// finished while they are in cache; after candle's matmul as ops of their own. The same
    /// bits either way.
    fn forward_then(&self, x: &Tensor, then: Then) -> Result<Tensor> {
        match self {
            Dense::Float(w) => then.apply(&x.matmul(w)?),
            Dense::Packed(p) => cpu_linear(x, p, then),
            Dense::Int8(q) => cpu_linear(x, q, then),
        }
    }
}

/// The step that follows a dense layer.
#[derive(Clone, Copy)]
enum Then<'a> {
    Nothing,
    /// Bias and GELU.
    BiasGelu(&'a BiasGelu),
    /// Bias, the residual (`[rows, out]`) and LayerNorm.
    AddNorm(&'a AddNorm, &'a Tensor),
}

impl Then<'_> {
    /// The step as an op of its own on the layer's output `y`.
    fn apply(self, y: &Tensor) -> Result<Tensor> {
        match self {
            Then::Nothing => Ok(y.clone()),
            Then::BiasGelu(g) => g.forward(y),
            Then::AddNorm(n, residual) => n.forward(y, residual),
        }
    }
}

/// `then(x · W)` by our own GEMM `layer` on the f32 data of `x: [rows, in]` on the CPU, as a
/// `[rows, out]` tensor, with `then` run inside the GEMM on rows of the output.
fn cpu_linear(x: &Tensor, layer: &dyn CpuLinear, then: Then) -> Result<Tensor> {
    let (m, out) = (x.dims2()?.0, layer.out_dim());
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let x_f32 = match &*storage {
        candle_core::Storage::Cpu(s) => contiguous_f32(s, layout, "linear")?,
        _ => candle_core::bail!("packed f32 and int8 linear layers run on the CPU only"),
    };
    let y = match then {
        Then::Nothing => layer.forward_then(x_f32, m, sgemm::NOTHING_THEN),
        Then::BiasGelu(g) => layer.forward_then(x_f32, m, &|_, rows: &mut [f32]| g.in_place(rows)),
        Then::AddNorm(norm, residual) => {
            if residual.dims() != [m, out] || norm.dim() != out {
                candle_core::bail!(
                    "linear: residual {:?} for an output of [{m}, {out}]",
                    residual.dims()
                );
            }
            let residual = residual.contiguous()?;
            let (r_storage, r_layout) = residual.storage_and_layout();
            let r = match &*r_storage {
                candle_core::Storage::Cpu(s) => contiguous_f32(s, r_layout, "residual")?,
                _ => candle_core::bail!("the residual is not on the CPU"),
            };
            layer.forward_then(x_f32, m, &|r0, rows: &mut [f32]| {
                norm.in_place(rows, &r[r0 * out..r0 * out + rows.len()])
            })
        }
    };
    drop(storage);
    Tensor::from_vec(y, (m, out), x.device())
}

struct Layer {
    /// Fused Q/K/V projection `[H, 3H]`; [`Attention`] adds its bias while gathering each head.
    qkv: Dense,
    attention: Attention,
    /// Attention output projection; [`AddNorm`] adds its bias with the residual.
    out: Dense,
    attn_norm: AddNorm,
    /// FFN up-projection; its bias goes into [`BiasGelu`].
    ffn_in: Dense,
    ffn_gelu: BiasGelu,
    ffn_out: Dense,
    ffn_norm: AddNorm,
}

pub struct Bert {
    word: Embedding,
    position: Embedding,
    /// Token type 0 embedding, `[1, H]`: single-segment inputs only ever use type 0.
    token_type0: Tensor,
    ln_emb: LayerNorm,
    layers: Vec<Layer>,
    hidden: usize,
    dtype: DType,
}

fn layer_norm(vb: VarBuilder, dim: usize, eps: f64) -> Result<LayerNorm> {
    let w = vb.get(dim, "weight")?;
    let b = vb.get(dim, "bias")?;
    Ok(LayerNorm::new(w, b, eps))
}

/// `layer_norm(dense(x) + residual)` with the dense bias folded into the fused step.
fn add_norm(bias: Tensor, vb: VarBuilder, dim: usize, eps: f64) -> Result<AddNorm> {
    AddNorm::new(bias, vb.get(dim, "weight")?, vb.get(dim, "bias")?, eps)
}

impl Bert {
    /// Build from safetensors variables laid out as Hugging Face's `BertModel` (with or without
    /// a `bert.` prefix).
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        if cfg.hidden_act != "gelu" {
            candle_core::bail!("unsupported hidden_act {:?} (only gelu)", cfg.hidden_act);
        }
        if !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            candle_core::bail!("hidden_size is not a multiple of num_attention_heads");
        }
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let h = cfg.hidden_size;
        let heads = cfg.num_attention_heads;
        let head_dim = h / heads;
        let e = vb.pp("embeddings");
        let word = Embedding::new(e.get((cfg.vocab_size, h), "word_embeddings.weight")?, h);
        let position = Embedding::new(
            e.get(
                (cfg.max_position_embeddings, h),
                "position_embeddings.weight",
            )?,
            h,
        );
        let token_type0 = e
            .get((cfg.type_vocab_size, h), "token_type_embeddings.weight")?
            .narrow(0, 0, 1)?;
        let ln_emb = layer_norm(e.pp("LayerNorm"), h, cfg.layer_norm_eps)?;

        let scale = 1.0 / (head_dim as f64).sqrt();
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            let (q, qb) = Dense::load(&a.pp("self.query"), h, h)?;
            let (k, kb) = Dense::load(&a.pp("self.key"), h, h)?;
            let (v, vb_) = Dense::load(&a.pp("self.value"), h, h)?;
            let qkv = Dense::float(Tensor::cat(&[(q * scale)?, k, v], 1)?)?;
            let attention = Attention::new(Tensor::cat(&[(qb * scale)?, kb, vb_], 0)?, heads)?;
            let (out, out_bias) = Dense::load(&a.pp("output.dense"), h, h)?;
            let out = Dense::float(out)?;
            let (ffn_in, ffn_in_bias) =
                Dense::load(&l.pp("intermediate.dense"), h, cfg.intermediate_size)?;
            let (ffn_out, ffn_out_bias) =
                Dense::load(&l.pp("output.dense"), cfg.intermediate_size, h)?;
            let (ffn_in, ffn_out) = (Dense::float(ffn_in)?, Dense::float(ffn_out)?);
            layers.push(Layer {
                qkv,
                attention,
                out,
                attn_norm: add_norm(out_bias, a.pp("output.LayerNorm"), h, cfg.layer_norm_eps)?,
                ffn_in,
                ffn_gelu: BiasGelu::new(ffn_in_bias)?,
                ffn_out,
                ffn_norm: add_norm(
                    ffn_out_bias,
                    l.pp("output.LayerNorm"),
                    h,
                    cfg.layer_norm_eps,
                )?,
            });
        }
        Ok(Bert {
            word,
            position,
            token_type0,
            ln_emb,
            layers,
            hidden: h,
            dtype: vb.dtype(),
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    pub fn device(&self) -> &Device {
        self.word.embeddings().device()
    }

    /// Sentence embeddings for a right-padded batch.
    ///
    /// `ids`: `[B, L]` u32 token ids; `lengths[b]`: the number of real tokens of row `b` (the rest
    /// is padding). Returns `[B, H]` f32, mean-pooled over real tokens and L2-normalised.
    pub fn embed(&self, ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let hidden = self.encode(ids, lengths)?;
        let l = ids.dim(1)?;
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&n| (0..l).map(move |i| if i < n { 1.0 } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (lengths.len(), l), ids.device())?;
        pool_mean_normalize(&hidden, &mask)
    }

    /// Last hidden states `[B, L, H]` for a right-padded batch (see [`Bert::embed`]). The rows
    /// of padding positions are unspecified (see [`Attention`]).
    pub fn encode(&self, ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let (b, l) = ids.dims2()?;
        let n = b * l;
        let positions = Tensor::arange(0u32, l as u32, ids.device())?;
        // Embeddings on the flattened [B*L, H] matrix.
        let word = self
            .word
            .forward(&ids.flatten_all()?)?
            .reshape((b, l, self.hidden))?;
        let pos = self.position.forward(&positions)?;
        let x = word.broadcast_add(&pos)?.broadcast_add(&self.token_type0)?;
        let mut x = self.ln_emb.forward(&x.reshape((n, self.hidden))?)?;

        if lengths.len() != b || lengths.iter().any(|&n| n == 0 || n > l) {
            candle_core::bail!("{} lengths for a [{b}, {l}] batch", lengths.len());
        }
        let mask = fused::KeyMask::new(lengths, l, x.device(), x.dtype())?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &mask, b)?;
        }
        x.reshape((b, l, self.hidden))
    }

    fn layer(&self, layer: &Layer, x: &Tensor, mask: &fused::KeyMask, b: usize) -> Result<Tensor> {
        let ctx = layer.attention.forward(&layer.qkv.forward(x)?, mask, b)?;
        let x = layer
            .out
            .forward_then(&ctx, Then::AddNorm(&layer.attn_norm, x))?;
        let ffn = layer
            .ffn_in
            .forward_then(&x, Then::BiasGelu(&layer.ffn_gelu))?;
        layer
            .ffn_out
            .forward_then(&ffn, Then::AddNorm(&layer.ffn_norm, &x))
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Switch every linear layer (QKV, attention output, both FFN projections) to int8 weights
    /// and per-row int8 activations; embeddings, LayerNorm, attention, GELU and pooling stay
    /// f32. CPU and f32 only.
    pub fn quantize_linear_int8(&mut self) -> Result<()> {
        if !self.device().is_cpu() || self.dtype != DType::F32 {
            candle_core::bail!("int8 linear layers need the f32 model on the CPU");
        }
        for l in &mut self.layers {
            l.qkv = l.qkv.to_int8()?;
            l.out = l.out.to_int8()?;
            l.ffn_in = l.ffn_in.to_int8()?;
            l.ffn_out = l.ffn_out.to_int8()?;
        }
        Ok(())
    }
}

/// Mean over real tokens, then L2 normalisation; returns f32 `[B, H]`.
pub fn pool_mean_normalize(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let hidden = hidden.to_dtype(DType::F32)?;
    let mask = mask.to_dtype(DType::F32)?;
    let summed = hidden.broadcast_mul(&mask.unsqueeze(D::Minus1)?)?.sum(1)?;
    let counts = mask.sum_keepdim(1)?.clamp(1e-9, f64::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    mean.broadcast_div(&norm)
}
