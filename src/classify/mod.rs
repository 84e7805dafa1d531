//! Classify: turns an account's feature vector into an extraction probability and a flag.
//!
//! The decision that matters to an abuse team is "flag or not" at a false positive rate they
//! can afford, on accounts from campaigns the model has not seen. So this stage is three parts
//! that keep those questions separate:
//!
//! - [`model`]: the MLP (candle-nn, CPU), its group-aware train/validation split, the threshold
//!   chosen on validation for a target FPR, and the model folder (`model.safetensors` +
//!   `model.json` with feature schema, normalisation, threshold and metrics) that refuses to
//!   load against a different feature schema.
//! - [`metrics`]: AUROC, average precision, recall at a fixed FPR, and campaign pair
//!   precision/recall, with their tie and empty-class conventions written down.
//! - [`pool`]: link pooling, an account scored at least as high as the middle member of its
//!   link group (a campaign judged as a whole).
//! - [`baseline`]: logistic regression in plain Rust, the yardstick the MLP is compared with.
//!
//! Nothing here reads request logs or embeddings: callers hand over a [`Dataset`] of numbers
//! with feature names, so the classifier can be trained and tested without the rest of the
//! pipeline.

pub mod baseline;
pub mod metrics;
pub mod model;
pub mod pool;
pub mod training_set;

pub use baseline::{logistic_regression, LogReg};
pub use metrics::{
    auroc, average_precision, pair_precision_recall, recall_at_fpr, threshold_for_fpr, Metrics,
};
pub use model::{
    deal_new_groups, dealt_folds, train, train_scored, train_warm, Dataset, Fitted, Model,
    TrainOptions, TrainingSummary, WarmStart,
};
pub use pool::pool_by_group;
pub use training_set::{Incident, TrainingSet, TRAINING_SET_FILE};
