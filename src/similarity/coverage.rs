//! CPU implementation of [`super::coverage`].
//!
//! For a pair (A, B) the |A| x |B| similarities are computed tile by tile; each tile updates
//! the best match of its A rows (row maxima) and of its B rows (column maxima), so both
//! directions come from one pass. Pairs run in parallel; a large pair also splits A's row
//! tiles over rayon, each split keeping its own maxima, merged at the end.

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Shape};
use rayon::prelude::*;

use super::kernel::{dot_tile, over_row_tiles, TILE};
use super::Coverage;

/// Pairs with more tiles than this also split their own work over rayon.
const SEQUENTIAL_TILES: usize = 4;

pub(super) struct CoverageOp<'a> {
    pub offsets: &'a [usize],
    pub pairs: &'a [(u32, u32)],
    pub threshold: f32,
}

impl CustomOp1 for CoverageOp<'_> {
    fn name(&self) -> &'static str {
        "coverage"
    }

    /// Output: `[P, 4]` f32: a_in_b mean_best, frac_above, then b_in_a mean_best, frac_above.
    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, d) = layout.shape().dims2()?;
        let emb = crate::cpu_storage::contiguous_f32(storage, layout, self.name())?;
        // The public function has checked these; a cheap second look keeps the op panic-free.
        let accounts = self.offsets.len().saturating_sub(1);
        if d == 0
            || self.offsets.first() != Some(&0)
            || self.offsets.last() != Some(&n)
            || self.offsets.windows(2).any(|w| w[1] < w[0])
            || self
                .pairs
                .iter()
                .any(|&(a, b)| a as usize >= accounts || b as usize >= accounts)
        {
            bail!("{}: offsets or pairs do not fit {n} rows", self.name());
        }

        let rows = |a: u32| &emb[self.offsets[a as usize] * d..self.offsets[a as usize + 1] * d];
        let mut out = vec![0f32; 4 * self.pairs.len()];
        out.par_chunks_mut(4)
            .zip(self.pairs.par_iter())
            .for_each(|(o, &(a, b))| {
                let (a_in_b, b_in_a) = pair(rows(a), rows(b), d, self.threshold);
                o.copy_from_slice(&[
                    a_in_b.mean_best,
                    a_in_b.frac_above,
                    b_in_a.mean_best,
                    b_in_a.frac_above,
                ]);
            });
        Ok((CpuStorage::F32(out), Shape::from((self.pairs.len(), 4))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        super::cuda::coverage(self.offsets, self.pairs, self.threshold, storage, layout)
    }
}

/// Best matches of A's rows in B and of B's rows in A.
struct Best {
    a: Vec<f32>,
    b: Vec<f32>,
}

impl Best {
    fn new(na: usize, nb: usize) -> Self {
        Best {
            a: vec![f32::NEG_INFINITY; na],
            b: vec![f32::NEG_INFINITY; nb],
        }
    }

    fn merge(mut self, other: Best) -> Best {
        for (m, o) in self.a.iter_mut().zip(other.a) {
            *m = m.max(o);
        }
        for (m, o) in self.b.iter_mut().zip(other.b) {
            *m = m.max(o);
        }
        self
    }
}

/// `(a_in_b, b_in_a)` for the rows of two accounts.
fn pair(a: &[f32], b: &[f32], d: usize, threshold: f32) -> (Coverage, Coverage) {
    let (na, nb) = (a.len() / d, b.len() / d);
    if na == 0 || nb == 0 {
        return (Coverage::EMPTY, Coverage::EMPTY);
    }
    let tiles_a = na.div_ceil(TILE);
    let best = over_row_tiles(
        tiles_a,
        tiles_a * nb.div_ceil(TILE) > SEQUENTIAL_TILES,
        || Best::new(na, nb),
        |best, ti, buf| row_tile(a, b, d, ti, best, buf),
        Best::merge,
    );
    (summarise(&best.a, threshold), summarise(&best.b, threshold))
}

/// Row tile `ti` of A against all of B.
fn row_tile(a: &[f32], b: &[f32], d: usize, ti: usize, best: &mut Best, buf: &mut [f32]) {
    let (na, nb) = (a.len() / d, b.len() / d);
    let i0 = ti * TILE;
    let ni = TILE.min(na - i0);
    let a_tile = &a[i0 * d..(i0 + ni) * d];
    for j0 in (0..nb).step_by(TILE) {
        let nj = TILE.min(nb - j0);
        dot_tile(a_tile, &b[j0 * d..(j0 + nj) * d], d, false, buf);
        let col_best = &mut best.b[j0..j0 + nj];
        for (ii, row_best) in best.a[i0..i0 + ni].iter_mut().enumerate() {
            let line = &buf[ii * TILE..ii * TILE + nj];
            let mut m = f32::NEG_INFINITY;
            for (&s, c) in line.iter().zip(col_best.iter_mut()) {
                m = m.max(s);
                *c = c.max(s);
            }
            *row_best = row_best.max(m);
        }
    }
}

/// Mean of the best matches and the fraction at or above the threshold.
fn summarise(best: &[f32], threshold: f32) -> Coverage {
    if best.is_empty() {
        return Coverage::EMPTY;
    }
    let n = best.len() as f64;
    let sum: f64 = best.iter().map(|&s| f64::from(s)).sum();
    let above = best.iter().filter(|&&s| s >= threshold).count() as f64;
    Coverage {
        mean_best: (sum / n) as f32,
        frac_above: (above / n) as f32,
    }
}
