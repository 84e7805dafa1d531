//! The jobs the binary runs, composed from the stages. Only this module knows all stages.
//!
//! - [`embed()`]: request log -> run directory (manifest, embeddings, request table).
//! - [`detect()`]: run directory -> per-account features, account index, campaigns and the
//!   feature matrix the classifier reads; shared by `score` and `train` so that both see
//!   exactly the same features.
//! - [`score()`], [`train()`], [`neighbors()`], [`eval()`], [`reference()`]: the user-facing
//!   jobs on top.

mod detect;
mod embed;
mod eval;
mod neighbors;
mod reference;
mod score;
mod train;

pub use detect::{detect, ensure_run, Detection, RunSource, Stage};
pub use embed::{embed, short_hash, EmbedJob};
pub use eval::{eval, EvalJob, EvalReport};
pub use neighbors::{neighbors, render as render_neighbors, Evidence, NeighborsJob, Queried};
pub use reference::{reference, ReferenceJob};
pub use score::{score, ScoreJob, ScoreSummary};
pub use train::{train, ChangeRow, Changes, TrainJob, Trained, DEFAULT_INCIDENT_WEIGHT};
