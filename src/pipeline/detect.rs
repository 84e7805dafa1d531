//! From a log to the classifier's input: shared by `score` and `train`.
//!
//! [`ensure_run`] embeds a log, or reuses a run directory that already holds the embeddings of
//! the same input bytes under the same model (embedding is the expensive stage; features and
//! everything after are cheap to recompute). [`detect`] is the one path from a run to the
//! feature matrix, used by `score` and by `train`, so a model is always scored on features
//! computed exactly as in training. Each stage's wall time and peak memory are recorded for
//! the benchmarks (`score.json` in the run directory).

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use serde::Serialize;

use super::embed::{build_shingles, embed, EmbedJob};
use crate::campaign::{self, CampaignParams, Linking};
use crate::embed::{sha256_file, Embedder};
use crate::error::{Error, Result};
use crate::features::{self, Accounts, LocalFeatures, Normal};
use crate::index::AccountIndex;
use crate::progress::Progress;
use crate::run::{FeaturesOut, Run, StoreDType, INDEX_DIR, MANIFEST};

/// Where a job's embeddings come from: `input` embedded into `run_dir`, unless `run_dir`
/// already holds them.
pub struct RunSource<'a> {
    pub input: PathBuf,
    pub run_dir: PathBuf,
    /// The embedding model's folder (its weights' hash decides whether a run can be reused).
    pub model_dir: PathBuf,
    pub max_seq_len: usize,
    /// Whether the job asks for int8 embeddings: a run embedded in int8 is reused only then
    /// (f32 and half-precision runs are reused either way, as the more precise ones).
    pub int8: bool,
    pub skip_invalid: bool,
    /// Told of reuse or re-embedding, the embedding's progress and each detection stage.
    pub progress: &'a dyn Progress,
    /// Where the job computes: the embedder's device, and where the similarity kernels of the
    /// detection stages run.
    pub device: Device,
    /// Loads the embedder (on `device`); called only when embedding is needed.
    pub load: &'a dyn Fn() -> Result<Embedder>,
}

/// Why `run_dir` cannot be reused, or `None` when it can.
fn stale(src: &RunSource) -> Result<Option<String>> {
    let mpath = src.run_dir.join(MANIFEST);
    if !mpath.exists() {
        return Ok(Some("no embeddings yet".into()));
    }
    let Ok(run_manifest) = crate::run::read_manifest(&src.run_dir) else {
        return Ok(Some("its manifest is unreadable".into()));
    };
    if run_manifest.format_version != crate::run::FORMAT_VERSION {
        return Ok(Some("it was written by another version".into()));
    }
    if run_manifest.input.sha256 != sha256_file(&src.input)? {
        return Ok(Some(format!(
            "it holds another input ({})",
            run_manifest.input.path.display()
        )));
    }
    let weights = src.model_dir.join("model.safetensors");
    if weights.exists() && run_manifest.model.sha256 != sha256_file(&weights)? {
        return Ok(Some("it was embedded with other model weights".into()));
    }
    if run_manifest.model.max_seq_len != src.max_seq_len {
        return Ok(Some(format!(
            "it was embedded with prompts cut at {} tokens",
            run_manifest.model.max_seq_len
        )));
    }
    if run_manifest.model.precision == "int8" && !src.int8 {
        return Ok(Some(
            "it was embedded with int8 linear layers and this job asks for f32".into(),
        ));
    }
    if run_manifest.input.skipped.count > 0 && !src.skip_invalid {
        return Ok(Some(
            "it skipped invalid lines and this job does not skip them".into(),
        ));
    }
    Ok(None)
}

/// The run for `src.input`: reused from `src.run_dir` when it holds the same input embedded by
/// the same model, else embedded there now. Returns the run and the seconds spent embedding.
pub fn ensure_run(src: &RunSource) -> Result<(Run, f64)> {
    if !src.input.is_file() {
        return Err(Error::file(&src.input, "no such file"));
    }
    let start = Instant::now();
    match stale(src)? {
        None => {
            src.progress.note(&format!(
                "reusing embeddings in {} (same input and model)",
                src.run_dir.display()
            ));
            if !crate::run::shingles_current(&src.run_dir)? {
                src.progress
                    .note("adding prompt shingles to the run directory");
                let rows = crate::run::read_manifest(&src.run_dir)?.embeddings.rows;
                build_shingles(&src.input, &src.run_dir, src.skip_invalid, rows)?;
            }
        }
        Some(why) => {
            if src.run_dir.join(MANIFEST).exists() {
                src.progress.note(&format!(
                    "re-embedding into {}: {why}",
                    src.run_dir.display()
                ));
            }
            let embedder = (src.load)()?;
            let m = embed(&EmbedJob {
                input: src.input.clone(),
                out: src.run_dir.clone(),
                skip_invalid: src.skip_invalid,
                store_dtype: StoreDType::F32,
                embedder: &embedder,
                progress: src.progress,
            })?;
            src.progress.note(&format!(
                "embedded {} distinct prompts of {} requests on {} in {:.1}s",
                m.embeddings.rows, m.input.requests, m.device, m.timing.wall_seconds
            ));
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok((Run::open(&src.run_dir)?, seconds))
}

/// Wall time and peak resident memory of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub name: String,
    pub seconds: f64,
    /// Peak resident set size during the stage (Linux; `null` elsewhere).
    pub peak_rss_mib: Option<f64>,
}

/// Times stages and tells `progress` of each; on Linux each stage's peak RSS is measured from
/// a reset high-water mark.
pub(super) struct Stages<'a> {
    done: Vec<Stage>,
    current: Option<(String, Instant)>,
    progress: &'a dyn Progress,
}

impl<'a> Stages<'a> {
    pub(super) fn new(progress: &'a dyn Progress) -> Self {
        Stages {
            done: Vec::new(),
            current: None,
            progress,
        }
    }

    pub(super) fn start(&mut self, name: &str) {
        self.finish();
        // Writing "5" to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        self.progress.stage(name, None);
        self.current = Some((name.to_string(), Instant::now()));
    }

    fn finish(&mut self) {
        if let Some((name, t)) = self.current.take() {
            self.done.push(Stage {
                name,
                seconds: t.elapsed().as_secs_f64(),
                peak_rss_mib: peak_rss_mib(),
            });
        }
    }

    pub(super) fn into_stages(mut self) -> Vec<Stage> {
        self.finish();
        self.progress.done();
        self.done
    }
}

pub(super) fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Everything the detection stages learn about a run's accounts.
pub struct Detection {
    pub accounts: Accounts,
    pub local: LocalFeatures,
    pub index: AccountIndex,
    pub linking: Linking,
    /// Feature names in column order (the classifier's schema).
    pub names: Vec<String>,
    /// `accounts x names.len()`, row-major.
    pub x: Vec<f32>,
    pub stages: Vec<Stage>,
}

/// Features, account index (saved to `run/index`), link groups and the feature matrix for
/// every account of `run`, against `normal` traffic (a model's own, or drawn by `train`). The
/// all-pairs similarity work runs on `device` (the CUDA kernels with the `cuda` feature, else
/// the CPU ops).
pub fn detect(
    run: &Run,
    params: &CampaignParams,
    normal: Normal,
    device: &Device,
    progress: &dyn Progress,
) -> Result<Detection> {
    let mut stages = Stages::new(progress);
    stages.start("features");
    let accounts = Accounts::from_run(run)?;
    if accounts.is_empty() {
        return Err(Error::file(&run.dir, "the run holds no requests"));
    }
    let emb = run.embeddings.to_device(device)?;
    let local = features::local(&emb, &run.rows, &accounts, normal)?;
    drop(emb);

    stages.start("index");
    // A serial build gives the same graph, hence the same neighbours, links and features, on
    // every run: retraining and rescoring must be reproducible. It costs seconds where
    // embedding costs minutes.
    let index = AccountIndex::for_accounts(accounts.ids.clone(), &local.behaviour, local.dim)?;
    index.save(&run.dir.join(INDEX_DIR))?;
    let neighbors: Vec<Vec<(usize, f32)>> = index
        .all_neighbors(params.k)
        .into_iter()
        .map(|ns| ns.into_iter().map(|n| (n.row, n.similarity)).collect())
        .collect();

    stages.start("campaigns");
    let linking = campaign::analyse(&accounts, &local, &run.shingles, neighbors, params)?;
    let names = campaign::feature_names(local.dim);
    let x = campaign::feature_matrix(&local, &linking);
    Ok(Detection {
        accounts,
        local,
        index,
        linking,
        names,
        x,
        stages: stages.into_stages(),
    })
}

/// Save the feature matrix, behaviour vectors and each account's reported campaign (if any)
/// to the run's features file, for `neighbors` and `eval`'s baselines.
pub(super) fn save_features(
    run: &Path,
    detection: &Detection,
    campaigns: &[Option<String>],
) -> Result<()> {
    crate::run::write_features(
        run,
        &FeaturesOut {
            accounts: &detection.accounts.ids,
            names: &detection.names,
            x: &detection.x,
            behaviour: &detection.local.behaviour,
            dim: detection.local.dim,
            campaigns,
        },
    )
}
