//! Tests hold the HNSW answers against a brute-force scan over the same unit vectors.

use std::path::Path;

use super::*;

/// SplitMix64: a tiny seeded generator, enough for test data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// `n` vectors of dimension `dim`: most around `clusters` random centres, a tenth scattered
/// at random. Every fifth cluster is a sybil campaign of near-identical vectors (the case
/// that traps HNSW searches, see the module docs), a third of the rest are tight, the others
/// loose.
fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    let centres: Vec<f32> = (0..clusters * dim).map(|_| rng.normal()).collect();
    let mut out = Vec::with_capacity(n * dim);
    for i in 0..n {
        if i % 10 == 9 {
            out.extend((0..dim).map(|_| rng.normal()));
            continue;
        }
        let c = rng.below(clusters);
        let spread = match c {
            c if c % 5 == 0 => 0.001,
            c if c % 3 == 0 => 0.05,
            _ => 0.4,
        };
        let centre = &centres[c * dim..(c + 1) * dim];
        out.extend(centre.iter().map(|&x| x + spread * rng.normal()));
    }
    out
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("acct-{i:05}")).collect()
}

/// Exact top-k rows for `row` over the index's own stored vectors, self excluded.
fn brute_force(index: &AccountIndex, row: usize, k: usize) -> Vec<(usize, f32)> {
    let q = index.vector(row);
    let mut all: Vec<(usize, f32)> = (0..index.len())
        .filter(|&r| r != row)
        .map(|r| (r, similarity(UnitCosine.eval(q, index.vector(r)))))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

fn build(n: usize, dim: usize, params: IndexParams) -> AccountIndex {
    let vectors = clustered(n, dim, 40, 7);
    AccountIndex::build(ids(n), &vectors, dim, params).unwrap()
}

fn file_error(err: Error) -> (std::path::PathBuf, String) {
    match err {
        Error::File { path, msg } => (path, msg),
        other => panic!("expected Error::File, got {other:?}"),
    }
}

/// Recall@k of `all` against a brute-force scan over every `step`-th row. A hit is a returned
/// neighbour at least as similar as the true k-th (less a rounding margin): inside a campaign
/// of near-identical vectors any k members are right answers.
fn recall(index: &AccountIndex, all: &[Vec<Neighbor>], k: usize, step: usize) -> f64 {
    let (mut found, mut total) = (0, 0);
    for row in (0..index.len()).step_by(step) {
        let kth = brute_force(index, row, k)[k - 1].1;
        found += all[row]
            .iter()
            .filter(|n| n.similarity >= kth - 1e-5)
            .count();
        total += k;
    }
    found as f64 / total as f64
}

#[test]
fn recall_at_10_against_brute_force() {
    let (n, dim, k) = (3000, 48, 10);
    let index = build(n, dim, IndexParams::default());
    assert!(n >= EXACT_BELOW, "the test must exercise the graph");
    let all = index.all_neighbors(k);
    assert_eq!(all.len(), n);
    assert!(all.iter().all(|ns| ns.len() == k));
    let r = recall(&index, &all, k, 5);
    assert!(r >= 0.95, "recall@10 = {r:.4}");
}

/// The pipeline's lighter settings, and `all_neighbors` answering as single lookups do.
#[test]
fn pipeline_settings_recall_and_agree_with_single_lookups() {
    let (n, dim, k) = (3000, 48, 10);
    let index = build(n, dim, IndexParams::for_accounts(n));
    let all = index.all_neighbors(k);
    let r = recall(&index, &all, k, 5);
    eprintln!("recall@10 with the pipeline's settings: {r:.4}");
    assert!(r >= 0.95, "recall@10 = {r:.4}");
    for row in (0..n).step_by(97) {
        assert_eq!(all[row], index.neighbors_of_row(row, k), "row {row}");
    }
}

#[test]
fn neighbors_exclude_self_and_are_sorted() {
    let index = build(1000, 32, IndexParams::default());
    for row in (0..index.len()).step_by(13) {
        let id = &index.ids()[row];
        let ns = index.neighbors_of(id, 10).unwrap();
        assert_eq!(ns.len(), 10);
        assert!(
            ns.iter().all(|n| n.row != row && &n.id != id),
            "{id} is its own neighbour"
        );
        assert!(
            ns.windows(2).all(|w| w[0].similarity >= w[1].similarity),
            "{ns:?}"
        );
        assert!(ns.iter().all(|n| (-1.0..=1.0).contains(&n.similarity)));
        assert!(ns.iter().all(|n| index.ids()[n.row] == n.id));
    }
}

#[test]
fn duplicate_vectors_never_return_self() {
    // 300 accounts, all the same vector but for a few: the account must still be excluded.
    let (n, dim) = (300, 16);
    let mut vectors = vec![1.0f32; n * dim];
    for row in 0..10 {
        vectors[row * dim] = 2.0 + row as f32;
    }
    let index = AccountIndex::build(ids(n), &vectors, dim, IndexParams::default()).unwrap();
    for (row, ns) in index.all_neighbors(5).iter().enumerate() {
        assert_eq!(ns.len(), 5);
        assert!(ns.iter().all(|n| n.row != row));
    }
}

#[test]
fn small_index_is_exact() {
    let (n, dim) = (120, 24);
    assert!(n < EXACT_BELOW);
    let index = build(n, dim, IndexParams::default());
    for row in 0..n {
        let got: Vec<(usize, f32)> = index
            .neighbors_of_row(row, 8)
            .iter()
            .map(|x| (x.row, x.similarity))
            .collect();
        assert_eq!(got, brute_force(&index, row, 8));
    }
    // k larger than the index: everyone else, once.
    assert_eq!(index.neighbors_of_row(0, 1000).len(), n - 1);
}

#[test]
fn search_reports_cosine_similarity() {
    let dim = 4;
    let vectors = [
        1.0, 0.0, 0.0, 0.0, //
        0.0, 3.0, 0.0, 0.0, // scale does not matter
        -2.0, 0.0, 0.0, 0.0, //
        1.0, 1.0, 0.0, 0.0,
    ];
    let index = AccountIndex::build(ids(4), &vectors, dim, IndexParams::default()).unwrap();
    let ns = index.search(&[5.0, 0.0, 0.0, 0.0], 4).unwrap();
    let got: Vec<(&str, f32)> = ns.iter().map(|n| (n.id.as_str(), n.similarity)).collect();
    assert_eq!(got[0], ("acct-00000", 1.0));
    assert_eq!(got[1].0, "acct-00003");
    assert!((got[1].1 - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    assert_eq!(got[2], ("acct-00001", 0.0));
    assert_eq!(got[3], ("acct-00002", -1.0));
    // Serialised as in the scores contract.
    assert_eq!(
        serde_json::to_value(&ns[0]).unwrap(),
        serde_json::json!({"account_id": "acct-00000", "similarity": 1.0})
    );
    // A query may be any vector of the right dimension, but not a zero or wrong-sized one.
    assert!(matches!(index.search(&[0.0; 4], 2), Err(Error::Usage(_))));
    assert!(matches!(index.search(&[1.0; 3], 2), Err(Error::Usage(_))));
}

#[test]
fn single_account_has_no_neighbours() {
    let index = AccountIndex::build(ids(1), &[0.5, 0.5], 2, IndexParams::default()).unwrap();
    assert!(index.neighbors_of("acct-00000", 10).unwrap().is_empty());
    assert_eq!(index.search(&[1.0, 0.0], 3).unwrap().len(), 1);
    let dir = tempfile::tempdir().unwrap();
    index.save(dir.path()).unwrap();
    let loaded = AccountIndex::load(dir.path(), Some(2)).unwrap();
    assert_eq!(loaded.ids(), index.ids());
    assert_eq!(loaded.vector(0), index.vector(0));
}

#[test]
fn unknown_account_is_an_error_naming_it() {
    let index = build(50, 8, IndexParams::default());
    match index.neighbors_of("nobody-42", 5) {
        Err(Error::Usage(msg)) => assert!(msg.contains("nobody-42"), "{msg}"),
        other => panic!("expected a usage error, got {other:?}"),
    }
}

#[test]
fn bad_build_input_is_refused() {
    let p = IndexParams::default();
    let usage = |r: Result<AccountIndex>| match r {
        Err(Error::Usage(msg)) => msg,
        other => panic!("expected a usage error, got {other:?}"),
    };
    assert!(usage(AccountIndex::build(vec![], &[], 4, p)).contains("no accounts"));
    assert!(usage(AccountIndex::build(ids(2), &[], 0, p)).contains("dimension 0"));
    assert!(usage(AccountIndex::build(ids(2), &[1.0; 7], 4, p)).contains("expected 8"));
    let mut v = vec![1.0; 8];
    v[5] = f32::NAN;
    assert!(usage(AccountIndex::build(ids(2), &v, 4, p)).contains("acct-00001"));
    let mut v = vec![1.0; 8];
    v[..4].fill(0.0);
    assert!(usage(AccountIndex::build(ids(2), &v, 4, p)).contains("acct-00000"));
    let dup = vec!["a".to_string(), "a".to_string()];
    assert!(usage(AccountIndex::build(dup, &[1.0; 8], 4, p)).contains("twice"));
    let bad_m = IndexParams { m: 1, ..p };
    assert!(usage(AccountIndex::build(ids(2), &[1.0; 8], 4, bad_m)).contains("m = 1"));
}

#[test]
fn serial_build_is_deterministic() {
    let params = IndexParams {
        parallel: false,
        ..IndexParams::default()
    };
    let a = build(600, 16, params);
    let b = build(600, 16, params);
    assert_eq!(a.all_neighbors(10), b.all_neighbors(10));
}

#[test]
fn save_load_round_trip_gives_identical_neighbours() {
    let index = build(1500, 32, IndexParams::default());
    let dir = tempfile::tempdir().unwrap();
    index.save(dir.path()).unwrap();
    for name in [SIDECAR, "accounts.hnsw.graph", "accounts.hnsw.data"] {
        assert!(dir.path().join(name).is_file(), "{name} missing");
    }
    assert!(!dir.path().join(store::STAGING).exists());
    let loaded = AccountIndex::load(dir.path(), Some(32)).unwrap();
    assert_eq!(loaded.ids(), index.ids());
    assert_eq!(loaded.dim(), 32);
    assert_eq!(loaded.params(), index.params());
    let before = index.all_neighbors(10);
    assert_eq!(loaded.all_neighbors(10), before);
    let q = clustered(1, 32, 1, 99);
    assert_eq!(
        loaded.search(&q, 10).unwrap(),
        index.search(&q, 10).unwrap()
    );

    // A loaded index saves again, over the old files, and still loads to the same answers.
    loaded.save(dir.path()).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let again = AccountIndex::load(dir.path(), None).unwrap();
    assert_eq!(again.all_neighbors(10), before);
}

fn saved(dir: &Path) -> AccountIndex {
    let index = build(300, 16, IndexParams::default());
    index.save(dir).unwrap();
    index
}

#[test]
fn load_refuses_wrong_dimension() {
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    let (path, msg) = file_error(AccountIndex::load(dir.path(), Some(384)).unwrap_err());
    assert_eq!(path, dir.path().join(SIDECAR));
    assert!(msg.contains("dimension 16") && msg.contains("384"), "{msg}");
}

#[test]
fn load_refuses_missing_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    std::fs::remove_file(dir.path().join(SIDECAR)).unwrap();
    let err = AccountIndex::load(dir.path(), None).unwrap_err();
    assert!(err.to_string().contains(SIDECAR), "{err}");
    let (path, msg) = file_error(err);
    assert_eq!(path, dir.path().join(SIDECAR));
    assert!(msg.contains("missing"), "{msg}");
    // An empty or absent directory reads the same way.
    let empty = tempfile::tempdir().unwrap();
    let (path, _) = file_error(AccountIndex::load(&empty.path().join("nope"), None).unwrap_err());
    assert!(path.ends_with(SIDECAR));
}

#[test]
fn load_refuses_corrupt_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    let sidecar = dir.path().join(SIDECAR);
    std::fs::write(&sidecar, "{\"format_version\": 1, \"dim\": ").unwrap();
    let (path, msg) = file_error(AccountIndex::load(dir.path(), None).unwrap_err());
    assert_eq!(path, sidecar);
    assert!(msg.contains("corrupt"), "{msg}");

    // Well-formed JSON that disagrees with itself or with this build.
    let index = saved(dir.path());
    let text = std::fs::read_to_string(&sidecar).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["metric"] = "l2".into();
    std::fs::write(&sidecar, json.to_string()).unwrap();
    let (_, msg) = file_error(AccountIndex::load(dir.path(), None).unwrap_err());
    assert!(msg.contains("metric"), "{msg}");
    json["metric"] = "cosine".into();
    json["format_version"] = 99.into();
    std::fs::write(&sidecar, json.to_string()).unwrap();
    let (_, msg) = file_error(AccountIndex::load(dir.path(), None).unwrap_err());
    assert!(msg.contains("version 99"), "{msg}");
    json["format_version"] = SIDECAR_FORMAT_VERSION.into();
    json["ids"].as_array_mut().unwrap().pop();
    std::fs::write(&sidecar, json.to_string()).unwrap();
    let (_, msg) = file_error(AccountIndex::load(dir.path(), None).unwrap_err());
    assert!(msg.contains("299 ids for count 300"), "{msg}");
    drop(index);
}

#[test]
fn load_refuses_corrupt_or_missing_dump_files() {
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    // Flip one byte in the middle of the data file: hnsw_rs would read garbage (or exit).
    let data = dir.path().join("accounts.hnsw.data");
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let (path, msg) = file_error(AccountIndex::load(dir.path(), None).unwrap_err());
    assert_eq!(path, data);
    assert!(msg.contains("corrupt"), "{msg}");

    // A truncated graph file.
    saved(dir.path());
    let graph = dir.path().join("accounts.hnsw.graph");
    let bytes = std::fs::read(&graph).unwrap();
    std::fs::write(&graph, &bytes[..bytes.len() / 3]).unwrap();
    let (path, _) = file_error(AccountIndex::load(dir.path(), None).unwrap_err());
    assert_eq!(path, graph);

    saved(dir.path());
    std::fs::remove_file(&graph).unwrap();
    let (path, msg) = file_error(AccountIndex::load(dir.path(), None).unwrap_err());
    assert_eq!(path, graph);
    assert!(msg.contains("missing"), "{msg}");
}

#[test]
fn load_turns_hnsw_rs_panics_into_errors() {
    // A dump that matches its sidecar but that hnsw_rs cannot parse (as if written by an
    // incompatible hnsw_rs): hnsw_rs panics on it, and load reports the graph file instead.
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    let graph = dir.path().join("accounts.hnsw.graph");
    let mut bytes = std::fs::read(&graph).unwrap();
    bytes[..4].fill(0);
    std::fs::write(&graph, &bytes).unwrap();
    let sidecar = dir.path().join(SIDECAR);
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sidecar).unwrap()).unwrap();
    json["graph_file"]["sha256"] = crate::hash::hash_file(&graph).unwrap().1.into();
    std::fs::write(&sidecar, json.to_string()).unwrap();
    let (path, msg) = file_error(AccountIndex::load(dir.path(), None).unwrap_err());
    assert_eq!(path, graph);
    assert!(msg.contains("hnsw_rs cannot load"), "{msg}");
}
