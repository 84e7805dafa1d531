//! The command line: flag definitions, dispatch, and everything the user sees (progress,
//! summaries). Flags are parsed and checked before any work starts; each command is a thin
//! call into the library's `pipeline`. Only the binary parses flags and prints.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use distillguard::campaign::CampaignParams;
use distillguard::classify::{TrainOptions, WarmStart};
use distillguard::device::{self, DeviceSpec};
use distillguard::embed::{default_dir, default_model_dir, EmbedOptions, Embedder};
use distillguard::error::{Error, IoContext, Result};
use distillguard::features::normal::NORMAL_TRAFFIC_FILE;
use distillguard::pipeline::{
    self, EmbedJob, EvalJob, NeighborsJob, ReferenceJob, RunSource, ScoreJob, TrainJob,
};
use distillguard::progress::{Progress, Silent};
use distillguard::run::StoreDType;

mod progress;
#[cfg(feature = "simulate")]
mod simulate;

use progress::Terminal;

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
    /// Score every account of a request log: features, campaigns, classifier, reasons.
    Score(ScoreArgs),
    /// Retrain the classifier on labelled accounts of a request log.
    Train(TrainArgs),
    /// The accounts that behave most like one account, with the evidence.
    Neighbors(NeighborsArgs),
    /// Metrics of a scores file against labels, with baselines.
    Eval(EvalArgs),
    /// Draw the normal traffic of each endpoint from a log of honest accounts, for
    /// `score --reference`.
    Reference(ReferenceArgs),
    /// Write labelled synthetic traffic (request log + labels) built from real prompt corpora.
    #[cfg(feature = "simulate")]
    Simulate(simulate::SimulateArgs),
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
    /// Model precision on a CUDA device.
    #[arg(long, value_enum, default_value = "f16")]
    pub gpu_dtype: GpuDType,
    /// Model precision on the CPU: f32, or int8 linear layers (f32 elsewhere; benches/README.md
    /// has its speed and its agreement with f32). Ignored on a GPU.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: CpuPrecision,
}

/// Precision of the model on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuPrecision {
    F32,
    Int8,
}

/// Precision of the model on a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GpuDType {
    F16,
    Bf16,
}

/// `--out-dtype`: the run directory's [`StoreDType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutDType {
    F32,
    F16,
}

impl OutDType {
    fn store(self) -> StoreDType {
        match self {
            OutDType::F32 => StoreDType::F32,
            OutDType::F16 => StoreDType::F16,
        }
    }
}

impl GpuDType {
    pub fn candle(self) -> candle_core::DType {
        match self {
            GpuDType::F16 => candle_core::DType::F16,
            GpuDType::Bf16 => candle_core::DType::BF16,
        }
    }
}

impl ModelArgs {
    pub fn dir(&self) -> PathBuf {
        self.model_dir.clone().unwrap_or_else(default_model_dir)
    }

    pub fn load(&self, progress: &dyn Progress) -> Result<Embedder> {
        self.load_on(&device::resolve(self.device, progress)?)
    }

    /// Load the model on an already opened device.
    pub fn load_on(&self, device: &candle_core::Device) -> Result<Embedder> {
        let dir = self.dir();
        let opts = EmbedOptions {
            max_seq_len: self.max_seq_len,
            batch_tokens: self.batch_tokens,
            max_batch: self.max_batch,
            gpu_dtype: self.gpu_dtype.candle(),
            cpu_int8: self.precision == CpuPrecision::Int8 && device.is_cpu(),
            ..EmbedOptions::default()
        };
        Embedder::load(&dir, device, opts)
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
    pub out_dtype: OutDType,
    /// Skip invalid lines (counted, and reported in the manifest and on stderr) instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,
    /// No progress bar and no summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Request log (JSONL, one request per line).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Run directory holding the log's embeddings: reused when it holds the same input embedded
    /// by the same model, (re)written otherwise [default: --out with its extension replaced by
    /// .run for score, with .run appended for train].
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Skip invalid lines (counted and reported) instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,
    /// No progress and no summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

impl LogArgs {
    /// What the user sees of the job's progress: nothing with `--quiet`.
    fn progress(&self) -> Box<dyn Progress> {
        reporter(self.quiet)
    }

    fn check(&self) -> Result<()> {
        if !self.input.is_file() {
            return Err(Error::file(&self.input, "no such file"));
        }
        if let Some(d) = self.run_dir.as_ref().filter(|d| d.exists() && !d.is_dir()) {
            return Err(Error::Usage(format!(
                "--run-dir {} exists and is not a directory",
                d.display()
            )));
        }
        Ok(())
    }

    fn source<'a>(
        &self,
        run_dir: PathBuf,
        device: candle_core::Device,
        load: &'a dyn Fn() -> Result<Embedder>,
        progress: &'a dyn Progress,
    ) -> RunSource<'a> {
        RunSource {
            input: self.input.clone(),
            run_dir,
            model_dir: self.model.dir(),
            max_seq_len: self.model.max_seq_len,
            int8: self.model.precision == CpuPrecision::Int8 && device.is_cpu(),
            skip_invalid: self.skip_invalid,
            progress,
            device,
            load,
        }
    }
}

/// Progress bars and notes on stderr, or nothing when `quiet`.
fn reporter(quiet: bool) -> Box<dyn Progress> {
    if quiet {
        Box::new(Silent)
    } else {
        Box::new(Terminal::new())
    }
}

/// `path` with `.run` appended: the default run directory of an output folder.
fn run_dir_appended(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".run");
    p.into()
}

/// `path` with its extension replaced by `.run`: the default run directory beside an output.
fn run_dir_beside(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    let name = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "distillguard".into());
    p.set_file_name(format!("{name}.run"));
    p
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// Scores to write (JSONL, one line per account, most suspicious first). The run
    /// directory defaults to this path with `.run` for its extension, e.g. scores.run/.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Campaigns to write [default: campaigns.jsonl beside --out].
    #[arg(long, value_name = "FILE")]
    pub campaigns: Option<PathBuf>,
    /// Classifier folder [default: $DISTILLGUARD_CLASSIFIER_DIR, else models/classifier].
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Also score the accounts with this classifier folder (say, a model retrained with an
    /// incident) and list the accounts whose flag differs, with both scores.
    #[arg(long, value_name = "DIR")]
    pub compare_model: Option<PathBuf>,
    /// Where --compare-model writes the differing accounts (JSONL) [default: compare.jsonl
    /// beside --out].
    #[arg(long, value_name = "FILE", requires = "compare_model")]
    pub compare_out: Option<PathBuf>,
    /// Normal traffic for endpoints the model does not know (or knows from an older week): a
    /// folder written by `distillguard reference` (or a model folder); its endpoints replace
    /// the model's for those endpoints.
    #[arg(long, value_name = "DIR")]
    pub reference: Option<PathBuf>,
    /// Print no summary on stdout.
    #[arg(long)]
    pub no_summary: bool,
}

#[derive(Debug, Args)]
pub struct ReferenceArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// Labels (JSONL): only the accounts labelled 0 are drawn from [default: every account
    /// of the log is honest].
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Folder to write normal_traffic.safetensors to. The run directory defaults to this path
    /// with `.run` appended.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// Labels (JSONL: account_id, label 0|1, campaign?); unlabelled accounts are not used.
    #[arg(long, value_name = "FILE")]
    pub labels: PathBuf,
    /// Model folder to write (model.safetensors, model.json, training_set.safetensors). The
    /// run directory defaults to this path with `.run` appended.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Benign false positive rate the flagging threshold is chosen for (on out-of-fold scores)
    /// [default: 0.01; with --base and no --refit: the base's].
    #[arg(long, value_name = "FPR")]
    pub target_fpr: Option<f64>,
    /// Seed of the folds and the weight initialisation [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Cross-validation folds (= ensemble members): each labelled group (a campaign; a benign
    /// account) is scored by the member that did not train on it [default: 5].
    #[arg(long, value_name = "K")]
    pub folds: Option<usize>,
    /// Rounds of cross-validation with other folds and seeds: the ensemble has K x R members
    /// and each account's out-of-fold score (which sets the threshold) is its mean over rounds
    /// [default: 5].
    #[arg(long, value_name = "R")]
    pub repeats: Option<usize>,
    /// Hidden layer widths of the MLP, comma-separated, or `none` for a linear model
    /// (logistic regression) [default: 16,8].
    #[arg(long, value_name = "N,...|none", value_parser = parse_hidden)]
    pub hidden: Option<Hidden>,
    /// L2 penalty on the network's weights, `l2 / 2 * sum(w^2)` added to the loss
    /// (docs/evaluation.md, session 17: 0.003 ranks unseen campaign kinds better and flags
    /// more honest accounts) [default: 0].
    #[arg(long, value_name = "L2")]
    pub l2: Option<f64>,
    /// Score each account on its own only: by default an account is scored at least as high
    /// as the middle member of its link group, so a reported campaign's members are all
    /// flagged (out of fold too, so the threshold is chosen for those scores).
    #[arg(long)]
    pub no_link_pooling: bool,
    /// Rounds of members that never see the behaviour vector (what an account asks about),
    /// besides the --repeats rounds that read every input; a score is the mean over all
    /// members, so that topic alone cannot flag an account nor clear it; 0 for none, at most
    /// --repeats: more train as many (docs/evaluation.md, session 20) [default: 2].
    #[arg(long, value_name = "N")]
    pub blind_rounds: Option<usize>,
    /// Add the labels to this model folder's training set (an incident) instead of training
    /// on them alone; `none` trains on the labels alone. The output folder can be the base of
    /// the next incident.
    #[arg(long, value_name = "DIR|none", default_value = "none")]
    pub base: String,
    /// With --base: loss multiplier of each of the incident's groups (a base campaign counts
    /// 1) [default: 1].
    #[arg(long, value_name = "W")]
    pub incident_weight: Option<f32>,
    /// With --base: train a new ensemble on the base's rows plus the incident's instead of
    /// fine-tuning the base's members (which keeps the base's scores of what it already knew;
    /// docs/evaluation.md, "warm start").
    #[arg(long, conflicts_with = "warm")]
    pub refit: bool,
    /// With --base: fine-tune the base's members even when it flags fewer than half of the
    /// incident's extraction accounts (by default such an incident, of a kind the base misses,
    /// is refitted: docs/evaluation.md, session 11).
    #[arg(long)]
    pub warm: bool,
    /// With --base (no --refit): passes over the rows when fine-tuning the base's members
    /// [default: 5].
    #[arg(long, value_name = "N")]
    pub fine_tune_epochs: Option<usize>,
    /// With --base (no --refit): learning rate of the fine-tuning [default: 0.0001].
    #[arg(long, value_name = "LR")]
    pub fine_tune_lr: Option<f64>,
}

#[derive(Debug, Args)]
pub struct NeighborsArgs {
    /// The account to look up.
    pub account: String,
    /// Run directory written by `score` or `train`.
    #[arg(long, value_name = "DIR")]
    pub run_dir: PathBuf,
    /// Neighbours to show.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Print JSON lines (the queried account first) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Scores written by `score`.
    #[arg(long, value_name = "FILE")]
    pub scores: PathBuf,
    /// Labels (JSONL: account_id, label, campaign?, kind?).
    #[arg(long, value_name = "FILE")]
    pub labels: PathBuf,
    /// Write the full report as JSON here (the table still goes to stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Run directory of the scored log (enables the mean-embedding baseline).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Run directory of the training log, for fitting the mean-embedding baseline.
    #[arg(long, value_name = "DIR")]
    pub train_run_dir: Option<PathBuf>,
    /// Labels of the training log, for fitting the mean-embedding baseline.
    #[arg(long, value_name = "FILE")]
    pub train_labels: Option<PathBuf>,
}

/// Hidden layer widths from `--hidden`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hidden(pub Vec<usize>);

fn parse_hidden(s: &str) -> std::result::Result<Hidden, String> {
    if s.trim() == "none" {
        return Ok(Hidden(Vec::new()));
    }
    s.split(',')
        .map(|w| match w.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{w:?} is not a layer width (positive integers, comma-separated, or none)"
            )),
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Hidden)
}

/// The classifier folder: `$DISTILLGUARD_CLASSIFIER_DIR` if set, else `models/classifier`
/// under the current directory if it exists there, else the same folder in this checkout.
pub fn default_classifier_dir() -> PathBuf {
    default_dir("DISTILLGUARD_CLASSIFIER_DIR", "models/classifier")
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Embed(args) => embed(args),
        Command::Score(args) => score(args),
        Command::Train(args) => train(args),
        Command::Neighbors(args) => neighbors(args),
        Command::Eval(args) => eval(args),
        Command::Reference(args) => reference(args),
        #[cfg(feature = "simulate")]
        Command::Simulate(args) => args.run(),
    }
}

fn score(args: ScoreArgs) -> Result<()> {
    args.log.check()?;
    if args.out.is_dir() {
        return Err(Error::Usage(format!(
            "--out {} is a directory; give the scores file to write",
            args.out.display()
        )));
    }
    let run_dir = args
        .log
        .run_dir
        .clone()
        .unwrap_or_else(|| run_dir_beside(&args.out));
    let campaigns = args
        .campaigns
        .clone()
        .unwrap_or_else(|| args.out.with_file_name("campaigns.jsonl"));
    let progress = args.log.progress();
    let device = device::resolve(args.log.model.device, progress.as_ref())?;
    let load = || args.log.model.load_on(&device);
    let summary = pipeline::score(&ScoreJob {
        source: args
            .log
            .source(run_dir, device.clone(), &load, progress.as_ref()),
        out: args.out.clone(),
        campaigns_out: campaigns,
        model_dir: args.model.clone().unwrap_or_else(default_classifier_dir),
        params: CampaignParams::default(),
        compare: args.compare_model.clone().map(|dir| {
            let file = args
                .compare_out
                .clone()
                .unwrap_or_else(|| args.out.with_file_name("compare.jsonl"));
            (dir, file)
        }),
        reference: args.reference.clone(),
    })?;
    if !args.no_summary {
        print!("{}", summary.render());
    }
    Ok(())
}

fn reference(args: ReferenceArgs) -> Result<()> {
    args.log.check()?;
    if let Some(l) = args.labels.as_ref().filter(|l| !l.is_file()) {
        return Err(Error::file(l, "no such file"));
    }
    let run_dir = args
        .log
        .run_dir
        .clone()
        .unwrap_or_else(|| run_dir_appended(&args.out));
    let progress = args.log.progress();
    let device = device::resolve(args.log.model.device, progress.as_ref())?;
    let load = || args.log.model.load_on(&device);
    let normal = pipeline::reference(&ReferenceJob {
        source: args
            .log
            .source(run_dir, device.clone(), &load, progress.as_ref()),
        labels: args.labels.clone(),
        out: args.out.clone(),
    })?;
    progress.done();
    if !args.log.quiet {
        let names: Vec<String> = normal
            .endpoints
            .keys()
            .map(|k| k.clone().unwrap_or_else(|| "(no model)".into()))
            .collect();
        eprintln!(
            "distillguard: normal traffic of {} honest accounts written to {}: endpoints {}{}",
            normal.accounts,
            args.out.join(NORMAL_TRAFFIC_FILE).display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            },
            if normal.whole.is_some() {
                ", and over all of them"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn train(args: TrainArgs) -> Result<()> {
    args.log.check()?;
    if !args.labels.is_file() {
        return Err(Error::file(&args.labels, "no such file"));
    }
    let run_dir = args
        .log
        .run_dir
        .clone()
        .unwrap_or_else(|| run_dir_appended(&args.out));
    let defaults = TrainOptions::default();
    let options = TrainOptions {
        target_fpr: args.target_fpr.unwrap_or(defaults.target_fpr),
        seed: args.seed.unwrap_or(defaults.seed),
        folds: args.folds.unwrap_or(defaults.folds),
        repeats: args.repeats.unwrap_or(defaults.repeats),
        hidden: args.hidden.clone().map_or(defaults.hidden.clone(), |h| h.0),
        l2: args.l2.unwrap_or(defaults.l2),
        link_pooling: !args.no_link_pooling,
        blind_rounds: args.blind_rounds.unwrap_or(defaults.blind_rounds),
        ..defaults
    };
    options.validate()?;
    let progress = args.log.progress();
    let device = device::resolve(args.log.model.device, progress.as_ref())?;
    let load = || args.log.model.load_on(&device);
    let started = std::time::Instant::now();
    let base = (args.base != "none").then(|| PathBuf::from(&args.base));
    if base.is_none() && args.incident_weight.is_some() {
        return Err(Error::Usage(
            "--incident-weight weighs an incident added to a --base model; without --base \
             there is nothing to weigh it against"
                .into(),
        ));
    }
    let tuning = args.fine_tune_epochs.is_some() || args.fine_tune_lr.is_some();
    if tuning && (base.is_none() || args.refit) {
        return Err(Error::Usage(
            "--fine-tune-epochs and --fine-tune-lr set how a --base model's members are \
             fine-tuned; they mean nothing without --base or with --refit"
                .into(),
        ));
    }
    if args.warm && base.is_none() {
        return Err(Error::Usage(
            "--warm fine-tunes a --base model; without --base there is nothing to fine-tune".into(),
        ));
    }
    if args.refit && base.is_none() {
        return Err(Error::Usage(
            "--refit retrains a --base model's rows with the incident's; without --base every \
             training is afresh"
                .into(),
        ));
    }
    // Fine-tuned members keep the base's recipe: a recipe given here would be ignored.
    let recipe = [
        ("--hidden", args.hidden.is_some()),
        ("--l2", args.l2.is_some()),
        ("--folds", args.folds.is_some()),
        ("--repeats", args.repeats.is_some()),
        ("--seed", args.seed.is_some()),
        ("--no-link-pooling", args.no_link_pooling),
        ("--blind-rounds", args.blind_rounds.is_some()),
    ];
    if let (Some(_), false) = (&base, args.refit) {
        if let Some((flag, _)) = recipe.iter().find(|(_, given)| *given) {
            return Err(Error::Usage(format!(
                "{flag}: fine-tuning a --base model keeps its layers, L2 penalty, link pooling, blind rounds, folds, rounds and seed; \
                 drop {flag}, or add --refit to train a new ensemble with it"
            )));
        }
    }
    let warm = WarmStart::default();
    let warm_start = (!args.refit).then(|| WarmStart {
        epochs: args.fine_tune_epochs.unwrap_or(warm.epochs),
        lr: args.fine_tune_lr.unwrap_or(warm.lr),
    });
    let trained = pipeline::train(&TrainJob {
        source: args
            .log
            .source(run_dir, device.clone(), &load, progress.as_ref()),
        labels: args.labels.clone(),
        out: args.out.clone(),
        params: CampaignParams::default(),
        options,
        base,
        incident_weight: args
            .incident_weight
            .unwrap_or(pipeline::DEFAULT_INCIDENT_WEIGHT),
        warm_start,
        refit_when_missed: !args.warm,
        target_fpr_given: args.target_fpr.is_some(),
    })?;
    let model = &trained.model;
    if let Some(changes) = &trained.changes {
        let path = args.out.join("changes.json");
        let json = serde_json::to_string_pretty(changes).expect("serialises") + "\n";
        std::fs::write(&path, json).map_err(|e| Error::io(&path, e))?;
        if !args.log.quiet {
            eprint!("{}", changes.render());
            eprintln!("distillguard: wrote {}", path.display());
        }
    }
    if !args.log.quiet {
        let m = &model.metrics;
        let t = &model.training;
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        eprintln!(
            "distillguard: trained {} members by {}-fold cross-validation x {} (and x {} blind to the behaviour vector) on {} accounts ({} extraction in {} groups, {} benign); {:.1}s with embedding and features\n\
             out-of-fold: AUROC {}, AP {}, recall {} at 1% FPR, {} at 0.1% FPR; threshold {:.4} for FPR {} \
             (precision {}, recall {}, FPR {} there)\nwrote {}",
            t.members.len(),
            t.folds,
            t.options.repeats,
            t.options.blind_rounds_trained(),
            t.rows,
            t.positives,
            t.positive_groups,
            t.rows - t.positives,
            started.elapsed().as_secs_f64(),
            f(m.auroc),
            f(m.average_precision),
            f(m.recall_at_1pct_fpr),
            f(m.recall_at_0_1pct_fpr),
            model.threshold,
            model.target_fpr,
            f(m.precision_at_threshold),
            f(m.recall_at_threshold),
            f(m.fpr_at_threshold),
            args.out.display()
        );
    }
    Ok(())
}

fn neighbors(args: NeighborsArgs) -> Result<()> {
    let (q, ev) = pipeline::neighbors(&NeighborsJob {
        run_dir: args.run_dir,
        account: args.account,
        k: args.k,
    })?;
    if args.json {
        let mut out = serde_json::to_string(&q).expect("serialises") + "\n";
        for e in &ev {
            out += &(serde_json::to_string(e).expect("serialises") + "\n");
        }
        print!("{out}");
    } else {
        print!("{}", pipeline::render_neighbors(&q, &ev));
    }
    Ok(())
}

fn eval(args: EvalArgs) -> Result<()> {
    let report = pipeline::eval(&EvalJob {
        scores: args.scores,
        labels: args.labels,
        run_dir: args.run_dir,
        train_run_dir: args.train_run_dir,
        train_labels: args.train_labels,
    })?;
    if let Some(out) = &args.out {
        let text = serde_json::to_string_pretty(&report).expect("serialises") + "\n";
        std::fs::write(out, text).at(out)?;
    }
    print!("{}", report.render());
    Ok(())
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
    let progress = reporter(args.quiet);
    let embedder = args.model.load(progress.as_ref())?;
    let m = pipeline::embed(&EmbedJob {
        input: args.input,
        out: args.out.clone(),
        skip_invalid: args.skip_invalid,
        store_dtype: args.out_dtype.store(),
        embedder: &embedder,
        progress: progress.as_ref(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_layers_parse_or_say_why() {
        assert_eq!(parse_hidden("128,64"), Ok(Hidden(vec![128, 64])));
        assert_eq!(parse_hidden("none"), Ok(Hidden(Vec::new())));
        assert!(parse_hidden("0")
            .unwrap_err()
            .contains("\"0\" is not a layer width"));
        assert!(parse_hidden("64,").is_err());
    }

    #[test]
    fn default_run_dirs_sit_beside_the_output() {
        assert_eq!(
            run_dir_beside(Path::new("out/scores.jsonl")),
            PathBuf::from("out/scores.run")
        );
        assert_eq!(
            run_dir_beside(Path::new("scores")),
            PathBuf::from("scores.run")
        );
    }
}
