//! CUDA forward passes of the similarity ops (`cuda` feature only): launch the kernels of
//! kernels/similarity.cu on the tensor's own device and return the same packed outputs as the
//! CPU ops, which are their oracle (see the tests: GPU output equals CPU output whenever a GPU
//! is present).

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::CudaStorageSlice;
use candle_core::{CudaStorage, Layout, Shape};

/// PTX built by build.rs from kernels/similarity.cu.
const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/similarity.ptx"));
const MODULE: &str = "distillguard_similarity";
/// Threads per block: 8 warps.
const THREADS: u32 = 256;

fn err(what: &str, e: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("{what}: {e}"))
}

/// The f32 rows of a contiguous `[N, D]` layout.
fn rows<'a>(
    storage: &'a CudaStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<candle_core::cuda_backend::cudarc::driver::CudaView<'a, f32>> {
    if !layout.is_contiguous() {
        candle_core::bail!("{op}: embeddings must be contiguous");
    }
    match &storage.slice {
        CudaStorageSlice::F32(s) => Ok(s.slice(layout.start_offset()..)),
        _ => candle_core::bail!("{op}: embeddings must be f32"),
    }
}

/// `[N, 2]` u32 (degree, bits of max_sim), as `NearDupOp::cpu_fwd`.
pub(super) fn near_dup(
    offsets: &[usize],
    threshold: f32,
    storage: &CudaStorage,
    layout: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let (n, d) = layout.shape().dims2()?;
    let emb = rows(storage, layout, "near-duplicates")?;
    let dev = storage.device().clone();
    let (mut start, mut end) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for w in offsets.windows(2) {
        for _ in w[0]..w[1] {
            start.push(w[0] as u32);
            end.push(w[1] as u32);
        }
    }
    let mut out = dev.alloc_zeros::<u32>(2 * n)?;
    if n > 0 {
        let start = dev.clone_htod(&start)?;
        let end = dev.clone_htod(&end)?;
        let func = dev.get_or_load_custom_func("near_dup_f32", MODULE, PTX)?;
        let warps = THREADS / 32;
        let cfg = LaunchConfig {
            grid_dim: ((n as u32).div_ceil(warps), 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let (n32, d32) = (n as u32, d as u32);
        let mut b = func.builder();
        b.arg(&emb);
        b.arg(&start);
        b.arg(&end);
        b.arg(&n32);
        b.arg(&d32);
        b.arg(&threshold);
        b.arg(&mut out);
        unsafe { b.launch(cfg) }.map_err(|e| err("near_dup_f32", e))?;
    }
    Ok((CudaStorage::wrap_cuda_slice(out, dev), Shape::from((n, 2))))
}

/// `[P, 4]` f32 (a_in_b mean, frac; b_in_a mean, frac), as `CoverageOp::cpu_fwd`.
pub(super) fn coverage(
    offsets: &[usize],
    pairs: &[(u32, u32)],
    threshold: f32,
    storage: &CudaStorage,
    layout: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let (_, d) = layout.shape().dims2()?;
    let emb = rows(storage, layout, "coverage")?;
    let dev = storage.device().clone();
    let p = pairs.len();
    let mut out = dev.alloc_zeros::<f32>(4 * p)?;
    if p > 0 {
        let offs: Vec<u32> = offsets.iter().map(|&o| o as u32).collect();
        let flat: Vec<u32> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
        let offs = dev.clone_htod(&offs)?;
        let flat = dev.clone_htod(&flat)?;
        let func = dev.get_or_load_custom_func("coverage_f32", MODULE, PTX)?;
        let cfg = LaunchConfig {
            grid_dim: (p as u32, 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let (p32, d32) = (p as u32, d as u32);
        let mut b = func.builder();
        b.arg(&emb);
        b.arg(&offs);
        b.arg(&flat);
        b.arg(&p32);
        b.arg(&d32);
        b.arg(&threshold);
        b.arg(&mut out);
        unsafe { b.launch(cfg) }.map_err(|e| err("coverage_f32", e))?;
    }
    Ok((CudaStorage::wrap_cuda_slice(out, dev), Shape::from((p, 4))))
}
