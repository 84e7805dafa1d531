//! The `reference` job: normal traffic drawn from a log whose accounts are known to be honest
//! (all of them, or those a labels file marks benign), for `score --reference`.
//!
//! A model knows the endpoints of its training week. An endpoint that opened since (a new task
//! API, a renamed model) is compared with the log's own traffic on it, campaigns included;
//! a vetted week of that endpoint gives it a reference that is not.

use std::collections::HashSet;
use std::path::PathBuf;

use super::detect::{ensure_run, RunSource};
use crate::error::{Error, Result};
use crate::features::{self, normal::NormalTraffic, Accounts, Normal};
use crate::ingest::Labels;

/// The `reference` job.
pub struct ReferenceJob<'a> {
    pub source: RunSource<'a>,
    /// Accounts labelled 0 are the honest ones; `None`: every account of the log is.
    pub labels: Option<PathBuf>,
    /// Folder to write `normal_traffic.safetensors` to.
    pub out: PathBuf,
}

/// Run `reference`: embed (or reuse), draw the sample, save it.
pub fn reference(job: &ReferenceJob) -> Result<NormalTraffic> {
    let labels = job.labels.as_deref().map(Labels::read).transpose()?;
    let (run, _) = ensure_run(&job.source)?;
    let accounts = Accounts::from_run(&run)?;
    let honest: HashSet<String> = match &labels {
        Some(l) => {
            let known: HashSet<&str> = accounts.ids.iter().map(String::as_str).collect();
            l.check_known(
                &|id| known.contains(id),
                &format!("the request log {}", job.source.input.display()),
            )?;
            l.labels
                .iter()
                .filter(|l| l.label == 0)
                .map(|l| l.account_id.clone())
                .collect()
        }
        None => accounts.ids.iter().cloned().collect(),
    };
    let emb = run.embeddings.to_device(&job.source.device)?;
    let local = features::local(&emb, &run.rows, &accounts, Normal::Benign(&honest))?;
    let normal = local.normal.ok_or_else(|| {
        Error::file(
            job.labels.as_ref().unwrap_or(&job.source.input),
            format!(
                "{} honest accounts give no sample (one needs at least 4 of their distinct \
                 prompts, an endpoint's {})",
                honest.len(),
                features::shift::ShiftParams::default().min_endpoint_prompts
            ),
        )
    })?;
    normal.save(&job.out)?;
    Ok(normal)
}
