//! Approximate nearest neighbours over per-account behaviour vectors.
//!
//! Sybil ("hydra") linking starts from one question, asked for every account: which accounts
//! behave most like this one? With 1k to 100k accounts an all-pairs scan is too slow to run
//! for every account of a week's logs, so the accounts go into an HNSW graph (`hnsw_rs`) and
//! each account asks it for its `k` nearest neighbours ([`AccountIndex::all_neighbors`]); the
//! campaign stage builds its neighbour graph from those lists.
//!
//! Conventions:
//! - Similarity is cosine, in `[-1, 1]`, most similar first. Vectors are L2-normalised on
//!   insert and compared with [`UnitCosine`] (`1 - dot`, clamped to `[0, 2]`); a reported
//!   similarity is `1 - distance`. Zero-length and non-finite vectors are refused: their
//!   cosine is undefined, and `hnsw_rs` would otherwise treat them as close to everything.
//! - Accounts are known by the ids given to [`AccountIndex::build`], and by their position in
//!   that list ([`Neighbor::row`]) for callers that keep per-account arrays.
//! - An account is never its own neighbour, even when other accounts have identical vectors.
//!
//! Exactness and determinism: an index of fewer than [`EXACT_BELOW`] accounts answers by
//! scanning all of them (exact, deterministic); the HNSW graph is still built so that saved
//! indexes look the same at every size. Above that, answers come from the graph and are
//! approximate: the tests hold recall@10 against a brute-force scan on clustered data, with
//! the default [`IndexParams`] and with the pipeline's (near-ties counted as hits).
//!
//! Dense campaigns and the graph: `hnsw_rs` trims a node's bottom-layer links to the closest
//! ones when new nodes link back to it, so a group of more than `2 * m` near-identical
//! accounts (a sybil campaign) ends up linking only to itself. A search that wanders into such
//! a group cannot leave it and returns the group instead of the real neighbours. Lookups of
//! an indexed account ([`AccountIndex::neighbors_of`], [`AccountIndex::all_neighbors`])
//! therefore do not search from the entry point: they walk the graph from the account itself
//! (its bottom-layer links, theirs, and those of the best hits), which the trap cannot take
//! away and which costs no descent through the layers; a search for an arbitrary vector
//! ([`AccountIndex::search`]) is an HNSW search and has no such fallback.
//!
//! `hnsw_rs` samples each point's layer from an RNG with a fixed seed, so a serial build
//! (`parallel: false`) gives the same graph every time; a parallel build lets threads race for
//! that RNG and for graph locks, so two builds from the same data may differ in a few
//! neighbours. A saved and reloaded index answers exactly as it did before saving.
//!
//! `hnsw_rs` specifics stay in this module; its on-disk format and the lifetime of a loaded
//! graph are handled in `store.rs` (see [`AccountIndex::save`] and [`AccountIndex::load`]).
//! It logs through the `log` crate (silent unless a logger is installed) and calls `println!`
//! only on paths ruled out here before calling it: more than 256 links per node (`m` is
//! capped at 128), a layer count other than 16 at dump time, dump files that cannot be opened,
//! and corrupt dump files (which `store.rs` detects by checksum first, because `hnsw_rs`
//! answers some of them with `std::process::exit`). Nothing reaches stdout from build,
//! search, save or load.

mod store;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use hnsw_rs::hnsw::{Hnsw, Point};
use hnsw_rs::prelude::Distance;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use store::{SIDECAR, SIDECAR_FORMAT_VERSION};

/// Below this many accounts, queries scan every account instead of walking the graph: exact,
/// deterministic, and still cheaper than a graph search at that size.
pub const EXACT_BELOW: usize = 256;

/// From this many accounts the pipeline inserts in parallel ([`IndexParams::for_accounts`]).
pub const PARALLEL_FROM: usize = 20_000;

/// Layers in the `hnsw_rs` graph. `hnsw_rs` only dumps graphs created with its maximum (16).
const MAX_LAYERS: usize = 16;

/// Construction and search parameters of the HNSW graph.
///
/// The defaults suit 1k to 100k accounts: `m = 16` (32 links per node in the bottom layer),
/// `ef_construction = 200`, `ef_search = 64`; the tests hold their recall@10 on clustered data
/// (groups of near-identical vectors) against brute force. Raise `ef_search` first if recall
/// matters more than query time; it can be changed after loading
/// ([`AccountIndex::set_ef_search`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexParams {
    /// Links per node in the upper layers (twice this in the bottom layer); 2..=128.
    pub m: usize,
    /// Candidate list size while inserting; larger builds a better graph, more slowly.
    pub ef_construction: usize,
    /// Candidate list size while searching (at least `k + 1` is used).
    pub ef_search: usize,
    /// Fill a node's links with candidates the pruning heuristic dropped (`hnsw_rs`'s
    /// `set_keeping_pruned`). Off by default: on clustered data the extra links all point
    /// into the node's own cluster, clusters become islands the search cannot leave, and
    /// recall@10 fell from 0.99 to 0.7-0.87 in the tests' data.
    pub keep_pruned: bool,
    /// Insert with rayon. Serial insertion is deterministic but about as many times slower as
    /// there are cores.
    pub parallel: bool,
}

impl Default for IndexParams {
    fn default() -> Self {
        IndexParams {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            keep_pruned: false,
            parallel: true,
        }
    }
}

impl IndexParams {
    /// The settings the pipeline builds an index of `n` accounts with. A lighter graph than
    /// the defaults (links 12, candidate lists 48 and 24: faster to build and search for a
    /// little recall, both measured in benches/README.md), since links no longer rest on it.
    /// Inserted serially below [`PARALLEL_FROM`] accounts, so that the same run always gives the
    /// same graph (retraining and rescoring are reproducible byte for byte); in parallel above,
    /// where a serial build would take minutes and a few neighbours may differ between runs.
    pub fn for_accounts(n: usize) -> Self {
        IndexParams {
            m: 12,
            ef_construction: 48,
            ef_search: 24,
            keep_pruned: false,
            parallel: n >= PARALLEL_FROM,
        }
    }

    fn check(&self) -> Result<()> {
        if !(2..=128).contains(&self.m) {
            return Err(Error::Usage(format!(
                "index: m = {} is outside 2..=128",
                self.m
            )));
        }
        if self.ef_construction == 0 || self.ef_search == 0 {
            return Err(Error::Usage(format!(
                "index: ef_construction ({}) and ef_search ({}) must be at least 1",
                self.ef_construction, self.ef_search
            )));
        }
        Ok(())
    }
}

/// One neighbouring account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbor {
    /// The account id, as given to [`AccountIndex::build`] (`account_id` in JSON, as in the
    /// scores contract).
    #[serde(rename = "account_id")]
    pub id: String,
    /// Position of the account in the ids given to [`AccountIndex::build`].
    #[serde(skip)]
    pub row: usize,
    /// Cosine similarity of the behaviour vectors, in `[-1, 1]`.
    pub similarity: f32,
}

/// Cosine distance between L2-normalised vectors: `1 - dot`, clamped to `[0, 2]`.
///
/// `hnsw_rs`'s own `DistDot` asserts `dot <= 1`, which rounding breaks for a vector and its
/// near-copy, and `DistCosine` recomputes both norms on every call; the vectors here are
/// normalised once on insert, so a plain dot product is enough. `hnsw_rs` writes this type's
/// name into its dump and checks it on reload, so renaming it invalidates saved indexes (bump
/// [`SIDECAR_FORMAT_VERSION`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitCosine;

impl Distance<f32> for UnitCosine {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - crate::similarity::dot(va, vb)).clamp(0.0, 2.0)
    }
}

/// Similarity reported for a distance from [`UnitCosine`].
fn similarity(distance: f32) -> f32 {
    (1.0 - distance).clamp(-1.0, 1.0)
}

type Graph = Hnsw<'static, f32, UnitCosine>;

/// An HNSW index over account behaviour vectors; see the [module docs](self).
///
/// A plain owned value: `Send + Sync`, queried from many threads at once, no lifetime
/// parameter even when loaded from disk.
pub struct AccountIndex {
    graph: Graph,
    /// `points[row]`: the graph's point for account `row` (shared, not copied), giving each
    /// account's stored unit vector without a second copy of the data.
    points: Vec<Arc<Point<'static, f32>>>,
    ids: Vec<String>,
    rows: HashMap<String, usize>,
    dim: usize,
    params: IndexParams,
}

impl std::fmt::Debug for AccountIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountIndex")
            .field("count", &self.ids.len())
            .field("dim", &self.dim)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl AccountIndex {
    /// [`AccountIndex::build`] with the settings the pipeline uses for this many accounts
    /// ([`IndexParams::for_accounts`]).
    pub fn for_accounts(ids: Vec<String>, vectors: &[f32], dim: usize) -> Result<AccountIndex> {
        let params = IndexParams::for_accounts(ids.len());
        AccountIndex::build(ids, vectors, dim, params)
    }

    /// Build the index over `ids.len()` accounts; `vectors` is row-major `ids.len() x dim`,
    /// row `i` belonging to `ids[i]`.
    ///
    /// Refuses (with [`Error::Usage`]) no accounts, `dim == 0`, a `vectors` length other than
    /// `ids.len() * dim`, duplicate or empty ids, and zero-length or non-finite vectors (naming
    /// the account).
    pub fn build(
        ids: Vec<String>,
        vectors: &[f32],
        dim: usize,
        params: IndexParams,
    ) -> Result<AccountIndex> {
        params.check()?;
        let n = ids.len();
        if n == 0 {
            return Err(Error::Usage("index: no accounts to index".into()));
        }
        if dim == 0 {
            return Err(Error::Usage(
                "index: behaviour vectors have dimension 0".into(),
            ));
        }
        if vectors.len() != n * dim {
            return Err(Error::Usage(format!(
                "index: {} values for {n} accounts of dimension {dim} (expected {})",
                vectors.len(),
                n * dim
            )));
        }
        let rows = row_map(&ids).map_err(Error::Usage)?;
        let mut unit = vectors.to_vec();
        for (row, v) in unit.chunks_exact_mut(dim).enumerate() {
            normalise(v).map_err(|why| {
                Error::Usage(format!(
                    "index: account {:?}: behaviour vector {why}",
                    ids[row]
                ))
            })?;
        }

        let mut graph = Graph::new(params.m, n, MAX_LAYERS, params.ef_construction, UnitCosine);
        graph.set_keeping_pruned(params.keep_pruned);
        let items: Vec<(&[f32], usize)> = unit.chunks_exact(dim).zip(0..n).collect();
        if params.parallel {
            graph.parallel_insert_slice(&items);
        } else {
            for &item in &items {
                graph.insert_slice(item);
            }
        }
        // Read-only from here on; hnsw_rs asks for the flag before concurrent searches.
        graph.set_searching_mode(true);
        drop(items);
        drop(unit);
        let points = collect_points(&graph, n, dim).map_err(|msg| {
            Error::Usage(format!("index: hnsw_rs built an inconsistent graph: {msg}"))
        })?;
        Ok(AccountIndex {
            graph,
            points,
            ids,
            rows,
            dim,
            params,
        })
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Always false: an index has at least one account.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The parameters the index was built with (and the current `ef_search`).
    pub fn params(&self) -> &IndexParams {
        &self.params
    }

    /// Account ids in row order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Row of an account id, if indexed.
    pub fn row(&self, id: &str) -> Option<usize> {
        self.rows.get(id).copied()
    }

    /// The stored (L2-normalised) behaviour vector of account `row`.
    pub fn vector(&self, row: usize) -> &[f32] {
        self.points[row].get_v()
    }

    /// Change the search width (at least 1); a wider search is slower and more exact.
    pub fn set_ef_search(&mut self, ef_search: usize) {
        self.params.ef_search = ef_search.max(1);
    }

    /// The `k` accounts most similar to `vector` (any vector of the index's dimension; it is
    /// normalised here), most similar first.
    pub fn search(&self, vector: &[f32], k: usize) -> Result<Vec<Neighbor>> {
        if vector.len() != self.dim {
            return Err(Error::Usage(format!(
                "index: query vector has dimension {}, the index has {}",
                vector.len(),
                self.dim
            )));
        }
        let mut q = vector.to_vec();
        normalise(&mut q).map_err(|why| Error::Usage(format!("index: query vector {why}")))?;
        Ok(self.query(&q, k, None))
    }

    /// The `k` accounts most similar to account `id`, most similar first, the account itself
    /// excluded. An id that is not in the index is an error naming it.
    pub fn neighbors_of(&self, id: &str, k: usize) -> Result<Vec<Neighbor>> {
        let row = self.row(id).ok_or_else(|| {
            Error::Usage(format!(
                "index: account {id:?} is not in the index ({} accounts)",
                self.len()
            ))
        })?;
        Ok(self.neighbors_of_row(row, k))
    }

    /// [`neighbors_of`](Self::neighbors_of) by row; panics if `row >= len()`.
    pub fn neighbors_of_row(&self, row: usize, k: usize) -> Vec<Neighbor> {
        self.walk(row, k, &|r, out| out.extend(self.links(r)))
    }

    /// The `k` nearest neighbours of every account, in row order (computed in parallel):
    /// the input of the campaign stage's neighbour graph. The same answers as
    /// [`neighbors_of_row`](Self::neighbors_of_row) for each row.
    pub fn all_neighbors(&self, k: usize) -> Vec<Vec<Neighbor>> {
        if self.len() < EXACT_BELOW {
            return (0..self.len())
                .into_par_iter()
                .map(|row| self.query(self.points[row].get_v(), k, Some(row)))
                .collect();
        }
        let links: Vec<Vec<usize>> = (0..self.len())
            .into_par_iter()
            .map(|r| self.links(r))
            .collect();
        (0..self.len())
            .into_par_iter()
            .map(|row| self.walk(row, k, &|r, out| out.extend_from_slice(&links[r])))
            .collect()
    }

    /// Rows an indexed account links to in the graph's bottom layer (`walk` appends them).
    fn links(&self, row: usize) -> Vec<usize> {
        self.points[row].get_neighborhood_id()[0]
            .iter()
            .map(|n| n.d_id)
            .collect()
    }

    /// The `k` nearest neighbours of indexed row `row`. Below [`EXACT_BELOW`] accounts, a
    /// scan. Above, from the graph around the account: its bottom-layer links and theirs (two
    /// hops), each scored exactly. An indexed account needs no search from the entry point:
    /// the build already found its near neighbours and linked them, and their links hold the
    /// rest of a top 10 (benches/README.md measures the recall against brute force). This
    /// also keeps a dense campaign from trapping the lookup (module notes): the account's own
    /// links are always candidates. Falls back to a search when the walk finds fewer than `k`.
    fn walk(&self, row: usize, k: usize, links: &dyn Fn(usize, &mut Vec<usize>)) -> Vec<Neighbor> {
        let q = self.points[row].get_v();
        if self.len() < EXACT_BELOW {
            return self.query(q, k, Some(row));
        }
        let mut candidates = Vec::new();
        links(row, &mut candidates);
        for i in 0..candidates.len() {
            links(candidates[i], &mut candidates);
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|&c| c != row);
        if candidates.len() < k.min(self.len() - 1) {
            return self.query(q, k, Some(row));
        }
        let score = |c: usize| (c, similarity(UnitCosine.eval(q, self.points[c].get_v())));
        let mut hits: Vec<(usize, f32)> = candidates.iter().map(|&c| score(c)).collect();
        // One refinement: the links of the best `k` found so far, which the first hop did not
        // expand (the two hops reach a top 10 through the account's own, diverse links; the
        // best hits' links are where the rest of it lies).
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut more = Vec::new();
        for &(c, _) in hits.iter().take(k) {
            links(c, &mut more);
        }
        more.sort_unstable();
        more.dedup();
        hits.extend(
            more.into_iter()
                .filter(|&c| c != row && candidates.binary_search(&c).is_err())
                .map(score),
        );
        self.ranked(hits.as_mut_slice(), k)
    }

    /// The best `k` of `hits`, most similar first (ties by row), as neighbours.
    fn ranked(&self, hits: &mut [(usize, f32)], k: usize) -> Vec<Neighbor> {
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.iter()
            .take(k)
            .map(|&(row, similarity)| Neighbor {
                id: self.ids[row].clone(),
                row,
                similarity,
            })
            .collect()
    }

    /// `k` nearest accounts to the unit vector `q`, leaving out `exclude`.
    fn query(&self, q: &[f32], k: usize, exclude: Option<usize>) -> Vec<Neighbor> {
        let available = self.len() - usize::from(exclude.is_some());
        let k = k.min(available);
        if k == 0 {
            return Vec::new();
        }
        let mut hits: Vec<(usize, f32)> = if self.len() < EXACT_BELOW {
            (0..self.len())
                .filter(|&row| Some(row) != exclude)
                .map(|row| {
                    (
                        row,
                        similarity(UnitCosine.eval(q, self.points[row].get_v())),
                    )
                })
                .collect()
        } else {
            // Ask for one more when excluding: the account itself is normally the first hit,
            // but with duplicates it may come later or not at all.
            let want = k + usize::from(exclude.is_some());
            let ef = self.params.ef_search.max(want);
            let mut hits: Vec<(usize, f32)> = self
                .graph
                .search(q, want, ef)
                .into_iter()
                .map(|n| (n.d_id, similarity(n.distance)))
                .filter(|&(row, _)| Some(row) != exclude)
                .collect();
            if let Some(me) = exclude {
                // The account's own bottom-layer links are its nearest neighbours as the
                // graph knows them; adding them rescues a search that got stuck in a dense
                // cluster of other accounts (see the module docs).
                for link in &self.points[me].get_neighborhood_id()[0] {
                    let row = link.d_id;
                    if row != me && !hits.iter().any(|h| h.0 == row) {
                        let s = similarity(UnitCosine.eval(q, self.points[row].get_v()));
                        hits.push((row, s));
                    }
                }
            }
            hits
        };
        self.ranked(&mut hits, k)
    }
}

/// Id -> row, refusing empty and duplicate ids.
fn row_map(ids: &[String]) -> std::result::Result<HashMap<String, usize>, String> {
    let mut rows = HashMap::with_capacity(ids.len());
    for (row, id) in ids.iter().enumerate() {
        if id.is_empty() {
            return Err(format!("index: account id at row {row} is empty"));
        }
        if let Some(first) = rows.insert(id.clone(), row) {
            return Err(format!(
                "index: account id {id:?} appears twice (rows {first} and {row})"
            ));
        }
    }
    Ok(rows)
}

/// L2-normalise in place; the error says why a vector cannot be.
fn normalise(v: &mut [f32]) -> std::result::Result<(), &'static str> {
    if v.iter().any(|x| !x.is_finite()) {
        return Err("has a NaN or infinite value");
    }
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err("has length zero (cosine is undefined)");
    }
    for x in v.iter_mut() {
        *x = (f64::from(*x) / norm) as f32;
    }
    Ok(())
}

/// The graph's points by row (origin id), checking that rows `0..n` each appear once with
/// `dim` values.
fn collect_points(
    graph: &Graph,
    n: usize,
    dim: usize,
) -> std::result::Result<Vec<Arc<Point<'static, f32>>>, String> {
    if graph.get_nb_point() != n {
        return Err(format!("{} points for {n} accounts", graph.get_nb_point()));
    }
    let mut points: Vec<Option<Arc<Point<'static, f32>>>> = vec![None; n];
    for p in graph.get_point_indexation() {
        let row = p.get_origin_id();
        if row >= n {
            return Err(format!("point id {row} out of range for {n} accounts"));
        }
        if p.get_v().len() != dim {
            return Err(format!(
                "point {row} has dimension {}, expected {dim}",
                p.get_v().len()
            ));
        }
        if points[row].replace(p).is_some() {
            return Err(format!("point id {row} appears twice"));
        }
    }
    points
        .into_iter()
        .enumerate()
        .map(|(row, p)| p.ok_or_else(|| format!("no point for row {row}")))
        .collect()
}
