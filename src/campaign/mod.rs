//! Cross-account evidence and campaigns: which accounts are run together, and how strongly.
//!
//! Extraction is spread thin over many accounts, so the strongest signal about one account is
//! often its siblings. Campaign accounts sweep *different* items of a task space, so they are
//! alike in *form* and *infrastructure*, not in topic. Two accounts are *linked* ([`Link`],
//! which records every signal) when they share a prompt template ([`form`]: the shingles
//! recurring across each account's prompts, compared by MinHash/LSH, plus co-activity) or
//! their infrastructure ([`infra`]: networks, client and system prompt, IDF-weighted). Topic
//! alone never links: close behaviour vectors ([`CampaignParams::link_similarity`]) whose
//! prompts cover the same ground (set-to-set coverage above [`CampaignParams::link_coverage`])
//! are recorded on a link as evidence, because two honest teams running one benchmark cover
//! the same ground too. Connected
//! components of the link graph with at least [`CampaignParams::min_size`] accounts are
//! campaigns. Every account then gets [`CROSS_FEATURES`]: neighbour similarity, links, coverage,
//! how many of its nearest accounts share its system prompt, timing synchrony with linked
//! accounts, and its campaign's size and volume, so that a 10-request account inside a
//! 150-account campaign is scored as part of it.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::features::{Accounts, LocalFeatures, LOCAL_FEATURES};
use crate::run::RowShingles;
use crate::similarity::{self, dot};

pub mod form;
pub mod infra;

pub use form::{FormOverlap, FormParams, Signatures};
pub use infra::{Footprints, InfraOverlap, InfraParams};

crate::features::feature_set! {
    /// The cross-account features, in vector order.
    pub enum Cross {
        Top1Similarity => "top1_similarity",
        MeanTop5Similarity => "mean_top5_similarity",
        LogLinks => "log_links",
        LinkCoverage => "link_coverage",
        LogSystemPromptNeighbors => "log_system_prompt_neighbors",
        SyncWithLinks => "sync_with_links",
        LogCampaignSize => "log_campaign_size",
        LogCampaignRequests => "log_campaign_requests",
        CampaignMeanSimilarity => "campaign_mean_similarity",
        LogFormLinks => "log_form_links",
        LogInfraLinks => "log_infra_links",
        LinkSync => "link_sync",
        CampaignFormLinkShare => "campaign_form_link_share",
        CampaignInfraLinkShare => "campaign_infra_link_share",
        CampaignMeanSync => "campaign_mean_sync",
        CampaignShiftLogZ => "campaign_shift_log_z",
    }
}

/// Names of the cross-account features, in vector order.
pub const CROSS_FEATURES: &[&str] = Cross::NAMES;

/// Linking settings, stored in model.json (features depend on them). The form and
/// infrastructure thresholds and the structural-similarity cut were chosen with
/// `examples/tune_campaigns.rs` on the default model's training traffic (docs/evaluation.md);
/// `link_similarity`, `prompt_match` and `link_coverage` define "same ground" (close behaviour
/// vectors, prompts covered by the other account's), recorded on links as evidence.
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
    /// Structural similarity (`|N[a] ∩ N[b]| / sqrt(|N[a]| |N[b]|)` over closed link
    /// neighbourhoods) a link needs to join two accounts' groups.
    pub min_structural_similarity: f32,
    /// Weak links (template, or form on a client build alone) an account needs to another
    /// group to point at it; a fragment (an account in no group, or a group without an
    /// infrastructure link inside) joins the larger group most of its members point at (see
    /// `analyse`).
    pub attach_links: usize,
    /// Form (template-signature) links.
    pub form: FormParams,
    /// Infrastructure links.
    pub infra: InfraParams,
}

impl Default for CampaignParams {
    fn default() -> Self {
        CampaignParams {
            k: 10,
            link_similarity: 0.8,
            prompt_match: 0.45,
            link_coverage: 0.3,
            min_size: 3,
            min_structural_similarity: 0.2,
            attach_links: 3,
            form: FormParams::default(),
            infra: InfraParams::default(),
        }
    }
}

/// One campaign: linked accounts and what they share.
#[derive(Debug, Clone, Serialize)]
pub struct LinkGroup {
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
    /// Links inside the group; those made by a shared form, by a template alone (no shared
    /// footprint) and by shared infrastructure (a link can be form and infrastructure); those
    /// whose accounts also cover the same ground.
    pub links: usize,
    pub form_links: usize,
    pub template_links: usize,
    pub infra_links: usize,
    pub same_ground_links: usize,
    /// Members that joined by template links alone (see `analyse`).
    pub attached: usize,
    /// Mean signature Jaccard, footprint overlap and activity synchrony over the group's links.
    pub mean_form_jaccard: f32,
    pub mean_infra_overlap: f32,
    pub mean_sync: f32,
    /// Shift of the members' pooled prompts from the endpoint's normal traffic
    /// ([`crate::features::shift`]): p-value and z-score.
    pub shift_p: f32,
    pub shift_z: f32,
}

/// Prompts pooled from a group's members for its shift test (evenly spaced when more).
pub const MAX_GROUP_SHIFT_PROMPTS: usize = 256;

/// A link between two accounts and the signals behind it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Link {
    /// The other account.
    pub other: usize,
    /// Behaviour-vector cosine.
    pub similarity: f32,
    /// Prompt coverage, the larger direction.
    pub coverage: f32,
    /// Template-signature overlap ([`form`]).
    pub form: FormOverlap,
    /// Footprint overlap ([`infra`]).
    pub infra: InfraOverlap,
    /// Activity synchrony ([`Footprints::sync`]) and co-activity ([`Footprints::co_activity`]).
    pub sync: f32,
    pub co_activity: f32,
    /// Close behaviour vectors and covered prompts: same ground. Evidence, never a link alone
    /// (two honest teams running one benchmark cover the same ground).
    pub by_behaviour: bool,
    /// Made by a shared template signature (with co-activity).
    pub by_form: bool,
    /// A shared template in the same hours with no footprint token in common: never joins
    /// two groups, only attaches an account that is in none (see `analyse`).
    pub by_template: bool,
    /// Made by shared infrastructure.
    pub by_infra: bool,
}

/// The link signals two accounts' overlaps make ([`Link`]'s `by_*` flags but same ground).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Signals {
    pub by_form: bool,
    pub by_template: bool,
    pub by_infra: bool,
}

/// Which links two accounts' form overlap, footprint overlap and co-activity make. A shared
/// form links when the signatures agree ([`FormOverlap::shares_form`]), the accounts were
/// active in the same hours, and they share at least one footprint token of any kind (a
/// network, a system prompt or a client build): a template can be copied from a public
/// collection, the same template sent by the same client in the same hours is one operator's
/// tooling (a user agent alone never links, but it may corroborate a form). Without a token
/// it is a template link. Shared infrastructure links on its own ([`InfraOverlap::links`]).
pub fn signals(
    f: &FormOverlap,
    o: &InfraOverlap,
    co_activity: f32,
    params: &CampaignParams,
) -> Signals {
    let template = f.shares_form(&params.form) && co_activity >= params.form.min_co_activity;
    let token = o.networks + o.user_agents + o.system_prompts > 0;
    Signals {
        by_form: template && token,
        by_template: template && !token,
        by_infra: o.links(&params.infra),
    }
}

/// Everything learned across accounts.
pub struct Linking {
    /// Per account: neighbours `(account, similarity)`, most similar first.
    pub neighbors: Vec<Vec<(usize, f32)>>,
    /// Per account: its links, in the order the pairs were examined.
    pub links: Vec<Vec<Link>>,
    pub group_of: Vec<Option<usize>>,
    pub groups: Vec<LinkGroup>,
    /// `accounts x CROSS_FEATURES.len()`, row-major.
    pub x: Vec<f32>,
}

impl Link {
    /// A form link corroborated by a shared network or system prompt.
    pub fn by_form_on_infra(&self) -> bool {
        self.by_form && self.infra.networks + self.infra.system_prompts > 0
    }

    /// A form link corroborated by a shared client build alone.
    pub fn by_form_on_client(&self) -> bool {
        self.by_form && !self.by_form_on_infra()
    }
}

/// Groups of at least `min_size` accounts: connected components over the links `keep` accepts
/// whose two accounts share enough of their linked accounts (structural similarity over closed
/// neighbourhoods of such links), among the accounts `eligible` marks (all when `None`).
fn components(
    links: &[Vec<Link>],
    keep: impl Fn(&Link) -> bool,
    eligible: Option<&[bool]>,
    params: &CampaignParams,
) -> Vec<Vec<usize>> {
    let n = links.len();
    let ok = |a: usize| eligible.is_none_or(|e| e[a]);
    let keep = &keep;
    let kept = |a: usize| {
        links[a]
            .iter()
            .filter(move |l| ok(a) && ok(l.other) && keep(l))
    };
    let closed: Vec<Vec<usize>> = (0..n)
        .map(|a| {
            let mut v: Vec<usize> = kept(a).map(|l| l.other).chain([a]).collect();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    let mut uf = UnionFind::new(n);
    for a in 0..n {
        for l in kept(a) {
            let (x, y) = (&closed[a], &closed[l.other]);
            let common = sorted_common(x, y);
            let s = common as f32 / ((x.len() * y.len()) as f32).sqrt();
            if s >= params.min_structural_similarity {
                uf.union(a, l.other);
            }
        }
    }
    let mut comps: HashMap<usize, Vec<usize>> = HashMap::new();
    for a in (0..n).filter(|&a| ok(a)) {
        comps.entry(uf.find(a)).or_default().push(a);
    }
    comps
        .into_values()
        .filter(|m| m.len() >= params.min_size)
        .collect()
}

impl Linking {
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
    shingles: &RowShingles,
    neighbors: Vec<Vec<(usize, f32)>>,
    params: &CampaignParams,
) -> Result<Linking> {
    let n = accounts.len();
    let footprints = Footprints::new(accounts);
    let signatures = Signatures::new(accounts, shingles, &params.form);
    // Candidate pairs, each unordered pair once: LSH buckets of template signatures, the
    // infrastructure index, and close behaviour vectors (which share a form or infrastructure
    // more often than chance, and cost nothing to check).
    let mut candidates: Vec<(u32, u32)> = signatures.candidate_pairs(&params.form);
    candidates.extend(footprints.candidate_pairs(&params.infra));
    for (a, ns) in neighbors.iter().enumerate() {
        for &(b, s) in ns.iter().take(params.k) {
            if s >= params.link_similarity && a != b {
                candidates.push((a.min(b) as u32, a.max(b) as u32));
            }
        }
    }
    candidates.sort_unstable();
    candidates.dedup();
    // A link needs a shared form (with co-activity) or shared infrastructure; topic alone
    // never links. A template shared in the same hours without any footprint token is kept as
    // a weaker link that can only attach an account to a group (below).
    let kept: Vec<(u32, u32, FormOverlap, InfraOverlap, f32, Signals)> = candidates
        .into_iter()
        .filter_map(|(a, b)| {
            let (x, y) = (a as usize, b as usize);
            let f = signatures.overlap(x, y);
            let o = footprints.overlap(x, y);
            let co = footprints.co_activity(x, y);
            let s = signals(&f, &o, co, params);
            (s.by_form || s.by_template || s.by_infra).then_some((a, b, f, o, co, s))
        })
        .collect();
    let pairs: Vec<(u32, u32)> = kept.iter().map(|&(a, b, ..)| (a, b)).collect();
    let cov = similarity::coverage(&local.prompts, &local.offsets, &pairs, params.prompt_match)?;
    let mut links: Vec<Vec<Link>> = vec![Vec::new(); n];
    for (&(a, b, f, o, co, s), c) in kept.iter().zip(&cov) {
        let (a, b) = (a as usize, b as usize);
        let similarity = dot(local.behaviour(a), local.behaviour(b));
        let coverage = c.a_in_b.frac_above.max(c.b_in_a.frac_above);
        let link = Link {
            other: b,
            similarity,
            coverage,
            form: f,
            infra: o,
            sync: footprints.sync(a, b),
            co_activity: co,
            by_behaviour: similarity >= params.link_similarity && coverage >= params.link_coverage,
            by_form: s.by_form,
            by_template: s.by_template,
            by_infra: s.by_infra,
        };
        links[a].push(link);
        links[b].push(Link { other: a, ..link });
    }

    // Link groups, in two tiers. First the connected components of the graph of infrastructure
    // links and of form links corroborated by a network or a system prompt, over the links
    // whose two accounts share enough of their linked accounts (structural similarity, as in
    // SCAN), so that a few stray links between two campaigns do not merge them. Then the same
    // over form links corroborated by a client build alone, among the accounts in no group
    // yet: a user agent is shared by everyone on one SDK version, so an account of one campaign
    // whose client happens to be another campaign's usual one sends the same generic wrappers in
    // the same hours as that campaign. Such links may make a group of accounts that have
    // nothing stronger (a campaign on rotating residential proxies), never join one.
    let mut groups = components(&links, |l| l.by_infra || l.by_form_on_infra(), None, params);
    let mut free = vec![true; n];
    for &a in groups.iter().flatten() {
        free[a] = false;
    }
    groups.extend(components(
        &links,
        Link::by_form_on_client,
        Some(&free),
        params,
    ));
    groups.sort_by(|x, y| y.len().cmp(&x.len()).then(x[0].cmp(&y[0])));
    // Attachment: an account points at another group when its links lead there more than
    // twice as often as to any other group (its own included: an account belongs where most of
    // its links lead) and at least `attach_links` of
    // them are weak (template links, or form links on a client build alone, which join no
    // group); a fragment (an account in no group, or a group without an infrastructure link
    // inside) joins the larger group that more than half its members point at. A thin
    // campaign's accounts send the campaign's wrappers in its hours but rotate residential
    // proxies and clients, so some share no footprint with any sibling, and a few that happened
    // to draw one proxy between them form a small group of their own; a template alone never
    // starts a group (two campaigns copy the same public wrappers), it only decides which group
    // accounts already shaped like one belong to. Decided on the groups before attachment, so
    // the order of accounts does not matter; a fragment only joins a strictly larger group, so
    // joins never loop.
    let mut group_of: Vec<Option<usize>> = vec![None; n];
    for (g, members) in groups.iter().enumerate() {
        for &a in members {
            group_of[a] = Some(g);
        }
    }
    let points_at = |a: usize| -> Option<usize> {
        // Per group linked to: (links, weak links).
        let mut counts: HashMap<usize, (usize, usize)> = HashMap::new();
        for l in &links[a] {
            if let Some(g) = group_of[l.other] {
                let e = counts.entry(g).or_default();
                e.0 += 1;
                e.1 += usize::from(l.by_template || l.by_form_on_client());
            }
        }
        let (&g, &(c, weak)) = counts
            .iter()
            .filter(|(&g, _)| Some(g) != group_of[a])
            .max_by_key(|(&g, c)| (c.0, std::cmp::Reverse(g)))?;
        let rest = counts
            .iter()
            .filter(|(&h, _)| h != g)
            .map(|(_, c)| c.0)
            .max()
            .unwrap_or(0);
        (weak >= params.attach_links && c > 2 * rest).then_some(g)
    };
    // A group held together by shared infrastructure is one operator's own unit whatever
    // wording it copies; only a group held by shared forms alone (a template and some token,
    // often a proxy or a client build met by chance) can be a fragment of another.
    let by_infra: Vec<bool> = groups
        .iter()
        .enumerate()
        .map(|(g, members)| {
            members.iter().any(|&a| {
                links[a]
                    .iter()
                    .any(|l| l.by_infra && group_of[l.other] == Some(g))
            })
        })
        .collect();
    let target = |members: &[usize]| -> Option<usize> {
        if group_of[members[0]].is_some_and(|g| by_infra[g]) {
            return None;
        }
        let mut votes: HashMap<usize, usize> = HashMap::new();
        for &a in members {
            if let Some(g) = points_at(a) {
                *votes.entry(g).or_default() += 1;
            }
        }
        let (g, v) = votes
            .into_iter()
            .max_by_key(|&(g, v)| (v, std::cmp::Reverse(g)))?;
        (2 * v > members.len() && groups[g].len() > members.len()).then_some(g)
    };
    let group_joins: Vec<Option<usize>> = (0..groups.len()).map(|g| target(&groups[g])).collect();
    let root = |mut g: usize| {
        while let Some(h) = group_joins[g] {
            g = h;
        }
        g
    };
    let account_joins: Vec<(usize, usize)> = (0..n)
        .filter(|&a| group_of[a].is_none())
        .filter_map(|a| target(&[a]).map(|g| (a, root(g))))
        .collect();
    let mut attached = vec![false; n];
    for g in 0..groups.len() {
        let r = root(g);
        if r != g {
            let moved = std::mem::take(&mut groups[g]);
            for &a in &moved {
                attached[a] = true;
            }
            groups[r].extend(moved);
        }
    }
    for (a, g) in account_joins {
        groups[g].push(a);
        attached[a] = true;
    }
    groups.retain(|m| !m.is_empty());
    for members in &mut groups {
        members.sort_unstable();
    }
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

    let mut group_of = vec![None; n];
    let mut link_groups = Vec::with_capacity(groups.len());
    for (ci, members) in groups.into_iter().enumerate() {
        let set: HashSet<usize> = members.iter().copied().collect();
        // Each link inside the group, seen from both ends (means are unchanged by that).
        let inner: Vec<&Link> = members
            .iter()
            .flat_map(|&a| links[a].iter().filter(|l| set.contains(&l.other)))
            .collect();
        let shift = group_shift(local, &members)?;
        let mut sys_counts: HashMap<u32, usize> = HashMap::new();
        for &a in &members {
            if let Some(s) = top_system[a] {
                *sys_counts.entry(s).or_default() += 1;
            }
            group_of[a] = Some(ci);
        }
        link_groups.push(LinkGroup {
            id: format!("G{:04}", ci + 1),
            size: members.len(),
            requests: members.iter().map(|&a| accounts.requests[a].len()).sum(),
            mean_similarity: mean(inner.iter().map(|l| l.similarity)),
            mean_coverage: mean(inner.iter().map(|l| l.coverage)),
            shared_system_prompt_accounts: sys_counts.values().copied().max().unwrap_or(0),
            links: inner.len() / 2,
            form_links: inner.iter().filter(|l| l.by_form).count() / 2,
            template_links: inner.iter().filter(|l| l.by_template).count() / 2,
            infra_links: inner.iter().filter(|l| l.by_infra).count() / 2,
            same_ground_links: inner.iter().filter(|l| l.by_behaviour).count() / 2,
            attached: members.iter().filter(|&&a| attached[a]).count(),
            mean_form_jaccard: mean(inner.iter().map(|l| l.form.jaccard)),
            mean_infra_overlap: mean(inner.iter().map(|l| l.infra.overlap)),
            mean_sync: mean(inner.iter().map(|l| l.sync)),
            shift_p: shift.p,
            shift_z: shift.z,
            members,
        });
    }

    let d = CROSS_FEATURES.len();
    let mut x = vec![0f32; n * d];
    for a in 0..n {
        let f = &mut x[a * d..(a + 1) * d];
        let ns = &neighbors[a];
        f[Cross::Top1Similarity] = ns.first().map_or(0.0, |p| p.1);
        f[Cross::MeanTop5Similarity] = mean(ns.iter().take(5).map(|p| p.1));
        f[Cross::LogLinks] = (1.0 + links[a].len() as f32).ln();
        f[Cross::LinkCoverage] = mean(links[a].iter().map(|l| l.coverage));
        // Neighbours that also use the account's main system prompt: one operator's accounts
        // behave alike *and* share its exact prompt, while a stock prompt ("You are a helpful
        // assistant.") is shared by many unrelated people who do not behave alike.
        f[Cross::LogSystemPromptNeighbors] = top_system[a].map_or(0.0, |s| {
            let peers = ns.iter().take(params.k);
            (1.0 + peers.filter(|p| users[s as usize].contains(&p.0)).count() as f32).ln()
        });
        // Share of the account's active hours in which some linked account was active too.
        let hours = footprints.hours(a);
        f[Cross::SyncWithLinks] = if links[a].is_empty() || hours.is_empty() {
            0.0
        } else {
            let others: HashSet<i64> = links[a]
                .iter()
                .flat_map(|l| footprints.hours(l.other).iter().copied())
                .collect();
            hours.iter().filter(|h| others.contains(h)).count() as f32 / hours.len() as f32
        };
        if let Some(c) = group_of[a].map(|c| &link_groups[c]) {
            f[Cross::LogCampaignSize] = (1.0 + c.size as f32).ln();
            f[Cross::LogCampaignRequests] = (1.0 + c.requests as f32).ln();
            f[Cross::CampaignMeanSimilarity] = c.mean_similarity;
            let links = c.links.max(1) as f32;
            f[Cross::CampaignFormLinkShare] = c.form_links as f32 / links;
            f[Cross::CampaignInfraLinkShare] = c.infra_links as f32 / links;
            f[Cross::CampaignMeanSync] = c.mean_sync;
            f[Cross::CampaignShiftLogZ] = crate::features::shift::log_z(c.shift_z) as f32;
        }
        let count = |pred: fn(&Link) -> bool| links[a].iter().filter(|l| pred(l)).count();
        f[Cross::LogFormLinks] = (1.0 + count(|l| l.by_form) as f32).ln();
        f[Cross::LogInfraLinks] = (1.0 + count(|l| l.by_infra) as f32).ln();
        f[Cross::LinkSync] = mean(links[a].iter().map(|l| l.sync));
    }
    Ok(Linking {
        neighbors,
        links,
        group_of,
        groups: link_groups,
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

/// The names of the behaviour vector's components start with it (and no other feature's
/// does): what a member blind to the behaviour vector (`classify::TrainOptions::blind_rounds`)
/// never reads.
pub const BEHAVIOUR_PREFIX: &str = "behaviour_";

/// The names of the local features relative to the account's endpoint
/// (`crate::features::LocalFeatures::relative`) are the local features' with it in front.
pub const RELATIVE_PREFIX: &str = "rel_";

/// All feature names the classifier sees: local, cross-account, the local features relative
/// to the account's endpoint's typical account (`rel_log_requests`, ...), then the `dim`
/// components of the behaviour vector (`behaviour_000`, ...), shrunk for accounts with few
/// prompts (see [`BEHAVIOUR_PRIOR_PROMPTS`]). The behaviour vector says *what* an account asks
/// about (task sets, coding, grading) in a way no hand-made feature does; on held-out campaign
/// kinds it raised AUROC by several points (docs/evaluation.md).
pub fn feature_names(dim: usize) -> Vec<String> {
    LOCAL_FEATURES
        .iter()
        .chain(CROSS_FEATURES)
        .map(|s| s.to_string())
        .chain(
            LOCAL_FEATURES
                .iter()
                .map(|s| format!("{RELATIVE_PREFIX}{s}")),
        )
        .chain((0..dim).map(|i| format!("{BEHAVIOUR_PREFIX}{i:03}")))
        .collect()
}

/// The full feature matrix `accounts x feature_names(local.dim).len()`.
pub fn feature_matrix(local: &LocalFeatures, linking: &Linking) -> Vec<f32> {
    let n = linking.group_of.len();
    (0..n)
        .flat_map(|a| {
            local
                .row(a)
                .iter()
                .chain(linking.row(a))
                .chain(local.relative_row(a))
                .copied()
                .chain(shrunk_behaviour(local, a))
        })
        .collect()
}

/// Account `a`'s behaviour vector relative to its endpoint's usual traffic (minus the mean
/// embedding of the endpoint's shift reference, [`crate::features::shift::Reference::centre`]),
/// scaled by `k / (k + BEHAVIOUR_PRIOR_PROMPTS)`, `k` its distinct prompts. Relative, because
/// what is usual depends on the endpoint: word problems are a sweep on a chat endpoint and the
/// whole traffic of a maths tutor's; without it the classifier flagged 97 of 100 honest users
/// of an unseen tutoring endpoint (docs/evaluation.md).
fn shrunk_behaviour(local: &LocalFeatures, a: usize) -> impl Iterator<Item = f32> + '_ {
    let k = (local.offsets[a + 1] - local.offsets[a]) as f32;
    let w = k / (k + BEHAVIOUR_PRIOR_PROMPTS);
    let centre = local.reference.centre(a);
    local
        .behaviour(a)
        .iter()
        .enumerate()
        .map(move |(i, v)| (v - centre.map_or(0.0, |c| c[i])) * w)
}

/// The shift test of a group's pooled prompts (at most [`MAX_GROUP_SHIFT_PROMPTS`], evenly
/// spaced over the members' prompts).
fn group_shift(
    local: &LocalFeatures,
    members: &[usize],
) -> Result<crate::features::shift::ShiftScore> {
    let rows: Vec<u32> = members
        .iter()
        .flat_map(|&a| (local.offsets[a]..local.offsets[a + 1]).map(|r| r as u32))
        .collect();
    let take: Vec<u32> = if rows.len() <= MAX_GROUP_SHIFT_PROMPTS {
        rows
    } else {
        (0..MAX_GROUP_SHIFT_PROMPTS)
            .map(|i| rows[i * rows.len() / MAX_GROUP_SHIFT_PROMPTS])
            .collect()
    };
    if take.is_empty() {
        return Ok(Default::default());
    }
    let idx = candle_core::Tensor::new(take.as_slice(), local.prompts.device())?;
    let x: Vec<f32> = local
        .prompts
        .index_select(&idx, 0)?
        .flatten_all()?
        .to_vec1()?;
    local.reference.test_group(members[0], &x)
}

/// Elements common to two sorted, distinct lists (one merge pass).
pub(crate) fn sorted_common<T: Ord>(x: &[T], y: &[T]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < x.len() && j < y.len() {
        match x[i].cmp(&y[j]) {
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
        }
    }
    n
}

/// Candidate pairs from buckets of accounts (LSH buckets, posting lists): each member paired
/// with the next `ring` members of its bucket, cyclically, so a bucket of `m` accounts gives at
/// most `m * ring` pairs and stays connected. Pairs `(a, b)`, `a < b`, each once, ascending.
pub(crate) fn ring_pairs<'a>(
    buckets: impl Iterator<Item = &'a [u32]>,
    ring: usize,
) -> Vec<(u32, u32)> {
    let mut pairs = Vec::new();
    for list in buckets {
        let m = list.len();
        for i in 0..m {
            for j in 1..=ring.min(m.saturating_sub(1)) {
                let (x, y) = (list[i], list[(i + j) % m]);
                pairs.push((x.min(y), x.max(y)));
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
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
