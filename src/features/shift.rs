//! Shift from normal traffic: how unlike its endpoint's usual prompts an account's (or a link
//! group's) prompts are, as a two-sample test that reads as a p-value.
//!
//! An extractor can reword every prompt, but it cannot make its queries come from the
//! distribution an endpoint normally serves: a math-tutoring endpoint swept for general
//! knowledge, or a chat endpoint swept through one benchmark, receives samples that a random
//! draw of its traffic would rarely produce. The statistic is the maximum mean discrepancy
//! (MMD, Gretton et al. 2012; the detector of arXiv 2606.05725 and PRADA's distribution test
//! are the anchors) between the account's distinct prompt embeddings `X` and a *reference*
//! sample `Y` of the same endpoint's traffic, with an RBF kernel at the median bandwidth:
//!
//! `MMD²(X, Y) = mean k(X, X) - 2 mean k(X, Y) + mean k(Y, Y)` (the biased V-statistic),
//! `k(x, y) = exp(-|x - y|² / median |y - y'|²)`.
//!
//! The V-statistic of a small sample is biased upwards, so it is calibrated against a null of
//! the same size: [`ShiftParams::draws`] random samples of `|X|` prompts from a *pool* of the
//! endpoint's traffic disjoint from `Y`. The p-value is `(1 + #{null >= obs}) / (draws + 1)`,
//! and `z = (obs - mean null) / sd null`.
//!
//! The endpoint of an account is the `model` it sends most requests to (requests without one
//! form one endpoint). The reference and pool of an endpoint are a sample of its normal
//! traffic ([`NormalTraffic`]: drawn by `train` from the accounts labelled benign, saved with
//! the model) when there is one for it; otherwise they are drawn from the distinct prompts of
//! the accounts on it in the log itself, or from the whole log when the endpoint has fewer
//! than [`ShiftParams::min_endpoint_prompts`]. Drawing from the same log means a campaign's
//! own prompts are in the reference, in proportion to its share of the endpoint's prompts.
//!
//! One trimming pass removes from the reference the accounts whose z-score lies more than
//! [`TRIM_MADS`] median absolute deviations above their endpoint's median account: without it,
//! an endpoint whose traffic is one third extraction made its honest users look shifted.
//!
//! On a general chat endpoint every person is "shifted" (one person's topics are narrow), so
//! there the score is one feature among many; on an endpoint that serves one task it is the
//! signal (docs/evaluation.md).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use candle_core::{Device, Tensor};

use super::normal::{round_f16, NormalTraffic, Sample};
use super::Accounts;
use crate::error::Result;
use crate::similarity::dot;

/// Settings of the shift test (part of the feature definition: changing one changes the
/// features a model was trained on).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ShiftParams {
    /// Reference prompts per endpoint.
    pub reference: usize,
    /// Pool prompts per endpoint the null samples are drawn from.
    pub pool: usize,
    /// Null samples per sample size.
    pub draws: usize,
    /// An endpoint with fewer distinct prompts uses the whole log's reference.
    pub min_endpoint_prompts: usize,
}

impl Default for ShiftParams {
    fn default() -> Self {
        ShiftParams {
            reference: 256,
            pool: 512,
            draws: 400,
            min_endpoint_prompts: 64,
        }
    }
}

/// One endpoint's reference, pool and null distributions.
struct Endpoint {
    dim: usize,
    /// Reference prompts, row-major `[m, dim]`, and their mean.
    y: Vec<f32>,
    centre: Vec<f32>,
    /// `1 / median |y - y'|²`.
    gamma: f32,
    /// Mean of `k(y, y')` over the reference, diagonal included.
    kyy: f32,
    /// Pool size, mean kernel of each pool prompt to the reference, and the pool's kernel
    /// matrix `[p, p]`.
    p: usize,
    rp: Vec<f32>,
    kpp: Vec<f32>,
    /// Sorted null statistics per sample size, filled on first use.
    nulls: RefCell<HashMap<usize, Rc<Null>>>,
    /// The tail test's cut: a prompt whose mean kernel to the reference is below `tail_cut`
    /// is *atypical*; `pool_tail` is the share of the pool below it.
    tail_cut: f32,
    pool_tail: f32,
}

/// The tail test's cut, in median absolute deviations of the pool's mean kernel to the
/// reference below its median. A robust cut rather than a quantile: a log's own reference holds
/// the off-task prompts of every extractor the trimming pass kept, and a quantile cut then
/// falls among them (on the evaluation's maths endpoint a 5% cut counted only 37% of a pure
/// extractor's prompts atypical).
const TAIL_MADS: f32 = 3.0;

/// Fewest accounts of an endpoint whose median atypical share is its typical one; with fewer
/// the pool's share is used.
const TAIL_MIN_ACCOUNTS: usize = 8;

/// Floor of an endpoint's typical atypical share (an endpoint whose median account has none
/// would make one atypical prompt infinitely significant).
const TAIL_MIN_SHARE: f32 = 0.005;

/// Robust z-scores (MADs above the endpoint's median account) beyond which an account leaves
/// the reference in the trimming pass; the MAD is floored at 1 so that an endpoint of alike
/// accounts does not trim its ordinary spread.
const TRIM_MADS: f32 = 3.0;

/// The null distribution of one sample size: sorted statistics, their mean and spread.
struct Null {
    sorted: Vec<f32>,
    mean: f32,
    sd: f32,
}

/// The result of one test.
///
/// Two statistics of the same sample. The MMD (`mmd2`, `p`, `z`) compares whole
/// distributions, so a sample of which only a quarter is off the endpoint's task is diluted by
/// the rest. The *tail test* counts prompts one by one: `tail` is the share of the sample's
/// prompts that are *atypical* (a mean kernel to the reference more than [`TAIL_MADS`]
/// deviations below the pool's median), and `tail_z` compares it with the endpoint's typical
/// account, in a quasi-binomial z-score (see [`Reference::test_accounts`]). An extractor who
/// hides a quarter of off-task queries among on-task ones has a quarter of its prompts
/// atypical, where an honest user of a task endpoint has almost none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShiftScore {
    pub mmd2: f32,
    pub p: f32,
    pub z: f32,
    pub tail: f32,
    pub tail_z: f32,
}

/// References for every endpoint of a run.
pub struct Reference {
    params: ShiftParams,
    /// Endpoint id (interned model, `u32::MAX` for requests without one) to its reference;
    /// `whole` is the whole log's.
    endpoints: HashMap<u32, Endpoint>,
    whole: Option<Endpoint>,
    /// Per account, the endpoint whose reference it is tested against (`None`: the whole log).
    account_endpoint: Vec<Option<u32>>,
}

impl Reference {
    /// References for every account of a run: `g` holds the accounts' distinct prompt
    /// embeddings, row-major `[offsets.last(), dim]`, account `a` owning rows
    /// `offsets[a]..offsets[a + 1]` (as in [`super::LocalFeatures`]). An account whose endpoint
    /// `given` has a sample of is tested against that sample; every other account against the
    /// log's own reference of its endpoint (trimmed, see [`Self::from_log`]); accounts whose
    /// endpoint has neither against `given`'s whole-traffic sample, else the log's.
    pub fn new(
        accounts: &Accounts,
        main: &[u32],
        g: &[f32],
        offsets: &[usize],
        dim: usize,
        params: &ShiftParams,
        given: Option<&NormalTraffic>,
    ) -> Result<Self> {
        let n = accounts.len();
        let mut endpoints: HashMap<u32, Endpoint> = HashMap::new();
        let mut covered = vec![false; n];
        if let Some(nt) = given {
            for a in 0..n {
                let e = main[a];
                if let std::collections::hash_map::Entry::Vacant(slot) = endpoints.entry(e) {
                    let Some(ep) = nt
                        .endpoints
                        .get(&accounts.model_name(e))
                        .and_then(|s| Endpoint::from_sample(s, dim))
                    else {
                        continue;
                    };
                    slot.insert(ep);
                }
                covered[a] = true;
            }
        }
        let rest: Vec<bool> = covered.iter().map(|c| !c).collect();
        let (log_endpoints, log_whole) = if rest.iter().any(|&r| r) {
            Self::from_log(main, &rest, g, offsets, dim, params)?
        } else {
            (HashMap::new(), None)
        };
        endpoints.extend(log_endpoints);
        let whole = match given.and_then(|nt| nt.whole.as_ref()) {
            Some(s) => Endpoint::from_sample(s, dim),
            None => log_whole,
        };
        let account_endpoint = main
            .iter()
            .map(|e| endpoints.contains_key(e).then_some(*e))
            .collect();
        Ok(Reference {
            params: params.clone(),
            endpoints,
            whole,
            account_endpoint,
        })
    }

    /// The log's own references, drawn from the accounts in `consider` (each on endpoint
    /// `main[a]`), by endpoint and over all of them.
    ///
    /// One trimming pass: accounts far more shifted than their endpoint's others (the pure
    /// extractors) leave the reference, so that they do not make the honest majority look
    /// unusual.
    fn from_log(
        main: &[u32],
        consider: &[bool],
        g: &[f32],
        offsets: &[usize],
        dim: usize,
        params: &ShiftParams,
    ) -> Result<(HashMap<u32, Endpoint>, Option<Endpoint>)> {
        let first = Self::build(main, consider, g, offsets, dim, params);
        let which: Vec<usize> = (0..main.len()).filter(|&a| consider[a]).collect();
        let z: Vec<f32> = first
            .test_some(&which, g, offsets, dim)?
            .iter()
            .map(|s| s.z)
            .collect();
        let mut keep = consider.to_vec();
        let mut by: HashMap<Option<u32>, Vec<usize>> = HashMap::new();
        for &a in &which {
            by.entry(first.account_endpoint[a]).or_default().push(a);
        }
        for accs in by.values() {
            let (med, mad) = median_and_mad(accs.iter().map(|&a| z[a]).collect());
            for &a in accs {
                if z[a] > med + TRIM_MADS * mad.max(1.0) {
                    keep[a] = false;
                }
            }
        }
        let last = Self::build(main, &keep, g, offsets, dim, params);
        Ok((last.endpoints, last.whole))
    }

    /// References from the rows of the accounts in `keep`, each account on endpoint
    /// `main[a]`.
    fn build(
        main: &[u32],
        keep: &[bool],
        g: &[f32],
        offsets: &[usize],
        dim: usize,
        params: &ShiftParams,
    ) -> Self {
        let mut rows_of: HashMap<u32, Vec<usize>> = HashMap::new();
        let mut all: Vec<usize> = Vec::new();
        for (a, &e) in main.iter().enumerate().filter(|(a, _)| keep[*a]) {
            rows_of
                .entry(e)
                .or_default()
                .extend(offsets[a]..offsets[a + 1]);
            all.extend(offsets[a]..offsets[a + 1]);
        }
        let whole = Endpoint::from_rows(g, dim, &all, params);
        let mut endpoints = HashMap::new();
        for (e, rows) in rows_of {
            if rows.len() >= params.min_endpoint_prompts {
                if let Some(ep) = Endpoint::from_rows(g, dim, &rows, params) {
                    endpoints.insert(e, ep);
                }
            }
        }
        let account_endpoint = main
            .iter()
            .map(|e| endpoints.contains_key(e).then_some(*e))
            .collect();
        Reference {
            params: params.clone(),
            endpoints,
            whole,
            account_endpoint,
        }
    }

    /// The test of every account's distinct prompts (`g`, `offsets` as in [`Self::new`])
    /// against its endpoint. The kernel to the reference is one matrix product per endpoint
    /// and chunk of accounts (candle's GEMM); the within-account kernel is exact.
    ///
    /// The tail z-score of an account with `n` prompts, `t` of them atypical, is
    /// `(t - q) / sqrt(phi q (1 - q) / n)`: `q` is the median atypical share of the accounts
    /// tested against the same endpoint (its typical account; the pool's share below
    /// [`TAIL_MIN_ACCOUNTS`] accounts), and `phi >= 1` how much wider than binomial their
    /// spread is (the median squared binomial z-score over that of a chi-square with one degree
    /// of freedom). So on a task endpoint, whose honest users all send on-task prompts, a
    /// quarter of off-task prompts is extreme, and on a general one, whose people differ
    /// widely, the same quarter is not. Both are medians, so a minority of extractors on the
    /// endpoint moves neither. Link groups ([`Self::test_group`]) get no tail z-score.
    pub fn test_accounts(
        &self,
        g: &[f32],
        offsets: &[usize],
        dim: usize,
    ) -> Result<Vec<ShiftScore>> {
        let all: Vec<usize> = (0..offsets.len().saturating_sub(1)).collect();
        self.test_some(&all, g, offsets, dim)
    }

    /// [`Self::test_accounts`] for the accounts `which` only (the others score the default).
    fn test_some(
        &self,
        which: &[usize],
        g: &[f32],
        offsets: &[usize],
        dim: usize,
    ) -> Result<Vec<ShiftScore>> {
        let n = offsets.len().saturating_sub(1);
        let mut by_endpoint: HashMap<Option<u32>, Vec<usize>> = HashMap::new();
        for &a in which {
            by_endpoint
                .entry(self.account_endpoint[a])
                .or_default()
                .push(a);
        }
        let mut out = vec![ShiftScore::default(); n];
        let mut keys: Vec<Option<u32>> = by_endpoint.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            let Some(ep) = self.endpoint(key) else {
                continue;
            };
            for chunk in by_endpoint[&key].chunks(4096) {
                let (start, end) = (offsets[chunk[0]], offsets[chunk[chunk.len() - 1] + 1]);
                let contiguous = chunk.windows(2).all(|w| offsets[w[0] + 1] == offsets[w[1]]);
                let x: Vec<f32> = if contiguous {
                    g[start * dim..end * dim].to_vec()
                } else {
                    chunk
                        .iter()
                        .flat_map(|&a| g[offsets[a] * dim..offsets[a + 1] * dim].iter().copied())
                        .collect()
                };
                let rows = x.len() / dim;
                if rows == 0 {
                    continue;
                }
                let rxy = ep.mean_kernel_to_reference(&x, rows)?;
                let mut at = 0;
                for &a in chunk {
                    let len = offsets[a + 1] - offsets[a];
                    let xa = &g[offsets[a] * dim..offsets[a + 1] * dim];
                    out[a] = ep.test_with(xa, &rxy[at..at + len], self.params.draws);
                    at += len;
                }
            }
            let accs = &by_endpoint[&key];
            let tails: Vec<f32> = accs.iter().map(|&a| out[a].tail).collect();
            let sizes: Vec<usize> = accs.iter().map(|&a| offsets[a + 1] - offsets[a]).collect();
            let z = tail_z_scores(&tails, &sizes, ep.pool_tail);
            for (&a, z) in accs.iter().zip(z) {
                out[a].tail_z = z;
            }
        }
        Ok(out)
    }

    /// The test of prompts pooled from several accounts (a link group, row-major `[n, dim]`)
    /// against the endpoint of its first account `first`.
    pub fn test_group(&self, first: usize, x: &[f32]) -> Result<ShiftScore> {
        let Some(ep) = self.endpoint(self.account_endpoint[first]) else {
            return Ok(ShiftScore::default());
        };
        let n = x.len() / ep.dim;
        let rxy = ep.mean_kernel_to_reference(x, n)?;
        Ok(ep.test_with(x, &rxy, self.params.draws))
    }

    /// The mean embedding of account `a`'s endpoint's reference (its usual traffic), or
    /// `None` when the log gave no reference.
    pub fn centre(&self, a: usize) -> Option<&[f32]> {
        self.endpoint(self.account_endpoint[a])
            .map(|ep| ep.centre.as_slice())
    }

    fn endpoint(&self, key: Option<u32>) -> Option<&Endpoint> {
        key.and_then(|e| self.endpoints.get(&e))
            .or(self.whole.as_ref())
    }
}

impl Default for ShiftScore {
    fn default() -> Self {
        ShiftScore {
            mmd2: 0.0,
            p: 1.0,
            z: 0.0,
            tail: 0.0,
            tail_z: 0.0,
        }
    }
}

/// A sample of normal traffic from the accounts in `benign` (`g`, `offsets` as in
/// [`Reference::new`]): per endpoint with at least [`ShiftParams::min_endpoint_prompts`] of
/// their distinct prompts, and over all of them; split into reference and pool as the log's
/// own references are, and rounded to half precision as [`NormalTraffic::save`] stores them.
pub fn draw_normal(
    accounts: &Accounts,
    main: &[u32],
    benign: &[bool],
    g: &[f32],
    offsets: &[usize],
    dim: usize,
    params: &ShiftParams,
) -> Result<NormalTraffic> {
    let mut rows_of: std::collections::BTreeMap<Option<String>, Vec<usize>> = Default::default();
    let mut all = Vec::new();
    for a in (0..accounts.len()).filter(|&a| benign[a]) {
        let name = accounts.model_name(main[a]);
        rows_of
            .entry(name)
            .or_default()
            .extend(offsets[a]..offsets[a + 1]);
        all.extend(offsets[a]..offsets[a + 1]);
    }
    let sample = |rows: &[usize]| -> Result<Option<Sample>> {
        let s = sample_of(g, dim, rows, params);
        if s.reference.len() < 2 * dim || s.pool.len() < 2 * dim {
            return Ok(None);
        }
        Ok(Some(Sample {
            reference: round_f16(&s.reference)?,
            pool: round_f16(&s.pool)?,
        }))
    };
    let mut endpoints = std::collections::BTreeMap::new();
    for (name, rows) in rows_of {
        if rows.len() >= params.min_endpoint_prompts {
            if let Some(s) = sample(&rows)? {
                endpoints.insert(name, s);
            }
        }
    }
    Ok(NormalTraffic {
        dim,
        endpoints,
        whole: sample(&all)?,
        accounts: benign.iter().filter(|&&b| b).count(),
        // Filled in by `super::local` once the features are known.
        medians: std::collections::BTreeMap::new(),
    })
}

/// `ln(1 + max(z, 0))`: the shift z-score as a feature (only excess over the null counts, and
/// the tail of huge z-scores is compressed).
pub fn log_z(z: f32) -> f64 {
    f64::from(z.max(0.0)).ln_1p()
}

/// Each account's endpoint: the interned model it sends most requests to (`u32::MAX` for
/// none), ties to the smaller id. Computed once per run and shared by the shift test, the
/// normal traffic drawn for `train` and the endpoint-relative features.
pub fn main_models(accounts: &Accounts) -> Vec<u32> {
    (0..accounts.len())
        .map(|a| main_model(accounts, a))
        .collect()
}

fn main_model(accounts: &Accounts, a: usize) -> u32 {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for q in &accounts.requests[a] {
        *counts.entry(q.model.unwrap_or(u32::MAX)).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(m, c)| (c, std::cmp::Reverse(m)))
        .map_or(u32::MAX, |(m, _)| m)
}

/// Rows `rows` of `g` (row-major, `dim` wide) as a reference and a disjoint pool, split by
/// [`split`].
fn sample_of(g: &[f32], dim: usize, rows: &[usize], params: &ShiftParams) -> Sample {
    let (yr, pr) = split(rows, params);
    let gather = |rs: &[usize]| -> Vec<f32> {
        rs.iter()
            .flat_map(|&r| g[r * dim..(r + 1) * dim].iter().copied())
            .collect()
    };
    Sample {
        reference: gather(&yr),
        pool: gather(&pr),
    }
}

/// Rows `rows` of `g` split into a reference and a disjoint pool by a fixed hash order, so the
/// draw does not depend on the order accounts appear in.
fn split(rows: &[usize], params: &ShiftParams) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = rows.to_vec();
    order.sort_by_key(|&r| (splitmix(r as u64), r));
    order.dedup();
    let m = params.reference.min(order.len() / 2).max(1);
    let y = order[..m.min(order.len())].to_vec();
    let pool = order[m.min(order.len())..]
        .iter()
        .copied()
        .take(params.pool)
        .collect();
    (y, pool)
}

impl Endpoint {
    /// The endpoint of rows `rows` of `g`, split into reference and pool by [`split`].
    fn from_rows(g: &[f32], dim: usize, rows: &[usize], params: &ShiftParams) -> Option<Self> {
        Self::from_sample(&sample_of(g, dim, rows, params), dim)
    }

    /// The endpoint of a sample; `None` when the reference or the pool has fewer than 2 rows.
    fn from_sample(sample: &Sample, dim: usize) -> Option<Self> {
        let (m, p) = (sample.reference.len() / dim, sample.pool.len() / dim);
        if m < 2 || p < 2 {
            return None;
        }
        let y = sample.reference.clone();
        let pool = &sample.pool;
        let row = |i: usize| &y[i * dim..(i + 1) * dim];
        let prow = |i: usize| &pool[i * dim..(i + 1) * dim];
        let mut d2: Vec<f32> = Vec::with_capacity(m * (m - 1) / 2);
        for i in 0..m {
            for j in i + 1..m {
                d2.push((2.0 - 2.0 * dot(row(i), row(j))).max(0.0));
            }
        }
        d2.sort_by(f32::total_cmp);
        let med = d2[d2.len() / 2].max(1e-6);
        let gamma = 1.0 / med;
        let k = |a: &[f32], b: &[f32]| (-gamma * (2.0 - 2.0 * dot(a, b)).max(0.0)).exp();
        let mut kyy = 0f64;
        for i in 0..m {
            for j in 0..m {
                kyy += f64::from(k(row(i), row(j)));
            }
        }
        let kyy = (kyy / (m * m) as f64) as f32;
        let rp: Vec<f32> = (0..p)
            .map(|i| (0..m).map(|j| k(prow(i), row(j))).sum::<f32>() / m as f32)
            .collect();
        let mut kpp = vec![0f32; p * p];
        for i in 0..p {
            for j in i..p {
                let v = k(prow(i), prow(j));
                kpp[i * p + j] = v;
                kpp[j * p + i] = v;
            }
        }
        let (med, mad) = median_and_mad(rp.clone());
        let tail_cut = med - TAIL_MADS * mad;
        let pool_tail = rp.iter().filter(|&&v| v < tail_cut).count() as f32 / p as f32;
        let mut centre = vec![0f32; dim];
        for r in y.chunks(dim) {
            centre
                .iter_mut()
                .zip(r)
                .for_each(|(c, v)| *c += v / m as f32);
        }
        Some(Endpoint {
            dim,
            centre,
            y,
            gamma,
            kyy,
            p,
            rp,
            kpp,
            nulls: RefCell::new(HashMap::new()),
            tail_cut,
            pool_tail,
        })
    }

    /// `k(x, y)` from the dot product of two unit vectors (`|x - y|² = 2 - 2 x.y`).
    fn k_dot(&self, d: f32) -> f32 {
        (-self.gamma * (2.0 - 2.0 * d).max(0.0)).exp()
    }

    /// Per row of `x` (row-major `[n, dim]`, unit vectors), its mean kernel to the reference.
    fn mean_kernel_to_reference(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        let m = self.y.len() / self.dim;
        let xt = Tensor::from_slice(x, (n, self.dim), &Device::Cpu)?;
        let yt = Tensor::from_slice(&self.y, (m, self.dim), &Device::Cpu)?;
        let dots: Vec<f32> = xt.matmul(&yt.t()?)?.flatten_all()?.to_vec1()?;
        Ok(dots
            .chunks(m)
            .map(|row| row.iter().map(|&d| self.k_dot(d)).sum::<f32>() / m as f32)
            .collect())
    }

    /// The test of `x` given each row's mean kernel to the reference, `rxy`.
    fn test_with(&self, x: &[f32], rxy: &[f32], draws: usize) -> ShiftScore {
        let n = rxy.len();
        if n == 0 || draws == 0 {
            return ShiftScore::default();
        }
        let xr = |i: usize| &x[i * self.dim..(i + 1) * self.dim];
        let mut kxx = 0f32;
        for i in 0..n {
            kxx += 1.0;
            for j in i + 1..n {
                kxx += 2.0 * self.k_dot(dot(xr(i), xr(j)));
            }
        }
        let obs = kxx / (n * n) as f32 - 2.0 * rxy.iter().sum::<f32>() / n as f32 + self.kyy;
        let null = self.null(n, draws);
        let len = null.sorted.len();
        let above = len - null.sorted.partition_point(|&v| v < obs);
        let atypical = rxy.iter().filter(|&&v| v < self.tail_cut).count();
        ShiftScore {
            mmd2: obs,
            p: (1 + above) as f32 / (len + 1) as f32,
            z: (obs - null.mean) / null.sd,
            tail: atypical as f32 / n as f32,
            tail_z: 0.0,
        }
    }

    /// The null distribution for samples of `n` pool prompts (without replacement while the
    /// pool allows), computed once per size.
    fn null(&self, n: usize, draws: usize) -> Rc<Null> {
        if let Some(v) = self.nulls.borrow().get(&n) {
            return Rc::clone(v);
        }
        let mut state = 0x5eed_0000_0000_0000u64 ^ n as u64;
        let mut idx: Vec<usize> = (0..self.p).collect();
        let mut out: Vec<f32> = (0..draws)
            .map(|_| {
                // Partial Fisher-Yates: the first `n` of `idx` are the sample.
                let take = n.min(self.p);
                for i in 0..take {
                    state = splitmix(state);
                    let j = i + (state % (self.p - i) as u64) as usize;
                    idx.swap(i, j);
                }
                let s: Vec<usize> = (0..n).map(|i| idx[i % take]).collect();
                let mut kss = 0f32;
                for &a in &s {
                    for &b in &s {
                        kss += self.kpp[a * self.p + b];
                    }
                }
                let rs: f32 = s.iter().map(|&a| self.rp[a]).sum();
                kss / (n * n) as f32 - 2.0 * rs / n as f32 + self.kyy
            })
            .collect();
        out.sort_by(f32::total_cmp);
        let mean = out.iter().sum::<f32>() / out.len() as f32;
        let var = out.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / out.len() as f32;
        let null = Rc::new(Null {
            sorted: out,
            mean,
            sd: var.sqrt().max(1e-6),
        });
        self.nulls.borrow_mut().insert(n, Rc::clone(&null));
        null
    }

    #[cfg(test)]
    fn test(&self, x: &[f32], draws: usize) -> ShiftScore {
        let n = x.len() / self.dim;
        let rxy = self.mean_kernel_to_reference(x, n).unwrap();
        self.test_with(x, &rxy, draws)
    }
}

/// The median of `v` (the upper one of an even count; 0 for none).
fn median_of(mut v: Vec<f32>) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// The median of `v` and its median absolute deviation scaled by 1.4826 (the standard
/// deviation's estimate for normal data); the trimming pass and the tail test's cut.
fn median_and_mad(v: Vec<f32>) -> (f32, f32) {
    let med = median_of(v.clone());
    (
        med,
        1.4826 * median_of(v.iter().map(|x| (x - med).abs()).collect()),
    )
}

/// Quasi-binomial z-scores of atypical shares `tail` of samples of `n` prompts against one
/// endpoint (see [`Reference::test_accounts`]); `pool_tail` stands in for the typical share
/// when there are fewer than [`TAIL_MIN_ACCOUNTS`] samples.
fn tail_z_scores(tail: &[f32], n: &[usize], pool_tail: f32) -> Vec<f32> {
    let q = if tail.len() >= TAIL_MIN_ACCOUNTS {
        median_of(tail.to_vec())
    } else {
        pool_tail
    }
    .clamp(TAIL_MIN_SHARE, 1.0 - TAIL_MIN_SHARE);
    let r: Vec<f32> = tail
        .iter()
        .zip(n)
        .map(|(&t, &n)| (t - q) / (q * (1.0 - q) / n.max(1) as f32).sqrt())
        .collect();
    // The median of a chi-square with one degree of freedom is 0.4549.
    let phi = if tail.len() >= TAIL_MIN_ACCOUNTS {
        (median_of(r.iter().map(|v| v * v).collect()) / 0.4549).max(1.0)
    } else {
        1.0
    };
    r.iter().map(|v| v / phi.sqrt()).collect()
}

fn splitmix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors around one of two directions, with a little spread.
    fn cloud(centre: usize, n: usize, seed: u64, dim: usize) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .flat_map(|_| {
                let mut v: Vec<f32> = (0..dim)
                    .map(|_| {
                        s = splitmix(s);
                        (s % 1000) as f32 / 1000.0 - 0.5
                    })
                    .collect();
                v[centre] += 3.0;
                let norm = dot(&v, &v).sqrt();
                v.iter_mut().for_each(|x| *x /= norm);
                v
            })
            .collect()
    }

    #[test]
    fn a_sample_from_another_distribution_is_significant_and_one_from_the_same_is_not() {
        let dim = 8;
        let g = cloud(0, 800, 1, dim);
        let rows: Vec<usize> = (0..800).collect();
        let ep = Endpoint::from_rows(&g, dim, &rows, &ShiftParams::default()).unwrap();
        let same = ep.test(&cloud(0, 20, 99, dim), 400);
        let other = ep.test(&cloud(1, 20, 7, dim), 400);
        assert!(same.p > 0.01, "{same:?}");
        assert!(other.p <= 1.0 / 401.0 + 1e-6 && other.z > 10.0, "{other:?}");
        // One prompt is too little to tell, but the test still reads as a p-value.
        let one = ep.test(&cloud(1, 1, 3, dim), 400);
        assert!(
            one.p > 0.0 && one.p <= 1.0 && one.mmd2 > same.mmd2,
            "{one:?}"
        );
        // Null p-values are roughly uniform: about 10% of same-distribution samples below 0.1.
        let low = (0..200)
            .filter(|i| ep.test(&cloud(0, 10, 1000 + i, dim), 400).p < 0.1)
            .count();
        assert!((5..=40).contains(&low), "{low} of 200 below 0.1");
    }

    #[test]
    fn the_tail_test_finds_a_quarter_hidden_among_typical_prompts() {
        let dim = 8;
        let g = cloud(0, 800, 1, dim);
        let rows: Vec<usize> = (0..800).collect();
        let ep = Endpoint::from_rows(&g, dim, &rows, &ShiftParams::default()).unwrap();
        let mut mixed = cloud(0, 75, 5, dim);
        mixed.extend(cloud(1, 25, 6, dim));
        let same = ep.test(&cloud(0, 100, 9, dim), 400);
        let hidden = ep.test(&mixed, 400);
        assert!(same.tail < 0.05, "{same:?}");
        assert!(hidden.tail >= 0.25, "{hidden:?}");
        // Against 20 typical samples, the hidden quarter stands out and the typical do not.
        let mut tails: Vec<f32> = (0..20)
            .map(|i| ep.test(&cloud(0, 100, 3000 + i, dim), 400).tail)
            .collect();
        tails.push(hidden.tail);
        let z = tail_z_scores(&tails, &[100; 21], ep.pool_tail);
        assert!(z[20] > 10.0, "{z:?}");
        assert!(z[..20].iter().all(|&v| v < 4.0), "{z:?}");
    }

    #[test]
    fn tail_z_scores_are_quasi_binomial() {
        // Typical share 0.1 (the median), no overdispersion: z = (t - q) / sqrt(q (1-q) / n).
        let tails = [0.1, 0.1, 0.1, 0.1, 0.1, 0.12, 0.08, 0.1, 0.4];
        let z = tail_z_scores(&tails, &[100; 9], 0.5);
        assert!(
            (z[8] - 0.3 / (0.09f32 / 100.0).sqrt()).abs() < 1e-3,
            "{z:?}"
        );
        // Spread between accounts wider than binomial scales every z down.
        let wide = [0.0, 0.3, 0.05, 0.25, 0.1, 0.2, 0.15, 0.12, 0.4];
        let zw = tail_z_scores(&wide, &[100; 9], 0.5);
        assert!(zw[8] < z[8] / 2.0 && zw[8] > 0.0, "{zw:?}");
        // Few samples: the pool's share is the typical one, floored.
        let few = tail_z_scores(&[0.0, 0.5], &[10, 10], 0.0);
        assert!(few[0] < 0.0 && few[1] > 10.0, "{few:?}");
    }
}
