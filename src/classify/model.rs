//! The account classifier: a small MLP in candle-nn, trained on the CPU, saved as
//! `model.safetensors` (weights) + `model.json` (everything needed to use and audit them).
//!
//! Why these choices:
//! - Accounts number in the thousands and features in the tens, so training is seconds on a
//!   CPU; the GPU is left to the embedding stage and the model never depends on a device.
//! - Labelled campaigns come as groups of sybil accounts that look alike. Splitting by row
//!   would put siblings on both sides and report a validation score the model has not earned,
//!   so the split unit is [`Dataset::groups`] (campaign id for positives, account id for
//!   negatives) and a whole group lands on one side.
//! - Labelled incidents are few (tens of campaigns, hundreds of benign accounts), so a single
//!   train/validation split wastes data and leaves the threshold resting on a handful of
//!   validation negatives (at 1% FPR on 50 negatives it is simply the highest one). Instead the
//!   groups are dealt into k folds (default 5) and one member MLP is trained per fold on the
//!   other folds: every labelled account gets an out-of-fold score from a member that never
//!   saw its group, the threshold and the reported metrics come from those scores, and the
//!   model predicts with the mean of the members' probabilities (a cross-validation ensemble,
//!   which also evens out the seed-to-seed variance of a single small network).
//! - The whole k-fold round is repeated with other folds and seeds (default 5 repeats, so 25
//!   members), and an account's out-of-fold score is the mean over repeats. With one round the
//!   threshold rested on the two or three highest out-of-fold benign scores of single members
//!   and moved between 0.69 and 0.96 with the seed; averaged over repeats it is a property of
//!   the ensemble, not of one draw (docs/evaluation.md).
//! - Positives are rare and come in groups of very different sizes (a 150-account hydra next to
//!   a 10-account sweep), so the loss is balanced twice: each class carries half of it, and
//!   inside a class each group carries an equal share; otherwise the model learns the largest
//!   campaign's habits instead of what campaigns share. The operating threshold is chosen
//!   on validation scores for a target false positive rate (flagging customers is the costly
//!   error), not at 0.5.
//! - No member is refitted on all data: every number in `model.json` describes scores from
//!   members that did not see the account's group.
//! - A 128-64 MLP memorises a few thousand accounts in a few dozen epochs (train loss near 0,
//!   validation loss rising), and users retraining after an incident will not tune epochs.
//!   So each member stops early on a slice of its *training* groups (never its held-out fold,
//!   which would bias the reported metrics) and keeps the best epoch's weights.
//! - Runs must be reproducible for review: candle's CPU `randn` draws from a thread RNG, so
//!   the weights are initialised here from a seeded [`StdRng`] and wrapped in [`Var`]s that
//!   the optimizer updates in place. Same data + same options = same predictions.
//! - A model scores a feature vector by position, so `model.json` records the feature names in
//!   order and [`Model::load`] refuses a model whose schema differs from the caller's, naming
//!   the missing, extra or reordered features.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Linear, Module, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::metrics::{threshold_for_fpr, Metrics};
use crate::error::{Error, IoContext, Result};

/// Version of the `model.json` + `model.safetensors` pair. Bump on any change a reader of an
/// older version would misread.
pub const FORMAT_VERSION: u32 = 3;
/// Weights file inside a model folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Metadata file inside a model folder; written last, so its presence marks a complete model.
pub const META_FILE: &str = "model.json";
/// Value of the `kind` field in `model.json`.
const KIND: &str = "distillguard-account-mlp";
/// Rows per forward pass at prediction time (bounds memory on large batches).
const PREDICT_CHUNK: usize = 8192;
/// Floor on a feature's standard deviation, so constant features standardise to 0.
const STD_FLOOR: f32 = 1e-6;

/// Labelled accounts for training, one row per account.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Feature names in column order: the schema stored with the model.
    pub features: Vec<String>,
    /// Account ids, one per row (used in error messages).
    pub names: Vec<String>,
    /// `rows x features.len()` values, row-major. Must be finite.
    pub x: Vec<f32>,
    /// 1 = extraction account, 0 = benign.
    pub y: Vec<u8>,
    /// The split unit, one per row: campaign id for positives, account id for negatives.
    pub groups: Vec<String>,
    /// Loss multiplier of a group's share within its class (groups not listed: 1). Each class
    /// still carries half the loss; a listed group takes `w` shares of it instead of one.
    pub group_weights: BTreeMap<String, f32>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Number of features per row.
    pub fn dim(&self) -> usize {
        self.features.len()
    }

    /// Checks shapes, labels and values; every problem is an [`Error::Usage`] naming the row.
    pub fn validate(&self) -> Result<()> {
        let (n, d) = (self.len(), self.dim());
        if n == 0 {
            return Err(Error::Usage("training data has no rows".into()));
        }
        if d == 0 {
            return Err(Error::Usage("training data has no features".into()));
        }
        if self.x.len() != n * d {
            return Err(Error::Usage(format!(
                "training data has {} values for {n} rows x {d} features (expected {})",
                self.x.len(),
                n * d
            )));
        }
        if self.names.len() != n || self.groups.len() != n {
            return Err(Error::Usage(format!(
                "training data has {n} labels but {} account names and {} groups",
                self.names.len(),
                self.groups.len()
            )));
        }
        if let Some(i) = self.y.iter().position(|&l| l > 1) {
            return Err(Error::Usage(format!(
                "account {}: label {} (must be 0 or 1)",
                self.names[i], self.y[i]
            )));
        }
        if let Some((g, w)) = self
            .group_weights
            .iter()
            .find(|(_, w)| !(w.is_finite() && **w > 0.0))
        {
            return Err(Error::Usage(format!(
                "group {g}: weight {w} (must be positive)"
            )));
        }
        check_finite(&self.x, &self.features, |row| self.names[row].clone())
    }
}

/// Hyper-parameters of [`train`]. Stored in `model.json` with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainOptions {
    /// Hidden layer widths, input to output (ReLU after each).
    pub hidden: Vec<usize>,
    /// Most passes over the training rows (early stopping usually ends sooner).
    pub epochs: usize,
    /// Stop after this many epochs without a lower loss on the early-stopping rows, and keep
    /// the best epoch's weights; 0 trains all `epochs` with no early stopping.
    pub patience: usize,
    /// Share of the training split's groups set aside to watch for early stopping, in (0, 1).
    pub early_stop_fraction: f64,
    /// Rows per optimizer step; 0 means full batch.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Seeds the folds, the initial weights and the batch order.
    pub seed: u64,
    /// Cross-validation folds, and so ensemble members per repeat (at least 2; capped by the
    /// number of positive and of negative groups).
    pub folds: usize,
    /// Rounds of k-fold cross-validation, each with its own folds and seeds (at least 1).
    pub repeats: usize,
    /// False positive rate the threshold is chosen for on the out-of-fold scores, in (0, 1).
    pub target_fpr: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            hidden: vec![128, 64],
            epochs: 200,
            patience: 10,
            early_stop_fraction: 0.2,
            batch_size: 128,
            lr: 1e-3,
            weight_decay: 1e-2,
            seed: 0,
            folds: 5,
            repeats: 5,
            target_fpr: 0.01,
        }
    }
}

impl TrainOptions {
    /// Rejects options that cannot train, as [`Error::Usage`].
    pub fn validate(&self) -> Result<()> {
        if self.hidden.contains(&0) {
            return Err(Error::Usage(format!(
                "hidden layer sizes must be positive, got {:?}",
                self.hidden
            )));
        }
        if self.epochs == 0 {
            return Err(Error::Usage("epochs must be at least 1".into()));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::Usage(format!(
                "learning rate must be positive, got {}",
                self.lr
            )));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::Usage(format!(
                "weight decay must be >= 0, got {}",
                self.weight_decay
            )));
        }
        if self.folds < 2 {
            return Err(Error::Usage(format!(
                "folds must be at least 2, got {}",
                self.folds
            )));
        }
        if self.repeats == 0 {
            return Err(Error::Usage("repeats must be at least 1".into()));
        }
        if self.patience > 0 && !(self.early_stop_fraction > 0.0 && self.early_stop_fraction < 1.0)
        {
            return Err(Error::Usage(format!(
                "early-stopping fraction must be in (0, 1), got {}",
                self.early_stop_fraction
            )));
        }
        if !(self.target_fpr > 0.0 && self.target_fpr < 1.0) {
            return Err(Error::Usage(format!(
                "target false positive rate must be in (0, 1), got {}",
                self.target_fpr
            )));
        }
        Ok(())
    }
}

/// What training saw and did; stored in `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub options: TrainOptions,
    /// Labelled rows, positives among them, and groups of each kind.
    pub rows: usize,
    pub positives: usize,
    pub positive_groups: usize,
    pub negative_groups: usize,
    /// Folds used: `options.folds` capped by the groups of each kind.
    pub folds: usize,
    /// One per fold of each repeat, in repeat then fold order.
    pub members: Vec<MemberSummary>,
    /// Balanced BCE of the out-of-fold scores.
    pub oof_loss: f64,
    /// Balanced BCE and metrics of the ensemble on all labelled rows, at the threshold:
    /// in-sample, to compare with the out-of-fold [`Model::metrics`] and spot overfitting.
    pub train_loss: f64,
    pub train_metrics: Metrics,
    // No wall-clock time here: model.json is byte-reproducible (an older file's `seconds` is
    // ignored on load); `train` reports the time on stderr.
}

/// One ensemble member: the fold it was scored on, and how it was fitted on the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberSummary {
    /// The cross-validation round the member belongs to (0-based).
    #[serde(default)]
    pub repeat: usize,
    /// Rows of the held-out fold, and positives among them.
    pub held_rows: usize,
    pub held_positives: usize,
    /// Rows the optimizer saw, and rows of the training folds set aside for early stopping
    /// (0 when early stopping was off or there were too few groups for it).
    pub fit_rows: usize,
    pub early_stop_rows: usize,
    /// Epochs trained, and the epoch whose weights were kept (None without early stopping:
    /// the last epoch's weights are kept).
    pub epochs_run: usize,
    pub best_epoch: Option<usize>,
    /// Balanced BCE of the kept weights on the early-stopping rows.
    pub early_stop_loss: Option<f64>,
}

/// A trained classifier: feature schema, normalisation, weights, threshold and metrics.
#[derive(Debug, Clone)]
pub struct Model {
    /// Feature names in the order [`Model::predict`] expects them.
    pub schema: Vec<String>,
    /// Per-feature mean and standard deviation of the labelled rows.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Flag an account when its probability is `>= threshold`.
    pub threshold: f32,
    /// The false positive rate `threshold` was chosen for.
    pub target_fpr: f64,
    /// Out-of-fold metrics at `threshold`.
    pub metrics: Metrics,
    pub training: TrainingSummary,
    /// The cross-account linking settings the features were computed with (opaque here; the
    /// pipeline sets them before saving and checks them on load, like the schema).
    pub linking: serde_json::Value,
    /// Ensemble members, each input to output; ReLU between layers, the last yields one logit.
    members: Vec<Vec<Linear>>,
}

/// `model.json`, field for field.
#[derive(Serialize, Deserialize)]
struct ModelJson {
    format_version: u32,
    kind: String,
    schema: Vec<String>,
    mean: Vec<f32>,
    std: Vec<f32>,
    hidden: Vec<usize>,
    members: usize,
    threshold: f32,
    target_fpr: f64,
    metrics: Metrics,
    training: TrainingSummary,
    #[serde(default)]
    linking: serde_json::Value,
}

/// Seed offset between cross-validation rounds: far from the per-fold offsets (16 per fold) so
/// no two members of different rounds share a seed.
const REPEAT_SEED_STRIDE: u64 = 1_000_003;

/// Trains a classifier on `data` (see the module notes for the folds, loss and threshold).
///
/// Groups are dealt into `folds` folds, stratified by whether a group holds positives; for
/// each fold a member is trained on the other folds and scores the fold. This is done
/// `repeats` times with other folds and seeds (repeat 0 uses `seed` itself); an account's
/// out-of-fold score is the mean of its scores over the repeats. With `patience > 0`,
/// `early_stop_fraction` of a member's training groups watch for early stopping and the best
/// epoch's weights are kept; with too few groups for that, all `epochs` are trained (see
/// [`MemberSummary::early_stop_rows`]). The threshold is chosen on the out-of-fold scores.
///
/// Fails with [`Error::Usage`] on invalid options or data, or with fewer than two groups
/// holding positives or two holding only negatives.
pub fn train(data: &Dataset, opts: &TrainOptions) -> Result<Model> {
    train_scored(data, opts).map(|(model, _)| model)
}

/// [`train`], also returning each row's out-of-fold score (what the threshold and the
/// metrics were computed from).
pub fn train_scored(data: &Dataset, opts: &TrainOptions) -> Result<(Model, Vec<f32>)> {
    opts.validate()?;
    data.validate()?;
    let d = data.dim();
    let folds = assign_folds(data, opts.folds, opts.seed);
    if folds.pos_groups < 2 || folds.neg_groups < 2 {
        return Err(Error::Usage(format!(
            "cannot split {} accounts into folds with positives and negatives on both sides of \
             each: {} groups hold positives and {} only negatives, need at least 2 of each (a \
             group -- campaign id for positives, account id for negatives -- is never split)",
            data.len(),
            folds.pos_groups,
            folds.neg_groups
        )));
    }
    let all: Vec<usize> = (0..data.len()).collect();
    let (mean, std) = mean_std(&data.x, d, &all);

    let mut oof = vec![0f32; data.len()];
    let mut members = Vec::with_capacity(folds.k * opts.repeats);
    let mut summaries = Vec::with_capacity(folds.k * opts.repeats);
    for r in 0..opts.repeats {
        let round_seed = opts.seed.wrapping_add(REPEAT_SEED_STRIDE * r as u64);
        // Round 0 deals the folds already dealt above; every round has the same group counts,
        // so the same k.
        let dealt = (r > 0).then(|| assign_folds(data, opts.folds, round_seed));
        let folds = dealt.as_ref().unwrap_or(&folds);
        for f in 0..folds.k {
            let (held, fit): (Vec<usize>, Vec<usize>) =
                all.iter().partition(|&&i| folds.of[i] == f);
            let seed = round_seed.wrapping_add(16 * f as u64);
            let (layers, mut summary) = fit_member(data, &fit, &mean, &std, opts, seed)?;
            for (&i, p) in held
                .iter()
                .zip(predict_rows(&[&layers], data, &held, &mean, &std)?)
            {
                oof[i] += p / opts.repeats as f32;
            }
            summary.repeat = r;
            summary.held_rows = held.len();
            summary.held_positives = held.iter().filter(|&&i| data.y[i] == 1).count();
            members.push(layers);
            summaries.push(summary);
        }
    }

    let threshold = threshold_for_fpr(&oof, &data.y, opts.target_fpr);
    let metrics = Metrics::from_scores(&oof, &data.y, Some(threshold));
    let member_refs: Vec<&[Linear]> = members.iter().map(Vec::as_slice).collect();
    let in_sample = predict_rows(&member_refs, data, &all, &mean, &std)?;
    let groups: Vec<&str> = data.groups.iter().map(String::as_str).collect();
    let training = TrainingSummary {
        options: opts.clone(),
        rows: data.len(),
        positives: metrics.positives,
        positive_groups: folds.pos_groups,
        negative_groups: folds.neg_groups,
        folds: folds.k,
        members: summaries,
        oof_loss: balanced_log_loss(&oof, &data.y, &groups, &data.group_weights)?,
        train_loss: balanced_log_loss(&in_sample, &data.y, &groups, &data.group_weights)?,
        train_metrics: Metrics::from_scores(&in_sample, &data.y, Some(threshold)),
    };
    let model = Model {
        schema: data.features.clone(),
        mean,
        std,
        hidden: opts.hidden.clone(),
        threshold,
        target_fpr: opts.target_fpr,
        metrics,
        training,
        linking: serde_json::Value::Null,
        members,
    };
    Ok((model, oof))
}

/// Fits one member on `rows` (standardised with `mean`/`std`), with early stopping on a slice
/// of their groups. The returned summary's `held_*` fields are left for the caller.
fn fit_member(
    data: &Dataset,
    rows: &[usize],
    mean: &[f32],
    std: &[f32],
    opts: &TrainOptions,
    seed: u64,
) -> Result<(Vec<Linear>, MemberSummary)> {
    let d = data.dim();
    // Early stopping watches a slice of the training groups, never the held-out fold, so the
    // out-of-fold scores stay unbiased. Too few groups to carve one out: fixed epochs.
    let inner = (opts.patience > 0)
        .then(|| split_groups(data, rows, opts.early_stop_fraction, seed.wrapping_add(3)))
        .filter(|s| s.both_classes_each_side(&data.y));
    let (fit_rows, stop_rows) = match &inner {
        Some(s) => (s.train.as_slice(), s.held.as_slice()),
        None => (rows, &[][..]),
    };
    let dev = Device::Cpu;
    // Standardised rows as (x, labels, loss weights) tensors.
    let gather = |idx: &[usize]| -> Result<(Tensor, Tensor, Tensor)> {
        let x = standardised(data, idx, mean, std);
        let y: Vec<u8> = idx.iter().map(|&i| data.y[i]).collect();
        let groups: Vec<&str> = idx.iter().map(|&i| data.groups[i].as_str()).collect();
        let x = Tensor::from_vec(x, (idx.len(), d), &dev)?;
        Ok((
            x,
            labels_tensor(&y)?,
            balance_weights(&y, &groups, &data.group_weights)?,
        ))
    };

    let mut init_rng = StdRng::seed_from_u64(seed.wrapping_add(1));
    let (vars, layers) = init_layers(d, &opts.hidden, &mut init_rng)?;
    let mut opt = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: opts.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;

    let (fit_x, fit_y, fit_w) = gather(fit_rows)?;
    let stop = if stop_rows.is_empty() {
        None
    } else {
        Some(gather(stop_rows)?)
    };
    let n = fit_rows.len();
    let batch = if opts.batch_size == 0 {
        n
    } else {
        opts.batch_size.min(n)
    };
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut shuffle_rng = StdRng::seed_from_u64(seed.wrapping_add(2));
    // (loss, epoch, weights) of the best epoch on the early-stopping rows.
    let mut best: Option<(f64, usize, Vec<Tensor>)> = None;
    let mut epochs_run = 0;
    for epoch in 1..=opts.epochs {
        order.shuffle(&mut shuffle_rng);
        for chunk in order.chunks(batch) {
            let idx = Tensor::from_slice(chunk, chunk.len(), &dev)?;
            let logits = forward(&layers, &fit_x.index_select(&idx, 0)?)?;
            let loss = weighted_bce(
                &logits,
                &fit_y.index_select(&idx, 0)?,
                &fit_w.index_select(&idx, 0)?,
            )?;
            opt.backward_step(&loss)?;
        }
        epochs_run = epoch;
        if let Some((sx, sy, sw)) = &stop {
            let loss = weighted_bce(&forward(&layers, sx)?, sy, sw)?.to_scalar::<f32>()? as f64;
            if best.as_ref().is_none_or(|b| loss < b.0) {
                let snapshot = vars
                    .iter()
                    .map(|v| v.as_tensor().copy())
                    .collect::<candle_core::Result<Vec<_>>>()?;
                best = Some((loss, epoch, snapshot));
            } else if best.as_ref().is_some_and(|b| epoch - b.1 >= opts.patience) {
                break;
            }
        }
    }
    if let Some((_, _, snapshot)) = &best {
        for (var, t) in vars.iter().zip(snapshot) {
            var.set(t)?;
        }
    }
    let summary = MemberSummary {
        repeat: 0,
        held_rows: 0,
        held_positives: 0,
        fit_rows: fit_rows.len(),
        early_stop_rows: stop_rows.len(),
        epochs_run,
        best_epoch: best.as_ref().map(|b| b.1),
        early_stop_loss: best.as_ref().map(|b| b.0),
    };
    Ok((layers, summary))
}

/// Rows `idx` of `data`, standardised, row-major.
fn standardised(data: &Dataset, idx: &[usize], mean: &[f32], std: &[f32]) -> Vec<f32> {
    let d = data.dim();
    let mut x = Vec::with_capacity(idx.len() * d);
    for &i in idx {
        x.extend_from_slice(&data.x[i * d..(i + 1) * d]);
    }
    standardise(&mut x, mean, std);
    x
}

/// Mean member probability for rows `idx` of `data`.
fn predict_rows(
    members: &[&[Linear]],
    data: &Dataset,
    idx: &[usize],
    mean: &[f32],
    std: &[f32],
) -> Result<Vec<f32>> {
    let x = standardised(data, idx, mean, std);
    let x = Tensor::from_vec(x, (idx.len(), data.dim()), &Device::Cpu)?;
    ensemble_probabilities(members, &x)
}

/// Mean of the members' sigmoid outputs for standardised `x` `(rows, d)`.
fn ensemble_probabilities(members: &[&[Linear]], x: &Tensor) -> Result<Vec<f32>> {
    let mut sum = vec![0f32; x.dim(0)?];
    for layers in members {
        for (s, p) in sum.iter_mut().zip(sigmoid_all(&forward(layers, x)?)?) {
            *s += p;
        }
    }
    let k = members.len().max(1) as f32;
    Ok(sum.into_iter().map(|s| s / k).collect())
}

/// Balanced binary cross-entropy of probabilities `p` (same weights as training).
fn balanced_log_loss(
    p: &[f32],
    y: &[u8],
    groups: &[&str],
    group_weights: &BTreeMap<String, f32>,
) -> Result<f64> {
    let w = balance_weights(y, groups, group_weights)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let total: f64 = p
        .iter()
        .zip(y)
        .zip(&w)
        .map(|((&p, &y), &w)| {
            let p = (p as f64).clamp(1e-7, 1.0 - 1e-7);
            let l = if y == 1 { -p.ln() } else { -(1.0 - p).ln() };
            w as f64 * l
        })
        .sum();
    Ok(total / p.len().max(1) as f64)
}

impl Model {
    /// Number of input features.
    pub fn dim(&self) -> usize {
        self.schema.len()
    }

    /// Extraction probabilities (0..1) for `rows x dim()` raw (unstandardised) features,
    /// row-major. Fails with [`Error::Usage`] on a wrong length or a non-finite value.
    pub fn predict(&self, x: &[f32]) -> Result<Vec<f32>> {
        let d = self.dim();
        if x.len() % d != 0 {
            return Err(Error::Usage(format!(
                "predict: {} values is not a whole number of rows of {d} features",
                x.len()
            )));
        }
        check_finite(x, &self.schema, |row| format!("row {row}"))?;
        let mut out = Vec::with_capacity(x.len() / d);
        for rows in x.chunks(PREDICT_CHUNK * d) {
            let mut rows = rows.to_vec();
            standardise(&mut rows, &self.mean, &self.std);
            let n = rows.len() / d;
            let members: Vec<&[Linear]> = self.members.iter().map(Vec::as_slice).collect();
            out.extend(ensemble_probabilities(
                &members,
                &Tensor::from_vec(rows, (n, d), &Device::Cpu)?,
            )?);
        }
        Ok(out)
    }

    /// Whether a probability from [`Model::predict`] is flagged at the stored threshold.
    pub fn flags(&self, probability: f32) -> bool {
        probability >= self.threshold
    }

    /// Writes `dir/model.safetensors` and then `dir/model.json` (each via a temporary file and
    /// a rename), creating `dir` if needed.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).at(dir)?;
        let mut tensors = HashMap::new();
        for (m, layers) in self.members.iter().enumerate() {
            for (i, layer) in layers.iter().enumerate() {
                tensors.insert(format!("m{m}.fc{i}.weight"), layer.weight().clone());
                if let Some(b) = layer.bias() {
                    tensors.insert(format!("m{m}.fc{i}.bias"), b.clone());
                }
            }
        }
        let weights = dir.join(WEIGHTS_FILE);
        let tmp = dir.join(format!("{WEIGHTS_FILE}.partial"));
        candle_core::safetensors::save(&tensors, &tmp)?;
        std::fs::rename(&tmp, &weights).at(&weights)?;

        let meta = ModelJson {
            format_version: FORMAT_VERSION,
            kind: KIND.to_string(),
            schema: self.schema.clone(),
            mean: self.mean.clone(),
            std: self.std.clone(),
            hidden: self.hidden.clone(),
            members: self.members.len(),
            threshold: self.threshold,
            target_fpr: self.target_fpr,
            metrics: self.metrics.clone(),
            training: self.training.clone(),
            linking: self.linking.clone(),
        };
        let json_path = dir.join(META_FILE);
        let tmp = dir.join(format!("{META_FILE}.partial"));
        let mut bytes = serde_json::to_vec_pretty(&meta)
            .map_err(|e| Error::model(&json_path, format!("cannot serialise: {e}")))?;
        bytes.push(b'\n');
        std::fs::write(&tmp, bytes).at(&tmp)?;
        std::fs::rename(&tmp, &json_path).at(&json_path)
    }

    /// Loads a model folder written by [`Model::save`], refusing (as [`Error::Model`], naming
    /// the file) a missing file, corrupt JSON or weights, another `format_version`, or a feature
    /// schema that differs from `expected_schema`.
    pub fn load(dir: &Path, expected_schema: &[String]) -> Result<Model> {
        let json_path = dir.join(META_FILE);
        let text = read_model_file(&json_path, || std::fs::read_to_string(&json_path))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::model(&json_path, format!("corrupt JSON: {e}")))?;
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == FORMAT_VERSION as u64 => {}
            Some(v) => {
                return Err(Error::model(
                    &json_path,
                    format!("format_version {v}; this build reads version {FORMAT_VERSION}"),
                ))
            }
            None => {
                return Err(Error::model(
                    &json_path,
                    "no format_version: not a distillguard classifier",
                ))
            }
        }
        let meta: ModelJson = serde_json::from_value(value)
            .map_err(|e| Error::model(&json_path, format!("invalid model metadata: {e}")))?;
        check_meta(&meta, &json_path)?;
        check_schema(&meta.schema, expected_schema, &json_path)?;

        let weights = dir.join(WEIGHTS_FILE);
        let bytes = read_model_file(&weights, || std::fs::read(&weights))?;
        let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| Error::model(&weights, format!("corrupt weights: {e}")))?;
        let mut members = Vec::with_capacity(meta.members);
        for m in 0..meta.members {
            let mut layers = Vec::new();
            let mut fan_in = meta.schema.len();
            for (i, &out) in meta.hidden.iter().chain(std::iter::once(&1)).enumerate() {
                let mut take = |name: String, shape: &[usize]| -> Result<Tensor> {
                    let t = tensors.remove(&name).ok_or_else(|| {
                        Error::model(&weights, format!("tensor {name} is missing"))
                    })?;
                    if t.dims() != shape {
                        return Err(Error::model(
                            &weights,
                            format!(
                                "tensor {name} has shape {:?}, model.json implies {shape:?}",
                                t.dims()
                            ),
                        ));
                    }
                    Ok(t.to_dtype(DType::F32)?)
                };
                let w = take(format!("m{m}.fc{i}.weight"), &[out, fan_in])?;
                let b = take(format!("m{m}.fc{i}.bias"), &[out])?;
                layers.push(Linear::new(w, Some(b)));
                fan_in = out;
            }
            members.push(layers);
        }
        if let Some(extra) = tensors.keys().min() {
            return Err(Error::model(
                &weights,
                format!("unexpected tensor {extra}: weights do not match model.json"),
            ));
        }
        Ok(Model {
            schema: meta.schema,
            mean: meta.mean,
            std: meta.std,
            hidden: meta.hidden,
            threshold: meta.threshold,
            target_fpr: meta.target_fpr,
            metrics: meta.metrics,
            training: meta.training,
            linking: meta.linking,
            members,
        })
    }

    /// Refuses a model whose linking settings differ from `expected` (those this build computes
    /// features with), naming every setting that differs. `dir` is the model folder.
    pub fn check_linking(&self, dir: &Path, expected: &serde_json::Value) -> Result<()> {
        if &self.linking == expected {
            return Ok(());
        }
        let mut diffs = Vec::new();
        json_diff("", &self.linking, expected, &mut diffs);
        Err(Error::model(
            &dir.join(META_FILE),
            format!(
                "the model was trained with other linking settings than this build's ({}): retrain it",
                diffs.join("; ")
            ),
        ))
    }
}

/// The dotted paths at which `model` and `build` differ, as "path: model X, this build Y".
fn json_diff(
    path: &str,
    model: &serde_json::Value,
    build: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (model, build) {
        (Value::Object(m), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = m.keys().chain(b.keys()).collect();
            for k in keys {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                json_diff(
                    &sub,
                    m.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (m, b) if m != b => out.push(format!(
            "{}: model {m}, this build {b}",
            if path.is_empty() { "linking" } else { path }
        )),
        _ => {}
    }
}

/// Reads a file of a model folder; a missing file is a model error, other failures I/O.
fn read_model_file<T>(path: &Path, read: impl FnOnce() -> std::io::Result<T>) -> Result<T> {
    read().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::model(
                path,
                "not found (a model folder holds model.json and model.safetensors)",
            )
        } else {
            Error::io(path, e)
        }
    })
}

/// Internal consistency of `model.json`.
fn check_meta(meta: &ModelJson, path: &Path) -> Result<()> {
    let bad = |msg: String| Err(Error::model(path, msg));
    if meta.kind != KIND {
        return bad(format!("kind {:?}, expected {KIND:?}", meta.kind));
    }
    let d = meta.schema.len();
    if d == 0 {
        return bad("empty feature schema".into());
    }
    if meta.mean.len() != d || meta.std.len() != d {
        return bad(format!(
            "{d} features but {} means and {} standard deviations",
            meta.mean.len(),
            meta.std.len()
        ));
    }
    if meta.mean.iter().any(|v| !v.is_finite())
        || meta.std.iter().any(|&v| !(v.is_finite() && v > 0.0))
    {
        return bad("non-finite mean or non-positive standard deviation".into());
    }
    if meta.hidden.contains(&0) {
        return bad(format!("hidden layer of width 0 in {:?}", meta.hidden));
    }
    if !meta.threshold.is_finite() {
        return bad(format!("threshold {} is not finite", meta.threshold));
    }
    if meta.members == 0 {
        return bad("no ensemble members".into());
    }
    Ok(())
}

/// Refuses a model trained on a different feature vector, saying exactly how it differs.
pub(crate) fn check_schema(model: &[String], expected: &[String], path: &Path) -> Result<()> {
    if model == expected {
        return Ok(());
    }
    let missing: Vec<&str> = expected
        .iter()
        .filter(|f| !model.contains(f))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = model
        .iter()
        .filter(|f| !expected.contains(f))
        .map(String::as_str)
        .collect();
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing from the model: {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        parts.push(format!("extra in the model: {}", extra.join(", ")));
    }
    if missing.is_empty() && extra.is_empty() {
        if model.len() == expected.len() {
            let moved: Vec<String> = model
                .iter()
                .zip(expected)
                .enumerate()
                .filter(|(_, (m, e))| m != e)
                .take(5)
                .map(|(i, (m, e))| format!("position {i}: model has {m}, expected {e}"))
                .collect();
            parts.push(format!(
                "same features in a different order ({})",
                moved.join("; ")
            ));
        } else {
            parts.push(format!(
                "same feature names but {} columns in the model and {} expected (duplicates)",
                model.len(),
                expected.len()
            ));
        }
    }
    Err(Error::model(
        path,
        format!(
            "feature schema differs from this build's ({} features in the model, {} expected): {}; retrain the classifier",
            model.len(),
            expected.len(),
            parts.join("; ")
        ),
    ))
}

/// Rows split by group into a training part and a held-out part.
struct GroupSplit {
    train: Vec<usize>,
    held: Vec<usize>,
}

impl GroupSplit {
    /// (positives, negatives) among `rows`.
    fn classes(&self, rows: &[usize], y: &[u8]) -> (usize, usize) {
        let pos = rows.iter().filter(|&&i| y[i] == 1).count();
        (pos, rows.len() - pos)
    }

    fn both_classes_each_side(&self, y: &[u8]) -> bool {
        let (tp, tn) = self.classes(&self.train, y);
        let (hp, hn) = self.classes(&self.held, y);
        tp > 0 && tn > 0 && hp > 0 && hn > 0
    }
}

/// Splits `rows` by group, holding out about `fraction` of the groups that contain positives
/// and the same share of the negative-only groups (at least one and at most all but one of
/// each kind, when there are two or more). Groups are sorted before a seeded shuffle, so the
/// split depends only on the seed and the set of groups, not on row order.
fn split_groups(data: &Dataset, rows: &[usize], fraction: f64, seed: u64) -> GroupSplit {
    let mut has_pos: BTreeMap<&str, bool> = BTreeMap::new();
    for &i in rows {
        *has_pos.entry(data.groups[i].as_str()).or_default() |= data.y[i] == 1;
    }
    let mut pos_groups: Vec<&str> = has_pos
        .iter()
        .filter(|(_, &p)| p)
        .map(|(&g, _)| g)
        .collect();
    let mut neg_groups: Vec<&str> = has_pos
        .iter()
        .filter(|(_, &p)| !p)
        .map(|(&g, _)| g)
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    pos_groups.shuffle(&mut rng);
    neg_groups.shuffle(&mut rng);
    let held_out = |k: usize| -> usize {
        if k < 2 {
            0
        } else {
            ((k as f64 * fraction).round() as usize).clamp(1, k - 1)
        }
    };
    let (hp, hn) = (held_out(pos_groups.len()), held_out(neg_groups.len()));
    let held: HashSet<&str> = pos_groups[..hp]
        .iter()
        .chain(&neg_groups[..hn])
        .copied()
        .collect();
    let (train, held_rows): (Vec<usize>, Vec<usize>) = rows
        .iter()
        .partition(|&&i| !held.contains(data.groups[i].as_str()));
    GroupSplit {
        train,
        held: held_rows,
    }
}

/// Labelled groups dealt into folds.
struct Folds {
    /// Fold of each row.
    of: Vec<usize>,
    /// Folds used.
    k: usize,
    pos_groups: usize,
    neg_groups: usize,
}

/// Deals the groups into `k` folds (fewer when there are fewer positive or negative groups):
/// groups holding positives and negative-only groups are each sorted, shuffled with `seed` and
/// dealt round robin, so every fold gets its share of both and the result depends only on the
/// seed and the set of groups, not on row order.
fn assign_folds(data: &Dataset, k: usize, seed: u64) -> Folds {
    let mut has_pos: BTreeMap<&str, bool> = BTreeMap::new();
    for (g, &y) in data.groups.iter().zip(&data.y) {
        *has_pos.entry(g.as_str()).or_default() |= y == 1;
    }
    let mut pos: Vec<&str> = has_pos
        .iter()
        .filter(|(_, &p)| p)
        .map(|(&g, _)| g)
        .collect();
    let mut neg: Vec<&str> = has_pos
        .iter()
        .filter(|(_, &p)| !p)
        .map(|(&g, _)| g)
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    pos.shuffle(&mut rng);
    neg.shuffle(&mut rng);
    let k = k.min(pos.len()).min(neg.len()).max(1);
    let fold_of: HashMap<&str, usize> = pos
        .iter()
        .enumerate()
        .chain(neg.iter().enumerate())
        .map(|(i, &g)| (g, i % k))
        .collect();
    Folds {
        of: data.groups.iter().map(|g| fold_of[g.as_str()]).collect(),
        k,
        pos_groups: pos.len(),
        neg_groups: neg.len(),
    }
}

/// Per-feature mean and standard deviation (population, floored at [`STD_FLOOR`]) over `rows`.
fn mean_std(x: &[f32], d: usize, rows: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let mut sum = vec![0f64; d];
    let mut sq = vec![0f64; d];
    for &r in rows {
        for (j, &v) in x[r * d..(r + 1) * d].iter().enumerate() {
            sum[j] += v as f64;
            sq[j] += v as f64 * v as f64;
        }
    }
    let n = rows.len().max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| ((s / n - m * m).max(0.0).sqrt() as f32).max(STD_FLOOR))
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

/// `(x - mean) / std` in place, row by row.
fn standardise(x: &mut [f32], mean: &[f32], std: &[f32]) {
    for row in x.chunks_mut(mean.len()) {
        for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
            *v = (*v - m) / s;
        }
    }
}

/// First non-finite value as [`Error::Usage`], naming the row (via `row_name`) and feature.
fn check_finite(x: &[f32], features: &[String], row_name: impl Fn(usize) -> String) -> Result<()> {
    match x.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => {
            let d = features.len().max(1);
            Err(Error::Usage(format!(
                "{}: feature {} is {} (features must be finite)",
                row_name(i / d),
                features.get(i % d).map_or("?", String::as_str),
                x[i]
            )))
        }
    }
}

/// Layers with weights drawn from `rng`: He-uniform (bound sqrt(6 / fan_in)) before a ReLU,
/// uniform with bound 1 / sqrt(fan_in) for the output logit; biases zero.
fn init_layers(d: usize, hidden: &[usize], rng: &mut StdRng) -> Result<(Vec<Var>, Vec<Linear>)> {
    let mut vars = Vec::new();
    let mut layers = Vec::new();
    let mut fan_in = d;
    let widths: Vec<usize> = hidden.iter().copied().chain(std::iter::once(1)).collect();
    for (i, &out) in widths.iter().enumerate() {
        let last = i + 1 == widths.len();
        let bound = if last {
            (1.0 / fan_in as f32).sqrt()
        } else {
            (6.0 / fan_in as f32).sqrt()
        };
        let w: Vec<f32> = (0..out * fan_in)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let w = Var::from_tensor(&Tensor::from_vec(w, (out, fan_in), &Device::Cpu)?)?;
        let b = Var::zeros(out, DType::F32, &Device::Cpu)?;
        layers.push(Linear::new(
            w.as_tensor().clone(),
            Some(b.as_tensor().clone()),
        ));
        vars.push(w);
        vars.push(b);
        fan_in = out;
    }
    Ok((vars, layers))
}

/// Logits `(rows, 1)` for standardised `x` `(rows, d)`.
fn forward(layers: &[Linear], x: &Tensor) -> candle_core::Result<Tensor> {
    let mut h = x.clone();
    for (i, layer) in layers.iter().enumerate() {
        h = layer.forward(&h)?;
        if i + 1 < layers.len() {
            h = h.relu()?;
        }
    }
    Ok(h)
}

/// Mean of `w * BCE(sigmoid(z), y)`, computed stably as
/// `w * (max(z, 0) - z * y + ln(1 + exp(-|z|)))`.
fn weighted_bce(logits: &Tensor, y: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let softplus = (logits.relu()? + logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
    let per_row = (softplus - (logits * y)?)?;
    (per_row * w)?.mean_all()
}

/// Labels as an `(n, 1)` f32 tensor.
fn labels_tensor(y: &[u8]) -> candle_core::Result<Tensor> {
    let v: Vec<f32> = y.iter().map(|&l| l as f32).collect();
    Tensor::from_vec(v, (y.len(), 1), &Device::Cpu)
}

/// Row weights `(n, 1)`: each class carries half the loss and, inside a class, each group an
/// equal share (`n / (2 * groups in class * group size)`); the mean weight is 1. With one row
/// per group this is plain class balancing.
fn balance_weights(
    y: &[u8],
    groups: &[&str],
    group_weights: &BTreeMap<String, f32>,
) -> candle_core::Result<Tensor> {
    let n = y.len() as f32;
    let mut group_size: HashMap<(u8, &str), f32> = HashMap::new();
    for (&l, &g) in y.iter().zip(groups) {
        *group_size.entry((l, g)).or_default() += 1.0;
    }
    let weight = |g: &str| group_weights.get(g).copied().unwrap_or(1.0);
    // Shares of a class: one per group, `weight` for a weighted one. Summed in sorted order so
    // that the total (and the trained weights) do not depend on hash order.
    let shares_in = |class: u8| {
        let mut w: Vec<f32> = group_size
            .keys()
            .filter(|(l, _)| *l == class)
            .map(|(_, g)| weight(g))
            .collect();
        w.sort_by(f32::total_cmp);
        w.iter().sum::<f32>().max(1.0)
    };
    let (pos_groups, neg_groups) = (shares_in(1), shares_in(0));
    let v: Vec<f32> = y
        .iter()
        .zip(groups)
        .map(|(&l, &g)| {
            let per_class = if l == 1 { pos_groups } else { neg_groups };
            n * weight(g) / (2.0 * per_class * group_size[&(l, g)])
        })
        .collect();
    Tensor::from_vec(v, (y.len(), 1), &Device::Cpu)
}

/// Probabilities from `(n, 1)` logits.
fn sigmoid_all(logits: &Tensor) -> candle_core::Result<Vec<f32>> {
    Ok(logits
        .flatten_all()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(|z| 1.0 / (1.0 + (-z).exp()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    /// `n` accounts x `d` features; positives come in campaigns of 5 whose means are shifted
    /// along the first few features, so the classes are separable.
    fn synthetic(n: usize, d: usize, seed: u64) -> Dataset {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut data = Dataset {
            features: (0..d).map(|j| format!("f{j}")).collect(),
            ..Dataset::default()
        };
        for i in 0..n {
            let pos = i % 4 == 0;
            for j in 0..d {
                let noise: f32 = StandardNormal.sample(&mut rng);
                let shift = if pos && j < 4 { 3.0 } else { 0.0 };
                data.x.push(noise + shift + j as f32);
            }
            data.y.push(pos as u8);
            data.names.push(format!("acct{i}"));
            data.groups.push(if pos {
                format!("campaign{}", i / 20)
            } else {
                format!("acct{i}")
            });
        }
        data
    }

    fn quick() -> TrainOptions {
        TrainOptions {
            epochs: 15,
            seed: 7,
            repeats: 2,
            ..TrainOptions::default()
        }
    }

    #[test]
    fn loss_weights_balance_classes_and_groups() {
        // Positives: campaign c (2 accounts) and d (1); negatives: two accounts.
        let weights = |gw: &BTreeMap<String, f32>| {
            balance_weights(&[1, 1, 1, 0, 0], &["c", "c", "d", "a", "b"], gw)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let w = weights(&BTreeMap::new());
        assert_eq!(w, vec![0.625, 0.625, 1.25, 1.25, 1.25]);
        // Each class carries half, each group half of its class, the mean is 1.
        assert_eq!(w.iter().sum::<f32>(), 5.0);
        // An incident group weighted 3 takes three shares of its class; the class still
        // carries half of the loss.
        let w = weights(&BTreeMap::from([("d".to_string(), 3.0)]));
        assert_eq!(w, vec![0.3125, 0.3125, 1.875, 1.25, 1.25]);
        assert_eq!(w[..3].iter().sum::<f32>(), 2.5);
    }

    #[test]
    fn trains_separable_data_to_high_auroc() {
        let data = synthetic(2000, 12, 1);
        let model = train(&data, &quick()).unwrap();
        let auroc = model.metrics.auroc.unwrap();
        assert!(auroc > 0.99, "validation AUROC {auroc}");
        let t = &model.training;
        assert_eq!((t.rows, t.folds, t.members.len()), (2000, 5, 10));
        // Every row is scored out of fold exactly once per repeat, each fold holding both
        // classes, and the repeats deal the folds differently.
        for r in 0..2 {
            let round: Vec<&MemberSummary> = t.members.iter().filter(|m| m.repeat == r).collect();
            assert_eq!(round.len(), 5);
            assert_eq!(round.iter().map(|m| m.held_rows).sum::<usize>(), 2000);
        }
        assert_ne!(
            assign_folds(&data, 5, 7).of,
            assign_folds(&data, 5, 7 + REPEAT_SEED_STRIDE).of
        );
        assert!(t
            .members
            .iter()
            .all(|m| m.held_positives > 0 && m.held_positives < m.held_rows));
        assert!(model.threshold.is_finite());
        // The threshold keeps the out-of-fold FPR at or under the target.
        assert!(model.metrics.fpr_at_threshold.unwrap() <= 0.01);
    }

    #[test]
    fn folds_keep_groups_whole_and_hold_both_classes() {
        let data = synthetic(400, 4, 2);
        let f = assign_folds(&data, 5, 7);
        assert_eq!((f.k, f.pos_groups, f.neg_groups), (5, 20, 300));
        let mut fold_of_group: HashMap<&str, usize> = HashMap::new();
        for (g, &fold) in data.groups.iter().zip(&f.of) {
            assert_eq!(
                *fold_of_group.entry(g).or_insert(fold),
                fold,
                "group {g} split"
            );
        }
        for fold in 0..5 {
            let rows: Vec<usize> = (0..data.len()).filter(|&i| f.of[i] == fold).collect();
            let pos = rows.iter().filter(|&&i| data.y[i] == 1).count();
            assert!(pos > 0 && pos < rows.len(), "fold {fold}");
        }
        // Fewer positive groups than folds: fewer folds.
        assert_eq!(assign_folds(&data, 50, 7).k, 20);
        // Row order does not change the assignment.
        let mut rev = data.clone();
        rev.groups.reverse();
        rev.y.reverse();
        let r = assign_folds(&rev, 5, 7);
        for (i, g) in data.groups.iter().enumerate() {
            let j = data.len() - 1 - i;
            assert_eq!(&rev.groups[j], g);
            assert_eq!(r.of[j], f.of[i]);
        }
    }

    #[test]
    fn split_keeps_groups_whole() {
        let data = synthetic(400, 4, 2);
        let all: Vec<usize> = (0..data.len()).collect();
        let split = split_groups(&data, &all, 0.25, 7);
        assert!(split.both_classes_each_side(&data.y));
        let train_groups: HashSet<&str> = split
            .train
            .iter()
            .map(|&i| data.groups[i].as_str())
            .collect();
        assert!(split
            .held
            .iter()
            .all(|&i| !train_groups.contains(data.groups[i].as_str())));
        assert_eq!(split.train.len() + split.held.len(), data.len());
        // About a quarter of each kind of group is held out.
        let held_groups: HashSet<&str> = split
            .held
            .iter()
            .map(|&i| data.groups[i].as_str())
            .collect();
        assert_eq!(held_groups.len(), 5 + 75);
        // A subset splits among its own rows only.
        let inner = split_groups(&data, &split.train, 0.2, 10);
        assert!(inner.held.iter().all(|i| split.train.contains(i)));
        assert!(inner.both_classes_each_side(&data.y));
        // Row order does not change the split.
        let mut rev = data.clone();
        rev.x = data.x.chunks(4).rev().flatten().copied().collect();
        rev.y.reverse();
        rev.names.reverse();
        rev.groups.reverse();
        let rev_split = split_groups(&rev, &all, 0.25, 7);
        let mut a: Vec<&str> = split.held.iter().map(|&i| data.names[i].as_str()).collect();
        let mut b: Vec<&str> = rev_split
            .held
            .iter()
            .map(|&i| rev.names[i].as_str())
            .collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn early_stopping_uses_training_groups_only() {
        let data = synthetic(800, 8, 8);
        let opts = TrainOptions {
            epochs: 300,
            patience: 3,
            ..quick()
        };
        let model = train(&data, &opts).unwrap();
        let t = &model.training;
        for m in &t.members {
            // Early stopping watches part of the member's training folds, never its held fold.
            assert!(m.early_stop_rows > 0 && m.fit_rows + m.early_stop_rows + m.held_rows == 800);
            let best = m.best_epoch.unwrap();
            assert!(m.epochs_run < 300 && m.epochs_run == best + 3, "{m:?}");
            assert!(m.early_stop_loss.unwrap().is_finite());
        }
        // The folds are the same with or without early stopping.
        let off = train(
            &data,
            &TrainOptions {
                epochs: 5,
                patience: 0,
                ..quick()
            },
        )
        .unwrap();
        for (m0, m) in off.training.members.iter().zip(&t.members) {
            assert_eq!(
                (m0.held_rows, m0.held_positives),
                (m.held_rows, m.held_positives)
            );
            assert_eq!((m0.early_stop_rows, m0.fit_rows), (0, 800 - m0.held_rows));
            assert_eq!((m0.epochs_run, m0.best_epoch), (5, None));
        }
    }

    #[test]
    fn same_seed_same_predictions() {
        let data = synthetic(600, 8, 3);
        let a = train(&data, &quick()).unwrap();
        let b = train(&data, &quick()).unwrap();
        assert_eq!(a.predict(&data.x).unwrap(), b.predict(&data.x).unwrap());
        assert_eq!(a.threshold, b.threshold);
        let c = train(&data, &TrainOptions { seed: 8, ..quick() }).unwrap();
        assert_ne!(a.predict(&data.x).unwrap(), c.predict(&data.x).unwrap());
    }

    #[test]
    fn save_load_round_trip() {
        let data = synthetic(400, 6, 4);
        let model = train(&data, &quick()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let loaded = Model::load(dir.path(), &data.features).unwrap();
        assert_eq!(
            model.predict(&data.x).unwrap(),
            loaded.predict(&data.x).unwrap()
        );
        assert_eq!(loaded.threshold, model.threshold);
        // serde_json (without its float_roundtrip feature) may move an f64 by one ulp, so the
        // reported metrics are compared to 1e-12; weights, mean, std and threshold are exact.
        let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-12,
            (a, b) => a.is_none() && b.is_none(),
        };
        for (a, b) in [
            (&loaded.metrics, &model.metrics),
            (
                &loaded.training.train_metrics,
                &model.training.train_metrics,
            ),
        ] {
            assert!(close(a.auroc, b.auroc) && close(a.average_precision, b.average_precision));
            assert!(close(a.precision_at_threshold, b.precision_at_threshold));
            assert_eq!((a.positives, a.negatives), (b.positives, b.negatives));
            assert_eq!(
                (a.threshold, a.true_positives),
                (b.threshold, b.true_positives)
            );
        }
        assert_eq!(loaded.training.options, model.training.options);
        assert_eq!(loaded.training.members, model.training.members);
        assert_eq!(
            (loaded.mean.clone(), loaded.std.clone()),
            (model.mean, model.std)
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(META_FILE)).unwrap())
                .unwrap();
        assert_eq!(json["format_version"], FORMAT_VERSION);
        assert_eq!(json["members"], 10);
        assert_eq!(json["hidden"], serde_json::json!(model.hidden));
        assert_eq!(model.hidden, TrainOptions::default().hidden);
        assert!(!dir.path().join("model.json.partial").exists());
    }

    #[test]
    fn other_linking_settings_are_refused_naming_each_difference() {
        let (dir, schema) = saved();
        let mut model = Model::load(dir.path(), &schema).unwrap();
        let build = serde_json::json!({"k": 10, "form": {"min_jaccard": 0.5, "ring": 10}});
        model.linking = serde_json::json!({"k": 10, "form": {"min_jaccard": 0.4, "ring": 10}});
        model.save(dir.path()).unwrap();
        let loaded = Model::load(dir.path(), &schema).unwrap();
        assert_eq!(loaded.linking, model.linking, "saved and read back");
        let err = loaded.check_linking(dir.path(), &build).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        let msg = err.to_string();
        assert!(
            msg.contains("form.min_jaccard: model 0.4, this build 0.5") && !msg.contains("ring"),
            "{msg}"
        );
        model.linking = build.clone();
        assert!(model.check_linking(dir.path(), &build).is_ok());
        // A model.json from before linking settings were saved has none: refused.
        model.linking = serde_json::Value::Null;
        let msg = model
            .check_linking(dir.path(), &build)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("linking: model null"), "{msg}");
    }

    fn saved() -> (tempfile::TempDir, Vec<String>) {
        let data = synthetic(200, 4, 5);
        let model = train(
            &data,
            &TrainOptions {
                epochs: 2,
                hidden: vec![8],
                ..quick()
            },
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        (dir, data.features)
    }

    fn load_err(dir: &Path, schema: &[String]) -> String {
        let err = Model::load(dir, schema).unwrap_err();
        assert!(matches!(err, Error::Model { .. }), "{err}");
        err.to_string()
    }

    #[test]
    fn load_refuses_schema_mismatch() {
        let (dir, schema) = saved();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let msg = load_err(dir.path(), &names(&["f0", "f1", "f2", "g9"]));
        assert!(msg.contains("missing from the model: g9"), "{msg}");
        assert!(msg.contains("extra in the model: f3"), "{msg}");
        assert!(msg.contains("model.json"), "{msg}");
        let msg = load_err(dir.path(), &names(&["f0", "f2", "f1", "f3"]));
        assert!(msg.contains("different order"), "{msg}");
        assert!(
            msg.contains("position 1: model has f1, expected f2"),
            "{msg}"
        );
        let msg = load_err(dir.path(), &names(&["f0", "f1", "f2"]));
        assert!(msg.contains("extra in the model: f3"), "{msg}");
        assert!(Model::load(dir.path(), &schema).is_ok());
    }

    #[test]
    fn load_refuses_missing_and_corrupt_files() {
        let (dir, schema) = saved();
        let json = dir.path().join(META_FILE);
        let weights = dir.path().join(WEIGHTS_FILE);
        let original = std::fs::read_to_string(&json).unwrap();

        std::fs::write(&json, "{\"format_version\": 3, \"schema\": [").unwrap();
        let msg = load_err(dir.path(), &schema);
        assert!(
            msg.contains("corrupt JSON") && msg.contains("model.json"),
            "{msg}"
        );

        std::fs::write(
            &json,
            original.replace("\"format_version\": 3", "\"format_version\": 1"),
        )
        .unwrap();
        let msg = load_err(dir.path(), &schema);
        assert!(msg.contains("format_version 1"), "{msg}");

        std::fs::write(&json, original.replace("\"threshold\"", "\"thresh\"")).unwrap();
        let msg = load_err(dir.path(), &schema);
        assert!(msg.contains("invalid model metadata"), "{msg}");

        std::fs::write(&json, &original).unwrap();
        std::fs::write(&weights, b"not safetensors").unwrap();
        let msg = load_err(dir.path(), &schema);
        assert!(
            msg.contains("corrupt weights") && msg.contains("model.safetensors"),
            "{msg}"
        );

        std::fs::remove_file(&weights).unwrap();
        let msg = load_err(dir.path(), &schema);
        assert!(
            msg.contains("not found") && msg.contains("model.safetensors"),
            "{msg}"
        );

        std::fs::remove_file(&json).unwrap();
        let msg = load_err(dir.path(), &schema);
        assert!(
            msg.contains("not found") && msg.contains("model.json"),
            "{msg}"
        );
    }

    #[test]
    fn load_refuses_weights_of_another_shape() {
        let (dir, schema) = saved();
        let mut tensors = HashMap::new();
        tensors.insert(
            "m0.fc0.weight",
            Tensor::zeros((9, 4), DType::F32, &Device::Cpu).unwrap(),
        );
        candle_core::safetensors::save(&tensors, dir.path().join(WEIGHTS_FILE)).unwrap();
        let msg = load_err(dir.path(), &schema);
        assert!(
            msg.contains("m0.fc0.weight") && msg.contains("[9, 4]"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_bad_options_and_data() {
        let data = synthetic(200, 4, 6);
        let usage = |r: Result<Model>| match r {
            Err(Error::Usage(m)) => m,
            other => panic!("expected usage error, got {other:?}"),
        };
        for opts in [
            TrainOptions {
                folds: 1,
                ..quick()
            },
            TrainOptions {
                repeats: 0,
                ..quick()
            },
            TrainOptions {
                target_fpr: 0.0,
                ..quick()
            },
            TrainOptions {
                hidden: vec![0],
                ..quick()
            },
            TrainOptions {
                epochs: 0,
                ..quick()
            },
            TrainOptions {
                early_stop_fraction: 0.0,
                ..quick()
            },
            TrainOptions {
                lr: f64::NAN,
                ..quick()
            },
        ] {
            usage(train(&data, &opts));
        }
        let mut bad = data.clone();
        bad.x[5] = f32::NAN;
        let msg = usage(train(&bad, &quick()));
        assert!(msg.contains("acct1") && msg.contains("f1"), "{msg}");
        let mut bad = data.clone();
        bad.y[3] = 2;
        usage(train(&bad, &quick()));
        let mut bad = data.clone();
        bad.x.pop();
        usage(train(&bad, &quick()));
        // One campaign only: a fold's members cannot train and be scored on positives.
        let mut one = data.clone();
        for (g, &y) in one.groups.iter_mut().zip(&data.y) {
            if y == 1 {
                *g = "only".into();
            }
        }
        let msg = usage(train(&one, &quick()));
        assert!(msg.contains("1 groups hold positives"), "{msg}");
    }

    #[test]
    fn predict_checks_input() {
        let (dir, schema) = saved();
        let model = Model::load(dir.path(), &schema).unwrap();
        assert!(matches!(model.predict(&[0.0; 5]), Err(Error::Usage(_))));
        assert!(matches!(
            model.predict(&[0.0, f32::INFINITY, 0.0, 0.0]),
            Err(Error::Usage(_))
        ));
        let p = model.predict(&[0.0; 8]).unwrap();
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(model.predict(&[]).unwrap().is_empty());
    }
}
