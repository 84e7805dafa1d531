//! Times the similarity ops against their plain-tensor slow twins (one matmul per account or
//! pair, then threshold and maxima with tensor ops: on a GPU, cuBLAS GEMMs through candle).
//!
//! `cargo bench --bench similarity [-- ACCOUNTS PROMPTS PAIRS]` (defaults 2000 50 20000, d = 384):
//! near-duplicate counting over every account, then coverage over random account pairs.
//! `DEVICE=cuda` (a `--features cuda` build) runs both on CUDA device 0: the custom kernels
//! against the cuBLAS path. Throughput counts useful work only: one dot product per unordered
//! pair inside an account, |A| x |B| per coverage pair, 2 x d flops each; the bytes are the
//! embeddings each op must read at least once (its memory floor: kernels/README.md).

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use distillguard::similarity::{self, coverage_slow, near_duplicates_slow};

const D: usize = 384;
const THRESHOLD: f32 = 0.7;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
}

/// Accounts of `prompts` prompts each around a few topics, so that some pairs are close.
fn batch(rng: &mut Rng, accounts: usize, prompts: usize) -> (Tensor, Vec<usize>) {
    let mut data = Vec::with_capacity(accounts * prompts * D);
    for _ in 0..accounts {
        let topics: Vec<Vec<f32>> = (0..3)
            .map(|_| {
                let mut t: Vec<f32> = (0..D).map(|_| rng.normal()).collect();
                normalise(&mut t);
                t
            })
            .collect();
        for _ in 0..prompts {
            let topic = &topics[(rng.next_u64() % 3) as usize];
            let mut v: Vec<f32> = topic
                .iter()
                .map(|t| t + 0.6 / (D as f32).sqrt() * rng.normal())
                .collect();
            normalise(&mut v);
            data.extend(v);
        }
    }
    let offsets = (0..=accounts).map(|a| a * prompts).collect();
    let emb = Tensor::from_vec(data, (accounts * prompts, D), &Device::Cpu).unwrap();
    (emb, offsets)
}

/// Best of `runs` timings (after one warm-up run when `runs > 1`) and the last result.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    if runs > 1 {
        f();
    }
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let start = Instant::now();
        let r = f();
        best = best.min(start.elapsed());
        out = Some(r);
    }
    (best, out.expect("runs > 0"))
}

fn line(name: &str, t: Duration, dots: f64, unit: &str, items: f64, bytes: f64) {
    let s = t.as_secs_f64();
    println!(
        "  {name:<10} {:>10.1} ms  {:>8.2} M {unit}/s  {:>7.1} GFLOP/s  {:>7.1} GB/s of floor bytes",
        s * 1e3,
        items / s / 1e6,
        dots * 2.0 * D as f64 / s / 1e9,
        bytes / s / 1e9
    );
}

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let accounts = args.first().copied().unwrap_or(2000);
    let prompts = args.get(1).copied().unwrap_or(50);
    let n_pairs = args.get(2).copied().unwrap_or(20_000);
    let device = match std::env::var("DEVICE").as_deref() {
        Ok("cuda") => Device::new_cuda(0)?,
        _ => Device::Cpu,
    };
    println!(
        "similarity bench on {device:?}: {accounts} accounts x {prompts} prompts, d {D}, \
         threshold {THRESHOLD}, {} rayon threads",
        rayon::current_num_threads()
    );
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let (emb, offsets) = batch(&mut rng, accounts, prompts);
    let emb = emb.to_device(&device)?;
    let all_bytes = (accounts * prompts * D * 4) as f64;

    let pairs_in = (accounts * prompts * (prompts - 1) / 2) as f64;
    println!("near_duplicates: {pairs_in:.0} prompt pairs");
    let (t_fast, fast) = time(3, || similarity::near_duplicates(&emb, &offsets, THRESHOLD));
    let (t_slow, slow) = time(1, || near_duplicates_slow(&emb, &offsets, THRESHOLD));
    let (fast, slow) = (fast?, slow?);
    line("fast", t_fast, pairs_in, "pairs", pairs_in, all_bytes);
    line("slow", t_slow, pairs_in, "pairs", pairs_in, all_bytes);
    let differ = fast
        .pair_counts
        .iter()
        .zip(&slow.pair_counts)
        .filter(|(a, b)| a != b)
        .count();
    let max_diff = fast
        .max_sim
        .iter()
        .zip(&slow.max_sim)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!(
        "  speed-up {:.1}x; {} near-duplicate pairs; accounts whose count differs: {differ}; \
         max |max_sim difference| {max_diff:.2e}",
        t_slow.as_secs_f64() / t_fast.as_secs_f64(),
        fast.pair_counts.iter().sum::<u64>()
    );

    let pairs: Vec<(u32, u32)> = (0..n_pairs)
        .map(|_| {
            let a = rng.next_u64() % accounts as u64;
            let b = (a + 1 + rng.next_u64() % (accounts as u64 - 1)) % accounts as u64;
            (a as u32, b as u32)
        })
        .collect();
    let dots = (n_pairs * prompts * prompts) as f64;
    println!("coverage: {n_pairs} account pairs, {dots:.0} prompt pairs");
    let (t_fast, fast) = time(3, || {
        similarity::coverage(&emb, &offsets, &pairs, THRESHOLD)
    });
    let (t_slow, slow) = time(1, || coverage_slow(&emb, &offsets, &pairs, THRESHOLD));
    let (fast, slow) = (fast?, slow?);
    // Each pair reads both accounts' prompts (a kernel may hit cache for repeats).
    let pair_bytes = (n_pairs * 2 * prompts * D * 4) as f64;
    line("fast", t_fast, dots, "pairs", dots, pair_bytes);
    line("slow", t_slow, dots, "pairs", dots, pair_bytes);
    let max_diff = fast
        .iter()
        .zip(&slow)
        .flat_map(|(f, s)| {
            [
                (f.a_in_b.mean_best - s.a_in_b.mean_best).abs(),
                (f.b_in_a.mean_best - s.b_in_a.mean_best).abs(),
            ]
        })
        .fold(0f32, f32::max);
    let frac_differ = fast
        .iter()
        .zip(&slow)
        .filter(|(f, s)| {
            f.a_in_b.frac_above != s.a_in_b.frac_above || f.b_in_a.frac_above != s.b_in_a.frac_above
        })
        .count();
    println!(
        "  speed-up {:.1}x; max |mean_best difference| {max_diff:.2e}; pairs whose frac_above \
         differs: {frac_differ}",
        t_slow.as_secs_f64() / t_fast.as_secs_f64()
    );
    Ok(())
}
