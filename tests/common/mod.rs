//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use candle_core::Device;
use distillguard::embed::{default_model_dir, EmbedOptions, Embedder};

/// The real model; the tests need `scripts/setup.sh` to have run (scripts/test.sh does).
pub fn model_dir() -> PathBuf {
    let dir = default_model_dir();
    assert!(
        dir.join("model.safetensors").is_file(),
        "model missing in {}: run scripts/setup.sh (scripts/test.sh runs it for you)",
        dir.display()
    );
    dir
}

pub fn embedder(max_seq_len: usize) -> Embedder {
    let opts = EmbedOptions {
        max_seq_len,
        ..EmbedOptions::default()
    };
    Embedder::load(&model_dir(), &Device::Cpu, opts).expect("model loads")
}

/// A file of tests/fixtures. The repository root is `$CARGO_MANIFEST_DIR` at run time when set
/// (cargo sets it; benches/gpu_session.sh sets it for test binaries built here and run on a GPU
/// machine, where the checkout lives elsewhere), else where the tests were built.
pub fn fixture(name: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("tests/fixtures")
        .join(name)
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}
