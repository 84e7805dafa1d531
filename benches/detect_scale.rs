//! Time and peak memory of every detection stage (features, index, signatures + LSH and
//! linking, link groups and cross features, classify) at scale, on synthetic data.
//!
//! `cargo bench --bench detect_scale -- ACCOUNTS [REQUESTS_PER_ACCOUNT] [DISTINCT_PROMPTS]`
//! (defaults 10000 3 2000). Embeddings are synthetic (unit vectors around 64 topic centres),
//! shingles too (each prompt: one of 200 templates of 12 shingles plus 20 item shingles of its
//! own); accounts draw their prompts at random, come from one of 20,000 /24s with one of 15
//! user agents, 30% under one of 50 system prompts, active over a week; 1% of the accounts
//! belong to 50 planted campaigns (one template, one /24, one hour). Prints one line per stage:
//! seconds and the stage's peak RSS (the high-water mark is reset at each stage's start, as
//! `score.json` does). Records go to benches/README.md.

use std::time::Instant;

use candle_core::{Device, Tensor};
use distillguard::campaign::{self, CampaignParams};
use distillguard::classify::{self, Dataset, TrainOptions};
use distillguard::features::{self, Accounts};
use distillguard::index::{AccountIndex, IndexParams};
use distillguard::run::{RequestRecord, RowInfo, RowShingles};

const D: usize = 384;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

struct Timer(Instant, &'static str);

impl Timer {
    fn start(name: &'static str) -> Self {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        Timer(Instant::now(), name)
    }
    fn stop(self) -> f64 {
        let s = self.0.elapsed().as_secs_f64();
        println!("| {} | {:.2} | {:.0} |", self.1, s, peak_rss_mib());
        s
    }
}

fn main() -> distillguard::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(10_000);
    let per = args.get(1).copied().unwrap_or(3);
    let prompts = args.get(2).copied().unwrap_or(2_000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    // Prompts: embeddings around topic centres, shingles from templates plus item shingles.
    let centres: Vec<Vec<f32>> = (0..64)
        .map(|_| (0..D).map(|_| rng.normal()).collect())
        .collect();
    let mut emb = Vec::with_capacity(prompts * D);
    let mut shingles = RowShingles::default();
    for p in 0..prompts {
        let c = &centres[p % centres.len()];
        let mut v: Vec<f32> = c.iter().map(|x| x + 0.7 * rng.normal()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        emb.extend_from_slice(&v);
        let template = rng.below(200) as u32;
        let mut h: Vec<u32> = (0..12).map(|i| template * 1000 + i).collect();
        h.extend((0..20).map(|_| 1_000_000 + rng.below(u32::MAX as u64 - 1_000_000) as u32));
        h.sort_unstable();
        h.dedup();
        shingles.push(&h)?;
    }
    // Planted campaigns: one template each (rows appended after the background prompts).
    let campaigns = 50usize;
    let members = (n / 100).max(campaigns * 3);
    let camp_rows = prompts;
    for c in 0..campaigns {
        for i in 0..per * 4 {
            let v: Vec<f32> = (0..D).map(|_| rng.normal()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            emb.extend(v.iter().map(|x| x / norm));
            let mut h: Vec<u32> = (0..12).map(|k| 500_000 + c as u32 * 100 + k).collect();
            h.push(2_000_000_000 + (c * 1000 + i) as u32);
            h.sort_unstable();
            shingles.push(&h)?;
        }
    }
    let rows = shingles.rows();
    let week_ms = 7 * 86_400_000i64;
    let mut recs = Vec::with_capacity(n * per);
    for a in 0..n {
        let planted = (a < members).then_some(a % campaigns);
        let ip = match planted {
            Some(c) => format!("45.{}.{}.{}", c / 256, c % 256, 1 + rng.below(250)),
            None => {
                let s = rng.below(20_000);
                format!(
                    "{}.{}.{}.{}",
                    60 + s / 65_536,
                    (s / 256) % 256,
                    s % 256,
                    1 + rng.below(250)
                )
            }
        };
        let ua = format!("client/{}", rng.below(15));
        let system = (rng.below(10) < 3).then(|| format!("{:032x}", rng.below(50)));
        let hour = planted.map(|c| c as i64 * 3_600_000);
        for _ in 0..per {
            let row = match planted {
                Some(c) => (camp_rows + c * per * 4 + rng.below((per * 4) as u64) as usize) as u32,
                None => rng.below(prompts as u64) as u32,
            };
            let ts = match hour {
                Some(h) => h + rng.below(3_000_000) as i64,
                None => rng.below(week_ms as u64) as i64,
            };
            recs.push(Ok(RequestRecord {
                line: 0,
                account_id: format!("acct-{a:08}"),
                timestamp_ms: ts,
                row,
                conversation_id: None,
                system_prompt_sha: system.clone(),
                response_tokens: Some(200 + rng.below(800)),
                model: None,
                ip: Some(ip.clone()),
                user_agent: Some(ua.clone()),
            }));
        }
    }
    let emb = Tensor::from_vec(emb, (rows, D), &Device::Cpu)?;
    let info = RowInfo {
        tokens: vec![40; rows],
        chars: vec![160; rows],
        markers: vec![0; rows],
    };
    println!(
        "{n} accounts, {} requests, {rows} distinct prompts, {} threads",
        n * per,
        candle_core::utils::get_num_threads()
    );
    println!("| stage | seconds | stage peak RSS (MiB) |");
    println!("|---|---:|---:|");

    let t = Timer::start("features (grouping, 30 per account, near-duplicate kernels, shift test)");
    let accounts = Accounts::from_records(recs.into_iter())?;
    let local = features::local(&emb, &info, &accounts, features::Normal::Log)?;
    let mut total = t.stop();

    let params = CampaignParams::default();
    // INDEX_M, INDEX_EF_C, INDEX_EF_S, INDEX_PARALLEL=1 override the pipeline's settings,
    // to compare them.
    let mut ip = IndexParams::for_accounts(accounts.len());
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    ip.m = env("INDEX_M").unwrap_or(ip.m);
    ip.ef_construction = env("INDEX_EF_C").unwrap_or(ip.ef_construction);
    ip.ef_search = env("INDEX_EF_S").unwrap_or(ip.ef_search);
    ip.parallel = env("INDEX_PARALLEL").map_or(ip.parallel, |v| v == 1);
    println!(
        "index: m {}, ef_construction {}, ef_search {}, parallel {}",
        ip.m, ip.ef_construction, ip.ef_search, ip.parallel
    );
    let t = Timer::start("index build (hnsw_rs)");
    let index = AccountIndex::build(accounts.ids.clone(), &local.behaviour, local.dim, ip)?;
    total += t.stop();
    let t = Timer::start("index: all neighbours");
    let neighbors: Vec<Vec<(usize, f32)>> = index
        .all_neighbors(params.k)
        .into_iter()
        .map(|ns| ns.into_iter().map(|x| (x.row, x.similarity)).collect())
        .collect();
    total += t.stop();
    // Recall@k of the index against brute force on 200 accounts (not timed).
    let dim = local.dim;
    let v = |a: usize| &local.behaviour[a * dim..(a + 1) * dim];
    let mut hit = 0usize;
    let queries: Vec<usize> = (0..200).map(|i| i * accounts.len() / 200).collect();
    for &q in &queries {
        let mut all: Vec<(usize, f32)> = (0..accounts.len())
            .filter(|&b| b != q)
            .map(|b| (b, v(q).iter().zip(v(b)).map(|(x, y)| x * y).sum()))
            .collect();
        all.sort_by(|x, y| y.1.total_cmp(&x.1));
        let truth: Vec<usize> = all.iter().take(params.k).map(|p| p.0).collect();
        hit += neighbors[q].iter().filter(|p| truth.contains(&p.0)).count();
    }
    println!(
        "index recall@{} against brute force (200 queries): {:.3}",
        params.k,
        hit as f64 / (queries.len() * params.k) as f64
    );

    let t = Timer::start("signatures + LSH, footprints, linking, groups, cross features");
    let linking = campaign::analyse(&accounts, &local, &shingles, neighbors, &params)?;
    let names = campaign::feature_names(local.dim);
    let x = campaign::feature_matrix(&local, &linking);
    total += t.stop();

    // A model of the default shape (25 members of 16-8) fitted briefly on 2,000 accounts
    // spread over the whole population (the planted ones come first in account order).
    let d = names.len();
    let fit = 2_000.min(accounts.len());
    let rows: Vec<usize> = (0..fit).map(|i| i * accounts.len() / fit).collect();
    let data = Dataset {
        features: names.clone(),
        names: rows.iter().map(|&a| accounts.ids[a].clone()).collect(),
        x: rows
            .iter()
            .flat_map(|&a| x[a * d..(a + 1) * d].iter().copied())
            .collect(),
        y: rows.iter().map(|&a| u8::from(a < members)).collect(),
        groups: rows.iter().map(|&a| format!("a{a}")).collect(),
        ..Dataset::default()
    };
    let model = classify::train(
        &data,
        &TrainOptions {
            epochs: 2,
            ..TrainOptions::default()
        },
    )?;
    let t = Timer::start("classify (25-member ensemble)");
    let probs = model.predict(&x)?;
    total += t.stop();
    println!("| total | {total:.2} | |");
    let planted = |c: &campaign::LinkGroup| c.members.iter().all(|&m| m < members);
    let background = |c: &campaign::LinkGroup| c.members.iter().all(|&m| m >= members);
    println!(
        "{} link groups: {} of planted accounts only (50 planted campaigns), {} of background \
         accounts only, {} mixed; {} scores",
        linking.groups.len(),
        linking.groups.iter().filter(|c| planted(c)).count(),
        linking.groups.iter().filter(|c| background(c)).count(),
        linking
            .groups
            .iter()
            .filter(|c| !planted(c) && !background(c))
            .count(),
        probs.len()
    );
    Ok(())
}
