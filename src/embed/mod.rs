//! Sentence embeddings with all-MiniLM-L6-v2: model files, tokenizer, length-bucketed batches.
//!
//! [`Embedder`] is the backend: it owns the device and dtype, the tokenizer and the encoder
//! ([`bert::Bert`], which only maps tensors to tensors). Texts are tokenized in parallel,
//! truncated to `max_seq_len` tokens (truncations are counted), sorted by length and cut into
//! batches under a padded-token budget ([`plan_batches`]), so that a batch holds sequences of
//! nearly equal length and padding costs little. Results come back in the caller's order.

pub mod bert;
mod files;
pub mod fused;
pub mod int8;
pub mod sgemm;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};
pub use bert::{Bert, BertConfig};
pub use files::{
    default_dir, default_model_dir, sha256_file, ModelFiles, MODEL_NAME, MODEL_SHA256,
};

/// Knobs for embedding; the defaults suit the CPU.
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    /// Longest sequence in tokens, [CLS] and [SEP] included; longer prompts are truncated.
    pub max_seq_len: usize,
    /// Padded tokens per batch (batch size times its longest sequence).
    pub batch_tokens: usize,
    /// Most sequences in one batch.
    pub max_batch: usize,
    /// Weight and activation precision on a CUDA device (f16 or bf16). Pooling and
    /// normalisation are done in f32 on the device either way, and LayerNorm and softmax
    /// statistics in f32 (`super::fused`).
    pub gpu_dtype: DType,
    /// Precision on the CPU: f32 (the parity reference, and the only fast one); f16 and bf16
    /// run the half-precision path of the GPU with candle's CPU ops, so that it can be checked
    /// against f32 where no GPU is (tests/parity.rs), slowly.
    pub cpu_dtype: DType,
    /// Int8 linear layers on the CPU ([`int8`]; with `cpu_dtype` f32 only): weights quantised
    /// per output channel at load, activations per row, everything else f32.
    pub cpu_int8: bool,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            max_seq_len: 256,
            batch_tokens: 4096,
            max_batch: 64,
            gpu_dtype: DType::F16,
            cpu_dtype: DType::F32,
            cpu_int8: false,
        }
    }
}

/// A tokenized text, ready for the encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenized {
    pub ids: Vec<u32>,
    pub truncated: bool,
}

/// Identity of the loaded model, for manifests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub dir: PathBuf,
    pub sha256: String,
    pub dim: usize,
    pub max_seq_len: usize,
    /// Arithmetic of the encoder: `f32`, `f16`, `bf16`, or `int8` (int8 linear layers, f32
    /// elsewhere). Manifests written before this field existed were f32 or the GPU dtype.
    #[serde(default = "unrecorded")]
    pub precision: String,
}

fn unrecorded() -> String {
    "unrecorded".into()
}

pub struct Embedder {
    model: Bert,
    tokenizer: Tokenizer,
    info: ModelInfo,
    opts: EmbedOptions,
    device: Device,
}

impl Embedder {
    /// Load and check the model in `dir` onto `device`.
    pub fn load(dir: &Path, device: &Device, opts: EmbedOptions) -> Result<Self> {
        let files = ModelFiles::locate(dir)?;
        let config = files.config()?;
        if opts.max_seq_len < 2 || opts.max_seq_len > config.max_position_embeddings {
            return Err(Error::Usage(format!(
                "the longest prompt, {} tokens, must be between 2 and the model's {} positions",
                opts.max_seq_len, config.max_position_embeddings
            )));
        }
        if opts.batch_tokens < opts.max_seq_len || opts.max_batch == 0 {
            return Err(Error::Usage(format!(
                "batch token budget {} must be at least the longest prompt's {} tokens and the batch size positive",
                opts.batch_tokens, opts.max_seq_len
            )));
        }
        let mut tokenizer = files.tokenizer()?;
        let vocab = tokenizer.get_vocab_size(true);
        if vocab != config.vocab_size {
            return Err(Error::model(
                &files.tokenizer,
                format!(
                    "tokenizer has {vocab} tokens but {} says vocab_size {}: tokenizer and model do not match",
                    files.config.display(),
                    config.vocab_size
                ),
            ));
        }
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: opts.max_seq_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::model(&files.tokenizer, format!("cannot set truncation: {e}")))?;
        tokenizer.with_padding(None);

        for (what, d) in [("GPU", opts.gpu_dtype), ("CPU", opts.cpu_dtype)] {
            if !matches!(d, DType::F32 | DType::F16 | DType::BF16) {
                return Err(Error::Usage(format!(
                    "{what} precision {d:?} is not one of f32, f16, bf16"
                )));
            }
        }
        let sha256 = files.weights_sha256()?;
        if device.is_cpu() {
            crate::cpu::keep_freed_memory();
        }
        let dtype = if device.is_cuda() {
            opts.gpu_dtype
        } else {
            opts.cpu_dtype
        };
        // SAFETY: the file is memory-mapped read-only and not modified while the model lives.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&files.weights], dtype, device) }
            .map_err(|e| Error::model(&files.weights, format!("cannot read weights: {e}")))?;
        let mut model = Bert::load(vb, &config).map_err(|e| {
            Error::model(
                &files.weights,
                format!("weights do not fit {}: {e}", files.config.display()),
            )
        })?;
        if opts.cpu_int8 {
            if !device.is_cpu() || dtype != DType::F32 {
                return Err(Error::Usage(format!(
                    "int8 runs on the CPU with f32 elsewhere, not on {} in {dtype:?}",
                    crate::device::name(device)
                )));
            }
            model.quantize_linear_int8()?;
        }
        let precision = if opts.cpu_int8 {
            "int8".to_string()
        } else {
            format!("{dtype:?}").to_lowercase()
        };
        Ok(Embedder {
            info: ModelInfo {
                name: MODEL_NAME.to_string(),
                dir: files.dir.clone(),
                sha256,
                dim: model.hidden_size(),
                max_seq_len: opts.max_seq_len,
                precision,
            },
            model,
            tokenizer,
            opts,
            device: device.clone(),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The encoder's weight and activation precision.
    pub fn dtype(&self) -> DType {
        self.model.dtype()
    }

    pub fn dim(&self) -> usize {
        self.info.dim
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Tokenize texts in parallel, truncating to `max_seq_len`.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Tokenized>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::model(&self.info.dir, format!("tokenizer failed: {e}")))?;
        Ok(encodings
            .into_iter()
            .map(|e| Tokenized {
                truncated: !e.get_overflowing().is_empty(),
                ids: e.get_ids().to_vec(),
            })
            .collect())
    }

    /// Embeddings of tokenized texts, row-major `[texts.len() * dim]`, in the given order.
    pub fn embed_tokenized(&self, texts: &[Tokenized]) -> Result<Vec<f32>> {
        let dim = self.dim();
        let mut out = vec![0f32; texts.len() * dim];
        let lengths: Vec<usize> = texts.iter().map(|t| t.ids.len()).collect();
        for batch in plan_batches(&lengths, self.opts.max_batch, self.opts.batch_tokens) {
            let seqs: Vec<&[u32]> = batch.iter().map(|&i| texts[i].ids.as_slice()).collect();
            let ids = pad_batch(&seqs, &self.device)?;
            let lengths: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
            let emb = self.model.embed(&ids, &lengths)?.to_vec2::<f32>()?;
            for (&i, row) in batch.iter().zip(emb) {
                out[i * dim..(i + 1) * dim].copy_from_slice(&row);
            }
        }
        Ok(out)
    }

    /// Tokenize and embed; row-major `[texts.len() * dim]`.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<f32>> {
        self.embed_tokenized(&self.tokenize(texts)?)
    }
}

/// Group sequence indices into batches of similar length.
///
/// Indices are sorted by length, longest first, and a batch is closed when adding the next
/// sequence would exceed `max_batch` sequences or `batch_tokens` padded tokens (sequences times
/// the batch's longest length). Every index appears exactly once. A sequence longer than the
/// budget gets a batch of its own.
pub fn plan_batches(lengths: &[usize], max_batch: usize, batch_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut longest = 0;
    for i in order {
        if current.is_empty() {
            longest = lengths[i].max(1);
        } else if current.len() >= max_batch || (current.len() + 1) * longest > batch_tokens {
            batches.push(std::mem::take(&mut current));
            longest = lengths[i].max(1);
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Right-pad sequences with id 0 into `[B, L]` u32 ids.
pub fn pad_batch(seqs: &[&[u32]], device: &Device) -> Result<Tensor> {
    let b = seqs.len();
    let l = seqs.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
    let mut ids = vec![0u32; b * l];
    for (r, s) in seqs.iter().enumerate() {
        ids[r * l..r * l + s.len()].copy_from_slice(s);
    }
    Ok(Tensor::from_vec(ids, (b, l), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_index_once_and_respect_budgets() {
        let lengths: Vec<usize> = (0..500).map(|i| (i * 37 % 250) + 2).collect();
        let batches = plan_batches(&lengths, 16, 1024);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..500).collect::<Vec<_>>());
        for b in &batches {
            let longest = b.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(b.len() <= 16);
            assert!(b.len() == 1 || b.len() * longest <= 1024, "{b:?}");
        }
    }

    #[test]
    fn sorted_batches_pad_little() {
        // Lengths spread 2..=256: length sorting keeps padding under 5% of real tokens.
        let lengths: Vec<usize> = (0..2000).map(|i| 2 + (i * 7919) % 255).collect();
        let batches = plan_batches(&lengths, 64, 4096);
        let real: usize = lengths.iter().sum();
        let padded: usize = batches
            .iter()
            .map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap())
            .sum();
        assert!(
            (padded - real) as f64 / (real as f64) < 0.05,
            "{padded} vs {real}"
        );
    }

    #[test]
    fn oversized_sequence_gets_its_own_batch() {
        let batches = plan_batches(&[10, 300, 10], 8, 256);
        assert_eq!(batches[0], vec![1]);
        assert_eq!(batches[1], vec![0, 2]);
    }

    #[test]
    fn empty_input_gives_no_batches() {
        assert!(plan_batches(&[], 8, 256).is_empty());
    }

    #[test]
    fn padding() {
        let ids = pad_batch(&[&[101, 7, 102], &[101, 102]], &Device::Cpu).unwrap();
        assert_eq!(
            ids.to_vec2::<u32>().unwrap(),
            vec![vec![101, 7, 102], vec![101, 102, 0]]
        );
    }
}
