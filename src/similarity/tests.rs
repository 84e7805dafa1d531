//! Fast against slow: the tiled CPU ops against the plain-tensor slow twins, on seeded random
//! ragged batches, plus exact cases built so that every similarity is exact in f32.

use candle_core::{DType, Device, Tensor};

use super::kernel::{dot_tile, dot_tile_portable, TILE};
use super::*;
use crate::error::Error;

/// The single-pair dot product (AVX2 where the CPU has it, and its portable twin) against f64,
/// at lengths around every chunk boundary of both builds (4 x 8 lanes, 8 lanes, scalar tail).
#[test]
fn dot_matches_f64_at_every_tail_length() {
    let mut rng = Rng::new(7);
    for d in (0..=70).chain([383, 384, 385]) {
        let a: Vec<f32> = (0..d).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..d).map(|_| rng.normal()).collect();
        let want = dot64(&a, &b);
        for got in [dot(&a, &b), dot_portable(&a, &b)] {
            assert!(
                (f64::from(got) - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "d {d}: {got} vs {want}"
            );
        }
    }
}

/// xorshift64*: a tiny seeded generator, enough for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) + 1) as f32 / (1u64 << 24) as f32
    }

    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn unit(&mut self, d: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..d).map(|_| self.normal()).collect();
        normalise(&mut v);
        v
    }
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
}

/// A ragged batch with accounts of the given sizes. Each account's prompts lie around one to
/// three topics at an account-specific spread, and about one in ten repeats the previous
/// prompt exactly, so similarities range from near 0 to exactly-equal vectors.
fn batch(seed: u64, sizes: &[usize], d: usize) -> (Vec<f32>, Vec<usize>) {
    let mut rng = Rng::new(seed);
    let mut data = Vec::new();
    let mut offsets = vec![0];
    for &size in sizes {
        let topics: Vec<Vec<f32>> = (0..1 + rng.below(3)).map(|_| rng.unit(d)).collect();
        let spread = [0.3f32, 0.8, 2.0][rng.below(3)] / (d as f32).sqrt();
        for k in 0..size {
            if k > 0 && rng.below(10) == 0 {
                let prev = data[data.len() - d..].to_vec();
                data.extend(prev);
                continue;
            }
            let topic = &topics[rng.below(topics.len())];
            let mut v: Vec<f32> = topic.iter().map(|t| t + spread * rng.normal()).collect();
            normalise(&mut v);
            data.extend(v);
        }
        offsets.push(offsets.last().unwrap() + size);
    }
    (data, offsets)
}

fn tensor(data: &[f32], d: usize) -> Tensor {
    Tensor::from_slice(data, (data.len() / d, d), &Device::Cpu).unwrap()
}

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

fn row(data: &[f32], d: usize, i: usize) -> &[f32] {
    &data[i * d..(i + 1) * d]
}

/// All similarities between prompts of the same account, in f64.
fn within_sims(data: &[f32], offsets: &[usize], d: usize) -> Vec<f64> {
    let mut sims = Vec::new();
    for w in offsets.windows(2) {
        for i in w[0]..w[1] {
            for j in i + 1..w[1] {
                sims.push(dot64(row(data, d, i), row(data, d, j)));
            }
        }
    }
    sims
}

/// Every prompt's best match on the other side of each pair, in f64.
fn best_matches(data: &[f32], offsets: &[usize], pairs: &[(u32, u32)], d: usize) -> Vec<f64> {
    let rows = |a: u32| offsets[a as usize]..offsets[a as usize + 1];
    let mut best = Vec::new();
    for &(a, b) in pairs {
        for (x, y) in [(rows(a), rows(b)), (rows(b), rows(a))] {
            for i in x {
                let m = y.clone().map(|j| dot64(row(data, d, i), row(data, d, j)));
                best.extend(m.reduce(f64::max));
            }
        }
    }
    best
}

/// `t`, moved up until no similarity lies within f32 rounding of it, so that the fast and
/// the slow versions compare every similarity the same way.
fn clear(t: f32, sims: &[f64]) -> f32 {
    let mut t = t;
    for _ in 0..10_000 {
        if sims.iter().all(|&s| (s - f64::from(t)).abs() > 1e-5) {
            return t;
        }
        t += 2.3e-5;
    }
    panic!("no clear threshold near {t}");
}

fn next_up(x: f32) -> f32 {
    assert!(x > 0.0);
    f32::from_bits(x.to_bits() + 1)
}

fn next_down(x: f32) -> f32 {
    assert!(x > 0.0);
    f32::from_bits(x.to_bits() - 1)
}

fn assert_near_dup_eq(fast: &NearDup, slow: &NearDup, what: &str) {
    assert_eq!(fast.pair_counts, slow.pair_counts, "{what}: pair counts");
    assert_eq!(fast.degree, slow.degree, "{what}: degrees");
    assert_eq!(
        fast.max_sim.len(),
        slow.max_sim.len(),
        "{what}: max_sim length"
    );
    for (i, (f, s)) in fast.max_sim.iter().zip(&slow.max_sim).enumerate() {
        assert!((f - s).abs() <= 1e-5, "{what}: max_sim[{i}]: {f} vs {s}");
    }
}

fn assert_coverage_eq(fast: &[PairCoverage], slow: &[PairCoverage], what: &str) {
    assert_eq!(fast.len(), slow.len(), "{what}: length");
    for (p, (f, s)) in fast.iter().zip(slow).enumerate() {
        for (f, s) in [(f.a_in_b, s.a_in_b), (f.b_in_a, s.b_in_a)] {
            assert!(
                (f.mean_best - s.mean_best).abs() <= 1e-5,
                "{what}: pair {p}: mean_best {f:?} vs {s:?}"
            );
            assert_eq!(f.frac_above, s.frac_above, "{what}: pair {p}: frac_above");
        }
    }
}

const SIZES: &[usize] = &[1, 63, 64, 65, 130, 0, 2, 3, 0, 300, 17];

#[test]
fn dot_tile_matches_f64_for_all_shapes() {
    let mut rng = Rng::new(7);
    for d in [1, 7, 8, 9, 384] {
        for (na, nb) in [
            (1, 1),
            (3, 5),
            (4, 2),
            (5, 3),
            (63, 64),
            (64, 64),
            (64, 1),
            (17, 9),
        ] {
            let a: Vec<f32> = (0..na).flat_map(|_| rng.unit(d)).collect();
            let b: Vec<f32> = (0..nb).flat_map(|_| rng.unit(d)).collect();
            let mut fast = vec![f32::NAN; TILE * TILE];
            let mut portable = vec![f32::NAN; TILE * TILE];
            dot_tile(&a, &b, d, false, &mut fast);
            dot_tile_portable(&a, &b, d, false, &mut portable);
            for i in 0..na {
                for j in 0..nb {
                    let want = dot64(row(&a, d, i), row(&b, d, j));
                    for got in [fast[i * TILE + j], portable[i * TILE + j]] {
                        assert!((f64::from(got) - want).abs() < 1e-6, "d {d} ({i}, {j})");
                    }
                }
            }
            // `upper`: the same block on both sides; entries above the diagonal must be there.
            let mut upper = vec![f32::NAN; TILE * TILE];
            dot_tile(&a, &a, d, true, &mut upper);
            dot_tile_portable(&a, &a, d, true, &mut portable);
            for i in 0..na {
                for j in i + 1..na {
                    let want = dot64(row(&a, d, i), row(&a, d, j));
                    for got in [upper[i * TILE + j], portable[i * TILE + j]] {
                        assert!(
                            (f64::from(got) - want).abs() < 1e-6,
                            "upper d {d} ({i}, {j})"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn near_duplicates_matches_slow_on_ragged_batches() {
    for (seed, d) in [(1, 384), (2, 37), (3, 8), (4, 1)] {
        let (data, offsets) = batch(seed, SIZES, d);
        let emb = tensor(&data, d);
        let sims = within_sims(&data, &offsets, d);
        for t0 in [0.2f32, 0.5, 0.8, 0.95] {
            let t = clear(t0, &sims);
            let fast = near_duplicates(&emb, &offsets, t).unwrap();
            let slow = near_duplicates_slow(&emb, &offsets, t).unwrap();
            assert_near_dup_eq(&fast, &slow, &format!("seed {seed} d {d} t {t}"));
            assert_eq!(fast.degree.len(), data.len() / d);
            if d == 384 && t0 == 0.5 {
                assert!(
                    fast.pair_counts.iter().any(|&c| c > 0),
                    "some pairs above 0.5"
                );
                assert!(
                    fast.pair_counts[4] < 130 * 129 / 2,
                    "not every pair above 0.5"
                );
            }
        }
    }
}

#[test]
fn near_duplicates_threshold_extremes_count_all_or_none() {
    let d = 384;
    let (data, offsets) = batch(11, SIZES, d);
    let emb = tensor(&data, d);
    let all = near_duplicates(&emb, &offsets, -1.0).unwrap();
    let none = near_duplicates(&emb, &offsets, 1.001).unwrap();
    let neg_inf = near_duplicates(&emb, &offsets, f32::NEG_INFINITY).unwrap();
    for (a, w) in offsets.windows(2).enumerate() {
        let n = (w[1] - w[0]) as u64;
        assert_eq!(
            all.pair_counts[a],
            n * n.saturating_sub(1) / 2,
            "account {a}"
        );
        assert_eq!(neg_inf.pair_counts[a], all.pair_counts[a], "account {a}");
        assert_eq!(none.pair_counts[a], 0, "account {a}");
        for i in w[0]..w[1] {
            assert_eq!(all.degree[i] as u64, n - 1);
            assert_eq!(none.degree[i], 0);
        }
    }
    assert_near_dup_eq(
        &all,
        &near_duplicates_slow(&emb, &offsets, -1.0).unwrap(),
        "t = -1",
    );
    assert_near_dup_eq(
        &none,
        &near_duplicates_slow(&emb, &offsets, 1.001).unwrap(),
        "t = 1.001",
    );
}

/// Vectors with four entries of +-0.5 and zeros elsewhere: unit length, and every dot product
/// is a multiple of 0.25 computed exactly in f32 whatever the order of summation.
fn signed(d: usize, signs: [f32; 4], at: usize) -> Vec<f32> {
    let mut v = vec![0.0; d];
    for (k, s) in signs.into_iter().enumerate() {
        v[(at + 7 * k) % d] = 0.5 * s;
    }
    v
}

#[test]
fn near_duplicates_threshold_equal_to_a_similarity_counts_it() {
    let d = 45; // not a multiple of 8, so the tail loop takes part
    let x = signed(d, [1.0, 1.0, 1.0, 1.0], 3);
    let y = signed(d, [1.0, 1.0, 1.0, -1.0], 3);
    let z = signed(d, [1.0, 1.0, -1.0, -1.0], 3);
    let minus_x: Vec<f32> = x.iter().map(|v| -v).collect();
    // x.y = 0.5, x.z = 0, y.z = 0.5, x.(-x) = -1, y.(-x) = -0.5, z.(-x) = 0, x.x = 1.
    let data = [x.clone(), y, z, minus_x, x].concat();
    let offsets = [0, 5];
    let emb = tensor(&data, d);
    let cases = [
        (-1.0, 10, vec![4, 4, 4, 4, 4]),
        (
            f32::from_bits((-1.0f32).to_bits() - 1),
            8,
            vec![3, 4, 4, 2, 3],
        ),
        (0.0, 7, vec![3, 3, 4, 1, 3]),
        (0.5, 4, vec![2, 3, 1, 0, 2]),
        (next_up(0.5), 1, vec![1, 0, 0, 0, 1]),
        (1.0, 1, vec![1, 0, 0, 0, 1]),
        (next_up(1.0), 0, vec![0, 0, 0, 0, 0]),
    ];
    for (t, pairs, degree) in cases {
        for got in [
            near_duplicates(&emb, &offsets, t).unwrap(),
            near_duplicates_slow(&emb, &offsets, t).unwrap(),
        ] {
            assert_eq!(got.pair_counts, vec![pairs], "t = {t}");
            assert_eq!(got.degree, degree, "t = {t}");
            assert_eq!(got.max_sim, vec![1.0, 0.5, 0.5, 0.0, 1.0], "t = {t}");
        }
    }
}

#[test]
fn near_duplicates_of_identical_prompts_across_tiles() {
    // 130 copies of one exact vector: three row tiles, every pair at exactly 1.0.
    let d = 384;
    let v = signed(d, [1.0, -1.0, 1.0, 1.0], 100);
    let data: Vec<f32> = (0..130).flat_map(|_| v.clone()).collect();
    let emb = tensor(&data, d);
    let offsets = [0, 130];
    let at_one = near_duplicates(&emb, &offsets, 1.0).unwrap();
    assert_eq!(at_one.pair_counts, vec![130 * 129 / 2]);
    assert!(at_one.degree.iter().all(|&g| g == 129));
    assert!(at_one.max_sim.iter().all(|&m| m == 1.0));
    let above = near_duplicates(&emb, &offsets, next_up(1.0)).unwrap();
    assert_eq!(above.pair_counts, vec![0]);
    // Random duplicates (not exact in f32): a threshold a little under 1 still counts them.
    let (data, offsets) = batch(5, &[70], d);
    let emb = tensor(&data, d);
    let dup = near_duplicates(&emb, &offsets, next_down(0.9999)).unwrap();
    let copies = (1..70)
        .filter(|&i| row(&data, d, i) == row(&data, d, i - 1))
        .count();
    assert!(copies > 0);
    assert!(dup.pair_counts[0] >= copies as u64);
}

#[test]
fn near_duplicates_single_and_empty_accounts() {
    let d = 16;
    let mut rng = Rng::new(3);
    let data: Vec<f32> = (0..3).flat_map(|_| rng.unit(d)).collect();
    let emb = tensor(&data, d);
    let offsets = [0, 0, 1, 1, 3, 3];
    for got in [
        near_duplicates(&emb, &offsets, -1.0).unwrap(),
        near_duplicates_slow(&emb, &offsets, -1.0).unwrap(),
    ] {
        assert_eq!(got.pair_counts, vec![0, 0, 0, 1, 0]);
        assert_eq!(got.degree, vec![0, 1, 1]);
        assert_eq!(got.max_sim[0], NO_MATCH);
        assert_eq!(got.max_sim[1], got.max_sim[2]);
    }
    // No prompts at all, with and without (empty) accounts.
    let empty = Tensor::zeros((0, d), DType::F32, &Device::Cpu).unwrap();
    let got = near_duplicates(&empty, &[0], 0.5).unwrap();
    assert!(got.pair_counts.is_empty() && got.degree.is_empty() && got.max_sim.is_empty());
    let got = near_duplicates(&empty, &[0, 0, 0], 0.5).unwrap();
    assert_eq!(got.pair_counts, vec![0, 0]);
}

#[test]
fn near_duplicates_is_deterministic_and_accepts_strided_input() {
    let d = 384;
    let (data, offsets) = batch(21, SIZES, d);
    let emb = tensor(&data, d);
    let first = near_duplicates(&emb, &offsets, 0.6).unwrap();
    assert_eq!(first, near_duplicates(&emb, &offsets, 0.6).unwrap());
    // The same embeddings as the left half of a wider matrix: not contiguous.
    let wide = Tensor::cat(&[&emb, &emb], 1).unwrap();
    let strided = wide.narrow(1, 0, d).unwrap();
    assert!(!strided.is_contiguous());
    assert_eq!(first, near_duplicates(&strided, &offsets, 0.6).unwrap());
}

/// Random pairs over the batch, with self-pairs, repeats, empty accounts and a large pair.
fn some_pairs(seed: u64, accounts: usize) -> Vec<(u32, u32)> {
    let mut rng = Rng::new(seed);
    let mut pairs: Vec<(u32, u32)> = (0..24)
        .map(|_| (rng.below(accounts) as u32, rng.below(accounts) as u32))
        .collect();
    pairs.extend([
        (4, 4),
        (9, 4),
        (9, 9),
        (5, 1),
        (1, 5),
        (0, 10),
        (2, 3),
        (2, 3),
    ]);
    pairs
}

#[test]
fn coverage_matches_slow_on_ragged_batches() {
    for (seed, d) in [(31, 384), (32, 37), (33, 1)] {
        let (data, offsets) = batch(seed, SIZES, d);
        let emb = tensor(&data, d);
        let pairs = some_pairs(seed, SIZES.len());
        let best = best_matches(&data, &offsets, &pairs, d);
        for t0 in [0.3f32, 0.85] {
            let t = clear(t0, &best);
            let fast = coverage(&emb, &offsets, &pairs, t).unwrap();
            let slow = coverage_slow(&emb, &offsets, &pairs, t).unwrap();
            assert_coverage_eq(&fast, &slow, &format!("seed {seed} d {d} t {t}"));
        }
    }
}

#[test]
fn coverage_exact_values_and_empty_accounts() {
    let d = 384;
    let x = signed(d, [1.0, 1.0, 1.0, 1.0], 0);
    let y = signed(d, [1.0, 1.0, 1.0, -1.0], 0);
    let z = signed(d, [1.0, 1.0, -1.0, -1.0], 0);
    // Accounts: 0 = [x, y], 1 = [z, x], 2 = [].
    let data = [x.clone(), y, z, x].concat();
    let offsets = [0, 2, 4, 4];
    let emb = tensor(&data, d);
    let pairs = [(0, 1), (1, 0), (0, 2), (2, 1), (2, 2), (0, 0)];
    let cov = |mean_best, frac_above| Coverage {
        mean_best,
        frac_above,
    };
    for (t, below) in [(0.5, 1.0), (next_up(0.5), 0.5)] {
        let want = [
            PairCoverage {
                a_in_b: cov(0.75, below), // x -> x (1), y -> z or x (0.5)
                b_in_a: cov(0.75, below), // z -> y (0.5), x -> x (1)
            },
            PairCoverage {
                a_in_b: cov(0.75, below),
                b_in_a: cov(0.75, below),
            },
            PairCoverage {
                a_in_b: Coverage::EMPTY,
                b_in_a: Coverage::EMPTY,
            },
            PairCoverage {
                a_in_b: Coverage::EMPTY,
                b_in_a: Coverage::EMPTY,
            },
            PairCoverage {
                a_in_b: Coverage::EMPTY,
                b_in_a: Coverage::EMPTY,
            },
            PairCoverage {
                a_in_b: cov(1.0, 1.0),
                b_in_a: cov(1.0, 1.0),
            },
        ];
        assert_eq!(
            coverage(&emb, &offsets, &pairs, t).unwrap(),
            want,
            "t = {t}"
        );
        assert_eq!(
            coverage_slow(&emb, &offsets, &pairs, t).unwrap(),
            want,
            "slow, t = {t}"
        );
    }
    assert!(coverage(&emb, &offsets, &[], 0.5).unwrap().is_empty());
}

#[test]
fn coverage_accepts_strided_input() {
    let d = 384;
    let (data, offsets) = batch(41, SIZES, d);
    let emb = tensor(&data, d);
    let pairs = some_pairs(41, SIZES.len());
    let first = coverage(&emb, &offsets, &pairs, 0.7).unwrap();
    let wide = Tensor::cat(&[&emb, &emb], 1).unwrap();
    let strided = wide.narrow(1, d, d).unwrap();
    assert_eq!(first, coverage(&strided, &offsets, &pairs, 0.7).unwrap());
}

fn assert_usage<T: std::fmt::Debug>(got: crate::Result<T>, needle: &str) {
    match got {
        Err(Error::Usage(msg)) => assert!(msg.contains(needle), "{msg:?} lacks {needle:?}"),
        other => panic!("expected a usage error about {needle:?}, got {other:?}"),
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let d = 8;
    let (data, _) = batch(51, &[6], d);
    let emb = tensor(&data, d);
    let dev = Device::Cpu;
    for (offsets, needle) in [
        (&[][..], "empty"),
        (&[1, 6][..], "offsets[0]"),
        (&[0, 5][..], "last offset"),
        (&[0, 7][..], "last offset"),
        (&[0, 4, 2, 6][..], "offsets[2]"),
    ] {
        assert_usage(near_duplicates(&emb, offsets, 0.5), needle);
        assert_usage(coverage(&emb, offsets, &[], 0.5), needle);
        assert_usage(near_duplicates_slow(&emb, offsets, 0.5), needle);
        assert_usage(coverage_slow(&emb, offsets, &[], 0.5), needle);
    }
    let offsets = [0, 2, 6];
    for (pairs, needle) in [
        (&[(0, 2)][..], "pairs[0]"),
        (&[(0, 1), (7, 0)][..], "pairs[1]"),
    ] {
        assert_usage(coverage(&emb, &offsets, pairs, 0.5), needle);
        assert_usage(coverage_slow(&emb, &offsets, pairs, 0.5), needle);
    }
    assert_usage(near_duplicates(&emb, &offsets, f32::NAN), "NaN");
    assert_usage(coverage(&emb, &offsets, &[(0, 1)], f32::NAN), "NaN");
    let flat = emb.flatten_all().unwrap();
    assert_usage(near_duplicates(&flat, &[0, 48], 0.5), "[N, D]");
    let cube = emb.reshape((2, 3, d)).unwrap();
    assert_usage(coverage(&cube, &[0, 2], &[], 0.5), "[N, D]");
    let f64s = emb.to_dtype(DType::F64).unwrap();
    assert_usage(near_duplicates(&f64s, &offsets, 0.5), "f32");
    assert_usage(coverage(&f64s, &offsets, &[(0, 1)], 0.5), "f32");
    let no_dim = Tensor::zeros((6, 0), DType::F32, &dev).unwrap();
    assert_usage(near_duplicates(&no_dim, &offsets, 0.5), "dimension 0");
}

/// GPU against CPU (`cuda` feature, and only where a CUDA device opens): the same ragged
/// batches, including empty and single-prompt accounts, sizes that are not multiples of the
/// block, and thresholds at the edges; counts must be equal and similarities within 1e-3.
/// Needs a CUDA device, so it is ignored unless asked for (`--ignored`, as
/// benches/gpu_session.sh does), and then fails if no device opens.
#[cfg(feature = "cuda")]
#[test]
#[ignore = "needs a CUDA device: run with --ignored where one is (benches/gpu_session.sh)"]
fn cuda_kernels_match_the_cpu_ops() {
    let gpu =
        Device::new_cuda(0).expect("a CUDA device was asked for (--ignored) but cannot be opened");
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-3;
    for (seed, sizes, d) in [
        (1u64, vec![0, 1, 2, 33, 64, 65, 0, 130, 7], 384usize),
        (2, vec![300, 1, 0, 5], 384),
        (3, vec![3, 4, 5], 17),
        (4, vec![1], 384),
    ] {
        let (data, offsets) = batch(seed, &sizes, d);
        let cpu_t = tensor(&data, d);
        let gpu_t = cpu_t.to_device(&gpu).unwrap();
        let pairs = some_pairs(seed, sizes.len());
        let sims = within_sims(&data, &offsets, d);
        let bests = best_matches(&data, &offsets, &pairs, d);
        for edge in [-1.0f32, 0.0, 0.5, 0.9, 1.0, 1.5] {
            // Thresholds moved off any similarity within f32 rounding, so both devices
            // compare every similarity the same way; -1 and 1.5 stay (all / none).
            let t = if edge == -1.0 || edge > 1.0 {
                edge
            } else {
                clear(edge, &sims)
            };
            let (c, g) = (
                near_duplicates(&cpu_t, &offsets, t).unwrap(),
                near_duplicates(&gpu_t, &offsets, t).unwrap(),
            );
            let what = format!("near_duplicates seed {seed} threshold {t}");
            assert_eq!(c.degree, g.degree, "{what}");
            assert_eq!(c.pair_counts, g.pair_counts, "{what}");
            assert!(
                c.max_sim.iter().zip(&g.max_sim).all(|(&a, &b)| close(a, b)),
                "{what}"
            );
            let t = if edge == -1.0 || edge > 1.0 {
                edge
            } else {
                clear(edge, &bests)
            };
            let (c, g) = (
                coverage(&cpu_t, &offsets, &pairs, t).unwrap(),
                coverage(&gpu_t, &offsets, &pairs, t).unwrap(),
            );
            for (x, y) in c.iter().zip(&g) {
                for (u, v) in [(x.a_in_b, y.a_in_b), (x.b_in_a, y.b_in_a)] {
                    let what = format!("coverage seed {seed} threshold {t}: {u:?} {v:?}");
                    assert!(close(u.mean_best, v.mean_best), "{what}");
                    // Same counts; the CPU divides in f64, the GPU in f32.
                    assert!((u.frac_above - v.frac_above).abs() < 1e-6, "{what}");
                }
            }
        }
    }
}
