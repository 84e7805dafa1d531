//! Link pooling: a campaign is judged as a whole, so an account is scored at least as high as
//! the middle member of its link group.
//!
//! Why: a campaign spreads its requests over many accounts, and each account alone is weak
//! evidence (a dozen requests of what people also ask). The linking stage (`campaign`) already
//! groups accounts that share a template and infrastructure, and `score` reports a group as a
//! campaign when at least half its members are flagged. Without pooling, the members below the
//! threshold of such a reported campaign stay unflagged, and one member's score says nothing of
//! its siblings'. With it, an account's pooled score is `max(own, q)`, where `q` is the
//! `ceil(n/2)`-th highest score among the `n` members of its group (the group's upper median),
//! so that:
//! - a group is reported at threshold `t` exactly when `q >= t`, and then every member is
//!   flagged: account flags and campaign reports agree;
//! - coordination only ever raises a score, and only by what half the group's members earned on
//!   their own: a benign group (a business's keys, a product's users) whose members look honest
//!   has a low `q` and is not raised; one honest account linked into a group is not raised by
//!   one suspicious sibling.
//!
//! Accounts in no group, and groups of one scored member, keep their scores.

use std::collections::HashMap;
use std::hash::Hash;

/// The pooled scores of `scores` (see the module notes): `group_of[i]` is row i's link group,
/// `None` for none. Panics if the lengths differ (a caller's bug).
pub fn pool_by_group<K: Eq + Hash>(scores: &[f32], group_of: &[Option<K>]) -> Vec<f32> {
    assert_eq!(scores.len(), group_of.len(), "one group entry per score");
    let mut members: HashMap<&K, Vec<f32>> = HashMap::new();
    for (s, g) in scores.iter().zip(group_of) {
        if let Some(g) = g {
            members.entry(g).or_default().push(*s);
        }
    }
    let floor: HashMap<&K, f32> = members
        .into_iter()
        .map(|(g, mut s)| {
            s.sort_by(|a, b| b.total_cmp(a));
            (g, s[s.len().div_ceil(2) - 1])
        })
        .collect();
    scores
        .iter()
        .zip(group_of)
        .map(|(&s, g)| g.as_ref().map_or(s, |g| s.max(floor[g])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_rise_to_the_upper_median_of_their_group_and_never_fall() {
        let scores = [0.9, 0.8, 0.1, 0.2, 0.05, 0.7, 0.3];
        let groups = [Some(1), Some(1), Some(1), Some(1), None, Some(2), Some(2)];
        let pooled = pool_by_group(&scores, &groups);
        // Group 1 (0.9, 0.8, 0.2, 0.1): the 2nd highest of 4 is 0.8; group 2: the 1st of 2.
        assert_eq!(pooled, vec![0.9, 0.8, 0.8, 0.8, 0.05, 0.7, 0.7]);
        for (p, s) in pooled.iter().zip(scores) {
            assert!(*p >= s);
        }
    }

    #[test]
    fn one_suspicious_member_does_not_raise_its_group() {
        let scores = [0.95, 0.1, 0.2];
        let pooled = pool_by_group(&scores, &[Some("g"), Some("g"), Some("g")]);
        // The 2nd highest of 3 is 0.2: only the 0.1 member rises, and only to it.
        assert_eq!(pooled, vec![0.95, 0.2, 0.2]);
    }

    #[test]
    fn a_group_is_raised_past_a_threshold_exactly_when_half_its_members_pass_it() {
        let t = 0.5;
        for scores in [
            vec![0.6, 0.4, 0.3, 0.55],
            vec![0.6, 0.4, 0.3, 0.2],
            vec![0.6, 0.7, 0.3],
            vec![0.6, 0.4, 0.3],
        ] {
            let groups = vec![Some(0); scores.len()];
            let flagged = scores.iter().filter(|&&s| s >= t).count();
            let pooled = pool_by_group(&scores, &groups);
            let all = pooled.iter().all(|&p| p >= t);
            assert_eq!(all, 2 * flagged >= scores.len(), "{scores:?} -> {pooled:?}");
        }
    }
}
