//! Report: what `score` writes and `eval` reads back.
//!
//! `scores.jsonl` follows the DESIGN.md contract field for field (one line per account, most
//! suspicious first); `campaigns.jsonl` lists each campaign with its members and what they
//! share. Reasons are plain sentences built from the same feature values the classifier saw,
//! so an analyst can check them against the raw log; they explain, they do not decide (the
//! score does).
//!
//! Files are written to a `.partial` name and renamed, so a reader never sees half a report.

use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::campaign::{Cross, LinkGroup, Linking};
use crate::error::{Error, IoContext, Result};
use crate::features::Local;
use crate::ingest::{for_each_line, parse_json_line};

/// Neighbours listed per account in `scores.jsonl`.
pub const SCORE_NEIGHBORS: usize = 5;
/// Most reasons given per account.
pub const MAX_REASONS: usize = 6;

/// One line of `scores.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreLine {
    pub account_id: String,
    /// Extraction probability, 0..1.
    pub score: f32,
    /// `score >= ` the model's threshold.
    pub flagged: bool,
    pub requests: u64,
    pub campaign: Option<String>,
    pub neighbors: Vec<NeighborOut>,
    /// The account's strongest links (at most [`SCORE_NEIGHBORS`]) and the signals that made
    /// them; absent from files written before links were recorded.
    #[serde(default)]
    pub links: Vec<LinkOut>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeighborOut {
    pub account_id: String,
    pub similarity: f32,
}

/// One link of an account, as `scores.jsonl` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkOut {
    pub account_id: String,
    /// "form", "infrastructure" (what linked them), "template" (a shared template in the
    /// same hours with no footprint in common: attaches an account to a group, never forms
    /// one), "same ground" (close behaviour and covered prompts, recorded as evidence).
    pub by: Vec<String>,
    /// Template-signature Jaccard, footprint overlap, 5-minute synchrony, 0..1.
    pub form: f32,
    pub infrastructure: f32,
    pub sync: f32,
}

impl LinkOut {
    /// The strongest links of `links` (by the larger of form and footprint overlap).
    pub fn top(links: &[crate::campaign::Link], ids: &[String]) -> Vec<LinkOut> {
        let round = |v: f32| (v * 10_000.0).round() / 10_000.0;
        let mut sorted: Vec<&crate::campaign::Link> = links.iter().collect();
        sorted.sort_by(|x, y| {
            let s = |l: &crate::campaign::Link| l.form.jaccard.max(l.infra.overlap);
            s(y).total_cmp(&s(x)).then(x.other.cmp(&y.other))
        });
        sorted
            .into_iter()
            .take(SCORE_NEIGHBORS)
            .map(|l| {
                let mut by = Vec::new();
                if l.by_form {
                    by.push("form".to_string());
                }
                if l.by_template {
                    by.push("template".to_string());
                }
                if l.by_infra {
                    by.push("infrastructure".to_string());
                }
                if l.by_behaviour {
                    by.push("same ground".to_string());
                }
                LinkOut {
                    account_id: ids[l.other].clone(),
                    by,
                    form: round(l.form.jaccard),
                    infrastructure: round(l.infra.overlap),
                    sync: round(l.sync),
                }
            })
            .collect()
    }
}

/// One line of `campaigns.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignLine {
    pub id: String,
    pub size: usize,
    pub requests: usize,
    /// Members flagged on their own scores (at least half, or the group is not reported; with
    /// link pooling every member is flagged in `scores.jsonl`).
    pub flagged_members: usize,
    /// Mean and highest of the members' own scores (before link pooling).
    pub mean_score: f32,
    pub max_score: f32,
    /// Mean behaviour-vector similarity over the campaign's links.
    pub mean_similarity: f32,
    /// Mean prompt coverage over the campaign's links.
    pub mean_coverage: f32,
    pub shared_system_prompt_accounts: usize,
    /// Links inside the campaign, by the signal that made them (a link can be both).
    pub links: LinkCounts,
    /// Members that joined by template links alone (no network, client or system prompt in
    /// common with any member they are linked to).
    pub attached: usize,
    /// Shift of the members' pooled prompts from the endpoint's usual traffic: p-value and
    /// z-score of the MMD test (`features::shift`).
    pub shift_p: f32,
    pub shift_z: f32,
    /// Mean template-signature Jaccard, footprint overlap (networks, client, system prompt)
    /// and activity synchrony (share of 5-minute buckets active together), 0..1, over the
    /// campaign's links.
    pub mean_form_jaccard: f32,
    pub mean_infra_overlap: f32,
    pub mean_sync: f32,
    pub first_seen: String,
    pub last_seen: String,
    /// What the members share, in words.
    pub shared: Vec<String>,
    /// Member account ids, most suspicious first.
    pub members: Vec<String>,
}

/// A campaign's links counted by signal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LinkCounts {
    pub total: usize,
    /// Made by a shared template signature.
    pub form: usize,
    /// A shared template with no footprint in common (attaches accounts, never forms groups).
    pub template: usize,
    /// Made by shared networks, client or system prompt.
    pub infrastructure: usize,
    /// Links whose accounts also cover the same ground (close behaviour, matching prompts).
    pub same_ground: usize,
}

impl LinkCounts {
    pub fn of(camp: &LinkGroup) -> Self {
        LinkCounts {
            total: camp.links,
            form: camp.form_links,
            template: camp.template_links,
            infrastructure: camp.infra_links,
            same_ground: camp.same_ground_links,
        }
    }
}

/// Write `items` as JSONL to `path` atomically (temporary file, then rename).
pub fn write_jsonl<T: Serialize>(path: &Path, items: impl IntoIterator<Item = T>) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).at(parent)?;
    }
    let tmp = path.with_extension("jsonl.partial");
    let mut w = BufWriter::new(std::fs::File::create(&tmp).at(&tmp)?);
    for item in items {
        serde_json::to_writer(&mut w, &item)
            .map_err(|e| Error::file(&tmp, format!("cannot serialise: {e}")))?;
        w.write_all(b"\n").at(&tmp)?;
    }
    w.into_inner()
        .map_err(|e| e.into_error())
        .at(&tmp)?
        .sync_all()
        .at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
}

/// Read a `scores.jsonl` back, validating every line (file:line:field errors).
pub fn read_scores(path: &Path) -> Result<Vec<ScoreLine>> {
    let mut out: Vec<ScoreLine> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for_each_line(path, |n, bytes| {
        let Some(s) = parse_json_line::<ScoreLine>(path, n, bytes)? else {
            return Ok(());
        };
        if !(0.0..=1.0).contains(&s.score) {
            return Err(Error::input(
                path,
                n,
                "score",
                format!("{} is outside 0..1", s.score),
            ));
        }
        if let Some(first) = seen.insert(s.account_id.clone(), n) {
            return Err(Error::input(
                path,
                n,
                "account_id",
                format!("account {:?} already scored on line {first}", s.account_id),
            ));
        }
        out.push(s);
        Ok(())
    })?;
    if out.is_empty() {
        return Err(Error::file(path, "no scores in file"));
    }
    Ok(out)
}

fn pct(v: f32) -> String {
    format!("{:.0}%", 100.0 * v)
}

/// Human-readable reasons for account `a`, strongest evidence first: campaign membership
/// (`campaign`: the reported id and its link group) and links, shared system prompts, then the
/// account's own markers and rhythm. Empty when nothing stands out.
pub fn reasons(
    a: usize,
    requests: usize,
    local_row: &[f32],
    linking: &Linking,
    campaign: Option<(&str, &LinkGroup)>,
) -> Vec<String> {
    let l = |f: Local| local_row[f];
    let c = |f: Cross| linking.row(a)[f];
    let mut out = Vec::new();
    if let Some((id, camp)) = campaign {
        out.push(format!(
            "member of campaign {id} ({} accounts, {} requests, behaviour similarity {:.2})",
            camp.size, camp.requests, camp.mean_similarity
        ));
    }
    let links = &linking.links[a];
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let form: Vec<_> = links.iter().filter(|l| l.by_form).collect();
    if !form.is_empty() {
        out.push(format!(
            "uses the same prompt template as {} other account{} (mean signature overlap {})",
            form.len(),
            plural(form.len()),
            pct(form.iter().map(|l| l.form.jaccard).sum::<f32>() / form.len() as f32)
        ));
    }
    let template: Vec<_> = links.iter().filter(|l| l.by_template).collect();
    if !template.is_empty() {
        out.push(format!(
            "sends the same prompt template in the same hours as {} other account{}, with no network or client in common",
            template.len(),
            plural(template.len()),
        ));
    }
    let infra: Vec<_> = links.iter().filter(|l| l.by_infra).collect();
    if !infra.is_empty() {
        let nets = infra.iter().filter(|l| l.infra.networks > 0).count();
        out.push(format!(
            "shares infrastructure with {} other account{} ({} on the same networks, mean footprint overlap {})",
            infra.len(),
            plural(infra.len()),
            nets,
            pct(infra.iter().map(|l| l.infra.overlap).sum::<f32>() / infra.len() as f32)
        ));
    }
    let ground: Vec<_> = links.iter().filter(|l| l.by_behaviour).collect();
    if !ground.is_empty() {
        out.push(format!(
            "prompts cover the same ground as {} linked account{} (mean coverage {})",
            ground.len(),
            plural(ground.len()),
            pct(ground.iter().map(|l| l.coverage).sum::<f32>() / ground.len() as f32)
        ));
    }
    // Shift: p = 10^-shift_log_p; the floor is 1 / (null draws + 1).
    if l(Local::ShiftLogP) >= 2.0 && l(Local::ShiftLogZ) >= 6f32.ln() {
        out.push(format!(
            "its prompts are unlike the endpoint's usual traffic (shift test p = {:.3}, z = {:.0})",
            10f32.powf(-l(Local::ShiftLogP)),
            l(Local::ShiftLogZ).exp() - 1.0
        ));
    }
    // Tail: z = exp(shift_tail_log_z) - 1 against the endpoint's typical account.
    if l(Local::ShiftTailLogZ) >= 6f32.ln() && l(Local::ShiftTail) >= 0.15 {
        out.push(format!(
            "{} of its prompts are atypical of the endpoint's usual traffic, far more than its typical account's (tail z = {:.0})",
            pct(l(Local::ShiftTail)),
            l(Local::ShiftTailLogZ).exp() - 1.0
        ));
    }
    let sharing = c(Cross::LogSystemPromptNeighbors).exp().round() as usize - 1;
    if sharing >= 2 {
        out.push(format!(
            "{sharing} of its {} nearest accounts use the same system prompt",
            linking.neighbors[a].len()
        ));
    }
    if c(Cross::SyncWithLinks) >= 0.5 {
        out.push(format!(
            "active in the same hours as its linked accounts ({} of its hours)",
            pct(c(Cross::SyncWithLinks))
        ));
    }
    let markers = [
        (Local::MarkerReasoning, "asks for step-by-step reasoning"),
        (
            Local::MarkerGrading,
            "asks the model to grade or score answers",
        ),
        (
            Local::MarkerDataGeneration,
            "asks for generated tasks or training data",
        ),
        (
            Local::MarkerIdentity,
            "asks who the model is or who made it",
        ),
        (
            Local::MarkerDatasetForm,
            "sends dataset-style prompts (Q:/A:, options)",
        ),
        (Local::MarkerFormat, "demands a fixed output format"),
        (Local::MarkerLongAnswer, "asks for long, detailed answers"),
    ];
    for (name, text) in markers {
        let v = l(name);
        if v >= 0.3 && requests >= 5 {
            out.push(format!("{text} in {} of requests", pct(v)));
        }
    }
    if requests >= 10 && l(Local::TemplateRate) >= 0.5 {
        out.push(format!(
            "{} of its prompts reuse one of its own templates",
            pct(l(Local::TemplateRate))
        ));
    }
    if requests >= 10 && l(Local::GapRegularity) >= 0.5 {
        out.push(format!(
            "machine-regular timing: {} of gaps within 20% of the median gap",
            pct(l(Local::GapRegularity))
        ));
    }
    if requests >= 20 && l(Local::SingleShotRate) >= 0.95 {
        out.push(format!(
            "{} of requests are single-shot (no follow-up turns)",
            pct(l(Local::SingleShotRate))
        ));
    }
    out.truncate(MAX_REASONS);
    out
}

/// What a campaign's members share, in words.
pub fn shared(camp: &LinkGroup, members_local: &[&[f32]]) -> Vec<String> {
    let mut out = vec![format!(
        "prompt coverage {} and behaviour similarity {:.2} across links",
        pct(camp.mean_coverage),
        camp.mean_similarity
    )];
    if camp.form_links > 0 {
        out.push(format!(
            "{} of {} links from a shared prompt template (mean signature overlap {})",
            camp.form_links,
            camp.links,
            pct(camp.mean_form_jaccard)
        ));
    }
    if camp.attached > 0 {
        out.push(format!(
            "{} member{} joined by the shared template alone ({} template links, no network or client in common)",
            camp.attached,
            if camp.attached == 1 { "" } else { "s" },
            camp.template_links
        ));
    }
    if camp.shift_p <= 0.01 {
        out.push(format!(
            "members' prompts together unlike the endpoint's usual traffic (shift test p = {:.3}, z = {:.0})",
            camp.shift_p, camp.shift_z
        ));
    }
    if camp.infra_links > 0 {
        out.push(format!(
            "{} of {} links from shared infrastructure (mean footprint overlap {})",
            camp.infra_links,
            camp.links,
            pct(camp.mean_infra_overlap)
        ));
    }
    if camp.mean_sync >= 0.2 {
        out.push(format!(
            "linked accounts active in the same 5 minutes {} of the time",
            pct(camp.mean_sync)
        ));
    }
    if camp.shared_system_prompt_accounts >= 2 {
        out.push(format!(
            "{} of {} accounts use the same system prompt",
            camp.shared_system_prompt_accounts, camp.size
        ));
    }
    let mean = |f: Local| {
        members_local.iter().map(|r| r[f]).sum::<f32>() / members_local.len().max(1) as f32
    };
    for (name, text) in [
        (Local::MarkerReasoning, "step-by-step reasoning requested"),
        (Local::MarkerGrading, "grading or scoring requested"),
        (
            Local::MarkerDataGeneration,
            "generated tasks or data requested",
        ),
        (Local::MarkerIdentity, "identity probes"),
        (Local::MarkerDatasetForm, "dataset-style prompts"),
        (Local::MarkerCode, "code in prompts"),
        (Local::MarkerFormat, "fixed output format demanded"),
    ] {
        let v = mean(name);
        if v >= 0.3 {
            out.push(format!("{text} in {} of requests", pct(v)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::CROSS_FEATURES;
    use crate::features::LOCAL_FEATURES;

    /// A form link to `other` whose accounts also cover the same ground.
    fn link(other: usize, similarity: f32, coverage: f32) -> crate::campaign::Link {
        crate::campaign::Link {
            other,
            similarity,
            coverage,
            form: crate::campaign::FormOverlap {
                jaccard: 0.8,
                shared: 10,
            },
            infra: Default::default(),
            sync: 0.0,
            co_activity: 1.0,
            by_behaviour: true,
            by_form: true,
            by_template: false,
            by_infra: false,
        }
    }

    fn context(links: Vec<Vec<crate::campaign::Link>>, cross: Vec<f32>) -> Linking {
        let n = links.len();
        Linking {
            neighbors: vec![Vec::new(); n],
            links,
            group_of: vec![Some(0); n],
            groups: vec![LinkGroup {
                id: "G0001".into(),
                members: (0..n).collect(),
                size: n,
                requests: 120,
                mean_similarity: 0.91,
                mean_coverage: 0.8,
                shared_system_prompt_accounts: n,
                links: 1,
                form_links: 1,
                template_links: 0,
                infra_links: 0,
                same_ground_links: 1,
                attached: 0,
                mean_form_jaccard: 0.8,
                mean_infra_overlap: 0.0,
                mean_sync: 0.0,
                shift_p: 1.0,
                shift_z: 0.0,
            }],
            x: cross,
        }
    }

    #[test]
    fn reasons_name_the_campaign_links_and_markers_strongest_first() {
        let d = CROSS_FEATURES.len();
        let mut x = vec![0f32; 2 * d];
        x[Cross::LinkCoverage as usize] = 0.75;
        x[Cross::LogSystemPromptNeighbors as usize] = (3f32).ln();
        let mut linking = context(vec![vec![link(1, 0.9, 0.75)], vec![link(0, 0.9, 0.75)]], x);
        linking.neighbors[0] = vec![(1, 0.9), (2, 0.7), (3, 0.6), (4, 0.5)];
        let mut local_row = vec![0f32; LOCAL_FEATURES.len()];
        local_row[Local::MarkerReasoning as usize] = 0.8;
        local_row[Local::MarkerGrading as usize] = 0.1;
        let r = reasons(
            0,
            40,
            &local_row,
            &linking,
            Some(("C0007", &linking.groups[0])),
        );
        assert_eq!(
            r,
            vec![
                "member of campaign C0007 (2 accounts, 120 requests, behaviour similarity 0.91)",
                "uses the same prompt template as 1 other account (mean signature overlap 80%)",
                "prompts cover the same ground as 1 linked account (mean coverage 75%)",
                "2 of its 4 nearest accounts use the same system prompt",
                "asks for step-by-step reasoning in 80% of requests",
            ]
        );
        // Not a reported campaign, few requests: no campaign line, markers not over-read.
        let r = reasons(0, 3, &local_row, &linking, None);
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(r[0].starts_with("uses the same prompt template"));
    }

    #[test]
    fn scores_file_errors_name_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("scores.jsonl");
        let ok = r#"{"account_id":"a","score":0.5,"flagged":false,"requests":3,"campaign":null,"neighbors":[],"reasons":[]}"#;
        for (text, want) in [
            (
                format!("{ok}\n{{\"account_id\":\"b\"}}"),
                ":2: score: expected a JSON object: missing field `score`",
            ),
            (ok.replace("0.5", "1.5"), ":1: score: 1.5 is outside 0..1"),
            (
                format!("{ok}\n{ok}"),
                ":2: account_id: account \"a\" already scored on line 1",
            ),
            (String::new(), "no scores in file"),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = read_scores(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        std::fs::write(&p, ok).unwrap();
        assert_eq!(read_scores(&p).unwrap()[0].account_id, "a");
    }
}
