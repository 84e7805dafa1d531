//! Link signals that do not depend on what accounts ask: shared infrastructure and synchrony.
//!
//! Campaign accounts sweep *different* items of a task space, so their prompts need not be
//! alike, but one operator's accounts tend to come from the same networks (a proxy pool's
//! /24s, one cloud site), with the same client build, under the same system prompt, and,
//! when traffic is load-balanced between them, in the same minutes (SynchroTrap's signal).
//! These are expensive for an extractor to change, unlike wording.
//!
//! Each account's *footprint* is the set of tokens it used: client networks
//! ([`crate::features::network_of`]), user agents and system prompts. Two footprints are
//! compared by IDF-weighted Jaccard (a token's weight is `ln(N / accounts using it)`), so that
//! a stock system prompt ("You are a helpful assistant.") or a popular SDK version shared by
//! thousands of strangers weighs nearly nothing while a /24 used by a few dozen accounts weighs
//! a lot. Candidate pairs come from an inverted index over tokens without all-pairs work: each
//! account is paired with the next [`InfraParams::ring`] accounts of every posting list
//! (a ring, in account order), which is linear in the list's length and keeps every list
//! connected; lists longer than [`InfraParams::max_token_accounts`] propose nothing (their
//! weight is small anyway). A user agent alone never links two accounts: it is copied by
//! everyone using the same library.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::features::Accounts;
use crate::ingest::HOUR_MS;

/// Width of the activity buckets compared for synchrony.
pub const SYNC_BUCKET_MS: i64 = 5 * 60_000;

/// Infrastructure-link settings (saved with the linking settings).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InfraParams {
    /// Weighted footprint Jaccard at or above which two accounts are linked.
    pub min_overlap: f32,
    /// Following accounts of a posting list each account is paired with.
    pub ring: usize,
    /// Posting lists longer than this propose no pairs.
    pub max_token_accounts: usize,
}

impl Default for InfraParams {
    fn default() -> Self {
        InfraParams {
            min_overlap: 0.4,
            ring: 10,
            max_token_accounts: 5_000,
        }
    }
}

/// What kind of infrastructure a footprint token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenKind {
    Network,
    UserAgent,
    SystemPrompt,
}

/// Every account's footprint, with the token weights of this run.
pub struct Footprints {
    /// Per account: its distinct tokens, sorted.
    tokens: Vec<Vec<(TokenKind, u32)>>,
    weight: HashMap<(TokenKind, u32), f32>,
    /// Per account: its active [`SYNC_BUCKET_MS`] buckets and hours, sorted.
    buckets: Vec<Vec<i64>>,
    hours: Vec<Vec<i64>>,
}

/// How two accounts' footprints compare.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct InfraOverlap {
    /// IDF-weighted Jaccard of the footprints, 0..1.
    pub overlap: f32,
    /// Shared networks, user agents and system prompts.
    pub networks: usize,
    pub user_agents: usize,
    pub system_prompts: usize,
}

impl InfraOverlap {
    /// Whether the overlap alone links the accounts: strong enough, and not user agents only.
    pub fn links(&self, params: &InfraParams) -> bool {
        self.overlap >= params.min_overlap && (self.networks > 0 || self.system_prompts > 0)
    }
}

impl Footprints {
    pub fn new(accounts: &Accounts) -> Self {
        let tokens: Vec<Vec<(TokenKind, u32)>> = accounts
            .requests
            .iter()
            .map(|reqs| {
                let mut set = BTreeSet::new();
                for q in reqs {
                    set.extend(q.net.map(|t| (TokenKind::Network, t)));
                    set.extend(q.ua.map(|t| (TokenKind::UserAgent, t)));
                    set.extend(q.system.map(|t| (TokenKind::SystemPrompt, t)));
                }
                set.into_iter().collect()
            })
            .collect();
        let mut df: HashMap<(TokenKind, u32), usize> = HashMap::new();
        for t in tokens.iter().flatten() {
            *df.entry(*t).or_default() += 1;
        }
        let n = accounts.len().max(1) as f32;
        let weight = df
            .into_iter()
            .map(|(t, d)| (t, (n / d as f32).ln()))
            .collect();
        let bucketed = |width: i64| -> Vec<Vec<i64>> {
            accounts
                .requests
                .iter()
                .map(|reqs| {
                    let mut b: Vec<i64> = reqs.iter().map(|q| q.ts_ms.div_euclid(width)).collect();
                    b.sort_unstable();
                    b.dedup();
                    b
                })
                .collect()
        };
        Footprints {
            tokens,
            weight,
            buckets: bucketed(SYNC_BUCKET_MS),
            hours: bucketed(HOUR_MS),
        }
    }

    /// Candidate pairs `(a, b)`, `a < b`, each once, in ascending order.
    pub fn candidate_pairs(&self, params: &InfraParams) -> Vec<(u32, u32)> {
        let mut postings: HashMap<(TokenKind, u32), Vec<u32>> = HashMap::new();
        for (a, ts) in self.tokens.iter().enumerate() {
            for &t in ts.iter().filter(|t| t.0 != TokenKind::UserAgent) {
                postings.entry(t).or_default().push(a as u32);
            }
        }
        let lists = postings
            .values()
            .filter(|l| l.len() <= params.max_token_accounts)
            .map(Vec::as_slice);
        super::ring_pairs(lists, params.ring)
    }

    /// The footprint overlap of accounts `a` and `b`.
    pub fn overlap(&self, a: usize, b: usize) -> InfraOverlap {
        let (ta, tb) = (&self.tokens[a], &self.tokens[b]);
        let w = |t: &(TokenKind, u32)| self.weight.get(t).copied().unwrap_or(0.0);
        let mut out = InfraOverlap::default();
        let (mut inter, mut union) = (0f32, 0f32);
        let (mut i, mut j) = (0, 0);
        while i < ta.len() || j < tb.len() {
            let ord = match (ta.get(i), tb.get(j)) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match ord {
                std::cmp::Ordering::Equal => {
                    let t = ta[i];
                    inter += w(&t);
                    union += w(&t);
                    match t.0 {
                        TokenKind::Network => out.networks += 1,
                        TokenKind::UserAgent => out.user_agents += 1,
                        TokenKind::SystemPrompt => out.system_prompts += 1,
                    }
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => {
                    union += w(&ta[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    union += w(&tb[j]);
                    j += 1;
                }
            }
        }
        out.overlap = if union > 0.0 { inter / union } else { 0.0 };
        out
    }

    /// Activity synchrony of `a` and `b`: the share of the less active account's
    /// [`SYNC_BUCKET_MS`] buckets in which the other was active too, 0..1.
    pub fn sync(&self, a: usize, b: usize) -> f32 {
        shared_share(&self.buckets[a], &self.buckets[b])
    }

    /// Account `a`'s active hours (epoch hour numbers), sorted.
    pub fn hours(&self, a: usize) -> &[i64] {
        &self.hours[a]
    }

    /// Co-activity of `a` and `b`: the share of the less active account's active hours in
    /// which the other was active too, 0..1. Accounts fed by one queue work in the same hours;
    /// two operators using the same public wrappers in different weeks do not.
    pub fn co_activity(&self, a: usize, b: usize) -> f32 {
        shared_share(&self.hours[a], &self.hours[b])
    }
}

/// `|x ∩ y| / min(|x|, |y|)` for sorted, distinct `x` and `y` (0 when either is empty).
fn shared_share(x: &[i64], y: &[i64]) -> f32 {
    let smaller = x.len().min(y.len());
    if smaller == 0 {
        return 0.0;
    }
    super::sorted_common(x, y) as f32 / smaller as f32
}
