//! Ranking and clustering metrics, in plain Rust so that they can be checked by hand.
//!
//! Abuse teams read these numbers to decide whether a retrained classifier may replace the old
//! one, so each function pins down its conventions (ties, empty classes) instead of inheriting
//! them from a library: ties always count half or move together, a metric that is undefined for
//! the data is `None` rather than `NaN` (which JSON cannot carry), and nothing panics.
//!
//! Labels are `u8`; any non-zero label counts as positive. Scores should be finite; `NaN` is
//! ordered by [`f32::total_cmp`] (no panic, but the number means nothing). When `scores` and
//! `labels` differ in length, the `Option` functions return `None` and [`threshold_for_fpr`]
//! uses the common prefix.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting one half (Mann-Whitney U with average ranks).
///
/// `None` when either class is missing or the lengths differ.
pub fn auroc(scores: &[f32], labels: &[u8]) -> Option<f64> {
    if scores.len() != labels.len() {
        return None;
    }
    let (pos, neg) = class_counts(labels);
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of 1-based average ranks of the positives.
    let mut rank_sum = 0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]].total_cmp(&scores[order[i]]).is_eq() {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let avg = (i + j) as f64 / 2.0 + 1.0;
        let tied_pos = order[i..=j].iter().filter(|&&k| labels[k] != 0).count();
        rank_sum += avg * tied_pos as f64;
        i = j + 1;
    }
    let (p, n) = (pos as f64, neg as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Average precision as scikit-learn computes it: `sum_k (R_k - R_{k-1}) * P_k` over the
/// distinct score thresholds from high to low (step-wise, no interpolation). Tied scores enter
/// together, as one threshold.
///
/// `None` when there are no positives or the lengths differ; with no negatives it is 1.
pub fn average_precision(scores: &[f32], labels: &[u8]) -> Option<f64> {
    if scores.len() != labels.len() {
        return None;
    }
    let (pos, _) = class_counts(labels);
    if pos == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen) = (0usize, 0usize);
    let mut prev_recall = 0f64;
    let mut ap = 0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]].total_cmp(&scores[order[i]]).is_eq() {
            j += 1;
        }
        tp += order[i..=j].iter().filter(|&&k| labels[k] != 0).count();
        seen += j - i + 1;
        let recall = tp as f64 / pos as f64;
        let precision = tp as f64 / seen as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        i = j + 1;
    }
    Some(ap)
}

/// The smallest threshold `t` such that the fraction of negatives with `score >= t` is at most
/// `target_fpr`: an account is flagged when `score >= t`.
///
/// With `N` negatives at most `k = floor(target_fpr * N)` of them may be flagged. If `k >= N`
/// every score may be flagged and the result is the smallest score present. Otherwise the
/// result is the next `f32` above the `(k+1)`-th highest negative score, so that negative and
/// everything below it stay unflagged and anything strictly above it is flagged.
///
/// Ties: negatives with equal scores are flagged or not together, so when the cut falls inside
/// a tie the whole tie stays below the threshold and the achieved FPR is below the target
/// (never above). Positives tied with that negative are not flagged either.
///
/// `target_fpr` is clamped to `[0, 1]` (`NaN` reads as 0). With no negatives every score may
/// be flagged; with no scores at all the result is `f32::NEG_INFINITY`.
pub fn threshold_for_fpr(scores: &[f32], labels: &[u8], target_fpr: f64) -> f32 {
    let target = if target_fpr.is_nan() {
        0.0
    } else {
        target_fpr.clamp(0.0, 1.0)
    };
    let mut negs: Vec<f32> = scores
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l == 0)
        .map(|(&s, _)| s)
        .collect();
    let n = negs.len();
    // A small tolerance keeps 0.01 * 100 from rounding down to 0.99999.
    let k = ((target * n as f64) + 1e-9).floor() as usize;
    if k >= n {
        return scores
            .iter()
            .take(labels.len())
            .copied()
            .min_by(|a, b| a.total_cmp(b))
            .unwrap_or(f32::NEG_INFINITY);
    }
    negs.sort_by(|a, b| b.total_cmp(a));
    next_up(negs[k])
}

/// Recall of the positives at [`threshold_for_fpr`]`(scores, labels, fpr)`.
///
/// `None` when either class is missing or the lengths differ.
pub fn recall_at_fpr(scores: &[f32], labels: &[u8], fpr: f64) -> Option<f64> {
    if scores.len() != labels.len() {
        return None;
    }
    let (pos, neg) = class_counts(labels);
    if pos == 0 || neg == 0 {
        return None;
    }
    let t = threshold_for_fpr(scores, labels, fpr);
    Some(confusion(scores, labels, t).recall())
}

/// Held-out quality of a classifier; stored in `model.json` and printed after training.
///
/// Fields that the data cannot define (no positives, no negatives) are `None` / JSON `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub auroc: Option<f64>,
    pub average_precision: Option<f64>,
    /// Recall at the threshold that flags at most 1% of negatives.
    pub recall_at_1pct_fpr: Option<f64>,
    /// Recall at the threshold that flags at most 0.1% of negatives. With fewer than 1,000
    /// negatives this allows no false positive at all.
    pub recall_at_0_1pct_fpr: Option<f64>,
    pub positives: usize,
    pub negatives: usize,
    /// The operating threshold these counts refer to (flag when `score >= threshold`).
    pub threshold: Option<f32>,
    /// Accounts flagged at `threshold`, split into true and false positives.
    pub true_positives: Option<usize>,
    pub false_positives: Option<usize>,
    /// Precision, recall and false positive rate at `threshold`.
    pub precision_at_threshold: Option<f64>,
    pub recall_at_threshold: Option<f64>,
    pub fpr_at_threshold: Option<f64>,
}

impl Metrics {
    /// All metrics for `scores` against `labels`; the `*_at_threshold` fields are filled when
    /// a threshold is given. Lengths must match (otherwise only the counts are filled).
    pub fn from_scores(scores: &[f32], labels: &[u8], threshold: Option<f32>) -> Metrics {
        let (positives, negatives) = class_counts(labels);
        let at = threshold
            .filter(|_| scores.len() == labels.len())
            .map(|t| confusion(scores, labels, t));
        Metrics {
            auroc: auroc(scores, labels),
            average_precision: average_precision(scores, labels),
            recall_at_1pct_fpr: recall_at_fpr(scores, labels, 0.01),
            recall_at_0_1pct_fpr: recall_at_fpr(scores, labels, 0.001),
            positives,
            negatives,
            threshold,
            true_positives: at.map(|c| c.tp),
            false_positives: at.map(|c| c.fp),
            precision_at_threshold: at
                .and_then(|c| (c.tp + c.fp > 0).then(|| c.tp as f64 / (c.tp + c.fp) as f64)),
            recall_at_threshold: at.and_then(|c| (c.pos > 0).then(|| c.recall())),
            fpr_at_threshold: at.and_then(|c| (c.neg > 0).then(|| c.fp as f64 / c.neg as f64)),
        }
    }
}

/// Pairwise precision and recall of a clustering against the truth, over unordered pairs of
/// accounts: a pair is "predicted" when both accounts are in the same predicted cluster and
/// "true" when both are in the same true cluster. Precision = |predicted ∩ true| / |predicted|,
/// recall = |predicted ∩ true| / |true|.
///
/// Accounts mapped to `None`, or absent from a map, are in no cluster there and form no pair.
/// Conventions for empty denominators: with no predicted pairs precision is 1 (no false claim
/// was made); with no true pairs recall is 1 (nothing was there to find).
pub fn pair_precision_recall(
    pred_clusters: &HashMap<String, Option<String>>,
    true_clusters: &HashMap<String, Option<String>>,
) -> (f64, f64) {
    fn pairs(n: u64) -> u64 {
        n * n.saturating_sub(1) / 2
    }
    let mut pred_sizes: HashMap<&str, u64> = HashMap::new();
    let mut true_sizes: HashMap<&str, u64> = HashMap::new();
    let mut both: HashMap<(&str, &str), u64> = HashMap::new();
    for (account, cluster) in pred_clusters {
        let Some(p) = cluster.as_deref() else {
            continue;
        };
        *pred_sizes.entry(p).or_default() += 1;
        if let Some(Some(t)) = true_clusters.get(account) {
            *both.entry((p, t.as_str())).or_default() += 1;
        }
    }
    for t in true_clusters.values().flatten() {
        *true_sizes.entry(t.as_str()).or_default() += 1;
    }
    let predicted: u64 = pred_sizes.values().map(|&n| pairs(n)).sum();
    let truth: u64 = true_sizes.values().map(|&n| pairs(n)).sum();
    let hits: u64 = both.values().map(|&n| pairs(n)).sum();
    let precision = if predicted == 0 {
        1.0
    } else {
        hits as f64 / predicted as f64
    };
    let recall = if truth == 0 {
        1.0
    } else {
        hits as f64 / truth as f64
    };
    (precision, recall)
}

/// (positives, negatives).
fn class_counts(labels: &[u8]) -> (usize, usize) {
    let pos = labels.iter().filter(|&&l| l != 0).count();
    (pos, labels.len() - pos)
}

#[derive(Debug, Clone, Copy)]
struct Confusion {
    tp: usize,
    fp: usize,
    pos: usize,
    neg: usize,
}

impl Confusion {
    fn recall(&self) -> f64 {
        if self.pos == 0 {
            0.0
        } else {
            self.tp as f64 / self.pos as f64
        }
    }
}

/// Counts at "flag when score >= t".
fn confusion(scores: &[f32], labels: &[u8], t: f32) -> Confusion {
    let mut c = Confusion {
        tp: 0,
        fp: 0,
        pos: 0,
        neg: 0,
    };
    for (&s, &l) in scores.iter().zip(labels) {
        let flagged = s >= t;
        if l != 0 {
            c.pos += 1;
            c.tp += flagged as usize;
        } else {
            c.neg += 1;
            c.fp += flagged as usize;
        }
    }
    c
}

/// The smallest `f32` greater than `x` (`f32::next_up`, which needs Rust 1.86).
fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x == 0.0 {
        // Both +0 and -0 step to the smallest positive subnormal.
        return f32::from_bits(1);
    }
    let bits = x.to_bits();
    if x > 0.0 {
        f32::from_bits(bits + 1)
    } else {
        f32::from_bits(bits - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn auroc_perfect_inverted_and_constant() {
        let labels = [0, 0, 1, 1];
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(auroc(&[0.9, 0.8, 0.2, 0.1], &labels), Some(0.0));
        assert_eq!(auroc(&[0.5; 4], &labels), Some(0.5));
    }

    #[test]
    fn auroc_with_ties_by_hand() {
        // Pairs (pos, neg): pos 0.8 beats 0.1 and ties 0.8 -> 1.5;
        // pos 0.4 beats 0.1, loses to 0.8 -> 1. AUC = 2.5 / 4.
        let scores = [0.1, 0.8, 0.8, 0.4];
        let labels = [0, 0, 1, 1];
        assert!(close(auroc(&scores, &labels).unwrap(), 0.625));
    }

    #[test]
    fn auroc_missing_class_or_length_mismatch_is_none() {
        assert_eq!(auroc(&[0.1, 0.2], &[1, 1]), None);
        assert_eq!(auroc(&[0.1, 0.2], &[0, 0]), None);
        assert_eq!(auroc(&[], &[]), None);
        assert_eq!(auroc(&[0.1, 0.2], &[0, 1, 1]), None);
    }

    #[test]
    fn average_precision_matches_sklearn() {
        // sklearn.metrics.average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        // = 0.8333...: thresholds 0.8 (P=1, R=.5), 0.4 (P=.5, R=.5), 0.35 (P=2/3, R=1).
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]).unwrap();
        assert!(close(ap, 0.5 + 0.5 * 2.0 / 3.0));
    }

    #[test]
    fn average_precision_ties_enter_together() {
        // One threshold holding everything: P = 2/4 at R = 1.
        assert!(close(
            average_precision(&[0.5; 4], &[0, 1, 0, 1]).unwrap(),
            0.5
        ));
        // Tie at the top between a positive and a negative: P = 1/2 at R = 1/2,
        // then P = 2/3 at R = 1 -> 0.25 + 1/3.
        let ap = average_precision(&[0.9, 0.9, 0.5, 0.1], &[1, 0, 1, 0]).unwrap();
        assert!(close(ap, 0.25 + 1.0 / 3.0));
    }

    #[test]
    fn average_precision_perfect_inverted_and_degenerate() {
        assert_eq!(
            average_precision(&[0.1, 0.2, 0.8, 0.9], &[0, 0, 1, 1]),
            Some(1.0)
        );
        // Inverted: positives last -> P = 1/3 at R = 1/2, P = 2/4 at R = 1.
        let ap = average_precision(&[0.9, 0.8, 0.2, 0.1], &[0, 0, 1, 1]).unwrap();
        assert!(close(ap, 0.5 / 3.0 + 0.25));
        assert_eq!(average_precision(&[0.1, 0.2], &[0, 0]), None);
        assert_eq!(average_precision(&[0.1, 0.2], &[1, 1]), Some(1.0));
    }

    #[test]
    fn threshold_for_fpr_by_hand() {
        // 10 negatives 0.0 .. 0.9, target 10% -> one negative (0.9) may be flagged; the cut
        // is just above the second highest negative, 0.8.
        let mut scores: Vec<f32> = (0..10).map(|i| i as f32 / 10.0).collect();
        let mut labels = vec![0u8; 10];
        let t = threshold_for_fpr(&scores, &labels, 0.1);
        assert!(t > 0.8 && t <= 0.9);
        assert_eq!(t, next_up(0.8));
        // Zero tolerance: just above the highest negative.
        assert_eq!(threshold_for_fpr(&scores, &labels, 0.0), next_up(0.9));
        // Positives do not move the threshold.
        scores.push(0.85);
        labels.push(1);
        assert_eq!(threshold_for_fpr(&scores, &labels, 0.1), next_up(0.8));
        assert_eq!(recall_at_fpr(&scores, &labels, 0.1), Some(1.0));
        assert_eq!(recall_at_fpr(&scores, &labels, 0.0), Some(0.0));
    }

    #[test]
    fn threshold_for_fpr_ties_stay_below_target() {
        // Negatives 0.9, 0.9, 0.1, 0.1 ... (10 in all); 10% allows one negative, but the two
        // 0.9s are tied, so both stay below the threshold: achieved FPR 0, not 20%.
        let mut scores = vec![0.9f32, 0.9];
        scores.extend(std::iter::repeat_n(0.1f32, 8));
        let labels = vec![0u8; 10];
        let t = threshold_for_fpr(&scores, &labels, 0.1);
        assert_eq!(t, next_up(0.9));
        let flagged = scores.iter().filter(|&&s| s >= t).count();
        assert_eq!(flagged, 0);
    }

    #[test]
    fn threshold_for_fpr_all_same_scores() {
        let scores = [0.5f32; 6];
        let labels = [0, 0, 0, 1, 1, 1];
        // Any tolerance below 100% must leave the tied block unflagged.
        let t = threshold_for_fpr(&scores, &labels, 0.5);
        assert!(t > 0.5);
        assert_eq!(recall_at_fpr(&scores, &labels, 0.5), Some(0.0));
        // 100% allows everything.
        assert_eq!(threshold_for_fpr(&scores, &labels, 1.0), 0.5);
        assert_eq!(recall_at_fpr(&scores, &labels, 1.0), Some(1.0));
    }

    #[test]
    fn threshold_for_fpr_degenerate_inputs() {
        assert_eq!(threshold_for_fpr(&[], &[], 0.01), f32::NEG_INFINITY);
        // No negatives: everything may be flagged.
        assert_eq!(threshold_for_fpr(&[0.3, 0.7], &[1, 1], 0.01), 0.3);
        // Out-of-range and NaN targets clamp.
        assert_eq!(threshold_for_fpr(&[0.3, 0.7], &[0, 0], -1.0), next_up(0.7));
        assert_eq!(
            threshold_for_fpr(&[0.3, 0.7], &[0, 0], f64::NAN),
            next_up(0.7)
        );
        assert_eq!(threshold_for_fpr(&[0.3, 0.7], &[0, 0], 7.0), 0.3);
        // Exact fractions are not lost to rounding: 1% of 100 negatives is one.
        let scores: Vec<f32> = (0..100).map(|i| i as f32).collect();
        assert_eq!(threshold_for_fpr(&scores, &[0u8; 100], 0.01), next_up(98.0));
        assert_eq!(recall_at_fpr(&[0.3], &[1], 0.01), None);
    }

    #[test]
    fn next_up_steps_one_ulp() {
        assert_eq!(next_up(0.0), f32::from_bits(1));
        assert_eq!(next_up(-0.0), f32::from_bits(1));
        assert!(next_up(1.0) > 1.0 && next_up(1.0) - 1.0 == f32::EPSILON);
        assert!(next_up(-1.0) > -1.0);
        assert_eq!(next_up(f32::INFINITY), f32::INFINITY);
        assert_eq!(next_up(f32::NEG_INFINITY), f32::MIN);
    }

    #[test]
    fn metrics_from_scores() {
        let scores = [0.1, 0.4, 0.35, 0.8];
        let labels = [0, 0, 1, 1];
        let m = Metrics::from_scores(&scores, &labels, Some(0.3));
        assert_eq!((m.positives, m.negatives), (2, 2));
        assert!(close(m.auroc.unwrap(), 0.75));
        assert_eq!(m.true_positives, Some(2));
        assert_eq!(m.false_positives, Some(1));
        assert!(close(m.precision_at_threshold.unwrap(), 2.0 / 3.0));
        assert_eq!(m.recall_at_threshold, Some(1.0));
        assert_eq!(m.fpr_at_threshold, Some(0.5));
        // 2 negatives: 1% allows none, cut above 0.4 -> recall 1/2.
        assert_eq!(m.recall_at_1pct_fpr, Some(0.5));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Metrics>(&json).unwrap(), m);

        let none = Metrics::from_scores(&[0.2], &[0], None);
        assert_eq!(none.auroc, None);
        assert_eq!(none.precision_at_threshold, None);
        assert!(serde_json::to_string(&none)
            .unwrap()
            .contains("\"auroc\":null"));
    }

    fn clusters(pairs: &[(&str, Option<&str>)]) -> HashMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(a, c)| (a.to_string(), c.map(str::to_string)))
            .collect()
    }

    #[test]
    fn pair_precision_recall_by_hand() {
        // Truth: {a,b,c} one campaign, d benign. True pairs: ab, ac, bc.
        let truth = clusters(&[
            ("a", Some("T")),
            ("b", Some("T")),
            ("c", Some("T")),
            ("d", None),
        ]);
        // Predicted: {a,b} and {c,d}. Predicted pairs: ab, cd. Hits: ab.
        let pred = clusters(&[
            ("a", Some("1")),
            ("b", Some("1")),
            ("c", Some("2")),
            ("d", Some("2")),
        ]);
        let (p, r) = pair_precision_recall(&pred, &truth);
        assert!(close(p, 0.5));
        assert!(close(r, 1.0 / 3.0));
        // Perfect (cluster names do not matter).
        let pred = clusters(&[("a", Some("x")), ("b", Some("x")), ("c", Some("x"))]);
        assert_eq!(pair_precision_recall(&pred, &truth), (1.0, 1.0));
    }

    #[test]
    fn pair_precision_recall_empty_conventions() {
        let truth = clusters(&[("a", Some("T")), ("b", Some("T"))]);
        let nothing = clusters(&[("a", None), ("b", None)]);
        assert_eq!(pair_precision_recall(&nothing, &truth), (1.0, 0.0));
        // Predicted pairs where there is no truth at all (accounts absent from the truth map).
        let pred = clusters(&[("x", Some("1")), ("y", Some("1"))]);
        assert_eq!(pair_precision_recall(&pred, &HashMap::new()), (0.0, 1.0));
        assert_eq!(
            pair_precision_recall(&HashMap::new(), &HashMap::new()),
            (1.0, 1.0)
        );
    }
}
