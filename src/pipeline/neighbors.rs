//! The `neighbors` job: which accounts behave like a given one, and the evidence.
//!
//! Neighbours come from the account index that `score` (or `train`) saved in the run
//! directory, followed by the accounts whose infrastructure footprint links them to the
//! queried one (found by comparing its footprint with every account's: one pass, no index);
//! the evidence is recomputed from the run's embeddings and request table for just those
//! accounts: prompt coverage (how many of the account's prompts have a close match in the
//! neighbour's), near-duplicate prompts, shared system prompts, networks and clients, activity
//! synchrony, overlapping active hours, and which link rules ([`crate::campaign`]) the pair
//! meets.

use std::collections::HashSet;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::campaign::{self, CampaignParams, Footprints, FormOverlap, Signatures};
use crate::error::{Error, Result};
use crate::features::{Accounts, MAX_GEOMETRY_PROMPTS, NEAR_DUP};
use crate::index::AccountIndex;
use crate::run::Run;
use crate::run::{read_features, INDEX_DIR};
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
    /// Template-signature overlap (Jaccard of the shingles recurring in each account's
    /// prompts, and how many both hold).
    pub form: FormOverlap,
    /// Footprint overlap (IDF-weighted Jaccard of networks, clients and system prompts, 0..1),
    /// and the networks and user agents both used.
    pub infra_overlap: f32,
    pub shared_networks: usize,
    pub shared_user_agents: usize,
    /// Share of the less active account's 5-minute buckets in which both were active.
    pub sync: f32,
    /// The link rules the pair meets: "form", "infrastructure" (linked), "same ground" (close
    /// behaviour and covered prompts: evidence, never a link alone).
    pub linked_by: Vec<&'static str>,
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
    let saved = read_features(&job.run_dir).ok();
    let campaigns = saved
        .as_ref()
        .map(|f| f.campaigns.clone())
        .unwrap_or_else(|| vec![None; accounts.len()]);
    let params = CampaignParams::default();
    let footprints = Footprints::new(&accounts);
    let signatures = Signatures::new(&accounts, &run.shingles, &params.form);
    let signals = |b: usize| {
        campaign::signals(
            &signatures.overlap(a, b),
            &footprints.overlap(a, b),
            footprints.co_activity(a, b),
            &params,
        )
    };
    // Index neighbours, then accounts linked by form or infrastructure that the index did not
    // return, most overlapping first, up to k of them.
    let mut hits: Vec<(usize, String, f32)> = index
        .neighbors_of_row(a, job.k)
        .into_iter()
        .map(|h| (h.row, h.id, h.similarity))
        .collect();
    let mut linked: Vec<(usize, f32)> = (0..accounts.len())
        .filter(|&b| b != a && !hits.iter().any(|h| h.0 == b))
        .filter_map(|b| {
            let s = signals(b);
            let strength = footprints
                .overlap(a, b)
                .overlap
                .max(signatures.overlap(a, b).jaccard);
            (s.by_form || s.by_template || s.by_infra).then_some((b, strength))
        })
        .collect();
    linked.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    for (b, _) in linked.into_iter().take(job.k) {
        let similarity = saved.as_ref().map_or(0.0, |f| {
            let v = |x: usize| &f.behaviour[x * f.dim..(x + 1) * f.dim];
            v(a).iter().zip(v(b)).map(|(p, q)| p * q).sum()
        });
        hits.push((b, accounts.ids[b].clone(), similarity));
    }

    // Prompts of the queried account and its neighbours, for coverage.
    let mut offsets = vec![0usize];
    let mut rows: Vec<u32> = Vec::new();
    for acc in std::iter::once(a).chain(hits.iter().map(|h| h.0)) {
        rows.extend(accounts.distinct_rows(acc, MAX_GEOMETRY_PROMPTS));
        offsets.push(rows.len());
    }
    let emb = run
        .embeddings
        .index_select(&Tensor::new(rows.as_slice(), &Device::Cpu)?, 0)?;
    let pairs: Vec<(u32, u32)> = (1..=hits.len() as u32).map(|b| (0, b)).collect();
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
            .map(|q| crate::ingest::hour_of(q.ts_ms))
            .collect()
    };
    let (my_systems, my_hours) = (systems(a), hours(a));
    let evidence = hits
        .iter()
        .enumerate()
        .map(|(i, &(b, ref id, similarity))| {
            let their_hours = hours(b);
            let o = footprints.overlap(a, b);
            let coverage = cover[i].a_in_b.frac_above.max(cover[i].b_in_a.frac_above);
            let mut linked_by = Vec::new();
            let s = signals(b);
            if s.by_form {
                linked_by.push("form");
            }
            if s.by_template {
                linked_by.push("template");
            }
            if s.by_infra {
                linked_by.push("infrastructure");
            }
            if similarity >= params.link_similarity && coverage >= params.link_coverage {
                linked_by.push("same ground");
            }
            Evidence {
                account_id: id.clone(),
                similarity,
                requests: accounts.requests[b].len(),
                campaign: campaigns[b].clone(),
                coverage: cover[i].a_in_b.frac_above,
                coverage_reverse: cover[i].b_in_a.frac_above,
                near_duplicate_prompts: (dup[i].a_in_b.frac_above * own as f32).round() as usize,
                shared_system_prompts: systems(b).intersection(&my_systems).count(),
                timing_overlap: if my_hours.is_empty() {
                    0.0
                } else {
                    my_hours.intersection(&their_hours).count() as f32 / my_hours.len() as f32
                },
                form: signatures.overlap(a, b),
                infra_overlap: o.overlap,
                shared_networks: o.networks,
                shared_user_agents: o.user_agents,
                sync: footprints.sync(a, b),
                linked_by,
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
        "{:<28} {:>6} {:>8} {:<9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>5} {:>6} {:>5} {:>4} {:>5}  linked by\n",
        "neighbour",
        "sim",
        "requests",
        "campaign",
        "coverage",
        "reverse",
        "neardup",
        "system",
        "hours",
        "form",
        "infra",
        "nets",
        "uas",
        "sync"
    );
    for e in ev {
        s += &format!(
            "{:<28} {:>6.3} {:>8} {:<9} {:>8.2} {:>8.2} {:>8} {:>7} {:>7.2} {:>5.2} {:>6.2} {:>5} {:>4} {:>5.2}  {}\n",
            e.account_id,
            e.similarity,
            e.requests,
            e.campaign.as_deref().unwrap_or("-"),
            e.coverage,
            e.coverage_reverse,
            e.near_duplicate_prompts,
            e.shared_system_prompts,
            e.timing_overlap,
            e.form.jaccard,
            e.infra_overlap,
            e.shared_networks,
            e.shared_user_agents,
            e.sync,
            if e.linked_by.is_empty() {
                "-".to_string()
            } else {
                e.linked_by.join(", ")
            }
        );
    }
    s
}
