//! The member network: layers, forward pass, loss and probabilities.

use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Linear, Module};
use rand::rngs::StdRng;
use rand::Rng;

use super::dataset::standardised;
use super::Dataset;
use crate::error::Result;

/// Mean member probability for rows `idx` of `data`.
pub(super) fn predict_rows(
    members: &[&[Linear]],
    data: &Dataset,
    idx: &[usize],
    mean: &[f32],
    std: &[f32],
) -> Result<Vec<f32>> {
    let x = standardised(data, idx, mean, std);
    let x = Tensor::from_vec(x, (idx.len(), data.dim()), &Device::Cpu)?;
    ensemble_probabilities(members, &x)
}

/// One member's sigmoid outputs for standardised `x` `(rows, d)`.
pub(super) fn member_probabilities(layers: &[Linear], x: &Tensor) -> Result<Vec<f32>> {
    Ok(sigmoid_all(&forward(layers, x)?)?)
}

/// Mean of the members' sigmoid outputs for standardised `x` `(rows, d)`.
pub(super) fn ensemble_probabilities(members: &[&[Linear]], x: &Tensor) -> Result<Vec<f32>> {
    let mut sum = vec![0f32; x.dim(0)?];
    for layers in members {
        for (s, p) in sum.iter_mut().zip(member_probabilities(layers, x)?) {
            *s += p;
        }
    }
    let k = members.len().max(1) as f32;
    Ok(sum.into_iter().map(|s| s / k).collect())
}

/// Balanced binary cross-entropy of probabilities `p` (same weights as training).
pub(super) fn balanced_log_loss(
    p: &[f32],
    y: &[u8],
    groups: &[&str],
    group_weights: &BTreeMap<String, f32>,
) -> Result<f64> {
    let w = balance_weights(y, groups, group_weights)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let total: f64 = p
        .iter()
        .zip(y)
        .zip(&w)
        .map(|((&p, &y), &w)| {
            let p = (p as f64).clamp(1e-7, 1.0 - 1e-7);
            let l = if y == 1 { -p.ln() } else { -(1.0 - p).ln() };
            w as f64 * l
        })
        .sum();
    Ok(total / p.len().max(1) as f64)
}

/// Layers with weights drawn from `rng`: He-uniform (bound sqrt(6 / fan_in)) before a ReLU,
/// uniform with bound 1 / sqrt(fan_in) for the output logit; biases zero.
pub(super) fn init_layers(
    d: usize,
    hidden: &[usize],
    rng: &mut StdRng,
) -> Result<(Vec<Var>, Vec<Linear>)> {
    let mut vars = Vec::new();
    let mut layers = Vec::new();
    let mut fan_in = d;
    let widths: Vec<usize> = hidden.iter().copied().chain(std::iter::once(1)).collect();
    for (i, &out) in widths.iter().enumerate() {
        let last = i + 1 == widths.len();
        let bound = if last {
            (1.0 / fan_in as f32).sqrt()
        } else {
            (6.0 / fan_in as f32).sqrt()
        };
        let w: Vec<f32> = (0..out * fan_in)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let w = Var::from_tensor(&Tensor::from_vec(w, (out, fan_in), &Device::Cpu)?)?;
        let b = Var::zeros(out, DType::F32, &Device::Cpu)?;
        layers.push(Linear::new(
            w.as_tensor().clone(),
            Some(b.as_tensor().clone()),
        ));
        vars.push(w);
        vars.push(b);
        fan_in = out;
    }
    Ok((vars, layers))
}

/// Trainable copies of `layers` (weights and biases copied, not shared).
pub(super) fn copy_layers(layers: &[Linear]) -> Result<(Vec<Var>, Vec<Linear>)> {
    let mut vars = Vec::new();
    let mut out = Vec::new();
    for layer in layers {
        let w = Var::from_tensor(&layer.weight().copy()?)?;
        let b = match layer.bias() {
            Some(b) => Var::from_tensor(&b.copy()?)?,
            None => Var::zeros(layer.weight().dim(0)?, DType::F32, &Device::Cpu)?,
        };
        out.push(Linear::new(
            w.as_tensor().clone(),
            Some(b.as_tensor().clone()),
        ));
        vars.push(w);
        vars.push(b);
    }
    Ok((vars, out))
}

/// Logits `(rows, 1)` for standardised `x` `(rows, d)`.
pub(super) fn forward(layers: &[Linear], x: &Tensor) -> candle_core::Result<Tensor> {
    let mut h = x.clone();
    for (i, layer) in layers.iter().enumerate() {
        h = layer.forward(&h)?;
        if i + 1 < layers.len() {
            h = h.relu()?;
        }
    }
    Ok(h)
}

/// Mean of `w * BCE(sigmoid(z), y)`, computed stably as
/// `w * (max(z, 0) - z * y + ln(1 + exp(-|z|)))`.
pub(super) fn weighted_bce(logits: &Tensor, y: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let softplus = (logits.relu()? + logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
    let per_row = (softplus - (logits * y)?)?;
    (per_row * w)?.mean_all()
}

/// Labels as an `(n, 1)` f32 tensor.
pub(super) fn labels_tensor(y: &[u8]) -> candle_core::Result<Tensor> {
    let v: Vec<f32> = y.iter().map(|&l| l as f32).collect();
    Tensor::from_vec(v, (y.len(), 1), &Device::Cpu)
}

/// Probabilities from `(n, 1)` logits.
pub(super) fn sigmoid_all(logits: &Tensor) -> candle_core::Result<Vec<f32>> {
    Ok(logits
        .flatten_all()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(|z| 1.0 / (1.0 + (-z).exp()))
        .collect())
}

/// Row weights `(n, 1)`: each class carries half the loss and, inside a class, each group an
/// equal share (`n / (2 * groups in class * group size)`); the mean weight is 1. With one row
/// per group this is plain class balancing.
pub(super) fn balance_weights(
    y: &[u8],
    groups: &[&str],
    group_weights: &BTreeMap<String, f32>,
) -> candle_core::Result<Tensor> {
    let n = y.len() as f32;
    let mut group_size: HashMap<(u8, &str), f32> = HashMap::new();
    for (&l, &g) in y.iter().zip(groups) {
        *group_size.entry((l, g)).or_default() += 1.0;
    }
    let weight = |g: &str| group_weights.get(g).copied().unwrap_or(1.0);
    // Shares of a class: one per group, `weight` for a weighted one. Summed in sorted order so
    // that the total (and the trained weights) do not depend on hash order.
    let shares_in = |class: u8| {
        let mut w: Vec<f32> = group_size
            .keys()
            .filter(|(l, _)| *l == class)
            .map(|(_, g)| weight(g))
            .collect();
        w.sort_by(f32::total_cmp);
        w.iter().sum::<f32>().max(1.0)
    };
    let (pos_groups, neg_groups) = (shares_in(1), shares_in(0));
    let v: Vec<f32> = y
        .iter()
        .zip(groups)
        .map(|(&l, &g)| {
            let per_class = if l == 1 { pos_groups } else { neg_groups };
            n * weight(g) / (2.0 * per_class * group_size[&(l, g)])
        })
        .collect();
    Tensor::from_vec(v, (y.len(), 1), &Device::Cpu)
}
