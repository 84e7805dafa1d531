//! The `neighbors` job: which accounts behave like a given one, and the evidence.
//!
//! Neighbours come from the account index that `score` (or `train`) saved in the run
//! directory; the evidence is recomputed from the run's embeddings and request table for just
//! those accounts: prompt coverage (how many of the account's prompts have a close match in
//! the neighbour's), near-duplicate prompts, shared system prompts and overlapping active hours.

use std::collections::HashSet;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use serde::Serialize;

use super::detect::{load_features, INDEX_DIR};
use crate::campaign::CampaignParams;
use crate::error::{Error, Result};
use crate::features::{Accounts, MAX_GEOMETRY_PROMPTS, NEAR_DUP};
use crate::index::AccountIndex;
use crate::run::Run;
use crate::similarity;

pub struct NeighborsJob {
    pub run_dir: PathBuf,
    pub account: String,
    pub k: usize,
}

/// One neighbour with the evidence that links it to the queried account.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub account_id: String,
    /// Cosine similarity of the behaviour vectors (from the index).
    pub similarity: f32,
    pub requests: usize,
    pub campaign: Option<String>,
    /// Fraction of the queried account's distinct prompts whose best match in this account is
    /// at least the campaign stage's prompt-match cosine; and the same the other way round.
    pub coverage: f32,
    pub coverage_reverse: f32,
    /// The queried account's distinct prompts with a near-duplicate (cosine >= 0.9) here.
    pub near_duplicate_prompts: usize,
    /// System prompts both accounts used.
    pub shared_system_prompts: usize,
    /// Fraction of the queried account's active hours in which this account was active too.
    pub timing_overlap: f32,
}

/// The queried account itself, for context.
#[derive(Debug, Clone, Serialize)]
pub struct Queried {
    pub account_id: String,
    pub requests: usize,
    pub distinct_prompts: usize,
    pub campaign: Option<String>,
}

pub fn neighbors(job: &NeighborsJob) -> Result<(Queried, Vec<Evidence>)> {
    if job.k == 0 {
        return Err(Error::Usage("-k must be at least 1".into()));
    }
    let index_dir = job.run_dir.join(INDEX_DIR);
    if !index_dir.exists() {
        return Err(Error::file(
            &job.run_dir,
            "no account index in this run directory: run `distillguard score` (or `train`) on it first",
        ));
    }
    let run = Run::open(&job.run_dir)?;
    let index = AccountIndex::load(&index_dir, Some(run.manifest.embeddings.dim))?;
    let accounts = Accounts::from_run(&run)?;
    if index.ids() != accounts.ids.as_slice() {
        return Err(Error::file(
            &index_dir,
            "the index does not match this run's accounts: run `distillguard score` again",
        ));
    }
    let Some(a) = index.row(&job.account) else {
        return Err(Error::Usage(format!(
            "account {:?} is not in run {} ({} accounts)",
            job.account,
            job.run_dir.display(),
            accounts.len()
        )));
    };
    let campaigns = load_features(&job.run_dir)
        .map(|f| f.campaigns)
        .unwrap_or_else(|_| vec![None; accounts.len()]);
    let hits = index.neighbors_of_row(a, job.k);

    // Prompts of the queried account and its neighbours, for coverage.
    let mut offsets = vec![0usize];
    let mut rows: Vec<u32> = Vec::new();
    for acc in std::iter::once(a).chain(hits.iter().map(|h| h.row)) {
        rows.extend(accounts.distinct_rows(acc, MAX_GEOMETRY_PROMPTS));
        offsets.push(rows.len());
    }
    let emb = run
        .embeddings
        .index_select(&Tensor::new(rows.as_slice(), &Device::Cpu)?, 0)?;
    let pairs: Vec<(u32, u32)> = (1..=hits.len() as u32).map(|b| (0, b)).collect();
    let params = CampaignParams::default();
    let cover = similarity::coverage(&emb, &offsets, &pairs, params.prompt_match)?;
    let dup = similarity::coverage(&emb, &offsets, &pairs, NEAR_DUP)?;
    let own = offsets[1];

    let systems = |x: usize| -> HashSet<u32> {
        accounts.requests[x]
            .iter()
            .filter_map(|q| q.system)
            .collect()
    };
    let hours = |x: usize| -> HashSet<i64> {
        accounts.requests[x]
            .iter()
            .map(|q| q.ts_ms.div_euclid(3_600_000))
            .collect()
    };
    let (my_systems, my_hours) = (systems(a), hours(a));
    let evidence = hits
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let their_hours = hours(h.row);
            Evidence {
                account_id: h.id.clone(),
                similarity: h.similarity,
                requests: accounts.requests[h.row].len(),
                campaign: campaigns[h.row].clone(),
                coverage: cover[i].a_in_b.frac_above,
                coverage_reverse: cover[i].b_in_a.frac_above,
                near_duplicate_prompts: (dup[i].a_in_b.frac_above * own as f32).round() as usize,
                shared_system_prompts: systems(h.row).intersection(&my_systems).count(),
                timing_overlap: if my_hours.is_empty() {
                    0.0
                } else {
                    my_hours.intersection(&their_hours).count() as f32 / my_hours.len() as f32
                },
            }
        })
        .collect();
    let queried = Queried {
        account_id: job.account.clone(),
        requests: accounts.requests[a].len(),
        distinct_prompts: own,
        campaign: campaigns[a].clone(),
    };
    Ok((queried, evidence))
}

/// Neighbours as a terminal table.
pub fn render(q: &Queried, ev: &[Evidence]) -> String {
    let mut s = format!(
        "{}: {} requests, {} distinct prompts{}\n",
        q.account_id,
        q.requests,
        q.distinct_prompts,
        q.campaign
            .as_ref()
            .map(|c| format!(", campaign {c}"))
            .unwrap_or_default()
    );
    s += &format!(
        "{:<28} {:>6} {:>8} {:<9} {:>8} {:>8} {:>8} {:>7} {:>7}\n",
        "neighbour",
        "sim",
        "requests",
        "campaign",
        "coverage",
        "reverse",
        "neardup",
        "system",
        "hours"
    );
    for e in ev {
        s += &format!(
            "{:<28} {:>6.3} {:>8} {:<9} {:>8.2} {:>8.2} {:>8} {:>7} {:>7.2}\n",
            e.account_id,
            e.similarity,
            e.requests,
            e.campaign.as_deref().unwrap_or("-"),
            e.coverage,
            e.coverage_reverse,
            e.near_duplicate_prompts,
            e.shared_system_prompts,
            e.timing_overlap
        );
    }
    s
}
