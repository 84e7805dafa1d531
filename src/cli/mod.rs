//! Command-line interface: flag definitions and dispatch. Flags are parsed and checked before
//! any work starts; each command is a thin call into [`crate::pipeline`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::device::{self, DeviceSpec};
use crate::embed::{default_model_dir, EmbedOptions, Embedder};
use crate::error::{Error, Result};
use crate::pipeline::{self, EmbedJob};
use crate::run::StoreDType;

#[derive(Debug, Parser)]
#[command(
    name = "distillguard",
    version,
    about = "Find adversarial distillation campaigns in LLM API request logs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Embed every distinct prompt of a request log into a run directory.
    Embed(EmbedArgs),
    /// Write labelled synthetic traffic (request log + labels) built from real prompt corpora.
    Simulate(crate::simulate::SimulateArgs),
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Folder with model.safetensors, tokenizer.json and config.json
    /// [default: $DISTILLGUARD_MODEL_DIR, else models/all-MiniLM-L6-v2]
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Compute device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceSpec,
    /// Longest prompt in tokens ([CLS]/[SEP] included); longer prompts are truncated and counted.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_seq_len: usize,
    /// Padded tokens per model batch.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub batch_tokens: usize,
    /// Most prompts per model batch.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_batch: usize,
}

impl ModelArgs {
    pub fn load(&self) -> Result<Embedder> {
        let dir = self.model_dir.clone().unwrap_or_else(default_model_dir);
        let device = device::resolve(self.device)?;
        let opts = EmbedOptions {
            max_seq_len: self.max_seq_len,
            batch_tokens: self.batch_tokens,
            max_batch: self.max_batch,
        };
        Embedder::load(&dir, &device, opts)
    }
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Request log (JSONL, one request per line).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Run directory to write (created if missing).
    #[arg(long, value_name = "RUN_DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Precision of the stored embeddings.
    #[arg(long, value_enum, default_value = "f32")]
    pub out_dtype: StoreDType,
    /// Skip invalid lines (counted, and reported in the manifest and on stderr) instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,
    /// No progress bar and no summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Embed(args) => embed(args),
        Command::Simulate(args) => args.run(),
    }
}

fn embed(args: EmbedArgs) -> Result<()> {
    if !args.input.is_file() {
        return Err(Error::file(&args.input, "no such file"));
    }
    if args.out.exists() && !args.out.is_dir() {
        return Err(Error::Usage(format!(
            "--out {} exists and is not a directory",
            args.out.display()
        )));
    }
    let embedder = args.model.load()?;
    let m = pipeline::embed(&EmbedJob {
        input: args.input,
        out: args.out.clone(),
        skip_invalid: args.skip_invalid,
        store_dtype: args.out_dtype,
        quiet: args.quiet,
        embedder: &embedder,
    })?;
    if !args.quiet {
        let e = &m.embeddings;
        eprintln!(
            "distillguard: {} requests -> {} distinct prompts ({} duplicates, {} truncated at {} tokens), \
             {} tokens on {} in {:.1}s ({:.0} prompts/s); wrote {}",
            m.input.requests,
            e.rows,
            e.duplicate_requests,
            e.truncated_prompts,
            m.model.max_seq_len,
            e.tokens,
            m.device,
            m.timing.wall_seconds,
            e.rows as f64 / m.timing.wall_seconds.max(1e-9),
            args.out.display()
        );
    }
    Ok(())
}
