//! From a log to the classifier's input: shared by `score` and `train`.
//!
//! [`ensure_run`] embeds a log, or reuses a run directory that already holds the embeddings of
//! the same input bytes under the same model (embedding is the expensive stage; features and
//! everything after are cheap to recompute). [`detect`] is the one path from a run to the
//! feature matrix, used by `score` and by `train`, so a model is always scored on features
//! computed exactly as in training. Each stage's wall time and peak memory are recorded for
//! the benchmarks (`score.json` in the run directory).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::Serialize;

use super::embed::{build_shingles, embed, EmbedJob};
use crate::campaign::{self, CampaignParams, Linking};
use crate::embed::{sha256_file, Embedder};
use crate::error::{Error, IoContext, Result};
use crate::features::{self, Accounts, LocalFeatures};
use crate::index::AccountIndex;
use crate::progress::Progress;
use crate::run::{Run, StoreDType, MANIFEST};

/// The account index inside a run directory.
pub const INDEX_DIR: &str = "index";
/// Per-account features and behaviour vectors inside a run directory.
pub const FEATURES_FILE: &str = "features.safetensors";
/// Stage timings of the last `score` inside a run directory.
pub const SCORE_STATS: &str = "score.json";

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
/// every account of `run`. The all-pairs similarity work runs on `device` (the CUDA kernels
/// with the `cuda` feature, else the CPU ops).
pub fn detect(
    run: &Run,
    params: &CampaignParams,
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
    let local = features::local(&emb, &run.rows, &accounts)?;
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
/// to `run/features.safetensors`, for `neighbors` and `eval`'s baselines.
pub(super) fn save_features(
    run: &Path,
    detection: &Detection,
    campaigns: &[Option<String>],
) -> Result<()> {
    let n = detection.accounts.len();
    let mut tensors = HashMap::new();
    tensors.insert(
        "x".to_string(),
        Tensor::from_slice(&detection.x, (n, detection.names.len()), &Device::Cpu)?,
    );
    tensors.insert(
        "behaviour".to_string(),
        Tensor::from_slice(
            &detection.local.behaviour,
            (n, detection.local.dim),
            &Device::Cpu,
        )?,
    );
    let meta: HashMap<String, String> = [
        ("accounts".to_string(), to_json(&detection.accounts.ids)),
        ("features".to_string(), to_json(&detection.names)),
        ("campaigns".to_string(), to_json(campaigns)),
    ]
    .into_iter()
    .collect();
    let path = run.join(FEATURES_FILE);
    let tmp = run.join(format!("{FEATURES_FILE}.partial"));
    safetensors::serialize_to_file(
        tensors.iter().map(|(k, t)| (k.as_str(), t)),
        Some(meta),
        &tmp,
    )
    .map_err(|e| Error::file(&tmp, format!("cannot write features: {e}")))?;
    std::fs::rename(&tmp, &path).at(&path)
}

fn to_json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

/// Features saved by [`detect`]: account ids, the feature matrix, behaviour vectors and each
/// account's campaign id.
pub struct SavedFeatures {
    pub accounts: Vec<String>,
    /// Feature names of the matrix `x` in the file (read as needed, not loaded here).
    pub names: Vec<String>,
    pub behaviour: Vec<f32>,
    pub dim: usize,
    pub campaigns: Vec<Option<String>>,
    /// Per account, its shift from the endpoint's traffic (`shift_log_z`), the zero-shot
    /// baseline of `eval`; `None` in files written before that feature existed.
    pub shift: Option<Vec<f32>>,
}

impl SavedFeatures {
    /// Account id to its row.
    pub fn rows_by_id(&self) -> HashMap<&str, usize> {
        self.accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.as_str(), i))
            .collect()
    }
}

/// Read `run_dir/features.safetensors` (written by `score` and `train`).
pub fn load_features(run_dir: &Path) -> Result<SavedFeatures> {
    let path = run_dir.join(FEATURES_FILE);
    let bytes = std::fs::read(&path).at(&path)?;
    let bad = |msg: String| Error::file(&path, msg);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a features file: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    fn field<T: serde::de::DeserializeOwned>(
        meta: &HashMap<String, String>,
        key: &str,
        path: &Path,
    ) -> Result<T> {
        let text = meta
            .get(key)
            .ok_or_else(|| Error::file(path, format!("metadata {key:?} is missing")))?;
        serde_json::from_str(text)
            .map_err(|e| Error::file(path, format!("metadata {key:?} is corrupt: {e}")))
    }
    let accounts: Vec<String> = field(&meta, "accounts", &path)?;
    let names: Vec<String> = field(&meta, "features", &path)?;
    let campaigns: Vec<Option<String>> = field(&meta, "campaigns", &path)?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| bad(format!("corrupt tensors: {e}")))?;
    // A [accounts, cols] matrix by name, and its column count.
    let get = |name: &str| -> Result<(&candle_core::Tensor, usize)> {
        let t = tensors
            .get(name)
            .ok_or_else(|| bad(format!("no tensor named {name:?}")))?;
        let (rows, cols) = t.dims2()?;
        if rows != accounts.len() {
            return Err(bad(format!(
                "{name} has {rows} rows for {} accounts",
                accounts.len()
            )));
        }
        Ok((t, cols))
    };
    if get("x")?.1 != names.len() || campaigns.len() != accounts.len() {
        return Err(bad(
            "feature names or campaigns disagree with the matrix".into()
        ));
    }
    let (behaviour, dim) = get("behaviour")?;
    let behaviour = behaviour.flatten_all()?.to_vec1()?;
    let (x, _) = get("x")?;
    // Absent from files written before the shift test existed; only `eval` needs it.
    let shift = match names
        .iter()
        .position(|n| n == crate::features::Local::ShiftLogZ.name())
    {
        Some(c) => Some(x.narrow(1, c, 1)?.flatten_all()?.to_vec1()?),
        None => None,
    };
    Ok(SavedFeatures {
        accounts,
        names,
        behaviour,
        dim,
        campaigns,
        shift,
    })
}
