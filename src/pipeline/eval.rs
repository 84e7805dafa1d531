//! The `eval` job: how good a `scores.jsonl` is against labels.
//!
//! Reported: AUROC, average precision, recall at 1% and 0.1% benign FPR, precision/recall/FPR
//! at the model's own flags, campaign pair precision/recall, a per-kind table when the labels
//! carry `kind` (simulated traffic does), and two baselines on the same accounts:
//! - volume: the account's request count as the score (needs nothing but the scores file);
//! - mean embedding + logistic regression: fitted on a training run's behaviour vectors and
//!   labels (`--train-run-dir`, `--train-labels`), applied to the scored run's (`--run-dir`).
//!   The MLP has to beat both to be worth its complexity.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;

use crate::classify::{logistic_regression, pair_precision_recall, recall_at_fpr, Metrics};
use crate::error::{Error, Result};
use crate::features::Local;
use crate::ingest::Labels;
use crate::report::read_scores;
use crate::run::{read_features, SavedFeatures, FEATURES};

/// L2 strength and iterations of the mean-embedding baseline.
const BASELINE_L2: f64 = 1e-3;
const BASELINE_EPOCHS: usize = 500;

pub struct EvalJob {
    pub scores: PathBuf,
    pub labels: PathBuf,
    /// The scored run (for the mean-embedding baseline).
    pub run_dir: Option<PathBuf>,
    /// Training run and labels for the mean-embedding baseline.
    pub train_run_dir: Option<PathBuf>,
    pub train_labels: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub scores: PathBuf,
    pub labels: PathBuf,
    pub scored_accounts: usize,
    pub labelled_accounts: usize,
    /// The classifier's scores; `*_at_threshold` use the `flagged` field.
    pub model: Metrics,
    pub campaign_pairs: PairReport,
    pub baselines: BTreeMap<String, Metrics>,
    /// Per strategy kind, when the labels carry `kind`.
    pub kinds: Vec<KindRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PairReport {
    pub precision: f64,
    pub recall: f64,
    /// Labelled extraction campaigns, and campaigns reported among labelled accounts.
    pub true_campaigns: usize,
    pub found_campaigns: usize,
}

/// One strategy kind: how it is ranked against all labelled benign accounts.
#[derive(Debug, Clone, Serialize)]
pub struct KindRow {
    pub kind: String,
    pub label: u8,
    pub accounts: usize,
    /// Extraction kinds: AUROC of this kind against all benign accounts.
    pub auroc: Option<f64>,
    /// Extraction kinds: recall at the threshold flagging 1% of all benign accounts.
    pub recall_at_1pct_fpr: Option<f64>,
    /// Accounts of this kind the model flagged.
    pub flagged: usize,
    /// Accounts of this kind among the top-ranked P labelled accounts (P = extraction count).
    pub in_top: usize,
    /// Accounts of this kind placed in a reported campaign (for a benign kind: wrongly).
    pub in_campaigns: usize,
    /// Extraction kinds: of the pairs of this kind's accounts that belong to one labelled
    /// campaign, the share reported in one campaign (the kind's campaign-pair recall).
    pub pair_recall: Option<f64>,
}

pub fn eval(job: &EvalJob) -> Result<EvalReport> {
    let labels = Labels::read(&job.labels)?;
    let scores = read_scores(&job.scores)?;
    let by_id: HashMap<&str, usize> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| (s.account_id.as_str(), i))
        .collect();
    labels.check_known(
        &|id| by_id.contains_key(id),
        &format!("the scores {}", job.scores.display()),
    )?;
    let rows: Vec<usize> = labels
        .labels
        .iter()
        .map(|l| by_id[l.account_id.as_str()])
        .collect();
    let y: Vec<u8> = labels.labels.iter().map(|l| l.label).collect();
    let s: Vec<f32> = rows.iter().map(|&r| scores[r].score).collect();
    let flagged: Vec<bool> = rows.iter().map(|&r| scores[r].flagged).collect();

    let mut model = Metrics::from_scores(&s, &y, None);
    let tp = y
        .iter()
        .zip(&flagged)
        .filter(|(&l, &f)| l == 1 && f)
        .count();
    let fp = y
        .iter()
        .zip(&flagged)
        .filter(|(&l, &f)| l == 0 && f)
        .count();
    model.threshold = flagged
        .iter()
        .zip(&s)
        .filter(|(f, _)| **f)
        .map(|(_, &v)| v)
        .reduce(f32::min);
    model.true_positives = Some(tp);
    model.false_positives = Some(fp);
    model.precision_at_threshold = (tp + fp > 0).then(|| tp as f64 / (tp + fp) as f64);
    model.recall_at_threshold = (model.positives > 0).then(|| tp as f64 / model.positives as f64);
    model.fpr_at_threshold = (model.negatives > 0).then(|| fp as f64 / model.negatives as f64);

    // Campaign pairs among labelled accounts.
    let pred: HashMap<String, Option<String>> = labels
        .labels
        .iter()
        .zip(&rows)
        .map(|(l, &r)| (l.account_id.clone(), scores[r].campaign.clone()))
        .collect();
    let truth = labels.true_campaigns();
    let (precision, recall) = pair_precision_recall(&pred, &truth);
    let distinct = |m: &HashMap<String, Option<String>>| {
        m.values()
            .flatten()
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    let campaign_pairs = PairReport {
        precision,
        recall,
        true_campaigns: distinct(&truth),
        found_campaigns: distinct(&pred),
    };

    let mut baselines = BTreeMap::new();
    let volume: Vec<f32> = rows.iter().map(|&r| scores[r].requests as f32).collect();
    baselines.insert(
        "volume".to_string(),
        Metrics::from_scores(&volume, &y, None),
    );
    if let Some(run) = &job.run_dir {
        // Zero-shot: the account's shift from its endpoint's traffic, no training at all.
        let f = read_features(run)?;
        let shift = f.column(Local::ShiftLogZ.name())?.ok_or_else(|| {
            Error::file(
                &run.join(FEATURES),
                "has no shift_log_z feature (written by an older version): score the log again",
            )
        })?;
        let idx = f.rows_by_id();
        labels.check_known(
            &|id| idx.contains_key(id),
            &format!("run {}", run.display()),
        )?;
        // Each zero-shot score as the labelled accounts' column.
        let mut zero_shot = |name: &str, column: &[f32]| {
            let v: Vec<f32> = labels
                .labels
                .iter()
                .map(|l| column[idx[l.account_id.as_str()]])
                .collect();
            baselines.insert(name.to_string(), Metrics::from_scores(&v, &y, None));
        };
        zero_shot("shift (zero-shot)", &shift);
        // The tail test alone (runs scored before it existed have no such column).
        if let Some(tail) = f.column(Local::ShiftTailLogZ.name())? {
            zero_shot("shift tail (zero-shot)", &tail);
        }
    }
    match (&job.run_dir, &job.train_run_dir, &job.train_labels) {
        (Some(run), Some(train_run), Some(train_labels)) => {
            let p = mean_embedding_baseline(&labels, run, train_run, train_labels)?;
            baselines.insert(
                "mean_embedding_logreg".to_string(),
                Metrics::from_scores(&p, &y, None),
            );
        }
        (None, None, None) => {}
        _ => {
            return Err(Error::Usage(
                "the mean-embedding baseline needs the scored run directory, the training run directory and the training labels together".into(),
            ))
        }
    }

    let predicted: Vec<Option<&str>> = rows
        .iter()
        .map(|&r| scores[r].campaign.as_deref())
        .collect();
    let kinds = kind_rows(&labels, &s, &y, &flagged, &predicted);
    Ok(EvalReport {
        scores: job.scores.clone(),
        labels: job.labels.clone(),
        scored_accounts: scores.len(),
        labelled_accounts: labels.len(),
        model,
        campaign_pairs,
        baselines,
        kinds,
    })
}

/// Logistic regression on behaviour vectors (normalised mean prompt embeddings), trained on
/// the training run's labelled accounts; returns probabilities for `labels`' accounts in order.
fn mean_embedding_baseline(
    labels: &Labels,
    run: &std::path::Path,
    train_run: &std::path::Path,
    train_labels: &std::path::Path,
) -> Result<Vec<f32>> {
    let train_labels = Labels::read(train_labels)?;
    let train = read_features(train_run)?;
    let test = read_features(run)?;
    if train.dim != test.dim {
        return Err(Error::Usage(format!(
            "behaviour vectors of {} are {}-d but those of {} are {}-d",
            train_run.display(),
            train.dim,
            run.display(),
            test.dim
        )));
    }
    let gather = |f: &SavedFeatures, l: &Labels, what: &str| -> Result<Vec<f32>> {
        let idx = f.rows_by_id();
        l.check_known(&|id| idx.contains_key(id), what)?;
        Ok(l.labels
            .iter()
            .flat_map(|x| {
                let i = idx[x.account_id.as_str()];
                f.behaviour[i * f.dim..(i + 1) * f.dim].iter().copied()
            })
            .collect())
    };
    let tx = gather(
        &train,
        &train_labels,
        &format!("run {}", train_run.display()),
    )?;
    let ty: Vec<u8> = train_labels.labels.iter().map(|l| l.label).collect();
    let model = logistic_regression(&tx, &ty, train.dim, BASELINE_L2, BASELINE_EPOCHS)?;
    let x = gather(&test, labels, &format!("run {}", run.display()))?;
    model.predict(&x)
}

fn kind_rows(
    labels: &Labels,
    s: &[f32],
    y: &[u8],
    flagged: &[bool],
    predicted: &[Option<&str>],
) -> Vec<KindRow> {
    let mut kinds: BTreeMap<(u8, String), Vec<usize>> = BTreeMap::new();
    for (i, l) in labels.labels.iter().enumerate() {
        if let Some(k) = &l.kind {
            kinds.entry((1 - l.label, k.clone())).or_default().push(i);
        }
    }
    if kinds.is_empty() {
        return Vec::new();
    }
    let negatives: Vec<usize> = (0..y.len()).filter(|&i| y[i] == 0).collect();
    let positives = y.len() - negatives.len();
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
    let top: std::collections::HashSet<usize> = order.into_iter().take(positives).collect();
    kinds
        .into_iter()
        .map(|((inv, kind), members)| {
            let label = 1 - inv;
            let (auroc, recall) = if label == 1 && !negatives.is_empty() {
                let idx: Vec<usize> = members.iter().chain(&negatives).copied().collect();
                let ss: Vec<f32> = idx.iter().map(|&i| s[i]).collect();
                let yy: Vec<u8> = idx.iter().map(|&i| y[i]).collect();
                (
                    crate::classify::auroc(&ss, &yy),
                    recall_at_fpr(&ss, &yy, 0.01),
                )
            } else {
                (None, None)
            };
            KindRow {
                kind,
                label,
                accounts: members.len(),
                auroc,
                recall_at_1pct_fpr: recall,
                flagged: members.iter().filter(|&&i| flagged[i]).count(),
                in_top: members.iter().filter(|i| top.contains(i)).count(),
                in_campaigns: members.iter().filter(|&&i| predicted[i].is_some()).count(),
                pair_recall: (label == 1)
                    .then(|| kind_pair_recall(labels, &members, predicted))
                    .flatten(),
            }
        })
        .collect()
}

/// Of the pairs of `members` in one labelled campaign, the share also in one reported
/// campaign; `None` when no two members share a labelled campaign.
fn kind_pair_recall(labels: &Labels, members: &[usize], predicted: &[Option<&str>]) -> Option<f64> {
    let mut by_truth: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in members {
        if let Some(c) = labels.labels[i].campaign.as_deref() {
            by_truth.entry(c).or_default().push(i);
        }
    }
    let (mut pairs, mut hits) = (0u64, 0u64);
    for group in by_truth.values() {
        let n = group.len() as u64;
        pairs += n * n.saturating_sub(1) / 2;
        let mut found: BTreeMap<&str, u64> = BTreeMap::new();
        for &i in group {
            if let Some(p) = predicted[i] {
                *found.entry(p).or_default() += 1;
            }
        }
        hits += found
            .values()
            .map(|&m| m * m.saturating_sub(1) / 2)
            .sum::<u64>();
    }
    (pairs > 0).then(|| hits as f64 / pairs as f64)
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

impl EvalReport {
    /// The report as a terminal table.
    pub fn render(&self) -> String {
        let m = &self.model;
        let mut s = format!(
            "{} labelled accounts ({} extraction, {} benign) of {} scored\n\n",
            self.labelled_accounts, m.positives, m.negatives, self.scored_accounts
        );
        s += &format!(
            "{:<32} {:>7} {:>7} {:>10} {:>11}\n",
            "scorer", "AUROC", "AP", "R@1%FPR", "R@0.1%FPR"
        );
        let row = |name: &str, m: &Metrics| {
            format!(
                "{:<32} {:>7} {:>7} {:>10} {:>11}\n",
                name,
                opt(m.auroc),
                opt(m.average_precision),
                opt(m.recall_at_1pct_fpr),
                opt(m.recall_at_0_1pct_fpr)
            )
        };
        s += &row("model", m);
        for (name, b) in &self.baselines {
            s += &row(&format!("baseline: {name}"), b);
        }
        s += &format!(
            "\nAt the model's flags: {} flagged ({} true, {} false); precision {}, recall {}, FPR {}\n",
            m.true_positives.unwrap_or(0) + m.false_positives.unwrap_or(0),
            m.true_positives.unwrap_or(0),
            m.false_positives.unwrap_or(0),
            opt(m.precision_at_threshold),
            opt(m.recall_at_threshold),
            opt(m.fpr_at_threshold)
        );
        let c = &self.campaign_pairs;
        s += &format!(
            "Campaign pairs: precision {:.4}, recall {:.4} ({} labelled campaigns, {} found among labelled accounts)\n",
            c.precision, c.recall, c.true_campaigns, c.found_campaigns
        );
        if !self.kinds.is_empty() {
            s += &format!(
                "\n{:<20} {:>5} {:>8} {:>7} {:>10} {:>7} {:>6} {:>12} {:>11}\n",
                "kind",
                "label",
                "accounts",
                "AUROC",
                "R@1%FPR",
                "flagged",
                "in top",
                "in campaigns",
                "pair recall"
            );
            for k in &self.kinds {
                s += &format!(
                    "{:<20} {:>5} {:>8} {:>7} {:>10} {:>7} {:>6} {:>12} {:>11}\n",
                    k.kind,
                    k.label,
                    k.accounts,
                    opt(k.auroc),
                    opt(k.recall_at_1pct_fpr),
                    k.flagged,
                    k.in_top,
                    k.in_campaigns,
                    opt(k.pair_recall)
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Campaign A (4 accounts) is reported as 3 + 1, campaign B (2) is missed, one benign
    /// account is put into a campaign: A's pairs 3 of 6 found, the kind's 3 of 7.
    #[test]
    fn kinds_report_their_campaign_pair_recall_and_benign_accounts_in_campaigns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.jsonl");
        let line = |id: &str, label: u8, campaign: Option<&str>, kind: &str| {
            let c = campaign.map_or(String::new(), |c| format!(",\"campaign\":\"{c}\""));
            format!("{{\"account_id\":\"{id}\",\"label\":{label}{c},\"kind\":\"{kind}\"}}\n")
        };
        let mut text = String::new();
        for (i, c) in ["A", "A", "A", "A", "B", "B"].iter().enumerate() {
            text += &line(&format!("x{i}"), 1, Some(c), "sweep");
        }
        text += &line("h0", 0, None, "human");
        text += &line("h1", 0, None, "human");
        std::fs::write(&path, text).unwrap();
        let labels = Labels::read(&path).unwrap();
        let predicted = [
            Some("c1"),
            Some("c1"),
            Some("c1"),
            Some("c2"),
            None,
            None,
            Some("c2"),
            None,
        ];
        let y: Vec<u8> = labels.labels.iter().map(|l| l.label).collect();
        let s: Vec<f32> = y.iter().map(|&l| l as f32).collect();
        let rows = kind_rows(&labels, &s, &y, &[false; 8], &predicted);
        let sweep = rows.iter().find(|r| r.kind == "sweep").unwrap();
        assert_eq!(sweep.in_campaigns, 4);
        assert!((sweep.pair_recall.unwrap() - 3.0 / 7.0).abs() < 1e-12);
        let human = rows.iter().find(|r| r.kind == "human").unwrap();
        assert_eq!((human.in_campaigns, human.pair_recall), (1, None));
    }
}
