//! The `train` job: features of a labelled log, then the classifier fitted on its labels.

use std::collections::HashMap;
use std::path::PathBuf;

use super::detect::{detect, ensure_run, save_features, RunSource};
use crate::campaign::CampaignParams;
use crate::classify::{self, Dataset, Model, TrainOptions};
use crate::error::Result;
use crate::ingest::Labels;

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
    let mut model = classify::train(&data, &job.options)?;
    model.linking = super::score::linking_json(&job.params);
    model.save(&job.out)?;
    Ok(model)
}
