//! The slow twins of the similarity ops (`*_slow`, candle-nn's convention), built from plain
//! tensor ops.
//!
//! Each account (or pair) is narrowed out of the batch, its full similarity matrix is built
//! with one matmul, and thresholds and maxima are taken with tensor ops. They run on whatever
//! device `emb` is on, so they can also check the CUDA kernels. They are the oracle of the
//! tests and the baseline of `benches/similarity.rs`; they take the same arguments, apply the
//! same checks and follow the same conventions as the fast versions, and differ from them only
//! by f32 rounding in the similarities (so counts agree unless a similarity lies within
//! rounding of the threshold).

use candle_core::{DType, Tensor};

use super::{
    check_coverage, check_emb, check_offsets, check_threshold, Coverage, NearDup, PairCoverage,
    NO_MATCH,
};
use crate::error::Result;

/// The slow twin of [`super::near_duplicates`].
pub fn near_duplicates_slow(emb: &Tensor, offsets: &[usize], threshold: f32) -> Result<NearDup> {
    let (n, _) = check_emb("near_duplicates", emb)?;
    check_offsets("near_duplicates", offsets, n)?;
    check_threshold("near_duplicates", threshold)?;
    let dev = emb.device();
    let mut out = NearDup {
        pair_counts: Vec::with_capacity(offsets.len() - 1),
        degree: Vec::with_capacity(n),
        max_sim: Vec::with_capacity(n),
    };
    for w in offsets.windows(2) {
        let (start, len) = (w[0], w[1] - w[0]);
        if len < 2 {
            out.pair_counts.push(0);
            out.degree.extend(std::iter::repeat_n(0, len));
            out.max_sim.extend(std::iter::repeat_n(NO_MATCH, len));
            continue;
        }
        let e = emb.narrow(0, start, len)?;
        let sims = e.matmul(&e.t()?)?;
        let eye = Tensor::eye(len, DType::U8, dev)?;
        let others = eye.where_cond(&Tensor::full(f32::NEG_INFINITY, (len, len), dev)?, &sims)?;
        out.max_sim.extend(others.max(1)?.to_vec1::<f32>()?);
        let hits = sims.ge(threshold)?.to_dtype(DType::F64)?;
        let eye = eye.to_dtype(DType::F64)?;
        let off_diagonal = (1.0 - &eye)?;
        let degree = (&hits * off_diagonal)?.sum(1)?.to_vec1::<f64>()?;
        out.degree.extend(degree.into_iter().map(|x| x as u32));
        let strictly_upper = (Tensor::triu2(len, DType::F64, dev)? - eye)?;
        let count = (hits * strictly_upper)?.sum_all()?.to_scalar::<f64>()?;
        out.pair_counts.push(count as u64);
    }
    Ok(out)
}

/// The slow twin of [`super::coverage`].
pub fn coverage_slow(
    emb: &Tensor,
    offsets: &[usize],
    pairs: &[(u32, u32)],
    threshold: f32,
) -> Result<Vec<PairCoverage>> {
    check_coverage("coverage", emb, offsets, pairs, threshold)?;
    let rows = |a: u32| {
        (
            offsets[a as usize],
            offsets[a as usize + 1] - offsets[a as usize],
        )
    };
    let summarise = |best: Tensor| -> Result<Coverage> {
        let best = best.to_dtype(DType::F64)?;
        Ok(Coverage {
            mean_best: best.mean_all()?.to_scalar::<f64>()? as f32,
            frac_above: best
                .ge(f64::from(threshold))?
                .to_dtype(DType::F64)?
                .mean_all()?
                .to_scalar::<f64>()? as f32,
        })
    };
    pairs
        .iter()
        .map(|&(a, b)| {
            let ((sa, na), (sb, nb)) = (rows(a), rows(b));
            if na == 0 || nb == 0 {
                return Ok(PairCoverage {
                    a_in_b: Coverage::EMPTY,
                    b_in_a: Coverage::EMPTY,
                });
            }
            let ea = emb.narrow(0, sa, na)?;
            let eb = emb.narrow(0, sb, nb)?;
            let sims = ea.matmul(&eb.t()?)?;
            Ok(PairCoverage {
                a_in_b: summarise(sims.max(1)?)?,
                b_in_a: summarise(sims.max(0)?)?,
            })
        })
        .collect()
}
