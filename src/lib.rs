//! distillguard finds adversarial distillation in LLM API request logs: many accounts sweeping a
//! model with systematic prompts to copy its capabilities.
//!
//! Data flows one way through the stages; each module imports only earlier ones, and only
//! [`pipeline`] knows them all:
//!
//! ```text
//! ingest  -> embed  -> run dir  -> features -> index + campaigns -> classify -> report
//! JSONL      MiniLM    manifest,    per        HNSW over        MLP          scores.jsonl,
//! reader     (candle)  embeddings,  account    behaviour,       (candle-nn)  campaigns.jsonl
//!                      table                   link groups
//! ```
//!
//! - [`ingest`]: streaming, validated reader for the request-log contract (file:line:field errors).
//! - [`embed`]: all-MiniLM-L6-v2 in candle; [`embed::bert`] maps tensors to tensors, the
//!   [`embed::Embedder`] owns device, tokenizer and length-bucketed batching.
//! - [`device`]: `--device auto|cpu|cuda[:N]`, the only place that opens a device.
//! - [`run`]: the run-directory files other tools read.
//! - [`features`], [`similarity`], [`index`], [`campaign`], [`classify`], [`report`]: the
//!   detection stages, in that order (see ARCHITECTURE.md).
//! - [`pipeline`]: the jobs, which report through [`progress::Progress`] and never print;
//!   [`error`]: the error type and exit codes. Flags, bars and summaries live in the binary
//!   (`src/main.rs`, `src/cli/`).
//! - `simulate` (feature `simulate`, on by default): labelled synthetic traffic from real prompt
//!   corpora, for training and evaluation; a tool beside the pipeline that writes the public
//!   request-log and label formats and reads nothing of the detection stages.

pub mod campaign;
pub mod classify;
pub mod cpu;
pub mod cpu_storage;
pub mod device;
pub mod embed;
pub mod error;
pub mod features;
pub mod hash;
pub mod index;
pub mod ingest;
pub mod lexical;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod run;
pub mod shingles;
pub mod similarity;
#[cfg(feature = "simulate")]
pub mod simulate;

pub use error::{Error, Result};
