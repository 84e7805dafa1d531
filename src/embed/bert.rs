//! BERT encoder (all-MiniLM-L6-v2 shape) that turns token ids into pooled sentence vectors.
//!
//! This file only turns tensors into tensors; the caller owns device, dtype and batching.
//! Choices made for speed on the CPU (candle's stock BERT is several times slower than PyTorch
//! at small batches, candle #2877 and #2204):
//! - Q, K and V are one fused `[3H, H]` projection, and the 1/sqrt(d) attention scale is folded
//!   into the Q rows at load time, so attention costs one GEMM and no extra scaling pass.
//! - Every projection runs on the flattened `[tokens, H]` matrix (one large GEMM, not a batch of
//!   small ones); only the attention itself is batched per sequence and head.
//! - The only copy to a contiguous layout is the one that regroups heads for attention.
//! The pooled output is the mean over real tokens (mask excludes padding), L2-normalised, exactly
//! as sentence-transformers' `mean` pooling + `Normalize` modules.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

use candle_core::Result;

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

struct Layer {
    qkv: Linear,
    out: Linear,
    ln_attn: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    ln_ffn: LayerNorm,
}

pub struct Bert {
    word: Embedding,
    position: Embedding,
    /// Token type 0 embedding, `[1, H]`: single-segment inputs only ever use type 0.
    token_type0: Tensor,
    ln_emb: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    dtype: DType,
}

fn linear(vb: VarBuilder, in_dim: usize, out_dim: usize) -> Result<Linear> {
    let w = vb.get((out_dim, in_dim), "weight")?;
    let b = vb.get(out_dim, "bias")?;
    Ok(Linear::new(w, Some(b)))
}

fn layer_norm(vb: VarBuilder, dim: usize, eps: f64) -> Result<LayerNorm> {
    let w = vb.get(dim, "weight")?;
    let b = vb.get(dim, "bias")?;
    Ok(LayerNorm::new(w, b, eps))
}

impl Bert {
    /// Build from safetensors variables laid out as Hugging Face's `BertModel` (with or without
    /// a `bert.` prefix).
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        if cfg.hidden_act != "gelu" {
            candle_core::bail!("unsupported hidden_act {:?} (only gelu)", cfg.hidden_act);
        }
        if cfg.hidden_size % cfg.num_attention_heads != 0 {
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
            e.get((cfg.max_position_embeddings, h), "position_embeddings.weight")?,
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
            let q = linear(a.pp("self.query"), h, h)?;
            let k = linear(a.pp("self.key"), h, h)?;
            let v = linear(a.pp("self.value"), h, h)?;
            let qkv_w = Tensor::cat(&[(q.weight() * scale)?, k.weight().clone(), v.weight().clone()], 0)?;
            let qkv_b = Tensor::cat(
                &[(q.bias().unwrap() * scale)?, k.bias().unwrap().clone(), v.bias().unwrap().clone()],
                0,
            )?;
            layers.push(Layer {
                qkv: Linear::new(qkv_w, Some(qkv_b)),
                out: linear(a.pp("output.dense"), h, h)?,
                ln_attn: layer_norm(a.pp("output.LayerNorm"), h, cfg.layer_norm_eps)?,
                ffn_in: linear(l.pp("intermediate.dense"), h, cfg.intermediate_size)?,
                ffn_out: linear(l.pp("output.dense"), cfg.intermediate_size, h)?,
                ln_ffn: layer_norm(l.pp("output.LayerNorm"), h, cfg.layer_norm_eps)?,
            });
        }
        Ok(Bert {
            word,
            position,
            token_type0,
            ln_emb,
            layers,
            heads,
            head_dim,
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

    /// Sentence embeddings for a padded batch.
    ///
    /// `ids`: `[B, L]` u32 token ids; `mask`: `[B, L]` in the model dtype, 1 for real tokens and 0
    /// for padding. Returns `[B, H]` f32, mean-pooled over real tokens and L2-normalised.
    pub fn embed(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let hidden = self.encode(ids, mask)?;
        pool_mean_normalize(&hidden, mask)
    }

    /// Last hidden states `[B, L, H]` for a padded batch (see [`Bert::embed`]).
    pub fn encode(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, l) = ids.dims2()?;
        let n = b * l;
        let positions = Tensor::arange(0u32, l as u32, ids.device())?;
        // Embeddings on the flattened [B*L, H] matrix.
        let word = self.word.forward(&ids.flatten_all()?)?.reshape((b, l, self.hidden))?;
        let pos = self.position.forward(&positions)?;
        let x = word.broadcast_add(&pos)?.broadcast_add(&self.token_type0)?;
        let mut x = self.ln_emb.forward(&x.reshape((n, self.hidden))?)?;

        // Additive mask, [B, 1, 1, L]: 0 for real tokens, a large negative for padding.
        let neg = ((mask.ones_like()? - mask)? * -1e4f64)?;
        let neg = neg.reshape((b, 1, 1, l))?;

        for layer in &self.layers {
            x = self.layer(layer, &x, &neg, b, l)?;
        }
        x.reshape((b, l, self.hidden))
    }

    fn layer(&self, layer: &Layer, x: &Tensor, neg_mask: &Tensor, b: usize, l: usize) -> Result<Tensor> {
        let (nh, d) = (self.heads, self.head_dim);
        // [B*L, 3H] -> [3, B, heads, L, d], one copy.
        let qkv = layer
            .qkv
            .forward(x)?
            .reshape((b, l, 3, nh, d))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let q = qkv.get(0)?;
        let k = qkv.get(1)?;
        let v = qkv.get(2)?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(neg_mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * l, self.hidden))?;
        let attn = layer.out.forward(&ctx)?;
        let x = layer.ln_attn.forward(&(attn + x)?)?;
        let ffn = layer.ffn_in.forward(&x)?.gelu_erf()?;
        let ffn = layer.ffn_out.forward(&ffn)?;
        layer.ln_ffn.forward(&(ffn + x)?)
    }

    pub fn dtype(&self) -> DType {
        self.dtype
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
