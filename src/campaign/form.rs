//! Template signatures: what an account's prompts share whatever the item, compared across
//! accounts by MinHash and LSH banding.
//!
//! An account's *signature* is the set of shingles ([`crate::shingles`]) that recur across its
//! distinct prompts: in at least [`FormParams::min_prompts`] of them and at least
//! [`FormParams::min_share`] of them. Wrappers, instructions and output formats recur; the
//! items a sweep goes through do not, so they do not drive it, and an account with a single
//! distinct prompt has no signature. Two accounts share a *form* when their signatures'
//! Jaccard similarity is at least [`FormParams::min_jaccard`] and they share at least
//! [`FormParams::min_shared`] shingles (a fixed wrapper is a phrase of several words; a shared
//! idiom such as "step by step" is not a template). A shared form links two accounts only when
//! they were also active in the same hours ([`FormParams::min_co_activity`]) and share some
//! footprint token (see `form_links` in the parent module).
//!
//! Candidate pairs come without all-pairs work: each signature gets [`FormParams::bands`] x
//! [`FormParams::rows_per_band`] MinHash values, accounts whose values agree on a whole band
//! fall in one bucket (pairs at Jaccard 0.5 share a band with probability 0.93 at 20 x 3), and
//! each account of a bucket is paired with the next [`FormParams::ring`] accounts of the bucket
//! (linear in the bucket's size; a campaign of thousands of accounts stays connected). Every
//! candidate is then checked with the exact Jaccard of the two signatures.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::features::{Accounts, MAX_GEOMETRY_PROMPTS};
use crate::run::RowShingles;

/// Template-signature settings (saved with the linking settings).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FormParams {
    /// A shingle belongs to the signature when it recurs in at least this many distinct
    /// prompts of the account...
    pub min_prompts: usize,
    /// ...and in at least this share of them.
    pub min_share: f32,
    /// Signature Jaccard at or above which two accounts share a form.
    pub min_jaccard: f32,
    /// Shingles both signatures must hold.
    pub min_shared: usize,
    /// Co-activity ([`super::Footprints::co_activity`]) a form link also needs: operators draw
    /// wrappers from the same public collections, and accounts of one campaign are fed by one
    /// queue, so they work in the same hours while two campaigns with the same wording often
    /// do not.
    pub min_co_activity: f32,
    /// LSH banding: bands, and MinHash values per band.
    pub bands: usize,
    pub rows_per_band: usize,
    /// Following accounts of a bucket each account is paired with.
    pub ring: usize,
}

impl Default for FormParams {
    fn default() -> Self {
        FormParams {
            min_prompts: 2,
            min_share: 0.15,
            min_jaccard: 0.4,
            min_shared: 6,
            min_co_activity: 0.25,
            bands: 20,
            rows_per_band: 3,
            ring: 10,
        }
    }
}

/// Every account's template signature.
pub struct Signatures {
    /// Per account: its signature, sorted.
    sigs: Vec<Vec<u32>>,
}

/// How two accounts' forms compare.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct FormOverlap {
    /// Jaccard similarity of the signatures, 0..1.
    pub jaccard: f32,
    /// Shingles in both signatures.
    pub shared: usize,
}

impl FormOverlap {
    /// Whether the two accounts share a form (a link also needs co-activity).
    pub fn shares_form(&self, params: &FormParams) -> bool {
        self.jaccard >= params.min_jaccard && self.shared >= params.min_shared
    }
}

impl Signatures {
    /// The signature of every account, from up to [`MAX_GEOMETRY_PROMPTS`] distinct prompts.
    pub fn new(accounts: &Accounts, shingles: &RowShingles, params: &FormParams) -> Self {
        let sigs = (0..accounts.len())
            .map(|a| {
                let rows = accounts.distinct_rows(a, MAX_GEOMETRY_PROMPTS);
                let need = params
                    .min_prompts
                    .max((params.min_share * rows.len() as f32).ceil() as usize);
                let mut counts: HashMap<u32, usize> = HashMap::new();
                for &r in &rows {
                    for &h in shingles.row(r) {
                        *counts.entry(h).or_default() += 1;
                    }
                }
                let mut sig: Vec<u32> = counts
                    .into_iter()
                    .filter(|&(_, c)| c >= need)
                    .map(|(h, _)| h)
                    .collect();
                sig.sort_unstable();
                sig
            })
            .collect();
        Signatures { sigs }
    }

    /// Account `a`'s signature.
    pub fn of(&self, a: usize) -> &[u32] {
        &self.sigs[a]
    }

    /// Candidate pairs `(a, b)`, `a < b`, each once, ascending, from LSH buckets.
    pub fn candidate_pairs(&self, params: &FormParams) -> Vec<(u32, u32)> {
        let k = params.bands * params.rows_per_band;
        let mut buckets: HashMap<(usize, u64), Vec<u32>> = HashMap::new();
        for (a, sig) in self.sigs.iter().enumerate() {
            if sig.len() < params.min_shared {
                continue;
            }
            let mins: Vec<u64> = (0..k as u64)
                .map(|i| sig.iter().map(|&h| mix(u64::from(h), i)).min().unwrap_or(0))
                .collect();
            for (b, band) in mins.chunks(params.rows_per_band).enumerate() {
                let key = band
                    .iter()
                    .fold(0xcbf2_9ce4_8422_2325u64, |acc, &v| mix(acc ^ v, 0));
                buckets.entry((b, key)).or_default().push(a as u32);
            }
        }
        super::ring_pairs(buckets.values().map(Vec::as_slice), params.ring)
    }

    /// The exact form overlap of accounts `a` and `b`.
    pub fn overlap(&self, a: usize, b: usize) -> FormOverlap {
        let (x, y) = (&self.sigs[a], &self.sigs[b]);
        if x.is_empty() || y.is_empty() {
            return FormOverlap::default();
        }
        let shared = super::sorted_common(x, y);
        let union = x.len() + y.len() - shared;
        FormOverlap {
            jaccard: shared as f32 / union as f32,
            shared,
        }
    }
}

/// The `i`-th MinHash function applied to `v`: splitmix64 of `v` seeded by `i`.
fn mix(v: u64, i: u64) -> u64 {
    let mut z = v ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
