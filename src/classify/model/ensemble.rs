//! The cross-validated ensemble: options, summaries, and the training loop.

use std::collections::HashSet;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Linear, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::dataset::{mean_std, standardised};
use super::folds::{assign_folds, deal_groups, group_counts, split_groups};
use super::mlp::*;
use super::{Dataset, Model};
use crate::campaign::BEHAVIOUR_PREFIX;
use crate::classify::metrics::{threshold_for_fpr, Metrics};
use crate::classify::pool::pool_by_group;
use crate::error::{Error, Result};

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
    /// L2 penalty on the layers' weights (not the biases), added to the loss as
    /// `l2 / 2 * sum(w^2)`; 0 adds nothing. 0.003 ranks campaign kinds held out of training
    /// better but moves the honest accounts of other weeks closer to the threshold, so the
    /// default is none (docs/evaluation.md, session 17). A model file without it was trained
    /// with none.
    #[serde(default = "no_l2")]
    pub l2: f64,
    /// Seeds the folds, the initial weights and the batch order.
    pub seed: u64,
    /// Cross-validation folds, and so ensemble members per repeat (at least 2; capped by the
    /// number of positive and of negative groups).
    pub folds: usize,
    /// Rounds of k-fold cross-validation, each with its own folds and seeds (at least 1).
    pub repeats: usize,
    /// False positive rate the threshold is chosen for on the out-of-fold scores, in (0, 1).
    pub target_fpr: f64,
    /// Score an account at least as high as the middle member of its link group
    /// (`classify::pool`), out of fold (so the threshold and metrics describe pooled scores)
    /// and when scoring. A model file without it was trained without.
    #[serde(default)]
    pub link_pooling: bool,
    /// Rounds of members that never see the behaviour vector (the `behaviour_*` inputs,
    /// [`BEHAVIOUR_PREFIX`]: the account's mean prompt embedding, what it asks about), trained
    /// on the folds of the first `blind_rounds` rounds (at most `repeats`: more train as many).
    /// A score is the mean over all members, so a blend of a view that reads topics (weight
    /// `repeats`) and one that reads only behaviour and coordination (weight `blind_rounds`):
    /// topic alone can neither flag an honest account that asks what extractors ask nor clear
    /// a campaign that asks what people ask (docs/evaluation.md, session 20). A model file
    /// without it has none.
    #[serde(default)]
    pub blind_rounds: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            hidden: vec![16, 8],
            epochs: 200,
            patience: 10,
            early_stop_fraction: 0.2,
            batch_size: 128,
            lr: 1e-3,
            weight_decay: 1e-2,
            l2: 0.0,
            seed: 0,
            folds: 5,
            repeats: 5,
            target_fpr: 0.01,
            link_pooling: true,
            blind_rounds: 2,
        }
    }
}

/// What a `model.json` written before [`TrainOptions::l2`] existed was trained with.
fn no_l2() -> f64 {
    0.0
}

impl TrainOptions {
    /// Blind rounds trained: [`TrainOptions::blind_rounds`], at most `repeats` (they train on
    /// those rounds' folds).
    pub fn blind_rounds_trained(&self) -> usize {
        self.blind_rounds.min(self.repeats)
    }

    /// Rounds of members of both views.
    pub fn rounds_of_members(&self) -> usize {
        self.repeats + self.blind_rounds_trained()
    }

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
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(Error::Usage(format!(
                "the L2 penalty must be >= 0, got {}",
                self.l2
            )));
        }
        if self.folds > u8::MAX as usize + 1 {
            return Err(Error::Usage(format!(
                "folds must be at most {} (a row's fold is saved as one byte), got {}",
                u8::MAX as usize + 1,
                self.folds
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
    /// Set when the members were fine-tuned from a base model's ([`train_warm`]) instead of
    /// drawn at random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_start: Option<WarmStart>,
    // No wall-clock time here: model.json is byte-reproducible (an older file's `seconds` is
    // ignored on load); `train` reports the time on stderr.
}

/// How [`train_warm`] fine-tunes (and, in [`TrainingSummary::warm_start`], how it did): a few
/// passes at a low learning rate over the base's rows and the new ones, no early stopping.
/// Chosen by measurement (docs/evaluation.md, "warm start").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WarmStart {
    pub lr: f64,
    pub epochs: usize,
}

impl WarmStart {
    /// Rejects settings that cannot fine-tune, as [`Error::Usage`].
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) || self.epochs == 0 {
            return Err(Error::Usage(format!(
                "fine-tuning needs a positive learning rate (--fine-tune-lr) and at least one \
                 epoch (--fine-tune-epochs), got {} and {}",
                self.lr, self.epochs
            )));
        }
        Ok(())
    }
}

impl Default for WarmStart {
    fn default() -> Self {
        WarmStart {
            lr: 1e-4,
            epochs: 5,
        }
    }
}

/// A trained ensemble with each row's out-of-fold score and fold.
#[derive(Debug)]
pub struct Fitted {
    pub model: Model,
    /// Out-of-fold score of each row (what the threshold and the metrics come from).
    pub oof: Vec<f32>,
    /// Fold of each row in every repeat, `rows x repeats` row-major: which member scored it.
    /// A warm start from this model needs them (see [`train_warm`]).
    pub folds: Vec<u8>,
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
    /// Whether the member is blind to the behaviour vector ([`TrainOptions::blind_rounds`]).
    #[serde(default)]
    pub blind: bool,
}

/// Seed offset between cross-validation rounds: far from the per-fold offsets (16 per fold) so
/// no two members of different rounds share a seed.
pub(super) const REPEAT_SEED_STRIDE: u64 = 1_000_003;

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
    train_scored(data, opts).map(|f| f.model)
}

/// [`train`], also returning each row's out-of-fold score and folds.
pub fn train_scored(data: &Dataset, opts: &TrainOptions) -> Result<Fitted> {
    opts.validate()?;
    data.validate()?;
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
    let (mean, std) = mean_std(&data.x, data.dim(), &all);
    // Every round has the same group counts, so the same k.
    fit_ensemble(
        data,
        opts,
        folds.k,
        &dealt_rounds(data, opts),
        &mean,
        &std,
        None,
    )
}

/// Adds rows to what a `base` model knows by fine-tuning its members instead of training new
/// ones, so that the rows the base already scored keep nearly the scores they had (a model
/// trained afresh on the same rows plus a few new ones draws other weights and moves the
/// threshold and the borderline accounts by several; docs/evaluation.md has the measurement).
///
/// `folds` (`rows x repeats`, row-major) gives each row of `data` its fold in every repeat:
/// base rows the fold they had in the base (so the member of that fold, and the base member it
/// starts from, never saw them), new rows the fold [`deal_new_groups`] gave them. Member
/// (repeat r, fold f) starts from the base's member (r, f) and trains `warm.epochs` passes at
/// `warm.lr` on every row outside fold f, with the base's standardisation; no early stopping,
/// because its slice of training groups would mostly be rows the base member was already
/// stopped on, whose loss cannot fall, and it would keep the base weights without the new rows.
/// The threshold and metrics come from the out-of-fold scores as in [`train`].
///
/// Fails with [`Error::Usage`] when the base's layers, folds or repeats differ from `opts`
/// or `folds`, with fewer than two groups of each class, or when the rows outside some fold
/// (what its member trains on) lack positives or negatives.
pub fn train_warm(
    data: &Dataset,
    base: &Model,
    folds: &[u8],
    opts: &TrainOptions,
    warm: WarmStart,
) -> Result<Fitted> {
    opts.validate()?;
    data.validate()?;
    let k = base.training.folds;
    let repeats = opts.repeats;
    if base.hidden != opts.hidden
        || base.members.len() != k * opts.rounds_of_members()
        || base.dim() != data.dim()
        || folds.len() != data.len() * repeats
    {
        return Err(Error::Usage(format!(
            "cannot fine-tune the base model: it has {} members of layers {:?} on {} features \
             ({} folds), this training asks for {} repeats of layers {:?} on {} features with \
             {} fold entries for {} rows",
            base.members.len(),
            base.hidden,
            base.dim(),
            k,
            repeats,
            opts.hidden,
            data.dim(),
            folds.len(),
            data.len()
        )));
    }
    warm.validate()?;
    let (pos_groups, neg_groups) = group_counts(data);
    if pos_groups < 2 || neg_groups < 2 {
        return Err(Error::Usage(format!(
            "cannot fine-tune on {} accounts: {pos_groups} groups hold positives and {neg_groups} \
             only negatives, need at least 2 of each",
            data.len()
        )));
    }
    let rounds = unpack_folds(folds, repeats);
    if let Some(&bad) = rounds.iter().flatten().find(|&&f| f >= k) {
        return Err(Error::Usage(format!(
            "fold {bad} out of range: the base model has {k} folds"
        )));
    }
    // Every member needs both classes among the rows it trains on (a fresh training deals
    // folds so; relabelled accounts can leave a fold's complement without one).
    for (r, fold_of) in rounds.iter().enumerate() {
        for f in 0..k {
            let classes: HashSet<u8> = (0..data.len())
                .filter(|&i| fold_of[i] != f)
                .map(|i| data.y[i])
                .collect();
            if classes.len() < 2 {
                return Err(Error::Usage(format!(
                    "cannot fine-tune: outside fold {f} of round {r} every labelled account is \
                     of one class, so that member would learn nothing; train with --refit"
                )));
            }
        }
    }
    let warm_opts = TrainOptions {
        lr: warm.lr,
        epochs: warm.epochs,
        patience: 0,
        ..opts.clone()
    };
    let mut fitted = fit_ensemble(
        data,
        &warm_opts,
        k,
        &rounds,
        &base.mean,
        &base.std,
        Some(base),
    )?;
    // The options recorded are the base's recipe; the fine-tuning is recorded beside them.
    fitted.model.training.options = opts.clone();
    fitted.model.training.warm_start = Some(warm);
    Ok(fitted)
}

/// The folds [`train_scored`] deals for `data` with `opts`, `rows x repeats` row-major (as in
/// [`Fitted::folds`]): those of a model trained afresh on exactly these rows.
pub fn dealt_folds(data: &Dataset, opts: &TrainOptions) -> Vec<u8> {
    pack_folds(&dealt_rounds(data, opts))
}

/// Row `i`'s fold in round `r` of a fresh training, as `rounds[r][i]`.
fn dealt_rounds(data: &Dataset, opts: &TrainOptions) -> Vec<Vec<usize>> {
    (0..opts.repeats)
        .map(|r| assign_folds(data, opts.folds, round_seed(opts, r)).of)
        .collect()
}

/// `rounds[r][i]` as the saved layout, `rows x repeats` row-major, one byte each
/// ([`TrainOptions::validate`] caps the folds at 256).
fn pack_folds(rounds: &[Vec<usize>]) -> Vec<u8> {
    let repeats = rounds.len();
    let rows = rounds.first().map_or(0, Vec::len);
    let mut folds = vec![0u8; rows * repeats];
    for (r, fold_of) in rounds.iter().enumerate() {
        for (i, &f) in fold_of.iter().enumerate() {
            folds[i * repeats + r] = f as u8;
        }
    }
    folds
}

/// The inverse of [`pack_folds`].
fn unpack_folds(folds: &[u8], repeats: usize) -> Vec<Vec<usize>> {
    let rows = folds.len() / repeats.max(1);
    (0..repeats)
        .map(|r| (0..rows).map(|i| folds[i * repeats + r] as usize).collect())
        .collect()
}

/// Folds for the rows `new` of `data` (the rest already have theirs in `folds`, `rows x
/// repeats`): in each repeat the new groups holding positives, and the new negative-only
/// groups, are each sorted, shuffled with the round's seed and dealt round robin from a
/// seeded starting fold, so that a one-campaign incident lands on some fold, not always the
/// first.
pub fn deal_new_groups(
    data: &Dataset,
    new: &[usize],
    folds: &mut [u8],
    k: usize,
    opts: &TrainOptions,
) {
    let repeats = opts.repeats;
    for r in 0..repeats {
        let mut rng = StdRng::seed_from_u64(round_seed(opts, r).wrapping_add(7));
        let fold_of = deal_groups(data, new, k, &mut rng);
        for &i in new {
            folds[i * repeats + r] = fold_of[data.groups[i].as_str()] as u8;
        }
    }
}

/// Seed of cross-validation round `r`.
fn round_seed(opts: &TrainOptions, r: usize) -> u64 {
    opts.seed.wrapping_add(REPEAT_SEED_STRIDE * r as u64)
}

/// One member per (view, round, fold), in that order: `rounds[r][i]` is row i's fold in round
/// r; the views are every input over all rounds, then every input but the behaviour vector
/// over the first [`TrainOptions::blind_rounds`] rounds, on the same folds. Members start from
/// `init`'s (same order) when given, else from seeded random weights.
fn fit_ensemble(
    data: &Dataset,
    opts: &TrainOptions,
    k: usize,
    rounds: &[Vec<usize>],
    mean: &[f32],
    std: &[f32],
    init: Option<&Model>,
) -> Result<Fitted> {
    let all: Vec<usize> = (0..data.len()).collect();
    let (pos_groups, neg_groups) = group_counts(data);
    let mut oof = vec![0f32; data.len()];
    let blind_rounds = opts.blind_rounds_trained();
    let per_view = k * rounds.len();
    // Every row is held out once per round of each view: its out-of-fold score is the mean
    // of as many predictions as the ensemble has rounds, weighted as `Model::score` weighs.
    let predictions = (rounds.len() + blind_rounds) as f32;
    let mut members = Vec::with_capacity(k * (rounds.len() + blind_rounds));
    let mut summaries = Vec::with_capacity(members.capacity());
    let behaviour: Vec<bool> = data
        .features
        .iter()
        .map(|n| n.starts_with(BEHAVIOUR_PREFIX))
        .collect();
    for v in 0..2 {
        let blind = (v == 1).then_some(behaviour.as_slice());
        let view_rounds = if v == 0 { rounds.len() } else { blind_rounds };
        for (r, fold_of) in rounds.iter().enumerate().take(view_rounds) {
            for f in 0..k {
                let (held, fit): (Vec<usize>, Vec<usize>) =
                    all.iter().partition(|&&i| fold_of[i] == f);
                // The blind view's seeds sit between the folds' (16 apart; a member uses
                // seed + 1..=3), so the all-inputs members are those of a model without it.
                let seed = round_seed(opts, r).wrapping_add(16 * f as u64 + 8 * v as u64);
                let start = init.map(|m| m.members[v * per_view + r * k + f].as_slice());
                let (layers, mut summary) =
                    fit_member(data, &fit, mean, std, opts, seed, start, blind)?;
                for (&i, p) in held
                    .iter()
                    .zip(predict_rows(&[&layers], data, &held, mean, std)?)
                {
                    oof[i] += p / predictions;
                }
                summary.repeat = r;
                summary.held_rows = held.len();
                summary.held_positives = held.iter().filter(|&&i| data.y[i] == 1).count();
                summary.blind = blind.is_some();
                members.push(layers);
                summaries.push(summary);
            }
        }
    }

    let links = data.link_of();
    let pool = |s: Vec<f32>| {
        if opts.link_pooling {
            pool_by_group(&s, &links)
        } else {
            s
        }
    };
    let oof = pool(oof);
    let threshold = threshold_for_fpr(&oof, &data.y, opts.target_fpr);
    let metrics = Metrics::from_scores(&oof, &data.y, Some(threshold));
    let member_refs: Vec<&[Linear]> = members.iter().map(Vec::as_slice).collect();
    let in_sample = pool(predict_rows(&member_refs, data, &all, mean, std)?);
    let groups: Vec<&str> = data.groups.iter().map(String::as_str).collect();
    let training = TrainingSummary {
        options: opts.clone(),
        rows: data.len(),
        positives: metrics.positives,
        positive_groups: pos_groups,
        negative_groups: neg_groups,
        folds: k,
        members: summaries,
        oof_loss: balanced_log_loss(&oof, &data.y, &groups, &data.group_weights)?,
        train_loss: balanced_log_loss(&in_sample, &data.y, &groups, &data.group_weights)?,
        train_metrics: Metrics::from_scores(&in_sample, &data.y, Some(threshold)),
        warm_start: None,
    };
    let folds = pack_folds(rounds);
    let model = Model {
        schema: data.features.clone(),
        mean: mean.to_vec(),
        std: std.to_vec(),
        hidden: opts.hidden.clone(),
        threshold,
        target_fpr: opts.target_fpr,
        metrics,
        training,
        linking: serde_json::Value::Null,
        members,
    };
    Ok(Fitted { model, oof, folds })
}

/// Fits one member on `rows` (standardised with `mean`/`std`), with early stopping on a slice
/// of their groups. The returned summary's `held_*` fields are left for the caller. With
/// `blind`, the inputs marked true are held at their mean (0 once standardised) while it
/// trains, and its first layer's weights on them are 0 when it returns: the member never reads
/// them, whatever it is given later (a blind `start` stays blind: those weights get no
/// gradient).
#[allow(clippy::too_many_arguments)]
fn fit_member(
    data: &Dataset,
    rows: &[usize],
    mean: &[f32],
    std: &[f32],
    opts: &TrainOptions,
    seed: u64,
    start: Option<&[Linear]>,
    blind: Option<&[bool]>,
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
        let mut x = standardised(data, idx, mean, std);
        if let Some(blind) = blind {
            for row in x.chunks_mut(d) {
                for (v, _) in row.iter_mut().zip(blind).filter(|(_, &b)| b) {
                    *v = 0.0;
                }
            }
        }
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
    let (vars, layers) = match start {
        Some(layers) => copy_layers(layers)?,
        None => init_layers(d, &opts.hidden, &mut init_rng)?,
    };
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
            let mut loss = weighted_bce(
                &logits,
                &fit_y.index_select(&idx, 0)?,
                &fit_w.index_select(&idx, 0)?,
            )?;
            if opts.l2 > 0.0 {
                for layer in &layers {
                    loss = (loss + (layer.weight().sqr()?.sum_all()? * (0.5 * opts.l2))?)?;
                }
            }
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
    if let Some(blind) = blind {
        // `vars[0]` is the first layer's weight `(hidden, d)`.
        let keep: Vec<f32> = blind.iter().map(|&b| if b { 0.0 } else { 1.0 }).collect();
        let keep = Tensor::from_vec(keep, (1, d), &dev)?;
        vars[0].set(&vars[0].as_tensor().broadcast_mul(&keep)?)?;
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
        blind: false,
    };
    Ok((layers, summary))
}
