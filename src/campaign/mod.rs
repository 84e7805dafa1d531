//! Cross-account evidence and campaigns: which accounts behave alike, and how strongly.
//!
//! Extraction is spread thin over many accounts, so the strongest signal about one account is
//! often its neighbours. Given each account's nearest neighbours by behaviour vector (from the
//! HNSW index), a pair is *linked* when the vectors are close ([`CampaignParams::link_similarity`])
//! and the prompts really cover the same ground: set-to-set coverage (for each prompt of one
//! account, its best match in the other) above [`CampaignParams::link_coverage`]. Connected
//! components of the link graph with at least [`CampaignParams::min_size`] accounts are
//! campaigns. Every account then gets [`CROSS_FEATURES`]: neighbour similarity, links, coverage,
//! how many of its nearest accounts share its system prompt, timing synchrony with linked
//! accounts, and its campaign's size and volume, so that a 10-request account inside a
//! 150-account campaign is scored as part of it.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::features::{Accounts, LocalFeatures, LOCAL_FEATURES};
use crate::similarity;

/// Names of the cross-account features, in vector order.
pub const CROSS_FEATURES: &[&str] = &[
    "top1_similarity",
    "mean_top5_similarity",
    "log_links",
    "link_coverage",
    "log_system_prompt_neighbors",
    "sync_with_links",
    "log_campaign_size",
    "log_campaign_requests",
    "campaign_mean_similarity",
];

/// Linking thresholds. The defaults were chosen with `examples/tune_campaigns.rs` on simulated
/// training traffic (docs/evaluation.md): campaign accounts sweep *different* items of a task
/// set, so their prompts are alike in form rather than near-duplicates, and a loose prompt
/// match (0.45) over a third of the prompts links them while behaviour similarity 0.8 keeps
/// unrelated accounts apart (pair precision 0.71, recall 0.83 there).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct CampaignParams {
    /// Neighbours looked at per account.
    pub k: usize,
    /// Behaviour-vector cosine at or above which two accounts may be linked.
    pub link_similarity: f32,
    /// Prompt cosine counted as "covered" in set-to-set coverage.
    pub prompt_match: f32,
    /// Fraction of prompts covered (either direction) needed for a link.
    pub link_coverage: f32,
    /// Smallest component reported as a campaign.
    pub min_size: usize,
}

impl Default for CampaignParams {
    fn default() -> Self {
        CampaignParams {
            k: 10,
            link_similarity: 0.8,
            prompt_match: 0.45,
            link_coverage: 0.3,
            min_size: 3,
        }
    }
}

/// One campaign: linked accounts and what they share.
#[derive(Debug, Clone, Serialize)]
pub struct Campaign {
    pub id: String,
    /// Member account indices, sorted.
    #[serde(skip)]
    pub members: Vec<usize>,
    pub size: usize,
    pub requests: usize,
    /// Mean behaviour similarity over the campaign's links.
    pub mean_similarity: f32,
    /// Mean coverage over the campaign's links.
    pub mean_coverage: f32,
    /// Accounts using the campaign's most common system prompt.
    pub shared_system_prompt_accounts: usize,
}

/// Everything learned across accounts.
pub struct Context {
    /// Per account: neighbours `(account, similarity)`, most similar first.
    pub neighbors: Vec<Vec<(usize, f32)>>,
    /// Per account: linked accounts with `(account, similarity, coverage)`.
    pub links: Vec<Vec<(usize, f32, f32)>>,
    pub campaign_of: Vec<Option<usize>>,
    pub campaigns: Vec<Campaign>,
    /// `accounts x CROSS_FEATURES.len()`, row-major.
    pub x: Vec<f32>,
}

impl Context {
    pub fn row(&self, a: usize) -> &[f32] {
        let d = CROSS_FEATURES.len();
        &self.x[a * d..(a + 1) * d]
    }
}

/// Link accounts, form campaigns, compute cross-account features.
/// `neighbors[a]`: account `a`'s nearest accounts with behaviour similarity, self excluded.
pub fn analyse(
    accounts: &Accounts,
    local: &LocalFeatures,
    neighbors: Vec<Vec<(usize, f32)>>,
    params: &CampaignParams,
) -> Result<Context> {
    let n = accounts.len();
    // Candidate pairs: close behaviour vectors, each unordered pair once.
    let mut candidates: Vec<(u32, u32, f32)> = Vec::new();
    let mut seen = HashSet::new();
    for (a, ns) in neighbors.iter().enumerate() {
        for &(b, s) in ns.iter().take(params.k) {
            if s >= params.link_similarity && a != b && seen.insert((a.min(b), a.max(b))) {
                candidates.push((a.min(b) as u32, a.max(b) as u32, s));
            }
        }
    }
    let pairs: Vec<(u32, u32)> = candidates.iter().map(|&(a, b, _)| (a, b)).collect();
    let cov = similarity::coverage(&local.prompts, &local.offsets, &pairs, params.prompt_match)?;
    let mut links: Vec<Vec<(usize, f32, f32)>> = vec![Vec::new(); n];
    for (&(a, b, s), c) in candidates.iter().zip(&cov) {
        let coverage = c.a_in_b.frac_above.max(c.b_in_a.frac_above);
        if coverage >= params.link_coverage {
            links[a as usize].push((b as usize, s, coverage));
            links[b as usize].push((a as usize, s, coverage));
        }
    }

    // Campaigns: connected components of the link graph.
    let mut uf = UnionFind::new(n);
    for (a, ls) in links.iter().enumerate() {
        for &(b, _, _) in ls {
            uf.union(a, b);
        }
    }
    let mut comps: HashMap<usize, Vec<usize>> = HashMap::new();
    for a in 0..n {
        comps.entry(uf.find(a)).or_default().push(a);
    }
    let mut groups: Vec<Vec<usize>> = comps
        .into_values()
        .filter(|m| m.len() >= params.min_size)
        .collect();
    groups.sort_by(|x, y| y.len().cmp(&x.len()).then(x[0].cmp(&y[0])));

    // System prompt sharing: accounts per system prompt, and each account's most used one.
    let mut users: Vec<HashSet<usize>> = vec![HashSet::new(); accounts.systems];
    let mut top_system: Vec<Option<u32>> = vec![None; n];
    for (a, reqs) in accounts.requests.iter().enumerate() {
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for s in reqs.iter().filter_map(|q| q.system) {
            users[s as usize].insert(a);
            *counts.entry(s).or_default() += 1;
        }
        top_system[a] = counts
            .into_iter()
            .max_by_key(|&(s, c)| (c, std::cmp::Reverse(s)))
            .map(|(s, _)| s);
    }

    let mut campaign_of = vec![None; n];
    let mut campaigns = Vec::with_capacity(groups.len());
    for (ci, members) in groups.into_iter().enumerate() {
        let set: HashSet<usize> = members.iter().copied().collect();
        let inner: Vec<(f32, f32)> = members
            .iter()
            .flat_map(|&a| {
                links[a]
                    .iter()
                    .filter(|l| set.contains(&l.0))
                    .map(|l| (l.1, l.2))
            })
            .collect();
        let mut sys_counts: HashMap<u32, usize> = HashMap::new();
        for &a in &members {
            if let Some(s) = top_system[a] {
                *sys_counts.entry(s).or_default() += 1;
            }
            campaign_of[a] = Some(ci);
        }
        campaigns.push(Campaign {
            id: format!("G{:04}", ci + 1),
            size: members.len(),
            requests: members.iter().map(|&a| accounts.requests[a].len()).sum(),
            mean_similarity: mean(inner.iter().map(|p| p.0)),
            mean_coverage: mean(inner.iter().map(|p| p.1)),
            shared_system_prompt_accounts: sys_counts.values().copied().max().unwrap_or(0),
            members,
        });
    }

    // Active hours, for synchrony with linked accounts.
    let hours: Vec<HashSet<i64>> = accounts
        .requests
        .iter()
        .map(|r| r.iter().map(|q| q.ts_ms.div_euclid(3_600_000)).collect())
        .collect();

    let d = CROSS_FEATURES.len();
    let mut x = vec![0f32; n * d];
    for a in 0..n {
        let f = &mut x[a * d..(a + 1) * d];
        let ns = &neighbors[a];
        f[0] = ns.first().map_or(0.0, |p| p.1);
        f[1] = mean(ns.iter().take(5).map(|p| p.1));
        f[2] = (1.0 + links[a].len() as f32).ln();
        f[3] = mean(links[a].iter().map(|l| l.2));
        // Neighbours that also use the account's main system prompt: one operator's accounts
        // behave alike *and* share its exact prompt, while a stock prompt ("You are a helpful
        // assistant.") is shared by many unrelated people who do not behave alike.
        f[4] = top_system[a].map_or(0.0, |s| {
            let peers = ns.iter().take(params.k);
            (1.0 + peers.filter(|p| users[s as usize].contains(&p.0)).count() as f32).ln()
        });
        f[5] = if links[a].is_empty() || hours[a].is_empty() {
            0.0
        } else {
            let others: HashSet<i64> = links[a]
                .iter()
                .flat_map(|l| hours[l.0].iter().copied())
                .collect();
            hours[a].iter().filter(|h| others.contains(h)).count() as f32 / hours[a].len() as f32
        };
        if let Some(c) = campaign_of[a].map(|c| &campaigns[c]) {
            f[6] = (1.0 + c.size as f32).ln();
            f[7] = (1.0 + c.requests as f32).ln();
            f[8] = c.mean_similarity;
        }
    }
    Ok(Context {
        neighbors,
        links,
        campaign_of,
        campaigns,
        x,
    })
}

/// Prompts' worth of prior weight on "no topic" when the behaviour vector goes to the
/// classifier: an account with `k` distinct prompts contributes its behaviour vector scaled by
/// `k / (k + BEHAVIOUR_PRIOR_PROMPTS)`. The mean of a handful of prompts is mostly noise, and
/// without shrinkage the classifier took a 7-request honest account whose first prompt was a
/// coding task for a sweeper. 8 is the empirical-Bayes ratio of within-account to
/// between-account variance of prompt embeddings on the default model's training traffic
/// (8.7; docs/evaluation.md). The account index uses the unshrunk vector.
pub const BEHAVIOUR_PRIOR_PROMPTS: f32 = 8.0;

/// All feature names the classifier sees: local, cross-account, then the `dim` components of
/// the behaviour vector (`behaviour_000`, ...), shrunk for accounts with few prompts (see
/// [`BEHAVIOUR_PRIOR_PROMPTS`]). The behaviour vector says *what* an account asks about (task
/// sets, coding, grading) in a way no hand-made feature does; on held-out campaign kinds it
/// raised AUROC by several points (docs/evaluation.md).
pub fn feature_names(dim: usize) -> Vec<String> {
    LOCAL_FEATURES
        .iter()
        .chain(CROSS_FEATURES)
        .map(|s| s.to_string())
        .chain((0..dim).map(|i| format!("behaviour_{i:03}")))
        .collect()
}

/// The full feature matrix `accounts x feature_names(local.dim).len()`.
pub fn feature_matrix(local: &LocalFeatures, ctx: &Context) -> Vec<f32> {
    let n = ctx.campaign_of.len();
    (0..n)
        .flat_map(|a| {
            local
                .row(a)
                .iter()
                .chain(ctx.row(a))
                .copied()
                .chain(shrunk_behaviour(local, a))
        })
        .collect()
}

/// Account `a`'s behaviour vector scaled by `k / (k + BEHAVIOUR_PRIOR_PROMPTS)`, `k` its distinct
/// prompts.
fn shrunk_behaviour(local: &LocalFeatures, a: usize) -> impl Iterator<Item = f32> + '_ {
    let k = (local.offsets[a + 1] - local.offsets[a]) as f32;
    let w = k / (k + BEHAVIOUR_PRIOR_PROMPTS);
    local.behaviour(a).iter().map(move |v| v * w)
}

fn mean(it: impl Iterator<Item = f32>) -> f32 {
    let (s, n) = it.fold((0f32, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        s / n as f32
    }
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind((0..n).collect())
    }
    fn find(&mut self, a: usize) -> usize {
        let mut r = a;
        while self.0[r] != r {
            self.0[r] = self.0[self.0[r]];
            r = self.0[r];
        }
        r
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }
}

#[cfg(test)]
mod tests;
