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

use crate::campaign::{Campaign, Context, CROSS_FEATURES};
use crate::error::{Error, IoContext, Result};
use crate::features::LOCAL_FEATURES;
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
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeighborOut {
    pub account_id: String,
    pub similarity: f32,
}

/// One line of `campaigns.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignLine {
    pub id: String,
    pub size: usize,
    pub requests: usize,
    /// Members flagged by the classifier.
    pub flagged_members: usize,
    pub mean_score: f32,
    pub max_score: f32,
    /// Mean behaviour-vector similarity over the campaign's links.
    pub mean_similarity: f32,
    /// Mean prompt coverage over the campaign's links.
    pub mean_coverage: f32,
    pub shared_system_prompt_accounts: usize,
    pub first_seen: String,
    pub last_seen: String,
    /// What the members share, in words.
    pub shared: Vec<String>,
    /// Member account ids, most suspicious first.
    pub members: Vec<String>,
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

fn local(name: &str) -> usize {
    LOCAL_FEATURES
        .iter()
        .position(|f| *f == name)
        .unwrap_or_else(|| panic!("no local feature {name}"))
}

fn cross(name: &str) -> usize {
    CROSS_FEATURES
        .iter()
        .position(|f| *f == name)
        .unwrap_or_else(|| panic!("no cross feature {name}"))
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
    ctx: &Context,
    campaign: Option<(&str, &Campaign)>,
) -> Vec<String> {
    let l = |name: &str| local_row[local(name)];
    let c = |name: &str| ctx.row(a)[cross(name)];
    let mut out = Vec::new();
    if let Some((id, camp)) = campaign {
        out.push(format!(
            "member of campaign {id} ({} accounts, {} requests, behaviour similarity {:.2})",
            camp.size, camp.requests, camp.mean_similarity
        ));
    }
    let links = &ctx.links[a];
    if !links.is_empty() {
        out.push(format!(
            "prompts cover the same ground as {} other account{} (mean coverage {})",
            links.len(),
            if links.len() == 1 { "" } else { "s" },
            pct(c("link_coverage"))
        ));
    }
    let sharing = c("log_system_prompt_neighbors").exp().round() as usize - 1;
    if sharing >= 2 {
        out.push(format!(
            "{sharing} of its {} nearest accounts use the same system prompt",
            ctx.neighbors[a].len()
        ));
    }
    if c("sync_with_links") >= 0.5 {
        out.push(format!(
            "active in the same hours as its linked accounts ({} of its hours)",
            pct(c("sync_with_links"))
        ));
    }
    let markers = [
        ("marker_reasoning", "asks for step-by-step reasoning"),
        ("marker_grading", "asks the model to grade or score answers"),
        (
            "marker_data_generation",
            "asks for generated tasks or training data",
        ),
        ("marker_identity", "asks who the model is or who made it"),
        (
            "marker_dataset_form",
            "sends dataset-style prompts (Q:/A:, options)",
        ),
        ("marker_format", "demands a fixed output format"),
        ("marker_long_answer", "asks for long, detailed answers"),
    ];
    for (name, text) in markers {
        let v = l(name);
        if v >= 0.3 && requests >= 5 {
            out.push(format!("{text} in {} of requests", pct(v)));
        }
    }
    if requests >= 10 && l("template_rate") >= 0.5 {
        out.push(format!(
            "{} of its prompts reuse one of its own templates",
            pct(l("template_rate"))
        ));
    }
    if requests >= 10 && l("gap_regularity") >= 0.5 {
        out.push(format!(
            "machine-regular timing: {} of gaps within 20% of the median gap",
            pct(l("gap_regularity"))
        ));
    }
    if requests >= 20 && l("single_shot_rate") >= 0.95 {
        out.push(format!(
            "{} of requests are single-shot (no follow-up turns)",
            pct(l("single_shot_rate"))
        ));
    }
    out.truncate(MAX_REASONS);
    out
}

/// What a campaign's members share, in words.
pub fn shared(camp: &Campaign, members_local: &[&[f32]]) -> Vec<String> {
    let mut out = vec![format!(
        "prompt coverage {} and behaviour similarity {:.2} across links",
        pct(camp.mean_coverage),
        camp.mean_similarity
    )];
    if camp.shared_system_prompt_accounts >= 2 {
        out.push(format!(
            "{} of {} accounts use the same system prompt",
            camp.shared_system_prompt_accounts, camp.size
        ));
    }
    let mean = |name: &str| {
        let i = local(name);
        members_local.iter().map(|r| r[i]).sum::<f32>() / members_local.len().max(1) as f32
    };
    for (name, text) in [
        ("marker_reasoning", "step-by-step reasoning requested"),
        ("marker_grading", "grading or scoring requested"),
        (
            "marker_data_generation",
            "generated tasks or data requested",
        ),
        ("marker_identity", "identity probes"),
        ("marker_dataset_form", "dataset-style prompts"),
        ("marker_code", "code in prompts"),
        ("marker_format", "fixed output format demanded"),
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

    fn context(links: Vec<Vec<(usize, f32, f32)>>, cross: Vec<f32>) -> Context {
        let n = links.len();
        Context {
            neighbors: vec![Vec::new(); n],
            links,
            campaign_of: vec![Some(0); n],
            campaigns: vec![Campaign {
                id: "G0001".into(),
                members: (0..n).collect(),
                size: n,
                requests: 120,
                mean_similarity: 0.91,
                mean_coverage: 0.8,
                shared_system_prompt_accounts: n,
            }],
            x: cross,
        }
    }

    #[test]
    fn reasons_name_the_campaign_links_and_markers_strongest_first() {
        let d = CROSS_FEATURES.len();
        let mut x = vec![0f32; 2 * d];
        x[cross("link_coverage")] = 0.75;
        x[cross("log_system_prompt_neighbors")] = (3f32).ln();
        let mut ctx = context(vec![vec![(1, 0.9, 0.75)], vec![(0, 0.9, 0.75)]], x);
        ctx.neighbors[0] = vec![(1, 0.9), (2, 0.7), (3, 0.6), (4, 0.5)];
        let mut local_row = vec![0f32; LOCAL_FEATURES.len()];
        local_row[local("marker_reasoning")] = 0.8;
        local_row[local("marker_grading")] = 0.1;
        let r = reasons(0, 40, &local_row, &ctx, Some(("C0007", &ctx.campaigns[0])));
        assert_eq!(
            r,
            vec![
                "member of campaign C0007 (2 accounts, 120 requests, behaviour similarity 0.91)",
                "prompts cover the same ground as 1 other account (mean coverage 75%)",
                "2 of its 4 nearest accounts use the same system prompt",
                "asks for step-by-step reasoning in 80% of requests",
            ]
        );
        // Not a reported campaign, few requests: no campaign line, markers not over-read.
        let r = reasons(0, 3, &local_row, &ctx, None);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r[0].starts_with("prompts cover"));
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
