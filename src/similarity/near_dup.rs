//! CPU implementation of [`super::near_duplicates`].
//!
//! An account's rows are cut into row tiles of [`TILE`]; the task for row tile `I` computes
//! the tiles `(I, J)` for `J >= I` only, and credits each pair to both of its prompts, so every
//! pair is computed once. Small accounts run as one sequential task (the outer loop over
//! accounts is parallel); a large account also splits its row tiles over rayon, each split
//! keeping its own per-prompt maxima and degrees, which are merged at the end.

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Shape};
use rayon::prelude::*;

use super::kernel::{dot_tile, over_row_tiles, TILE};
use super::NO_MATCH;

/// Accounts with more row tiles than this also split their own work over rayon.
const SEQUENTIAL_TILES: usize = 2;

pub(super) struct NearDupOp<'a> {
    pub offsets: &'a [usize],
    pub threshold: f32,
}

impl CustomOp1 for NearDupOp<'_> {
    fn name(&self) -> &'static str {
        "near-duplicates"
    }

    /// Output: `[N, 2]` u32, column 0 the degree, column 1 the bits of `max_sim`.
    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, d) = layout.shape().dims2()?;
        let emb = crate::cpu_storage::contiguous_f32(storage, layout, self.name())?;
        // The public function has checked these; a cheap second look keeps the op panic-free.
        if d == 0
            || self.offsets.first() != Some(&0)
            || self.offsets.last() != Some(&n)
            || self.offsets.windows(2).any(|w| w[1] < w[0])
        {
            bail!("{}: offsets do not fit {n} rows", self.name());
        }

        let mut out = vec![0u32; 2 * n];
        let mut accounts = Vec::with_capacity(self.offsets.len() - 1);
        let mut rest = out.as_mut_slice();
        for w in self.offsets.windows(2) {
            let (dst, tail) = rest.split_at_mut(2 * (w[1] - w[0]));
            rest = tail;
            if !dst.is_empty() {
                accounts.push((&emb[w[0] * d..w[1] * d], dst));
            }
        }
        let threshold = self.threshold;
        accounts.into_par_iter().for_each(|(rows, dst)| {
            let acc = account(rows, d, threshold);
            for ((o, &deg), &max) in dst.chunks_exact_mut(2).zip(&acc.degree).zip(&acc.max) {
                o[0] = deg;
                o[1] = max.to_bits();
            }
        });
        Ok((CpuStorage::U32(out), Shape::from((n, 2))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        super::cuda::near_dup(self.offsets, self.threshold, storage, layout)
    }
}

/// Per-prompt results of one account.
struct PromptStats {
    max: Vec<f32>,
    degree: Vec<u32>,
}

impl PromptStats {
    fn new(n: usize) -> Self {
        PromptStats {
            max: vec![f32::NEG_INFINITY; n],
            degree: vec![0; n],
        }
    }

    fn merge(mut self, other: PromptStats) -> PromptStats {
        for (m, o) in self.max.iter_mut().zip(other.max) {
            *m = m.max(o);
        }
        for (g, o) in self.degree.iter_mut().zip(other.degree) {
            *g += o;
        }
        self
    }
}

/// Degrees and maxima for the `n = rows.len() / d` prompts of one non-empty account.
fn account(rows: &[f32], d: usize, threshold: f32) -> PromptStats {
    let n = rows.len() / d;
    let tiles = n.div_ceil(TILE);
    let mut acc = over_row_tiles(
        tiles,
        tiles > SEQUENTIAL_TILES,
        || PromptStats::new(n),
        |acc, ti, buf| row_tile(rows, d, threshold, ti, acc, buf),
        PromptStats::merge,
    );
    if n == 1 {
        acc.max[0] = NO_MATCH;
    }
    acc
}

/// Pairs between row tile `ti` and the tiles from `ti` on, each pair credited to both prompts.
fn row_tile(
    rows: &[f32],
    d: usize,
    threshold: f32,
    ti: usize,
    acc: &mut PromptStats,
    buf: &mut [f32],
) {
    let n = rows.len() / d;
    let i0 = ti * TILE;
    let ni = TILE.min(n - i0);
    let a = &rows[i0 * d..(i0 + ni) * d];
    // The row tile's own results, applied at the end: on the diagonal tile its rows are
    // also columns.
    let mut row_best = [f32::NEG_INFINITY; TILE];
    let mut row_hits = [0u32; TILE];
    for j0 in (i0..n).step_by(TILE) {
        let nj = TILE.min(n - j0);
        let diagonal = j0 == i0;
        dot_tile(a, &rows[j0 * d..(j0 + nj) * d], d, diagonal, buf);
        let col_max = &mut acc.max[j0..j0 + nj];
        let col_deg = &mut acc.degree[j0..j0 + nj];
        for ii in 0..ni {
            // On the diagonal tile only j > i is a pair (and only that part was computed).
            let from = if diagonal { ii + 1 } else { 0 };
            let line = &buf[ii * TILE + from..ii * TILE + nj];
            let mut best = f32::NEG_INFINITY;
            let mut hits = 0u32;
            for ((&s, m), g) in line
                .iter()
                .zip(&mut col_max[from..])
                .zip(&mut col_deg[from..])
            {
                let hit = u32::from(s >= threshold);
                best = best.max(s);
                hits += hit;
                *m = m.max(s);
                *g += hit;
            }
            row_best[ii] = row_best[ii].max(best);
            row_hits[ii] += hits;
        }
    }
    for ii in 0..ni {
        let i = i0 + ii;
        acc.max[i] = acc.max[i].max(row_best[ii]);
        acc.degree[i] += row_hits[ii];
    }
}
