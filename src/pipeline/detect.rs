//! Detection jobs: from a run directory to features, campaigns and scores.
//!
//! [`ensure_run`] embeds a log, or reuses a run directory that already holds the embeddings of
//! the same input bytes under the same model (embedding is the expensive stage; features and
//! everything after are cheap to recompute). [`detect`] is the one path from a run to the
//! feature matrix, used by `score` and by `train`, so a model is always scored on features
//! computed exactly as in training. Each stage's wall time and peak memory are recorded for
//! the benchmarks (`score.json` in the run directory).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::embed::{embed, EmbedJob};
use crate::campaign::{self, CampaignParams, Context};
use crate::classify::{self, Dataset, Model, TrainOptions};
use crate::embed::{sha256_file, Embedder, ModelFiles};
use crate::error::{Error, IoContext, Result};
use crate::features::{self, Accounts, LocalFeatures};
use crate::index::{AccountIndex, IndexParams};
use crate::ingest::Labels;
use crate::report::{self, CampaignLine, NeighborOut, ScoreLine, SCORE_NEIGHBORS};
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
    pub skip_invalid: bool,
    pub quiet: bool,
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
    let run_manifest: crate::run::Manifest =
        match std::fs::read_to_string(&mpath).map(|t| serde_json::from_str(&t)) {
            Ok(Ok(m)) => m,
            _ => return Ok(Some("its manifest is unreadable".into())),
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
            "it was embedded with --max-seq-len {}",
            run_manifest.model.max_seq_len
        )));
    }
    if run_manifest.input.skipped.count > 0 && !src.skip_invalid {
        return Ok(Some(
            "it skipped invalid lines and --skip-invalid is not given".into(),
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
            if !src.quiet {
                eprintln!(
                    "distillguard: reusing embeddings in {} (same input and model)",
                    src.run_dir.display()
                );
            }
        }
        Some(why) => {
            if !src.quiet && src.run_dir.join(MANIFEST).exists() {
                eprintln!(
                    "distillguard: re-embedding into {}: {why}",
                    src.run_dir.display()
                );
            }
            let embedder = (src.load)()?;
            let m = embed(&EmbedJob {
                input: src.input.clone(),
                out: src.run_dir.clone(),
                skip_invalid: src.skip_invalid,
                store_dtype: StoreDType::F32,
                quiet: src.quiet,
                embedder: &embedder,
            })?;
            if !src.quiet {
                eprintln!(
                    "distillguard: embedded {} distinct prompts of {} requests on {} in {:.1}s",
                    m.embeddings.rows, m.input.requests, m.device, m.timing.wall_seconds
                );
            }
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

/// Times stages; on Linux each stage's peak RSS is measured from a reset high-water mark.
struct Stages {
    done: Vec<Stage>,
    current: Option<(String, Instant)>,
    spinner: ProgressBar,
}

impl Stages {
    fn new(quiet: bool) -> Self {
        let spinner = if quiet {
            ProgressBar::hidden()
        } else {
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]")
                    .expect("valid template"),
            );
            pb.enable_steady_tick(Duration::from_millis(200));
            pb
        };
        Stages {
            done: Vec::new(),
            current: None,
            spinner,
        }
    }

    fn start(&mut self, name: &str) {
        self.finish();
        // Writing "5" to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        self.spinner.set_message(name.to_string());
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

    fn into_stages(mut self) -> Vec<Stage> {
        self.finish();
        self.spinner.finish_and_clear();
        self.done
    }
}

fn peak_rss_mib() -> Option<f64> {
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
    pub ctx: Context,
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
    quiet: bool,
) -> Result<Detection> {
    let mut stages = Stages::new(quiet);
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
    let index = AccountIndex::build(
        accounts.ids.clone(),
        &local.behaviour,
        local.dim,
        IndexParams {
            parallel: false,
            ..IndexParams::default()
        },
    )?;
    index.save(&run.dir.join(INDEX_DIR))?;
    let neighbors: Vec<Vec<(usize, f32)>> = index
        .all_neighbors(params.k)
        .into_iter()
        .map(|ns| ns.into_iter().map(|n| (n.row, n.similarity)).collect())
        .collect();

    stages.start("campaigns");
    let ctx = campaign::analyse(&accounts, &local, neighbors, params)?;
    let names = campaign::feature_names(local.dim);
    let x = campaign::feature_matrix(&local, &ctx);
    Ok(Detection {
        accounts,
        local,
        index,
        ctx,
        names,
        x,
        stages: stages.into_stages(),
    })
}

/// Save the feature matrix, behaviour vectors and each account's reported campaign (if any)
/// to `run/features.safetensors`, for `neighbors` and `eval`'s baselines.
fn save_features(run: &Path, det: &Detection, campaigns: &[Option<String>]) -> Result<()> {
    let n = det.accounts.len();
    let mut tensors = HashMap::new();
    tensors.insert(
        "x".to_string(),
        Tensor::from_slice(&det.x, (n, det.names.len()), &Device::Cpu)?,
    );
    tensors.insert(
        "behaviour".to_string(),
        Tensor::from_slice(&det.local.behaviour, (n, det.local.dim), &Device::Cpu)?,
    );
    let meta: HashMap<String, String> = [
        ("accounts".to_string(), to_json(&det.accounts.ids)),
        ("features".to_string(), to_json(&det.names)),
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
    pub names: Vec<String>,
    pub x: Vec<f32>,
    pub behaviour: Vec<f32>,
    pub dim: usize,
    pub campaigns: Vec<Option<String>>,
}

/// Read `run_dir/features.safetensors` (written by `score` and `train`).
pub fn load_features(run_dir: &Path) -> Result<SavedFeatures> {
    let path = run_dir.join(FEATURES_FILE);
    let bytes = std::fs::read(&path).at(&path)?;
    let bad = |msg: String| Error::file(&path, msg);
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a features file: {e}")))?;
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
    drop(st);
    let get = |name: &str| -> Result<(Vec<f32>, usize)> {
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
        Ok((t.flatten_all()?.to_vec1()?, cols))
    };
    let (x, cols) = get("x")?;
    if cols != names.len() || campaigns.len() != accounts.len() {
        return Err(bad(
            "feature names or campaigns disagree with the matrix".into()
        ));
    }
    let (behaviour, dim) = get("behaviour")?;
    Ok(SavedFeatures {
        accounts,
        names,
        x,
        behaviour,
        dim,
        campaigns,
    })
}

/// The `score` job.
pub struct ScoreJob<'a> {
    pub source: RunSource<'a>,
    pub out: PathBuf,
    pub campaigns_out: PathBuf,
    pub model_dir: PathBuf,
    pub params: CampaignParams,
}

/// What `score` found, for the terminal summary.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreSummary {
    pub accounts: usize,
    pub requests: u64,
    pub flagged: usize,
    pub threshold: f32,
    pub model_dir: PathBuf,
    pub run_dir: PathBuf,
    pub scores: PathBuf,
    pub campaigns_file: PathBuf,
    pub stages: Vec<Stage>,
    /// The highest-scoring accounts (at most 10).
    #[serde(skip)]
    pub top: Vec<ScoreLine>,
    /// Campaigns, largest first (at most 10).
    #[serde(skip)]
    pub campaigns: Vec<CampaignLine>,
    pub campaign_count: usize,
}

impl ScoreSummary {
    /// A short human-readable summary: counts, top accounts, campaigns, stage times.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{} accounts, {} requests: {} flagged at threshold {:.3}, {} campaign{}\n",
            self.accounts,
            self.requests,
            self.flagged,
            self.threshold,
            self.campaign_count,
            if self.campaign_count == 1 { "" } else { "s" }
        );
        s += "\nTop accounts\n";
        s += &format!(
            "  {:<28} {:>6} {:>4} {:>8} {:<9} reason\n",
            "account", "score", "flag", "requests", "campaign"
        );
        for l in &self.top {
            s += &format!(
                "  {:<28} {:>6.3} {:>4} {:>8} {:<9} {}\n",
                truncate(&l.account_id, 28),
                l.score,
                if l.flagged { "yes" } else { "" },
                l.requests,
                l.campaign.as_deref().unwrap_or("-"),
                l.reasons.first().map(String::as_str).unwrap_or("")
            );
        }
        if !self.campaigns.is_empty() {
            s += "\nCampaigns\n";
            for c in &self.campaigns {
                s += &format!(
                    "  {} {} accounts ({} flagged), {} requests, mean score {:.2}: {}\n",
                    c.id,
                    c.size,
                    c.flagged_members,
                    c.requests,
                    c.mean_score,
                    c.shared.join("; ")
                );
            }
        }
        s += "\nStages: ";
        s += &self
            .stages
            .iter()
            .map(|st| format!("{} {:.2}s", st.name, st.seconds))
            .collect::<Vec<_>>()
            .join(", ");
        s += &format!(
            "\nWrote {} and {}; run directory {}\n",
            self.scores.display(),
            self.campaigns_file.display(),
            self.run_dir.display()
        );
        s
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Run `score` end to end: embed (or reuse), detect, classify, write `scores.jsonl` and
/// `campaigns.jsonl`.
pub fn score(job: &ScoreJob) -> Result<ScoreSummary> {
    // The model is checked before any embedding where the embedding width is known, so a
    // wrong --model fails in a second rather than after the embedding.
    if let Ok(cfg) = ModelFiles::locate(&job.source.model_dir).and_then(|f| f.config()) {
        Model::load(&job.model_dir, &campaign::feature_names(cfg.hidden_size))?;
    }
    let (run, embed_seconds) = ensure_run(&job.source)?;
    let embed_stage = Stage {
        name: "embed".into(),
        seconds: embed_seconds,
        peak_rss_mib: peak_rss_mib(),
    };
    let det = detect(&run, &job.params, &job.source.device, job.source.quiet)?;
    let mut stages = vec![embed_stage];
    stages.extend(det.stages.iter().cloned());

    let mut timer = Stages::new(true);
    timer.start("classify");
    let model = Model::load(&job.model_dir, &det.names)?;
    let probs = model.predict(&det.x)?;
    timer.start("report");
    let n = det.accounts.len();
    let d_local = features::LOCAL_FEATURES.len();
    let groups = reported_campaigns(&det.ctx, &probs, &model);
    let campaign_of: Vec<Option<String>> = det
        .ctx
        .campaign_of
        .iter()
        .map(|g| g.and_then(|g| groups[g].clone()))
        .collect();
    save_features(&run.dir, &det, &campaign_of)?;
    let lines: Vec<ScoreLine> = (0..n)
        .map(|a| {
            let requests = det.accounts.requests[a].len();
            let campaign = det.ctx.campaign_of[a]
                .zip(campaign_of[a].as_deref())
                .map(|(g, id)| (id, &det.ctx.campaigns[g]));
            ScoreLine {
                account_id: det.accounts.ids[a].clone(),
                score: probs[a],
                flagged: model.flags(probs[a]),
                requests: requests as u64,
                campaign: campaign_of[a].clone(),
                neighbors: det.ctx.neighbors[a]
                    .iter()
                    .take(SCORE_NEIGHBORS)
                    .map(|&(b, s)| NeighborOut {
                        account_id: det.accounts.ids[b].clone(),
                        similarity: (s * 10_000.0).round() / 10_000.0,
                    })
                    .collect(),
                reasons: report::reasons(
                    a,
                    requests,
                    &det.x[a * det.names.len()..a * det.names.len() + d_local],
                    &det.ctx,
                    campaign,
                ),
            }
        })
        .collect();
    let order = ranking(&probs, &det.accounts.ids);
    let campaigns: Vec<CampaignLine> = det
        .ctx
        .campaigns
        .iter()
        .zip(&groups)
        .filter_map(|(c, id)| id.as_ref().map(|id| (c, id)))
        .map(|(c, id)| {
            let mut members = c.members.clone();
            members.sort_by(|&x, &y| probs[y].total_cmp(&probs[x]).then(x.cmp(&y)));
            let scores: Vec<f32> = members.iter().map(|&m| probs[m]).collect();
            let ts = members
                .iter()
                .flat_map(|&m| det.accounts.requests[m].iter().map(|q| q.ts_ms));
            let (first, last) = ts.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
            let rows: Vec<&[f32]> = members.iter().map(|&m| det.local.row(m)).collect();
            CampaignLine {
                id: id.clone(),
                size: c.size,
                requests: c.requests,
                flagged_members: members.iter().filter(|&&m| model.flags(probs[m])).count(),
                mean_score: scores.iter().sum::<f32>() / scores.len().max(1) as f32,
                max_score: scores.iter().copied().fold(0.0, f32::max),
                mean_similarity: c.mean_similarity,
                mean_coverage: c.mean_coverage,
                shared_system_prompt_accounts: c.shared_system_prompt_accounts,
                first_seen: rfc3339(first),
                last_seen: rfc3339(last),
                shared: report::shared(c, &rows),
                members: members
                    .iter()
                    .map(|&m| det.accounts.ids[m].clone())
                    .collect(),
            }
        })
        .collect();
    let sorted: Vec<ScoreLine> = order.iter().map(|&a| lines[a].clone()).collect();
    report::write_jsonl(&job.out, &sorted)?;
    report::write_jsonl(&job.campaigns_out, &campaigns)?;
    drop(lines);
    stages.extend(timer.into_stages());

    let summary = ScoreSummary {
        accounts: n,
        requests: run.manifest.input.requests,
        flagged: sorted.iter().filter(|l| l.flagged).count(),
        threshold: model.threshold,
        model_dir: job.model_dir.clone(),
        run_dir: run.dir.clone(),
        scores: job.out.clone(),
        campaigns_file: job.campaigns_out.clone(),
        stages,
        top: sorted.into_iter().take(10).collect(),
        campaign_count: campaigns.len(),
        campaigns: campaigns.into_iter().take(10).collect(),
    };
    let stats = run.dir.join(SCORE_STATS);
    let mut bytes = serde_json::to_vec_pretty(&summary)
        .map_err(|e| Error::file(&stats, format!("cannot serialise: {e}")))?;
    bytes.push(b'\n');
    std::fs::write(&stats, bytes).at(&stats)?;
    Ok(summary)
}

/// Which link groups are reported as campaigns, and under which id: those where at least
/// half the members are flagged, numbered C0001, C0002, ... largest first. A group of
/// unflagged accounts (one company's service accounts, say) is linked evidence, not a
/// campaign, and reporting it as one would send analysts after customers.
fn reported_campaigns(ctx: &Context, probs: &[f32], model: &Model) -> Vec<Option<String>> {
    let mut next = 0;
    ctx.campaigns
        .iter()
        .map(|c| {
            let flagged = c.members.iter().filter(|&&m| model.flags(probs[m])).count();
            (2 * flagged >= c.size).then(|| {
                next += 1;
                format!("C{next:04}")
            })
        })
        .collect()
}

/// Account indices by descending score, ties by account id (a stable, reproducible order).
fn ranking(scores: &[f32], ids: &[String]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&x, &y| scores[y].total_cmp(&scores[x]).then(ids[x].cmp(&ids[y])));
    order
}

/// The `train` job.
pub struct TrainJob<'a> {
    pub source: RunSource<'a>,
    pub labels: PathBuf,
    pub out: PathBuf,
    pub params: CampaignParams,
    pub options: TrainOptions,
}

/// Run `train`: embed (or reuse), detect, fit on the labelled accounts, save the model.
pub fn train(job: &TrainJob) -> Result<Model> {
    job.options.validate()?;
    let labels = Labels::read(&job.labels)?;
    let (run, _) = ensure_run(&job.source)?;
    let det = detect(&run, &job.params, &job.source.device, job.source.quiet)?;
    // No classifier yet, so no campaigns: the file serves eval's baselines.
    save_features(&run.dir, &det, &vec![None; det.accounts.len()])?;
    let rows: HashMap<&str, usize> = det
        .accounts
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    labels.check_known(
        &|id| rows.contains_key(id),
        &format!("the request log {}", job.source.input.display()),
    )?;
    let d = det.names.len();
    let mut data = Dataset {
        features: det.names.clone(),
        ..Dataset::default()
    };
    for l in &labels.labels {
        let a = rows[l.account_id.as_str()];
        data.x.extend_from_slice(&det.x[a * d..(a + 1) * d]);
        data.y.push(l.label);
        data.names.push(l.account_id.clone());
        data.groups.push(match (&l.campaign, l.label) {
            (Some(c), 1) => format!("campaign:{c}"),
            _ => format!("account:{}", l.account_id),
        });
    }
    if !job.source.quiet {
        let unlabelled = det.accounts.len() - labels.len();
        eprintln!(
            "distillguard: training on {} labelled accounts ({} extraction); {} unlabelled accounts not used",
            data.len(),
            data.y.iter().filter(|&&y| y == 1).count(),
            unlabelled
        );
    }
    let model = classify::train(&data, &job.options)?;
    model.save(&job.out)?;
    Ok(model)
}
