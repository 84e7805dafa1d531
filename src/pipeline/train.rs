//! The `train` job: features of a labelled log, then the classifier fitted on its labels,
//! alone or added to a base model's training set (an incident).
//!
//! Every model folder `train` writes holds the model and its training set
//! ([`TrainingSet`], text-free). With a base, the new labelled accounts are added to the base's
//! set: an account labelled again replaces its base row (an investigation that clears an
//! account overrides what the base thought), the new groups are named after the incident so
//! that they never merge with a base campaign of the same id, and each new group's share of the
//! loss is multiplied by the incident weight ([`DEFAULT_INCIDENT_WEIGHT`]; docs/evaluation.md
//! has the measurement). The group balancing already gives a 20-account incident campaign the
//! share of any base campaign, however small it is next to the base's thousands of accounts.
//! The base's members are then fine-tuned on the combined rows ([`classify::train_warm`]:
//! each keeps its fold, the incident's groups get folds of their own), so what the base
//! already scored stays near where it was and every row is still scored out of fold; with
//! `warm_start: None` (`--refit`), or when the base misses the incident
//! ([`TrainJob::refit_when_missed`]), a new ensemble is trained on them instead. [`Changes`] sets
//! the out-of-fold scores against the base's, kind by kind and on the incident's own accounts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::detect::{detect, ensure_run, save_features, RunSource};
use crate::campaign::{self, CampaignParams};
use crate::classify::{
    self, Dataset, Fitted, Incident, Model, TrainOptions, TrainingSet, WarmStart,
};
use crate::embed::ModelFiles;
use crate::error::{Error, Result};
use crate::features::normal::{NormalTraffic, NORMAL_TRAFFIC_FILE};
use crate::features::Normal;
use crate::ingest::Labels;

/// Loss multiplier of an incident's groups unless the user gives one: 1, a base campaign's
/// share. Measured against 3 and 10 (docs/evaluation.md, "Retraining on an incident"): the
/// held-out kind's recall gained the same at every weight, while heavier weights moved the
/// threshold and flagged more benign accounts for some kinds.
pub const DEFAULT_INCIDENT_WEIGHT: f32 = 1.0;

/// With [`TrainJob::refit_when_missed`]: the share of the incident's extraction accounts the
/// base must flag for the incident to be fine-tuned in rather than refitted. On the
/// evaluation's incidents the base flagged 87-100% of every campaign kind's (fine-tuning
/// kept other kinds steadier) and 0% of the one kind it missed (a refit learnt it, 0.04 ->
/// 0.84 at 1% FPR, fine-tuning 0.12); docs/evaluation.md, session 11.
pub const MISSED_SHARE: f64 = 0.5;

/// The `train` job.
pub struct TrainJob<'a> {
    pub source: RunSource<'a>,
    pub labels: PathBuf,
    pub out: PathBuf,
    pub params: CampaignParams,
    pub options: TrainOptions,
    /// A model folder whose training set the labels are added to; `None` trains on the labels
    /// alone.
    pub base: Option<PathBuf>,
    /// Loss multiplier of the new labels' groups when there is a base.
    pub incident_weight: f32,
    /// With a base: fine-tune its members ([`classify::train_warm`], `Some`) or train a new
    /// ensemble on the base's rows plus the new ones (`None`).
    pub warm_start: Option<WarmStart>,
    /// With `warm_start`: train a new ensemble after all when the base flags fewer than half
    /// of the incident's extraction accounts ([`MISSED_SHARE`]): measured, fine-tuning keeps
    /// what the base knew steadier, a new ensemble learns a kind the base misses far better.
    pub refit_when_missed: bool,
    /// Whether `options.target_fpr` was chosen by the user; when not, a fine-tuned model keeps
    /// its base's.
    pub target_fpr_given: bool,
}

impl TrainJob<'_> {
    /// The false positive rate a model fine-tuned from `base` is thresholded for.
    fn target_fpr(&self, base: &Base) -> f64 {
        if self.target_fpr_given {
            self.options.target_fpr
        } else {
            base.model.target_fpr
        }
    }
}

/// A trained model, and with a base, how it differs from the base.
pub struct Trained {
    pub model: Model,
    pub changes: Option<Changes>,
}

/// Out-of-fold comparison of a model retrained with an incident against its base.
#[derive(Debug, Clone, Serialize)]
pub struct Changes {
    pub base: PathBuf,
    pub incident: String,
    /// Base rows kept, and rows the incident added or relabelled.
    pub base_rows: usize,
    pub incident_rows: usize,
    /// One row per kind of the base rows, then one for the incident's accounts.
    pub rows: Vec<ChangeRow>,
}

/// Flag rates of one set of accounts before and after, each model at its own threshold.
/// Before: the base's out-of-fold scores for base rows, the base model's scores for the
/// incident's accounts (it never saw them). After: the new model's out-of-fold scores.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRow {
    pub what: String,
    pub label: u8,
    pub accounts: usize,
    pub flagged_before: usize,
    pub flagged_after: usize,
}

impl Changes {
    /// A table for the terminal.
    pub fn render(&self) -> String {
        let mut s = format!(
            "changes against the base {} ({} base rows kept, {} from {}); out-of-fold, each \
             model at its own threshold:\n  {:<28} {:>5} {:>8} {:>14} {:>14}\n",
            self.base.display(),
            self.base_rows,
            self.incident_rows,
            self.incident,
            "accounts",
            "label",
            "count",
            "flagged before",
            "flagged after"
        );
        for r in &self.rows {
            s += &format!(
                "  {:<28} {:>5} {:>8} {:>14} {:>14}\n",
                r.what, r.label, r.accounts, r.flagged_before, r.flagged_after
            );
        }
        s
    }
}

/// Run `train`: embed (or reuse), detect, fit on the labelled accounts (with a base: on the
/// base's training set plus them), save the model and its training set.
pub fn train(job: &TrainJob) -> Result<Trained> {
    job.options.validate()?;
    if !(job.incident_weight.is_finite() && job.incident_weight > 0.0) {
        return Err(Error::Usage(format!(
            "incident weight must be positive, got {}",
            job.incident_weight
        )));
    }
    let labels = Labels::read(&job.labels)?;
    let linking = super::score::linking_json(&job.params);
    // A wrong base fails before the embedding, where the feature schema can be known from the
    // embedding model's width (as `score` loads its model); otherwise after detection.
    let schema = ModelFiles::locate(&job.source.model_dir)
        .and_then(|f| f.config())
        .map(|cfg| campaign::feature_names(cfg.hidden_size));
    let mut base = match (&job.base, &schema) {
        (Some(dir), Ok(names)) => Some(Base::load(dir, names, &job.params)?),
        _ => None,
    };
    if let Some(warm) = job.warm_start {
        warm.validate()?;
        if let Some(b) = &base {
            b.folds(&b.warm_options(job.target_fpr(b)))?;
        }
    }
    let (run, _) = ensure_run(&job.source)?;
    // Normal traffic: the base's, so that the incident's rows are computed as the base's
    // were; without a base, drawn from the accounts labelled benign.
    let dim = run.embeddings.dims2()?.1;
    let base_normal = match &job.base {
        Some(dir) => Some(NormalTraffic::load(dir, dim)?),
        None => None,
    };
    let benign: HashSet<String> = labels
        .labels
        .iter()
        .filter(|l| l.label == 0)
        .map(|l| l.account_id.clone())
        .collect();
    let normal = match &base_normal {
        Some(n) => super::score::normal_of(n.as_ref()),
        None => Normal::Benign(&benign),
    };
    let detection = detect(
        &run,
        &job.params,
        normal,
        &job.source.device,
        job.source.progress,
    )?;
    // No classifier yet, so no campaigns: the file serves eval's baselines.
    save_features(&run.dir, &detection, &vec![None; detection.accounts.len()])?;
    if let Some(dir) = &job.base {
        if base
            .as_ref()
            .is_none_or(|b| b.model.schema != detection.names)
        {
            base = Some(Base::load(dir, &detection.names, &job.params)?);
        }
    }
    let rows: HashMap<&str, usize> = detection
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
    let incident = job
        .labels
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| job.labels.display().to_string());
    // Group ids of an incident carry its number, so a campaign id reused by another incident
    // (or by the base) is another group.
    let tag = base
        .as_ref()
        .map(|b| format!("incident{}/", b.set.incidents.len() + 1))
        .unwrap_or_default();
    let d = detection.names.len();
    let mut new = Dataset {
        features: detection.names.clone(),
        ..Dataset::default()
    };
    let mut new_kinds = Vec::new();
    for l in &labels.labels {
        let a = rows[l.account_id.as_str()];
        new.x.extend_from_slice(&detection.x[a * d..(a + 1) * d]);
        new.y.push(l.label);
        new.names.push(l.account_id.clone());
        new.groups.push(match (&l.campaign, l.label) {
            (Some(c), 1) => format!("{tag}campaign:{c}"),
            _ => format!("{tag}account:{}", l.account_id),
        });
        new_kinds.push(l.kind.clone().unwrap_or_default());
        // Link groups of the log, tagged like the groups: another run's group 3 is another group.
        new.links.push(
            detection.linking.group_of[a]
                .map(|g| format!("{tag}link:{g}"))
                .unwrap_or_default(),
        );
    }

    let (data, kinds, base_kept) = match &base {
        None => (new.clone(), new_kinds.clone(), Vec::new()),
        Some(Base { set, .. }) => {
            let relabelled: HashSet<&str> = new.names.iter().map(String::as_str).collect();
            let kept: Vec<usize> = (0..set.len())
                .filter(|&i| !relabelled.contains(set.accounts[i].as_str()))
                .collect();
            let mut data = Dataset {
                features: detection.names.clone(),
                group_weights: set.group_weights.clone(),
                ..Dataset::default()
            };
            let mut kinds = Vec::with_capacity(kept.len() + new.len());
            for &i in &kept {
                data.x.extend_from_slice(&set.x[i * d..(i + 1) * d]);
                data.y.push(set.y[i]);
                data.names.push(set.accounts[i].clone());
                data.groups.push(set.groups[i].clone());
                data.links
                    .push(set.links.get(i).cloned().unwrap_or_default());
                kinds.push(set.kinds[i].clone());
            }
            data.x.extend_from_slice(&new.x);
            data.y.extend_from_slice(&new.y);
            data.names.extend(new.names.iter().cloned());
            data.groups.extend(new.groups.iter().cloned());
            data.links.extend(new.links.iter().cloned());
            kinds.extend(new_kinds.iter().cloned());
            for g in &new.groups {
                data.group_weights.insert(g.clone(), job.incident_weight);
            }
            (data, kinds, kept)
        }
    };
    {
        let unlabelled = detection.accounts.len() - labels.len();
        let from_base = match &base {
            Some(b) => format!(
                " ({} from the base {}, {} from {incident} at weight {})",
                base_kept.len(),
                b.dir.display(),
                new.len(),
                job.incident_weight
            ),
            None => String::new(),
        };
        job.source.progress.note(&format!(
            "training on {} labelled accounts{from_base} ({} extraction); {} unlabelled accounts of the log not used",
            data.len(),
            data.y.iter().filter(|&&y| y == 1).count(),
            unlabelled
        ));
    }
    // The base's score of each incident row: what decides fine-tuning against a refit, and the
    // "before" of the changes table.
    // Pooled over the whole log's link groups, as `score` with the base would show them.
    let before_new = match &base {
        Some(b) => {
            let all = b.model.score(&detection.x, &detection.linking.group_of)?;
            Some(
                labels
                    .labels
                    .iter()
                    .map(|l| all[rows[l.account_id.as_str()]])
                    .collect::<Vec<f32>>(),
            )
        }
        None => None,
    };
    let Fitted {
        mut model,
        oof,
        folds,
    } = match (
        &base,
        warm_or_refit(job, base.as_ref(), &new, before_new.as_deref()),
    ) {
        (Some(b), Some(warm)) => {
            let opts = b.warm_options(job.target_fpr(b));
            let known = b.folds(&opts)?;
            let r = opts.repeats;
            let mut folds = Vec::with_capacity(data.len() * r);
            for &i in &base_kept {
                folds.extend_from_slice(&known[i * r..(i + 1) * r]);
            }
            folds.resize(data.len() * r, 0);
            let new_rows: Vec<usize> = (base_kept.len()..data.len()).collect();
            classify::deal_new_groups(&data, &new_rows, &mut folds, b.model.training.folds, &opts);
            let mixed = keep_relabelled_folds(&data, &new_rows, &b.set, &known, &mut folds, r);
            if mixed > 0 {
                job.source.progress.note(&format!(
                    "{mixed} relabelled accounts sit in incident campaigns whose accounts had \
                     different folds in the base: members of their new folds trained on their \
                     old rows, so their out-of-fold scores lean to the old label (--refit avoids \
                     this)"
                ));
            }
            classify::train_warm(&data, &b.model, &folds, &opts, warm)?
        }
        _ => classify::train_scored(&data, &job.options)?,
    };
    model.linking = linking;
    let mut set = TrainingSet::from_dataset(&data, kinds, oof, folds);
    let changes = match &base {
        None => None,
        Some(b) => {
            set.incidents = b.set.incidents.clone();
            set.incidents.push(Incident {
                name: incident.clone(),
                rows: new.len(),
                positives: new.y.iter().filter(|&&y| y == 1).count(),
                weight: job.incident_weight,
            });
            let before_new = before_new.as_deref().unwrap_or_default();
            Some(changes(b, &incident, &base_kept, before_new, &model, &set))
        }
    };
    model.save(&job.out)?;
    set.save(&job.out)?;
    // The normal traffic the features were computed against goes with the model; a folder
    // reused as --out must not keep another model's.
    match &detection.local.normal {
        Some(n) => n.save(&job.out)?,
        None => match std::fs::remove_file(job.out.join(NORMAL_TRAFFIC_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(&job.out.join(NORMAL_TRAFFIC_FILE), e))
            }
            _ => {}
        },
    }
    Ok(Trained { model, changes })
}

/// The fine-tuning to do, or `None` for a new ensemble: `job.warm_start`, unless
/// `job.refit_when_missed` and the base flags fewer than [`MISSED_SHARE`] of the incident's
/// extraction accounts (said on stderr either way).
/// `before` is the base model's score of each of `new`'s rows.
fn warm_or_refit(
    job: &TrainJob,
    base: Option<&Base>,
    new: &Dataset,
    before: Option<&[f32]>,
) -> Option<WarmStart> {
    let (Some(b), Some(warm), Some(p)) = (base, job.warm_start, before) else {
        return job.warm_start;
    };
    if !job.refit_when_missed {
        return Some(warm);
    }
    let positives = new.y.iter().filter(|&&y| y == 1).count();
    let flagged = p
        .iter()
        .zip(&new.y)
        .filter(|(&p, &y)| y == 1 && b.model.flags(p))
        .count();
    let missed = positives > 0 && (flagged as f64) < MISSED_SHARE * positives as f64;
    job.source.progress.note(&format!(
        "the base flags {flagged} of the incident's {positives} extraction accounts: {}",
        if missed {
            "a kind it misses, so a new ensemble is trained on its rows and the incident's (--warm fine-tunes instead)"
        } else {
            "fine-tuning its members (--refit trains a new ensemble instead)"
        }
    ));
    (!missed).then_some(warm)
}

/// The model folder an incident is added to: its model and training set, checked against
/// this build's feature schema and linking settings.
struct Base {
    dir: PathBuf,
    model: Model,
    set: TrainingSet,
}

impl Base {
    /// The options a warm start from this base trains with: the base's recipe (so that member
    /// (r, f) continues the base's member (r, f)), at `target_fpr`.
    fn warm_options(&self, target_fpr: f64) -> TrainOptions {
        TrainOptions {
            target_fpr,
            ..self.model.training.options.clone()
        }
    }

    /// Each base row's fold in every round (`rows x repeats`): as saved with the set, or, for a
    /// set saved before folds were, dealt again as [`classify::train_scored`] dealt them, which
    /// is exact for a model trained afresh on this set (any model but a fine-tuned one: those
    /// always save their folds). Refuses, naming the file, a set that does not match the model
    /// (rows, rounds, fold numbers).
    fn folds(&self, opts: &TrainOptions) -> Result<Vec<u8>> {
        let path = self.dir.join(classify::TRAINING_SET_FILE);
        let (n, r, k) = (self.set.len(), opts.repeats, self.model.training.folds);
        if n != self.model.training.rows {
            return Err(Error::model(
                &path,
                format!(
                    "holds {n} rows, but the model beside it was trained on {}: not its training \
                     set",
                    self.model.training.rows
                ),
            ));
        }
        let folds = if self.set.folds.is_empty() {
            if self.model.training.warm_start.is_some() {
                return Err(Error::model(
                    &path,
                    "tensor \"folds\" is missing, and the model was fine-tuned, so its folds \
                     cannot be dealt again; add the incident with --refit",
                ));
            }
            classify::dealt_folds(&self.set.dataset(), opts)
        } else if self.set.folds.len() != n * r {
            return Err(Error::model(
                &path,
                format!(
                    "tensor \"folds\" has {} entries, the model needs {n} rows x {r} rounds",
                    self.set.folds.len()
                ),
            ));
        } else {
            self.set.folds.clone()
        };
        if let Some(i) = folds.iter().position(|&f| f as usize >= k) {
            return Err(Error::model(
                &path,
                format!(
                    "tensor \"folds\": row {}, round {}: fold {}, the model has {k} folds",
                    i / r,
                    i % r,
                    folds[i]
                ),
            ));
        }
        Ok(folds)
    }

    fn load(dir: &Path, schema: &[String], params: &CampaignParams) -> Result<Base> {
        let model = super::score::load_model(dir, schema, params)?;
        let set = TrainingSet::load(dir, schema)?;
        Ok(Base {
            dir: dir.to_path_buf(),
            model,
            set,
        })
    }
}

/// An account labelled again had a fold in the base, and the base members of every other fold
/// trained on its old row; so its new row keeps that fold (`folds`, `rows x repeats`, is
/// updated in place), which is exact for a group of one account (a cleared account) and for a
/// new group whose relabelled accounts all had the same fold in a round. Returns the
/// relabelled accounts of groups where they did not (dealt as new; their score leans to the
/// old label).
fn keep_relabelled_folds(
    data: &Dataset,
    new_rows: &[usize],
    base: &TrainingSet,
    known: &[u8],
    folds: &mut [u8],
    r: usize,
) -> usize {
    let base_row: HashMap<&str, usize> = base
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), i))
        .collect();
    // Per new group: its rows, and the base rows of its relabelled accounts.
    let mut groups: BTreeMap<&str, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for &j in new_rows {
        let e = groups.entry(data.groups[j].as_str()).or_default();
        e.0.push(j);
        if let Some(&i) = base_row.get(data.names[j].as_str()) {
            e.1.push(i);
        }
    }
    let mut mixed = 0;
    for (rows, old) in groups.values() {
        if old.is_empty() {
            continue;
        }
        let mut agreed = true;
        for round in 0..r {
            let f = known[old[0] * r + round];
            if old.iter().all(|&i| known[i * r + round] == f) {
                for &j in rows {
                    folds[j * r + round] = f;
                }
            } else {
                agreed = false;
            }
        }
        if !agreed {
            mixed += old.len();
        }
    }
    mixed
}

/// See [`Changes`]: base rows `kept` (indices into the base's set) are the first rows of
/// `set`, the incident's the rest; `before_new` is the base model's score of each incident row.
fn changes(
    base: &Base,
    incident: &str,
    kept: &[usize],
    before_new: &[f32],
    model: &Model,
    set: &TrainingSet,
) -> Changes {
    let (base_model, base_set) = (&base.model, &base.set);
    // (label, accounts, flagged before, flagged after) per kind of the base rows.
    let mut by_kind: BTreeMap<(String, u8), [usize; 3]> = BTreeMap::new();
    for (j, &i) in kept.iter().enumerate() {
        let kind = match base_set.kinds[i].as_str() {
            "" => "(no kind)".to_string(),
            k => k.to_string(),
        };
        let e = by_kind.entry((kind, base_set.y[i])).or_default();
        e[0] += 1;
        e[1] += usize::from(base_model.flags(base_set.oof[i]));
        e[2] += usize::from(model.flags(set.oof[j]));
    }
    let mut rows: Vec<ChangeRow> = by_kind
        .into_iter()
        .map(|((what, label), [accounts, before, after])| ChangeRow {
            what,
            label,
            accounts,
            flagged_before: before,
            flagged_after: after,
        })
        .collect();
    for label in [1u8, 0] {
        let idx: Vec<usize> = (kept.len()..set.len())
            .filter(|&j| set.y[j] == label)
            .collect();
        if idx.is_empty() {
            continue;
        }
        rows.push(ChangeRow {
            what: format!(
                "{incident} ({})",
                if label == 1 { "extraction" } else { "benign" }
            ),
            label,
            accounts: idx.len(),
            flagged_before: idx
                .iter()
                .filter(|&&j| base_model.flags(before_new[j - kept.len()]))
                .count(),
            flagged_after: idx.iter().filter(|&&j| model.flags(set.oof[j])).count(),
        });
    }
    Changes {
        base: base.dir.clone(),
        incident: incident.to_string(),
        base_rows: kept.len(),
        incident_rows: set.len() - kept.len(),
        rows,
    }
}
