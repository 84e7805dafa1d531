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
//!   and moved widely with the seed; averaged over repeats it is a property of the ensemble,
//!   not of one draw (docs/evaluation.md has the figures).
//! - Positives are rare and come in groups of very different sizes (a 150-account hydra next to
//!   a 10-account sweep), so the loss is balanced twice: each class carries half of it, and
//!   inside a class each group carries an equal share; otherwise the model learns the largest
//!   campaign's habits instead of what campaigns share. The operating threshold is chosen
//!   on validation scores for a target false positive rate (flagging customers is the costly
//!   error), not at 0.5.
//! - No member is refitted on all data: every number in `model.json` describes scores from
//!   members that did not see the account's group.
//! - The layers are small (16-8 by default). Out-of-fold scores favour wider ones (128-64
//!   scored higher), because every fold shares the training week's corpus; on test weeks of
//!   held-out corpora and wording the wider network had learnt which *topics* were honest and
//!   flagged three to five times as many honest accounts (docs/evaluation.md, session 11).
//! - An MLP memorises a few thousand accounts in a few dozen epochs (train loss near 0,
//!   validation loss rising), and users retraining after an incident will not tune epochs.
//!   So each member stops early on a slice of its *training* groups (never its held-out fold,
//!   which would bias the reported metrics) and keeps the best epoch's weights.
//! - Runs must be reproducible for review: candle's CPU `randn` draws from a thread RNG, so
//!   the weights are initialised here from a seeded [`StdRng`] and wrapped in [`Var`]s that
//!   the optimizer updates in place. Same data + same options = same predictions.
//! - A model scores a feature vector by position, so `model.json` records the feature names in
//!   order and [`Model::load`] refuses a model whose schema differs from the caller's, naming
//!   the missing, extra or reordered features.

//!
//! Layout: [`dataset`] (rows, standardisation), [`folds`] (group-wise splits), [`mlp`] (layers,
//! loss, forward passes), [`ensemble`] (options and the cross-validated training), [`persist`]
//! (`model.json` + `model.safetensors`, schema and settings checks).

use candle_core::{Device, Tensor};
use candle_nn::Linear;

use super::metrics::Metrics;
use crate::error::{Error, Result};

mod dataset;
mod ensemble;
mod folds;
mod mlp;
mod persist;
#[cfg(test)]
mod tests;

pub use dataset::Dataset;
pub use ensemble::{
    deal_new_groups, dealt_folds, train, train_scored, train_warm, Fitted, MemberSummary,
    TrainOptions, TrainingSummary, WarmStart,
};
pub(crate) use persist::check_schema;

use dataset::{check_finite, standardise};
use mlp::member_probabilities;

/// Version of the `model.json` + `model.safetensors` pair. Bump on any change a reader of an
/// older version would misread.
pub const FORMAT_VERSION: u32 = 3;
/// Weights file inside a model folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Metadata file inside a model folder; written last, so its presence marks a complete model.
pub const META_FILE: &str = "model.json";
/// Rows per forward pass at prediction time (bounds memory on large batches).
const PREDICT_CHUNK: usize = 8192;
/// Floor on a feature's standard deviation, so constant features standardise to 0.
const STD_FLOOR: f32 = 1e-6;

/// Per row, the two views of a model with blind members ([`Model::predict_views`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Views {
    /// Mean score of the members that read every input.
    pub topic: Vec<f32>,
    /// Mean score of the members blind to the behaviour vector.
    pub blind: Vec<f32>,
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

impl Model {
    /// Number of input features.
    pub fn dim(&self) -> usize {
        self.schema.len()
    }

    /// Extraction probabilities (0..1) for `rows x dim()` raw (unstandardised) features,
    /// row-major. Fails with [`Error::Usage`] on a wrong length or a non-finite value.
    pub fn predict(&self, x: &[f32]) -> Result<Vec<f32>> {
        Ok(self.predict_views(x)?.0)
    }

    /// [`Model::predict`], and beside it, for a model with members blind to the behaviour
    /// vector ([`TrainOptions::blind_rounds`]), per row the mean score of the members that read
    /// every input and the mean score of the blind ones (`None` for a model without). Each
    /// member runs once; the ensemble's score is summed over the members in order, as before
    /// there were views.
    pub fn predict_views(&self, x: &[f32]) -> Result<(Vec<f32>, Option<Views>)> {
        let d = self.dim();
        if !x.len().is_multiple_of(d) {
            return Err(Error::Usage(format!(
                "predict: {} values is not a whole number of rows of {d} features",
                x.len()
            )));
        }
        check_finite(x, &self.schema, |row| format!("row {row}"))?;
        let blind: Vec<bool> = (0..self.members.len())
            .map(|i| self.training.members.get(i).is_some_and(|m| m.blind))
            .collect();
        let n_blind = blind.iter().filter(|&&b| b).count();
        let n_all = self.members.len().max(1) as f32;
        let rows_total = x.len() / d;
        let mut all = Vec::with_capacity(rows_total);
        let (mut topic, mut blinded) = (Vec::new(), Vec::new());
        for rows in x.chunks(PREDICT_CHUNK * d) {
            let mut rows = rows.to_vec();
            standardise(&mut rows, &self.mean, &self.std);
            let n = rows.len() / d;
            let x = Tensor::from_vec(rows, (n, d), &Device::Cpu)?;
            let (mut sum, mut sum_topic, mut sum_blind) =
                (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
            for (layers, &is_blind) in self.members.iter().zip(&blind) {
                let view = if is_blind {
                    &mut sum_blind
                } else {
                    &mut sum_topic
                };
                for ((s, v), p) in sum
                    .iter_mut()
                    .zip(view.iter_mut())
                    .zip(member_probabilities(layers, &x)?)
                {
                    *s += p;
                    *v += p;
                }
            }
            all.extend(sum.iter().map(|s| s / n_all));
            if n_blind > 0 {
                let n_topic = (self.members.len() - n_blind).max(1) as f32;
                topic.extend(sum_topic.iter().map(|s| s / n_topic));
                blinded.extend(sum_blind.iter().map(|s| s / n_blind as f32));
            }
        }
        Ok((
            all,
            (n_blind > 0).then_some(Views {
                topic,
                blind: blinded,
            }),
        ))
    }

    /// Whether the model pools scores over link groups (`classify::pool`).
    pub fn pools_links(&self) -> bool {
        self.training.options.link_pooling
    }

    /// [`Model::predict`], then pooled over `group_of` (each row's link group) when the model
    /// was trained with link pooling: the scores its threshold was chosen for.
    pub fn score<K: Eq + std::hash::Hash>(
        &self,
        x: &[f32],
        group_of: &[Option<K>],
    ) -> Result<Vec<f32>> {
        Ok(self.pooled(&self.predict(x)?, group_of))
    }

    /// Own scores from [`Model::predict`] as [`Model::score`] returns them: pooled over
    /// `group_of` when the model pools, else unchanged.
    pub fn pooled<K: Eq + std::hash::Hash>(&self, own: &[f32], group_of: &[Option<K>]) -> Vec<f32> {
        if self.pools_links() {
            super::pool::pool_by_group(own, group_of)
        } else {
            own.to_vec()
        }
    }

    /// Whether a score from [`Model::score`] is flagged at the stored threshold.
    pub fn flags(&self, probability: f32) -> bool {
        probability >= self.threshold
    }
}
