//! Per-account features: what one account's traffic looks like, before looking at any other
//! account.
//!
//! Input is a run directory (request table + prompt embeddings + per-prompt lexical data), so
//! features never re-read the log. Requests are grouped by account and put in time order. Each
//! account gets a fixed-length vector of named features ([`LOCAL_FEATURES`]) covering volume and
//! timing, conversation structure, lexical marker rates, requested answer length and the geometry
//! of its prompt embeddings (concentration, near-duplicate and template rates, jumps between
//! successive prompts), plus a behaviour vector (the normalised mean prompt embedding) for the
//! account index. Cross-account evidence comes later, in [`crate::campaign`].
//!
//! Embedding geometry looks at up to [`MAX_GEOMETRY_PROMPTS`] distinct prompts per account
//! (evenly spaced in time when there are more), so that one huge account cannot dominate the
//! all-pairs work.

use std::collections::{BTreeMap, HashMap};

use candle_core::Tensor;

pub mod normal;
mod registry;
pub mod shift;
pub(crate) use registry::feature_set;

use crate::error::Result;
use crate::lexical::Marker;
use crate::run::{RequestRecord, RowInfo, Run};
use crate::similarity;

/// Distinct prompts per account used for embedding geometry.
pub const MAX_GEOMETRY_PROMPTS: usize = 256;
/// Cosine at or above which two prompts are near-duplicates.
pub const NEAR_DUP: f32 = 0.9;
/// Cosine at or above which a prompt counts as reusing a template of the same account.
pub const TEMPLATE: f32 = 0.75;

/// One request as the features see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Req {
    pub ts_ms: i64,
    pub row: u32,
    /// Conversation id, interned per account.
    pub conv: Option<u32>,
    /// System prompt hash, interned over the whole run.
    pub system: Option<u32>,
    pub response_tokens: Option<u64>,
    /// Network of the client address ([`network_of`]), interned over the whole run.
    pub net: Option<u32>,
    /// User agent, interned over the whole run.
    pub ua: Option<u32>,
    /// Model (the endpoint the request went to), interned over the whole run.
    pub model: Option<u32>,
}

/// All accounts of a run, in first-seen order, each with its requests in time order.
pub struct Accounts {
    pub ids: Vec<String>,
    pub requests: Vec<Vec<Req>>,
    /// Number of distinct system prompts seen in the run.
    pub systems: usize,
    /// Model names by interned id ([`Req::model`]).
    pub models: Vec<String>,
}

/// The network an address belongs to, as infrastructure is shared: the /24 of an IPv4 address,
/// the /48 of an IPv6 one (one site), the text itself when it does not parse as an address.
pub fn network_of(ip: &str) -> String {
    match ip.trim().parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        Err(_) => ip.trim().to_string(),
    }
}

impl Accounts {
    pub fn from_run(run: &Run) -> Result<Self> {
        Self::from_records(run.requests()?)
    }

    /// Group request-table records by account.
    pub fn from_records(records: impl Iterator<Item = Result<RequestRecord>>) -> Result<Self> {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut ids = Vec::new();
        let mut requests: Vec<Vec<Req>> = Vec::new();
        let mut convs: Vec<HashMap<String, u32>> = Vec::new();
        let mut systems: HashMap<String, u32> = HashMap::new();
        let mut nets: HashMap<String, u32> = HashMap::new();
        let mut uas: HashMap<String, u32> = HashMap::new();
        let mut models: HashMap<String, u32> = HashMap::new();
        let intern = |map: &mut HashMap<String, u32>, key: String| {
            let n = map.len() as u32;
            *map.entry(key).or_insert(n)
        };
        for rec in records {
            let rec = rec?;
            let a = *index.entry(rec.account_id.clone()).or_insert_with(|| {
                ids.push(rec.account_id.clone());
                requests.push(Vec::new());
                convs.push(HashMap::new());
                ids.len() - 1
            });
            let conv = rec.conversation_id.map(|c| {
                let n = convs[a].len() as u32;
                *convs[a].entry(c).or_insert(n)
            });
            requests[a].push(Req {
                ts_ms: rec.timestamp_ms,
                row: rec.row,
                conv,
                system: rec.system_prompt_sha.map(|s| intern(&mut systems, s)),
                response_tokens: rec.response_tokens,
                net: rec.ip.map(|ip| intern(&mut nets, network_of(&ip))),
                ua: rec.user_agent.map(|ua| intern(&mut uas, ua)),
                model: rec.model.map(|m| intern(&mut models, m)),
            });
        }
        for r in &mut requests {
            r.sort_by_key(|q| q.ts_ms);
        }
        let mut model_names = vec![String::new(); models.len()];
        for (name, id) in models {
            model_names[id as usize] = name;
        }
        Ok(Accounts {
            ids,
            requests,
            systems: systems.len(),
            models: model_names,
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The name of interned model `id` (`None` for `u32::MAX`, requests without a model).
    pub fn model_name(&self, id: u32) -> Option<String> {
        self.models.get(id as usize).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The distinct embedding rows of account `a` in time order of first use, at most `cap`
    /// (evenly spaced when there are more).
    pub fn distinct_rows(&self, a: usize, cap: usize) -> Vec<u32> {
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<u32> = self.requests[a]
            .iter()
            .map(|q| q.row)
            .filter(|r| seen.insert(*r))
            .collect();
        if rows.len() <= cap {
            return rows;
        }
        (0..cap).map(|i| rows[i * rows.len() / cap]).collect()
    }
}

feature_set! {
    /// The per-account features, in vector order.
    pub enum Local {
        LogRequests => "log_requests",
        LogActiveDays => "log_active_days",
        LogRequestsPerActiveHour => "log_requests_per_active_hour",
        GapCv => "gap_cv",
        LogMedianGapS => "log_median_gap_s",
        FracGapsUnder10s => "frac_gaps_under_10s",
        GapRegularity => "gap_regularity",
        HourEntropy => "hour_entropy",
        FollowupRate => "followup_rate",
        SingleShotRate => "single_shot_rate",
        SystemPromptRate => "system_prompt_rate",
        LogMeanResponseTokens => "log_mean_response_tokens",
        DistinctPromptRatio => "distinct_prompt_ratio",
        LogMeanChars => "log_mean_chars",
        LogMeanTokens => "log_mean_tokens",
        MarkerReasoning => "marker_reasoning",
        MarkerGrading => "marker_grading",
        MarkerFormat => "marker_format",
        MarkerLongAnswer => "marker_long_answer",
        MarkerDataGeneration => "marker_data_generation",
        MarkerIdentity => "marker_identity",
        MarkerCode => "marker_code",
        MarkerDatasetForm => "marker_dataset_form",
        Concentration => "concentration",
        NearDupRate => "near_dup_rate",
        TemplateRate => "template_rate",
        MeanMaxSim => "mean_max_sim",
        SuccessiveJump => "successive_jump",
        ShiftLogZ => "shift_log_z",
        ShiftLogP => "shift_log_p",
        ShiftTail => "shift_tail",
        ShiftTailLogZ => "shift_tail_log_z",
    }
}

/// Names of the per-account features, in vector order.
pub const LOCAL_FEATURES: &[&str] = Local::NAMES;

impl Local {
    /// The rate feature of a lexical marker.
    pub fn marker(m: Marker) -> Local {
        match m {
            Marker::Reasoning => Local::MarkerReasoning,
            Marker::Grading => Local::MarkerGrading,
            Marker::Format => Local::MarkerFormat,
            Marker::Long => Local::MarkerLongAnswer,
            Marker::DataGeneration => Local::MarkerDataGeneration,
            Marker::Identity => Local::MarkerIdentity,
            Marker::Code => Local::MarkerCode,
            Marker::DatasetForm => Local::MarkerDatasetForm,
        }
    }
}

/// Per-account features and behaviour vectors of a run.
pub struct LocalFeatures {
    /// `accounts x LOCAL_FEATURES.len()`, row-major.
    pub x: Vec<f32>,
    /// `x` minus each account's endpoint's typical account ([`relative_to_endpoints`]).
    pub relative: Vec<f32>,
    /// `accounts x dim` unit vectors (mean prompt embedding, normalised).
    pub behaviour: Vec<f32>,
    pub dim: usize,
    /// The (capped) distinct prompt embeddings of every account, concatenated, `[P, dim]`:
    /// account `a` owns rows `offsets[a]..offsets[a + 1]`. Reused for cross-account coverage.
    pub prompts: Tensor,
    pub offsets: Vec<usize>,
    /// The endpoints' references the shift features were tested against (link groups are
    /// tested against them too).
    pub reference: shift::Reference,
    /// The normal traffic given or drawn ([`Normal`]), which a model trained on these features
    /// must be scored with; `None` for [`Normal::Log`].
    pub normal: Option<normal::NormalTraffic>,
}

/// What the shift test and the endpoint-relative behaviour vector compare accounts with
/// (see [`normal`]).
#[derive(Clone, Copy)]
pub enum Normal<'a> {
    /// The log's own, trimmed, reference for every endpoint (models trained before models
    /// carried normal traffic).
    Log,
    /// A sample drawn from the accounts with these ids (labelled benign), as `train` does;
    /// ids the log does not hold are ignored.
    Benign(&'a std::collections::HashSet<String>),
    /// A saved sample, for the endpoints it knows; the log's own for the others.
    Given(&'a normal::NormalTraffic),
}

impl LocalFeatures {
    pub fn row(&self, a: usize) -> &[f32] {
        let d = LOCAL_FEATURES.len();
        &self.x[a * d..(a + 1) * d]
    }

    pub fn relative_row(&self, a: usize) -> &[f32] {
        let d = LOCAL_FEATURES.len();
        &self.relative[a * d..(a + 1) * d]
    }

    pub fn behaviour(&self, a: usize) -> &[f32] {
        &self.behaviour[a * self.dim..(a + 1) * self.dim]
    }
}

/// Compute [`LOCAL_FEATURES`] and behaviour vectors for every account, from the run's
/// embeddings `[rows, dim]` and per-row data, against `normal` traffic.
pub fn local(
    emb: &Tensor,
    info: &RowInfo,
    accounts: &Accounts,
    normal: Normal,
) -> Result<LocalFeatures> {
    let (_, dim) = emb.dims2()?;

    // Geometry inputs: each account's distinct rows (capped), concatenated.
    let mut offsets = vec![0usize];
    let mut rows: Vec<u32> = Vec::new();
    for a in 0..accounts.len() {
        rows.extend(accounts.distinct_rows(a, MAX_GEOMETRY_PROMPTS));
        offsets.push(rows.len());
    }
    // On the embeddings' device, so the similarity kernels run there (CUDA or CPU).
    let gathered = emb.index_select(&Tensor::new(rows.as_slice(), emb.device())?, 0)?;
    let nd_dup = similarity::near_duplicates(&gathered, &offsets, NEAR_DUP)?;
    let nd_tpl = similarity::near_duplicates(&gathered, &offsets, TEMPLATE)?;
    let g: Vec<f32> = gathered.flatten_all()?.to_vec1()?;
    // Shift from the endpoint's normal traffic (see [`shift`]).
    let params = shift::ShiftParams::default();
    let main = shift::main_models(accounts);
    let medians_from = match normal {
        Normal::Log => Medians::Log,
        Normal::Benign(ids) => {
            Medians::Benign(accounts.ids.iter().map(|id| ids.contains(id)).collect())
        }
        Normal::Given(n) => Medians::Given(&n.medians),
    };
    let mut normal = match (normal, &medians_from) {
        (Normal::Given(n), _) => Some(n.clone()),
        (_, Medians::Benign(benign)) => Some(shift::draw_normal(
            accounts, &main, benign, &g, &offsets, dim, &params,
        )?)
        .filter(|n| !n.is_empty()),
        _ => None,
    };
    let reference =
        shift::Reference::new(accounts, &main, &g, &offsets, dim, &params, normal.as_ref())?;
    let shifts = reference.test_accounts(&g, &offsets, dim)?;

    let d = LOCAL_FEATURES.len();
    let mut x = vec![0f32; accounts.len() * d];
    let mut behaviour = vec![0f32; accounts.len() * dim];
    for a in 0..accounts.len() {
        let reqs = &accounts.requests[a];
        let f = &mut x[a * d..(a + 1) * d];
        // A non-finite value (an empty account's ratio) is stored as 0.
        let put = |f: &mut [f32], name: Local, v: f64| {
            f[name] = if v.is_finite() { v as f32 } else { 0.0 };
        };
        let n = reqs.len() as f64;
        // Volume and timing.
        let days: std::collections::HashSet<i64> = reqs
            .iter()
            .map(|q| q.ts_ms.div_euclid(86_400_000))
            .collect();
        let hours: std::collections::HashSet<i64> = reqs
            .iter()
            .map(|q| crate::ingest::hour_of(q.ts_ms))
            .collect();
        let gaps: Vec<f64> = reqs
            .windows(2)
            .map(|w| (w[1].ts_ms - w[0].ts_ms) as f64 / 1000.0)
            .collect();
        let (gap_mean, gap_sd) = mean_sd(&gaps);
        let median_gap = median(&gaps);
        put(f, Local::LogRequests, (1.0 + n).ln());
        put(f, Local::LogActiveDays, (1.0 + days.len() as f64).ln());
        put(
            f,
            Local::LogRequestsPerActiveHour,
            (1.0 + n / hours.len().max(1) as f64).ln(),
        );
        put(
            f,
            Local::GapCv,
            if gaps.len() >= 2 && gap_mean > 0.0 {
                gap_sd / gap_mean
            } else {
                0.0
            },
        );
        put(f, Local::LogMedianGapS, (1.0 + median_gap).ln());
        put(f, Local::FracGapsUnder10s, frac(&gaps, |g| g < 10.0));
        put(
            f,
            Local::GapRegularity,
            if median_gap > 0.0 {
                frac(&gaps, |g| (g - median_gap).abs() <= 0.2 * median_gap)
            } else {
                0.0
            },
        );
        let mut hist = [0f64; 24];
        for q in reqs {
            hist[crate::ingest::hour_of(q.ts_ms).rem_euclid(24) as usize] += 1.0;
        }
        put(f, Local::HourEntropy, entropy(&hist) / (24f64).ln());
        // Conversation structure.
        let mut conv_sizes: HashMap<u32, usize> = HashMap::new();
        for q in reqs {
            if let Some(c) = q.conv {
                *conv_sizes.entry(c).or_default() += 1;
            }
        }
        let followups: usize = conv_sizes.values().map(|&s| s - 1).sum();
        let single = reqs
            .iter()
            .filter(|q| q.conv.is_none_or(|c| conv_sizes[&c] == 1))
            .count();
        put(f, Local::FollowupRate, followups as f64 / n);
        put(f, Local::SingleShotRate, single as f64 / n);
        put(
            f,
            Local::SystemPromptRate,
            frac_iter(reqs.iter().map(|q| q.system.is_some())),
        );
        let resp: Vec<f64> = reqs
            .iter()
            .filter_map(|q| q.response_tokens.map(|t| t as f64))
            .collect();
        put(
            f,
            Local::LogMeanResponseTokens,
            (1.0 + mean_sd(&resp).0).ln(),
        );
        // Prompts.
        let distinct: std::collections::HashSet<u32> = reqs.iter().map(|q| q.row).collect();
        put(f, Local::DistinctPromptRatio, distinct.len() as f64 / n);
        put(
            f,
            Local::LogMeanChars,
            (1.0 + mean_of(reqs.iter().map(|q| info.chars[q.row as usize] as f64))).ln(),
        );
        put(
            f,
            Local::LogMeanTokens,
            (1.0 + mean_of(reqs.iter().map(|q| info.tokens[q.row as usize] as f64))).ln(),
        );
        for m in Marker::ALL {
            put(
                f,
                Local::marker(m),
                frac_iter(
                    reqs.iter()
                        .map(|q| info.markers[q.row as usize] & m.bit() != 0),
                ),
            );
        }
        // Embedding geometry over the account's (capped) distinct prompts.
        let (lo, hi) = (offsets[a], offsets[a + 1]);
        let k = hi - lo;
        let b = &mut behaviour[a * dim..(a + 1) * dim];
        for r in lo..hi {
            for (b, v) in b.iter_mut().zip(&g[r * dim..(r + 1) * dim]) {
                *b += v;
            }
        }
        let norm = b.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        put(f, Local::Concentration, norm / k.max(1) as f64);
        if norm > 0.0 {
            b.iter_mut().for_each(|v| *v /= norm as f32);
        }
        let pairs = (k * k.saturating_sub(1) / 2).max(1) as f64;
        put(f, Local::NearDupRate, nd_dup.pair_counts[a] as f64 / pairs);
        put(
            f,
            Local::TemplateRate,
            if k > 1 {
                nd_tpl.degree[lo..hi].iter().filter(|&&dg| dg > 0).count() as f64 / k as f64
            } else {
                0.0
            },
        );
        put(
            f,
            Local::MeanMaxSim,
            if k > 1 {
                mean_of(nd_dup.max_sim[lo..hi].iter().map(|&s| s as f64))
            } else {
                0.0
            },
        );
        let jumps = (lo + 1..hi).map(|r| {
            let dot: f32 = g[(r - 1) * dim..r * dim]
                .iter()
                .zip(&g[r * dim..(r + 1) * dim])
                .map(|(a, b)| a * b)
                .sum();
            1.0 - dot as f64
        });
        put(
            f,
            Local::SuccessiveJump,
            if k > 1 { mean_of(jumps) } else { 0.0 },
        );
        put(f, Local::ShiftLogZ, shift::log_z(shifts[a].z));
        put(f, Local::ShiftLogP, -f64::from(shifts[a].p).log10());
        put(f, Local::ShiftTail, f64::from(shifts[a].tail));
        put(f, Local::ShiftTailLogZ, shift::log_z(shifts[a].tail_z));
    }
    let (relative, drawn) = relative_to_endpoints(accounts, &main, &x, &medians_from);
    if let (Medians::Benign(_), Some(n)) = (&medians_from, normal.as_mut()) {
        n.medians = drawn;
    }
    Ok(LocalFeatures {
        x,
        relative,
        behaviour,
        dim,
        prompts: gathered,
        offsets,
        reference,
        normal,
    })
}

/// Fewest accounts labelled benign on an endpoint for `train` to keep their medians as the
/// endpoint's typical honest account; an endpoint with fewer is compared with all of its
/// accounts in the log, as an endpoint the model does not know is.
pub const MIN_MEDIAN_ACCOUNTS: usize = 10;

/// Where an endpoint's typical account comes from (see [`relative_to_endpoints`]).
enum Medians<'a> {
    /// The log's own accounts on the endpoint.
    Log,
    /// The accounts marked true (labelled benign), when the endpoint has enough of them.
    Benign(Vec<bool>),
    /// A model's saved medians, for the endpoints it has them for.
    Given(&'a BTreeMap<Option<String>, Vec<f32>>),
}

/// Every account's local features minus its endpoint's typical account's (the per-feature
/// median; `main[a]` is account `a`'s endpoint, [`shift::main_models`]), row-major like
/// `x`, and the medians drawn from benign accounts (with [`Medians::Benign`]), to be saved
/// with a model.
///
/// Why: a narrow app's honest users all paste one task's items under one system prompt, one
/// question per conversation, as a sweep does. Absolute features cannot tell them apart from a
/// sweep unless training held that very app (docs/evaluation.md, session 22: 96 of 100
/// students of an unseen code-tutoring endpoint flagged). Relative to their endpoint's typical
/// account they are ordinary, and an extractor on the endpoint stands out from it. The
/// typical account is the benign-labelled median where training knew the endpoint; otherwise
/// the median over the endpoint's accounts in the log, which an extractor moves only by being
/// a majority of them (like the shift test's log reference).
fn relative_to_endpoints(
    accounts: &Accounts,
    main: &[u32],
    x: &[f32],
    from: &Medians,
) -> (Vec<f32>, BTreeMap<Option<String>, Vec<f32>>) {
    let d = LOCAL_FEATURES.len();
    let mut by_endpoint: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (a, &e) in main.iter().enumerate() {
        by_endpoint.entry(e).or_default().push(a);
    }
    let column_medians = |rows: &[usize]| -> Vec<f32> {
        (0..d)
            .map(|j| {
                median(
                    &rows
                        .iter()
                        .map(|&a| f64::from(x[a * d + j]))
                        .collect::<Vec<_>>(),
                ) as f32
            })
            .collect()
    };
    let mut drawn = BTreeMap::new();
    let mut relative = vec![0f32; x.len()];
    for (e, rows) in by_endpoint {
        let name = accounts.model_name(e);
        let med = match from {
            Medians::Given(m) => m.get(&name).cloned(),
            Medians::Benign(benign) => {
                let b: Vec<usize> = rows.iter().copied().filter(|&a| benign[a]).collect();
                (b.len() >= MIN_MEDIAN_ACCOUNTS).then(|| {
                    let m = column_medians(&b);
                    drawn.insert(name.clone(), m.clone());
                    m
                })
            }
            Medians::Log => None,
        }
        .unwrap_or_else(|| column_medians(&rows));
        for a in rows {
            for j in 0..d {
                relative[a * d + j] = x[a * d + j] - med[j];
            }
        }
    }
    (relative, drawn)
}

fn mean_of(it: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = it.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
    (m, var.sqrt())
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

fn frac(v: &[f64], p: impl Fn(f64) -> bool) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().filter(|&&x| p(x)).count() as f64 / v.len() as f64
    }
}

fn frac_iter(it: impl Iterator<Item = bool>) -> f64 {
    mean_of(it.map(|b| b as u8 as f64))
}

fn entropy(hist: &[f64]) -> f64 {
    let total: f64 = hist.iter().sum();
    if total == 0.0 {
        return 0.0;
    }
    -hist
        .iter()
        .filter(|&&c| c > 0.0)
        .map(|&c| (c / total) * (c / total).ln())
        .sum::<f64>()
}

#[cfg(test)]
mod tests;
