//! Similarity kernels: the all-pairs work over prompt embeddings.
//!
//! Two questions dominate the cost of the embedding features, and both are all-pairs dot
//! products over L2-normalised embeddings (so a dot product is a cosine similarity):
//!
//! - [`near_duplicates`]: inside each account, how many prompt pairs are near-duplicates, and
//!   how close each prompt's nearest sibling is. Extraction accounts sweep a capability with
//!   templated prompts; a person rarely repeats themselves this way.
//! - [`coverage`]: for candidate account pairs (A, B), how well B's prompts cover A's and A's
//!   cover B's. Load-balanced sybil accounts draw from one prompt pool, so they cover each other.
//!
//! Embeddings come as one ragged batch: `emb` is `[N, D]` f32 with each account's rows
//! contiguous, and `offsets` (length `A + 1`, starting at 0, non-decreasing, ending at `N`)
//! says that account `a` owns rows `offsets[a]..offsets[a + 1]`. Accounts may be empty.
//!
//! Each operation is a candle custom op (a private struct with `cpu_fwd`) behind a public
//! function that checks shapes, dtypes, offsets and pairs and returns [`Error::Usage`] instead
//! of panicking. The CPU implementation works tile by tile (64 x 64 dot products, see
//! `kernel.rs`) and never builds an account's full similarity matrix; it runs in parallel with
//! rayon over accounts or pairs, and within one large account or pair over its row tiles.
//! It is the test oracle and the fallback for the CUDA kernels in `kernels/similarity.cu`
//! (`cuda.rs`, built with the `cuda` feature), which run when the embeddings are on a CUDA
//! device; tensors on other devices are copied to the CPU. [`near_duplicates_slow`] and
//! [`coverage_slow`] (`slow.rs`) are the slow twins built from plain tensor ops, which the
//! tests hold the fast ones against. Across the crate, `*_slow` names a plain-op twin that is
//! an oracle (candle-nn's convention; also `embed::fused`) and `*_portable` a SIMD-free twin
//! that runs where the CPU lacks AVX2 and gives the same results.
//!
//! Conventions (also on the items):
//! - A pair counts as a near-duplicate when `dot >= threshold`; dots are computed in f32 and
//!   are not clamped, so a vector with itself may give slightly more or less than 1.0.
//! - A best match over an empty set is [`NO_MATCH`] (-1.0, the lowest cosine): the `max_sim`
//!   of the only prompt of an account, and coverage results involving an empty account.

mod coverage;
#[cfg(feature = "cuda")]
mod cuda;
mod kernel;
mod near_dup;
mod slow;
#[cfg(test)]
mod tests;

use candle_core::{DType, Device, Tensor};

pub use kernel::{dot, dot_portable};
pub use slow::{coverage_slow, near_duplicates_slow};

use crate::error::{Error, Result};

/// Best similarity reported when there is nothing to compare with (a prompt alone in its
/// account, or an empty account in a coverage pair): the lowest possible cosine.
pub const NO_MATCH: f32 = -1.0;

/// Near-duplicates inside each account, from [`near_duplicates`].
#[derive(Debug, Clone, PartialEq)]
pub struct NearDup {
    /// Per account: the number of unordered prompt pairs `i < j` with `dot >= threshold`.
    pub pair_counts: Vec<u64>,
    /// Per prompt (row of `emb`): the number of other prompts of its account with
    /// `dot >= threshold`. An account's degrees sum to twice its pair count.
    pub degree: Vec<u32>,
    /// Per prompt: the highest similarity to another prompt of its account, or [`NO_MATCH`]
    /// when it is the account's only prompt.
    pub max_sim: Vec<f32>,
}

/// How well one account's prompts are matched by another's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coverage {
    /// Mean over the covered account's prompts of each prompt's best similarity in the other
    /// account.
    pub mean_best: f32,
    /// Fraction of the covered account's prompts whose best similarity is `>= threshold`.
    pub frac_above: f32,
}

impl Coverage {
    /// The result when either account is empty: no prompt has a match.
    pub const EMPTY: Coverage = Coverage {
        mean_best: NO_MATCH,
        frac_above: 0.0,
    };
}

/// Coverage of a candidate pair (a, b), in both directions, from [`coverage`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairCoverage {
    /// A's prompts, each matched against all of B.
    pub a_in_b: Coverage,
    /// B's prompts, each matched against all of A.
    pub b_in_a: Coverage,
}

/// Count near-duplicate prompt pairs inside each account of a ragged batch.
///
/// `emb` is `[N, D]` f32 (rows L2-normalised), `offsets` the account boundaries described in
/// the [module docs](self), `threshold` the cosine at or above which two prompts are
/// near-duplicates (`-1.0` counts every pair, anything above 1 none; NaN is refused). Works
/// on tensors on any device; see the module docs for where it runs.
pub fn near_duplicates(emb: &Tensor, offsets: &[usize], threshold: f32) -> Result<NearDup> {
    let (n, _) = check_emb("near_duplicates", emb)?;
    check_offsets("near_duplicates", offsets, n)?;
    check_threshold("near_duplicates", threshold)?;
    if u32::try_from(n).is_err() {
        return Err(Error::Usage(format!(
            "near_duplicates: {n} rows is more than the {} this op supports",
            u32::MAX
        )));
    }
    let op = near_dup::NearDupOp { offsets, threshold };
    // [N, 2] u32: column 0 the degree, column 1 the bits of max_sim (a custom op has one output).
    let packed = on_device(emb)?
        .apply_op1_no_bwd(&op)?
        .flatten_all()?
        .to_vec1::<u32>()?;
    let degree: Vec<u32> = packed.iter().step_by(2).copied().collect();
    let max_sim = packed
        .iter()
        .skip(1)
        .step_by(2)
        .map(|&b| f32::from_bits(b))
        .collect();
    let pair_counts = offsets
        .windows(2)
        .map(|w| {
            degree[w[0]..w[1]]
                .iter()
                .map(|&x| u64::from(x))
                .sum::<u64>()
                / 2
        })
        .collect();
    Ok(NearDup {
        pair_counts,
        degree,
        max_sim,
    })
}

/// Set-to-set coverage for candidate account pairs of a ragged batch.
///
/// For each `(a, b)` in `pairs` (account indices, `< offsets.len() - 1`; `a == b` is allowed
/// and gives each prompt itself as best match), every prompt of A is matched to its most
/// similar prompt of B and vice versa; see [`PairCoverage`]. When A or B is empty both
/// directions are [`Coverage::EMPTY`] (`mean_best` = [`NO_MATCH`], `frac_above` = 0).
/// `emb`, `offsets` and `threshold` are as for [`near_duplicates`].
pub fn coverage(
    emb: &Tensor,
    offsets: &[usize],
    pairs: &[(u32, u32)],
    threshold: f32,
) -> Result<Vec<PairCoverage>> {
    check_coverage("coverage", emb, offsets, pairs, threshold)?;
    let op = coverage::CoverageOp {
        offsets,
        pairs,
        threshold,
    };
    // [P, 4] f32: a_in_b.mean_best, a_in_b.frac_above, b_in_a.mean_best, b_in_a.frac_above.
    let packed = on_device(emb)?
        .apply_op1_no_bwd(&op)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok(packed
        .chunks_exact(4)
        .map(|v| PairCoverage {
            a_in_b: Coverage {
                mean_best: v[0],
                frac_above: v[1],
            },
            b_in_a: Coverage {
                mean_best: v[2],
                frac_above: v[3],
            },
        })
        .collect())
}

/// The tensor the op runs on: contiguous, on a CUDA device (with the `cuda` feature) or the
/// CPU; other devices are copied to the CPU.
fn on_device(emb: &Tensor) -> Result<Tensor> {
    if cfg!(feature = "cuda") && emb.device().is_cuda() {
        return Ok(emb.contiguous()?);
    }
    Ok(emb.to_device(&Device::Cpu)?.contiguous()?)
}

/// `emb` must be `[N, D]` f32 with `D > 0`; returns `(N, D)`.
pub(crate) fn check_emb(op: &str, emb: &Tensor) -> Result<(usize, usize)> {
    let (n, d) = emb.dims2().map_err(|_| {
        Error::Usage(format!(
            "{op}: embeddings must be a [N, D] matrix, got shape {:?}",
            emb.dims()
        ))
    })?;
    if emb.dtype() != DType::F32 {
        return Err(Error::Usage(format!(
            "{op}: embeddings must be f32, got {:?} (convert with to_dtype(DType::F32))",
            emb.dtype()
        )));
    }
    if d == 0 {
        return Err(Error::Usage(format!("{op}: embeddings have dimension 0")));
    }
    Ok((n, d))
}

/// `offsets` must start at 0, never decrease and end at `n`.
pub(crate) fn check_offsets(op: &str, offsets: &[usize], n: usize) -> Result<()> {
    let bad = |msg: String| Err(Error::Usage(format!("{op}: offsets: {msg}")));
    match (offsets.first(), offsets.last()) {
        (None, _) | (_, None) => return bad("empty; need at least [0, ..., N]".into()),
        (Some(&first), _) if first != 0 => return bad(format!("offsets[0] is {first}, not 0")),
        (_, Some(&last)) if last != n => {
            return bad(format!(
                "last offset is {last}, but the embeddings have {n} rows"
            ))
        }
        _ => {}
    }
    if let Some(a) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return bad(format!(
            "offsets[{}] = {} is smaller than offsets[{a}] = {}",
            a + 1,
            offsets[a + 1],
            offsets[a]
        ));
    }
    Ok(())
}

/// Every account index in `pairs` must be `< accounts`.
pub(crate) fn check_pairs(op: &str, pairs: &[(u32, u32)], accounts: usize) -> Result<()> {
    let in_range = |x: u32| usize::try_from(x).is_ok_and(|x| x < accounts);
    match pairs
        .iter()
        .position(|&(a, b)| !in_range(a) || !in_range(b))
    {
        None => Ok(()),
        Some(p) => Err(Error::Usage(format!(
            "{op}: pairs[{p}] = {:?} names an account outside 0..{accounts}",
            pairs[p]
        ))),
    }
}

/// The checks of [`coverage`] and [`coverage_slow`]: embeddings, offsets, pairs and threshold.
pub(crate) fn check_coverage(
    op: &str,
    emb: &Tensor,
    offsets: &[usize],
    pairs: &[(u32, u32)],
    threshold: f32,
) -> Result<()> {
    let (n, _) = check_emb(op, emb)?;
    check_offsets(op, offsets, n)?;
    check_pairs(op, pairs, offsets.len() - 1)?;
    check_threshold(op, threshold)
}

pub(crate) fn check_threshold(op: &str, threshold: f32) -> Result<()> {
    if threshold.is_nan() {
        return Err(Error::Usage(format!("{op}: threshold is NaN")));
    }
    Ok(())
}
