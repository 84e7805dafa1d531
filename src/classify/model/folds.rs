//! Group-wise splits: whole groups (campaigns, accounts) land on one side.

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use rand::SeedableRng;

use super::Dataset;

/// Rows split by group into a training part and a held-out part.
pub(super) struct GroupSplit {
    pub(super) train: Vec<usize>,
    pub(super) held: Vec<usize>,
}

impl GroupSplit {
    /// (positives, negatives) among `rows`.
    pub(super) fn classes(&self, rows: &[usize], y: &[u8]) -> (usize, usize) {
        let pos = rows.iter().filter(|&&i| y[i] == 1).count();
        (pos, rows.len() - pos)
    }

    pub(super) fn both_classes_each_side(&self, y: &[u8]) -> bool {
        let (tp, tn) = self.classes(&self.train, y);
        let (hp, hn) = self.classes(&self.held, y);
        tp > 0 && tn > 0 && hp > 0 && hn > 0
    }
}

/// Splits `rows` by group, holding out about `fraction` of the groups that contain positives
/// and the same share of the negative-only groups (at least one and at most all but one of
/// each kind, when there are two or more). Groups are sorted before a seeded shuffle, so the
/// split depends only on the seed and the set of groups, not on row order.
pub(super) fn split_groups(data: &Dataset, rows: &[usize], fraction: f64, seed: u64) -> GroupSplit {
    let mut has_pos: BTreeMap<&str, bool> = BTreeMap::new();
    for &i in rows {
        *has_pos.entry(data.groups[i].as_str()).or_default() |= data.y[i] == 1;
    }
    let mut pos_groups: Vec<&str> = has_pos
        .iter()
        .filter(|(_, &p)| p)
        .map(|(&g, _)| g)
        .collect();
    let mut neg_groups: Vec<&str> = has_pos
        .iter()
        .filter(|(_, &p)| !p)
        .map(|(&g, _)| g)
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    pos_groups.shuffle(&mut rng);
    neg_groups.shuffle(&mut rng);
    let held_out = |k: usize| -> usize {
        if k < 2 {
            0
        } else {
            ((k as f64 * fraction).round() as usize).clamp(1, k - 1)
        }
    };
    let (hp, hn) = (held_out(pos_groups.len()), held_out(neg_groups.len()));
    let held: HashSet<&str> = pos_groups[..hp]
        .iter()
        .chain(&neg_groups[..hn])
        .copied()
        .collect();
    let (train, held_rows): (Vec<usize>, Vec<usize>) = rows
        .iter()
        .partition(|&&i| !held.contains(data.groups[i].as_str()));
    GroupSplit {
        train,
        held: held_rows,
    }
}

/// Labelled groups dealt into folds.
pub(super) struct Folds {
    /// Fold of each row.
    pub(super) of: Vec<usize>,
    /// Folds used.
    pub(super) k: usize,
    pub(super) pos_groups: usize,
    pub(super) neg_groups: usize,
}

/// Deals the groups into `k` folds (fewer when there are fewer positive or negative groups):
/// groups holding positives and negative-only groups are each sorted, shuffled with `seed` and
/// dealt round robin, so every fold gets its share of both and the result depends only on the
/// seed and the set of groups, not on row order.
pub(super) fn assign_folds(data: &Dataset, k: usize, seed: u64) -> Folds {
    let mut has_pos: BTreeMap<&str, bool> = BTreeMap::new();
    for (g, &y) in data.groups.iter().zip(&data.y) {
        *has_pos.entry(g.as_str()).or_default() |= y == 1;
    }
    let mut pos: Vec<&str> = has_pos
        .iter()
        .filter(|(_, &p)| p)
        .map(|(&g, _)| g)
        .collect();
    let mut neg: Vec<&str> = has_pos
        .iter()
        .filter(|(_, &p)| !p)
        .map(|(&g, _)| g)
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    pos.shuffle(&mut rng);
    neg.shuffle(&mut rng);
    let k = k.min(pos.len()).min(neg.len()).max(1);
    let fold_of: HashMap<&str, usize> = pos
        .iter()
        .enumerate()
        .chain(neg.iter().enumerate())
        .map(|(i, &g)| (g, i % k))
        .collect();
    Folds {
        of: data.groups.iter().map(|g| fold_of[g.as_str()]).collect(),
        k,
        pos_groups: pos.len(),
        neg_groups: neg.len(),
    }
}

/// (groups holding positives, negative-only groups) of `data`.
pub(super) fn group_counts(data: &Dataset) -> (usize, usize) {
    let mut has_pos: BTreeMap<&str, bool> = BTreeMap::new();
    for (g, &y) in data.groups.iter().zip(&data.y) {
        *has_pos.entry(g.as_str()).or_default() |= y == 1;
    }
    let pos = has_pos.values().filter(|&&p| p).count();
    (pos, has_pos.len() - pos)
}

/// Fold of each group among `rows`: groups holding positives and negative-only groups are each
/// sorted, shuffled with `rng` and dealt round robin over `k` folds from a starting fold drawn
/// from `rng`.
pub(super) fn deal_groups<'a>(
    data: &'a Dataset,
    rows: &[usize],
    k: usize,
    rng: &mut StdRng,
) -> HashMap<&'a str, usize> {
    let mut has_pos: BTreeMap<&str, bool> = BTreeMap::new();
    for &i in rows {
        *has_pos.entry(data.groups[i].as_str()).or_default() |= data.y[i] == 1;
    }
    let mut fold_of = HashMap::new();
    for class in [true, false] {
        let mut groups: Vec<&str> = has_pos
            .iter()
            .filter(|(_, &p)| p == class)
            .map(|(&g, _)| g)
            .collect();
        groups.shuffle(rng);
        let start = rng.random_range(0..k.max(1));
        for (i, g) in groups.into_iter().enumerate() {
            fold_of.insert(g, (start + i) % k.max(1));
        }
    }
    fold_of
}
