//! Labelled rows and their standardisation.

use std::collections::BTreeMap;

use super::STD_FLOOR;
use crate::error::{Error, Result};

/// Labelled accounts for training, one row per account.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Feature names in column order: the schema stored with the model.
    pub features: Vec<String>,
    /// Account ids, one per row (used in error messages).
    pub names: Vec<String>,
    /// `rows x features.len()` values, row-major. Must be finite.
    pub x: Vec<f32>,
    /// 1 = extraction account, 0 = benign.
    pub y: Vec<u8>,
    /// The split unit, one per row: campaign id for positives, account id for negatives.
    pub groups: Vec<String>,
    /// Loss multiplier of a group's share within its class (groups not listed: 1). Each class
    /// still carries half the loss; a listed group takes `w` shares of it instead of one.
    pub group_weights: BTreeMap<String, f32>,
    /// Each row's link group (`campaign` linking: accounts joined by shared form or
    /// infrastructure), "" for none; empty when unknown (no row is pooled). Out-of-fold scores
    /// are pooled over it when [`super::TrainOptions::link_pooling`] is on (`classify::pool`),
    /// among the labelled rows only: an unlabelled member of a group is not in the data.
    pub links: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Number of features per row.
    pub fn dim(&self) -> usize {
        self.features.len()
    }

    /// Each row's link group as an option (`None` for "" or when links are unknown).
    pub fn link_of(&self) -> Vec<Option<&str>> {
        if self.links.is_empty() {
            return vec![None; self.len()];
        }
        self.links
            .iter()
            .map(|l| (!l.is_empty()).then_some(l.as_str()))
            .collect()
    }

    /// Checks shapes, labels and values; every problem is an [`Error::Usage`] naming the row.
    pub fn validate(&self) -> Result<()> {
        let (n, d) = (self.len(), self.dim());
        if n == 0 {
            return Err(Error::Usage("training data has no rows".into()));
        }
        if d == 0 {
            return Err(Error::Usage("training data has no features".into()));
        }
        if self.x.len() != n * d {
            return Err(Error::Usage(format!(
                "training data has {} values for {n} rows x {d} features (expected {})",
                self.x.len(),
                n * d
            )));
        }
        if self.names.len() != n || self.groups.len() != n {
            return Err(Error::Usage(format!(
                "training data has {n} labels but {} account names and {} groups",
                self.names.len(),
                self.groups.len()
            )));
        }
        if !self.links.is_empty() && self.links.len() != n {
            return Err(Error::Usage(format!(
                "training data has {n} labels but {} link groups",
                self.links.len()
            )));
        }
        if let Some(i) = self.y.iter().position(|&l| l > 1) {
            return Err(Error::Usage(format!(
                "account {}: label {} (must be 0 or 1)",
                self.names[i], self.y[i]
            )));
        }
        if let Some((g, w)) = self
            .group_weights
            .iter()
            .find(|(_, w)| !(w.is_finite() && **w > 0.0))
        {
            return Err(Error::Usage(format!(
                "group {g}: weight {w} (must be positive)"
            )));
        }
        check_finite(&self.x, &self.features, |row| self.names[row].clone())
    }
}

/// Rows `idx` of `data`, standardised, row-major.
pub(super) fn standardised(data: &Dataset, idx: &[usize], mean: &[f32], std: &[f32]) -> Vec<f32> {
    let d = data.dim();
    let mut x = Vec::with_capacity(idx.len() * d);
    for &i in idx {
        x.extend_from_slice(&data.x[i * d..(i + 1) * d]);
    }
    standardise(&mut x, mean, std);
    x
}

/// Per-feature mean and standard deviation (population, floored at [`STD_FLOOR`]) over `rows`.
pub(super) fn mean_std(x: &[f32], d: usize, rows: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let mut sum = vec![0f64; d];
    let mut sq = vec![0f64; d];
    for &r in rows {
        for (j, &v) in x[r * d..(r + 1) * d].iter().enumerate() {
            sum[j] += v as f64;
            sq[j] += v as f64 * v as f64;
        }
    }
    let n = rows.len().max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| ((s / n - m * m).max(0.0).sqrt() as f32).max(STD_FLOOR))
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

/// `(x - mean) / std` in place, row by row.
pub(super) fn standardise(x: &mut [f32], mean: &[f32], std: &[f32]) {
    for row in x.chunks_mut(mean.len()) {
        for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
            *v = (*v - m) / s;
        }
    }
}

/// First non-finite value as [`Error::Usage`], naming the row (via `row_name`) and feature.
pub(super) fn check_finite(
    x: &[f32],
    features: &[String],
    row_name: impl Fn(usize) -> String,
) -> Result<()> {
    match x.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => {
            let d = features.len().max(1);
            Err(Error::Usage(format!(
                "{}: feature {} is {} (features must be finite)",
                row_name(i / d),
                features.get(i % d).map_or("?", String::as_str),
                x[i]
            )))
        }
    }
}
