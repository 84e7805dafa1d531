//! The `score` job: classify every account of a run, decide which link groups are campaigns,
//! write `scores.jsonl`, `campaigns.jsonl` and the run directory's `score.json`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::detect::{detect, ensure_run, peak_rss_mib, save_features, RunSource, Stage, Stages};
use crate::campaign::{self, CampaignParams, Linking};
use crate::classify::Model;
use crate::embed::ModelFiles;
use crate::error::{Error, IoContext, Result};
use crate::features::normal::{NormalTraffic, NORMAL_TRAFFIC_FILE};
use crate::features::shift::ShiftParams;
use crate::features::Normal;
use crate::report::{self, CampaignLine, NeighborOut, ScoreLine, SCORE_NEIGHBORS};
use crate::run::SCORE_STATS;

/// The `score` job.
pub struct ScoreJob<'a> {
    pub source: RunSource<'a>,
    pub out: PathBuf,
    pub campaigns_out: PathBuf,
    pub model_dir: PathBuf,
    pub params: CampaignParams,
    /// A second model to score the same accounts with, and where to write the accounts whose
    /// flag differs between the two (JSONL, [`FlagChange`]).
    pub compare: Option<(PathBuf, PathBuf)>,
    /// A folder with normal traffic (`normal_traffic.safetensors`, from `reference` or another
    /// model) whose endpoints replace the model's for those endpoints.
    pub reference: Option<PathBuf>,
}

/// An account the two models of `score --compare-model` flag differently.
#[derive(Debug, Clone, Serialize)]
pub struct FlagChange {
    pub account_id: String,
    pub score: f32,
    pub flagged: bool,
    pub other_score: f32,
    pub other_flagged: bool,
}

/// What `score` found, for the terminal summary.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreSummary {
    pub accounts: usize,
    pub requests: u64,
    pub flagged: usize,
    pub threshold: f32,
    pub model_dir: PathBuf,
    pub run_dir: PathBuf,
    pub scores: PathBuf,
    pub campaigns_file: PathBuf,
    pub stages: Vec<Stage>,
    /// The highest-scoring accounts (at most 10).
    #[serde(skip)]
    pub top: Vec<ScoreLine>,
    /// Campaigns, largest first (at most 10).
    #[serde(skip)]
    pub campaigns: Vec<CampaignLine>,
    pub campaign_count: usize,
    /// With a comparison model: it, the file of differences, and how many accounts differ.
    pub compare_model: Option<PathBuf>,
    pub compare_file: Option<PathBuf>,
    pub flag_changes: usize,
    /// The differences, largest score change first (at most 10).
    #[serde(skip)]
    pub top_changes: Vec<FlagChange>,
}

impl ScoreSummary {
    /// A short human-readable summary: counts, top accounts, campaigns, stage times.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{} accounts, {} requests: {} flagged at threshold {:.3}, {} campaign{}\n",
            self.accounts,
            self.requests,
            self.flagged,
            self.threshold,
            self.campaign_count,
            if self.campaign_count == 1 { "" } else { "s" }
        );
        s += "\nTop accounts\n";
        s += &format!(
            "  {:<28} {:>6} {:>4} {:>8} {:<9} reason\n",
            "account", "score", "flag", "requests", "campaign"
        );
        for l in &self.top {
            s += &format!(
                "  {:<28} {:>6.3} {:>4} {:>8} {:<9} {}\n",
                truncate(&l.account_id, 28),
                l.score,
                if l.flagged { "yes" } else { "" },
                l.requests,
                l.campaign.as_deref().unwrap_or("-"),
                l.reasons.first().map(String::as_str).unwrap_or("")
            );
        }
        if !self.campaigns.is_empty() {
            s += "\nCampaigns\n";
            for c in &self.campaigns {
                s += &format!(
                    "  {} {} accounts ({} flagged), {} requests, mean score {:.2}: {}\n",
                    c.id,
                    c.size,
                    c.flagged_members,
                    c.requests,
                    c.mean_score,
                    c.shared.join("; ")
                );
            }
        }
        if let (Some(other), Some(file)) = (&self.compare_model, &self.compare_file) {
            s += &format!(
                "\n{} account{} flagged differently by {} (written to {})\n",
                self.flag_changes,
                if self.flag_changes == 1 { "" } else { "s" },
                other.display(),
                file.display()
            );
            for c in &self.top_changes {
                s += &format!(
                    "  {:<28} {:>6.3} {:<4} -> {:>6.3} {}\n",
                    truncate(&c.account_id, 28),
                    c.score,
                    if c.flagged { "yes" } else { "no" },
                    c.other_score,
                    if c.other_flagged { "yes" } else { "no" }
                );
            }
        }
        s += "\nStages: ";
        s += &self
            .stages
            .iter()
            .map(|st| format!("{} {:.2}s", st.name, st.seconds))
            .collect::<Vec<_>>()
            .join(", ");
        s += &format!(
            "\nWrote {} and {}; run directory {}\n",
            self.scores.display(),
            self.campaigns_file.display(),
            self.run_dir.display()
        );
        s
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The normal traffic a model folder's features are computed against: its own sample, or for
/// a model without one the log's own reference.
pub(super) fn normal_of(normal: Option<&NormalTraffic>) -> Normal<'_> {
    normal.map_or(Normal::Log, Normal::Given)
}

/// The settings that define the cross-account features, as model.json stores them under
/// `linking`: the linking settings, and under `shift` those of the shift test.
pub fn linking_json(params: &campaign::CampaignParams) -> serde_json::Value {
    let mut v = serde_json::to_value(params).expect("plain settings serialise");
    v["shift"] = serde_json::to_value(ShiftParams::default()).expect("plain settings serialise");
    v
}

/// Loads the classifier in `dir` and refuses it unless its feature schema is `schema` and its
/// settings are this build's (`linking_json(params)`). Models saved before model.json recorded
/// the shift test's settings were all trained with the values below (unchanged since the test
/// was added), so a model without them reads as having those.
pub(super) fn load_model(
    dir: &Path,
    schema: &[String],
    params: &campaign::CampaignParams,
) -> Result<Model> {
    let mut model = Model::load(dir, schema)?;
    if let Some(linking) = model.linking.as_object_mut() {
        linking.entry("shift").or_insert_with(|| {
            serde_json::json!({"reference": 256, "pool": 512, "draws": 400, "min_endpoint_prompts": 64})
        });
    }
    model.check_linking(dir, &linking_json(params))?;
    Ok(model)
}

/// Run `score` end to end: embed (or reuse), detect, classify, write `scores.jsonl` and
/// `campaigns.jsonl`.
pub fn score(job: &ScoreJob) -> Result<ScoreSummary> {
    // The model is loaded before any embedding where the embedding width is known, so a
    // wrong --model fails in a second rather than after the embedding.
    let early = match ModelFiles::locate(&job.source.model_dir).and_then(|f| f.config()) {
        Ok(cfg) => Some((
            load_model(
                &job.model_dir,
                &campaign::feature_names(cfg.hidden_size),
                &job.params,
            )?,
            NormalTraffic::load(&job.model_dir, cfg.hidden_size)?,
        )),
        Err(_) => None,
    };
    let (run, embed_seconds) = ensure_run(&job.source)?;
    let embed_stage = Stage {
        name: "embed".into(),
        seconds: embed_seconds,
        peak_rss_mib: peak_rss_mib(),
    };
    let dim = run.embeddings.dims2()?.1;
    let (early, normal) = match early {
        Some((m, n)) => (Some(m), n),
        None => (None, NormalTraffic::load(&job.model_dir, dim)?),
    };
    let given = match &job.reference {
        Some(dir) => Some(NormalTraffic::load(dir, dim)?.ok_or_else(|| {
            Error::file(
                &dir.join(NORMAL_TRAFFIC_FILE),
                "not found: give a folder written by `distillguard reference` or `train`",
            )
        })?),
        None => None,
    };
    let overlay = |n: Option<NormalTraffic>| match (&given, n) {
        (Some(g), Some(n)) => Some(n.overlaid(g)),
        (Some(g), None) => Some(g.clone()),
        (None, n) => n,
    };
    let normal = overlay(normal);
    if let Some(g) = &given {
        job.source.progress.note(&format!(
            "normal traffic of {} endpoint{} from {}",
            g.endpoints.len(),
            if g.endpoints.len() == 1 { "" } else { "s" },
            job.reference.as_ref().expect("given").display()
        ));
    }
    let detection = detect(
        &run,
        &job.params,
        normal_of(normal.as_ref()),
        &job.source.device,
        job.source.progress,
    )?;
    let mut stages = vec![embed_stage];
    stages.extend(detection.stages.iter().cloned());

    let mut timer = Stages::new(job.source.progress);
    timer.start("classify");
    let model = match early {
        Some(m) if m.schema == detection.names => m,
        _ => load_model(&job.model_dir, &detection.names, &job.params)?,
    };
    // Own scores, and the scores the model flags by (pooled over link groups when the model
    // pools: classify::pool).
    // `views`: (reads every input, blind to the behaviour vector), said of each flagged account.
    let (own, views) = model.predict_views(&detection.x)?;
    let links = &detection.linking.group_of;
    let probs = model.pooled(&own, links);
    let other = match &job.compare {
        Some((dir, _)) => {
            let other = load_model(dir, &detection.names, &job.params)?;
            // A model with other normal traffic was trained on other features: they are
            // computed again for it.
            let other_normal = overlay(NormalTraffic::load(dir, dim)?);
            let p = if other_normal == normal {
                other.score(&detection.x, links)?
            } else {
                let again = detect(
                    &run,
                    &job.params,
                    normal_of(other_normal.as_ref()),
                    &job.source.device,
                    &crate::progress::Silent,
                )?;
                other.score(&again.x, &again.linking.group_of)?
            };
            Some((other, p))
        }
        None => None,
    };
    timer.start("report");
    let n = detection.accounts.len();
    // Reported on own scores; the same groups as on pooled ones (a group's members pass the
    // threshold after pooling exactly when half of them pass it before).
    let groups = reported_campaigns(&detection.linking, &own, &model);
    let group_of: Vec<Option<String>> = detection
        .linking
        .group_of
        .iter()
        .map(|g| g.and_then(|g| groups[g].clone()))
        .collect();
    save_features(&run.dir, &detection, &group_of)?;
    // Most suspicious first, ties by account id (a stable, reproducible order).
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| {
        probs[y]
            .total_cmp(&probs[x])
            .then(detection.accounts.ids[x].cmp(&detection.accounts.ids[y]))
    });
    let mut rank = vec![0usize; n];
    for (r, &a) in order.iter().enumerate() {
        rank[a] = r;
    }
    let lines: Vec<ScoreLine> = order
        .iter()
        .map(|&a| {
            let requests = detection.accounts.requests[a].len();
            let campaign = detection.linking.group_of[a]
                .zip(group_of[a].as_deref())
                .map(|(g, id)| (id, &detection.linking.groups[g]));
            ScoreLine {
                account_id: detection.accounts.ids[a].clone(),
                score: probs[a],
                flagged: model.flags(probs[a]),
                requests: requests as u64,
                campaign: group_of[a].clone(),
                neighbors: detection.linking.neighbors[a]
                    .iter()
                    .take(SCORE_NEIGHBORS)
                    .map(|&(b, s)| NeighborOut {
                        account_id: detection.accounts.ids[b].clone(),
                        similarity: (s * 10_000.0).round() / 10_000.0,
                    })
                    .collect(),
                links: report::LinkOut::top(&detection.linking.links[a], &detection.accounts.ids),
                reasons: {
                    let in_campaign = campaign.is_some();
                    let mut r = report::reasons(
                        a,
                        requests,
                        detection.local.row(a),
                        &detection.linking,
                        campaign,
                    );
                    if probs[a] > own[a] {
                        let size = detection.linking.group_of[a]
                            .map_or(0, |g| detection.linking.groups[g].size);
                        // After the campaign line, which names the group.
                        r.insert(
                            usize::from(in_campaign),
                            format!(
                                "scored with its link group: half of its {size} linked accounts \
                                 score {:.3} or more (its own score {:.3})",
                                probs[a], own[a]
                            ),
                        );
                    }
                    if let (Some(v), true) = (&views, model.flags(probs[a])) {
                        r.push(format!(
                            "by its behaviour and coordination alone it scores {:.3}; \
                             reading what it asks about too, {:.3}",
                            v.blind[a], v.topic[a]
                        ));
                    }
                    r
                },
            }
        })
        .collect();
    let campaigns: Vec<CampaignLine> = detection
        .linking
        .groups
        .iter()
        .zip(&groups)
        .filter_map(|(c, id)| id.as_ref().map(|id| (c, id)))
        .map(|(c, id)| {
            let mut members = c.members.clone();
            members.sort_by_key(|&m| rank[m]);
            // Own scores: what made the group a campaign.
            let scores: Vec<f32> = members.iter().map(|&m| own[m]).collect();
            let ts = members
                .iter()
                .flat_map(|&m| detection.accounts.requests[m].iter().map(|q| q.ts_ms));
            let (first, last) = ts.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
            let rows: Vec<&[f32]> = members.iter().map(|&m| detection.local.row(m)).collect();
            CampaignLine {
                id: id.clone(),
                size: c.size,
                requests: c.requests,
                flagged_members: members.iter().filter(|&&m| model.flags(own[m])).count(),
                mean_score: scores.iter().sum::<f32>() / scores.len().max(1) as f32,
                max_score: scores.iter().copied().fold(0.0, f32::max),
                mean_similarity: c.mean_similarity,
                mean_coverage: c.mean_coverage,
                shared_system_prompt_accounts: c.shared_system_prompt_accounts,
                links: report::LinkCounts::of(c),
                attached: c.attached,
                shift_p: c.shift_p,
                shift_z: c.shift_z,
                mean_form_jaccard: c.mean_form_jaccard,
                mean_infra_overlap: c.mean_infra_overlap,
                mean_sync: c.mean_sync,
                first_seen: rfc3339(first),
                last_seen: rfc3339(last),
                shared: report::shared(c, &rows),
                members: members
                    .iter()
                    .map(|&m| detection.accounts.ids[m].clone())
                    .collect(),
            }
        })
        .collect();
    report::write_jsonl(&job.out, &lines)?;
    report::write_jsonl(&job.campaigns_out, &campaigns)?;
    let mut changes: Vec<FlagChange> = Vec::new();
    if let (Some((other, p)), Some((_, file))) = (&other, &job.compare) {
        changes = order
            .iter()
            .filter(|&&a| model.flags(probs[a]) != other.flags(p[a]))
            .map(|&a| FlagChange {
                account_id: detection.accounts.ids[a].clone(),
                score: probs[a],
                flagged: model.flags(probs[a]),
                other_score: p[a],
                other_flagged: other.flags(p[a]),
            })
            .collect();
        report::write_jsonl(file, &changes)?;
        changes.sort_by(|x, y| {
            (y.other_score - y.score)
                .abs()
                .total_cmp(&(x.other_score - x.score).abs())
                .then(x.account_id.cmp(&y.account_id))
        });
    }
    stages.extend(timer.into_stages());

    let summary = ScoreSummary {
        accounts: n,
        requests: run.manifest.input.requests,
        flagged: lines.iter().filter(|l| l.flagged).count(),
        threshold: model.threshold,
        model_dir: job.model_dir.clone(),
        run_dir: run.dir.clone(),
        scores: job.out.clone(),
        campaigns_file: job.campaigns_out.clone(),
        stages,
        top: lines.into_iter().take(10).collect(),
        campaign_count: campaigns.len(),
        campaigns: campaigns.into_iter().take(10).collect(),
        compare_model: job.compare.as_ref().map(|c| c.0.clone()),
        compare_file: job.compare.as_ref().map(|c| c.1.clone()),
        flag_changes: changes.len(),
        top_changes: changes.into_iter().take(10).collect(),
    };
    let stats = run.dir.join(SCORE_STATS);
    let mut bytes = serde_json::to_vec_pretty(&summary)
        .map_err(|e| Error::file(&stats, format!("cannot serialise: {e}")))?;
    bytes.push(b'\n');
    std::fs::write(&stats, bytes).at(&stats)?;
    Ok(summary)
}

/// Which link groups are reported as campaigns, and under which id: those where at least
/// half the members are flagged, numbered C0001, C0002, ... largest first. A group of
/// unflagged accounts (one company's service accounts, say) is linked evidence, not a
/// campaign, and reporting it as one would send analysts after customers.
fn reported_campaigns(linking: &Linking, probs: &[f32], model: &Model) -> Vec<Option<String>> {
    let mut next = 0;
    linking
        .groups
        .iter()
        .map(|c| {
            let flagged = c.members.iter().filter(|&&m| model.flags(probs[m])).count();
            (2 * flagged >= c.size).then(|| {
                next += 1;
                format!("C{next:04}")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{train, Dataset, TrainOptions};

    /// A small model saved with `linking` as its settings, in `dir`.
    fn saved_model(dir: &Path, linking: serde_json::Value) -> Vec<String> {
        let d = 3;
        let mut data = Dataset {
            features: (0..d).map(|j| format!("f{j}")).collect(),
            ..Dataset::default()
        };
        for i in 0..40 {
            let pos = i % 4 == 0;
            data.x
                .extend((0..d).map(|j| j as f32 + if pos { 3.0 } else { (i % 7) as f32 * 0.1 }));
            data.y.push(pos as u8);
            data.names.push(format!("a{i}"));
            data.groups.push(if pos {
                format!("c{}", i / 8)
            } else {
                format!("a{i}")
            });
        }
        let opts = TrainOptions {
            epochs: 3,
            repeats: 1,
            folds: 2,
            ..TrainOptions::default()
        };
        let mut model = train(&data, &opts).unwrap();
        model.linking = linking;
        model.save(dir).unwrap();
        data.features
    }

    #[test]
    fn models_are_loaded_only_with_this_builds_feature_settings() {
        let params = CampaignParams::default();
        let dir = tempfile::tempdir().unwrap();
        let schema = saved_model(dir.path(), linking_json(&params));
        assert!(load_model(dir.path(), &schema, &params).is_ok());

        // Saved before model.json recorded the shift test's settings: read as the only ones
        // there were.
        let mut old = linking_json(&params);
        old.as_object_mut().unwrap().remove("shift");
        saved_model(dir.path(), old);
        assert!(load_model(dir.path(), &schema, &params).is_ok());

        // Other shift settings change the features: refused, naming the setting.
        let mut other = linking_json(&params);
        other["shift"]["draws"] = 100.into();
        saved_model(dir.path(), other);
        let e = load_model(dir.path(), &schema, &params).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        assert!(e.to_string().contains("shift.draws"), "{e}");
    }
}
