//! The encoder's linear-layer GEMMs, int8 ([`QLinear`], every [`Kernel`] this CPU has) and our
//! packed f32 kernel ([`PackedF32`]) against candle's f32 matmul (the gemm crate), on the
//! shapes of all-MiniLM-L6-v2 at a full 4,096-token batch, in the same run.
//!
//! usage: cargo bench --bench int8_gemm [-- ROWS]
//! Prints one JSON line per shape and int8 kernel: best of 5 seconds and GMAC/s for each, and
//! the ratios to candle's f32.

use std::time::Instant;

use candle_core::{Device, Tensor};
use distillguard::embed::int8::{Kernel, QLinear};
use distillguard::embed::sgemm::{CpuLinear, PackedF32};

fn best_of<F: FnMut()>(mut f: F) -> f64 {
    f();
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() -> anyhow::Result<()> {
    let m: usize = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(4096);
    let shapes = [
        ("qkv", 384, 1152),
        ("attn_out", 384, 384),
        ("ffn_in", 384, 1536),
        ("ffn_out", 1536, 384),
    ];
    for (name, k, n) in shapes {
        let mut seed = 1u64;
        let mut rnd = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect()
        };
        let w = rnd(k * n);
        let x = rnd(m * k);
        let q = QLinear::new(&w, k, n);
        let wt = Tensor::from_vec(w.clone(), (k, n), &Device::Cpu)?;
        let xt = Tensor::from_vec(x.clone(), (m, k), &Device::Cpu)?;
        let t_f32 = best_of(|| {
            std::hint::black_box(xt.matmul(&wt).unwrap());
        });
        let packed = PackedF32::new(&w, k, n);
        let t_packed = best_of(|| {
            std::hint::black_box(packed.forward(&x, m));
        });
        let gmac = (m * k * n) as f64 / 1e9;
        // The portable twin is far too slow to time at this size.
        for kernel in Kernel::ALL
            .into_iter()
            .filter(|k| k.available() && *k != Kernel::Portable)
        {
            let t_int8 = best_of(|| {
                std::hint::black_box(q.forward_with(kernel, &x, m));
            });
            println!(
                "{}",
                serde_json::json!({
                    "shape": name, "m": m, "k": k, "n": n, "kernel": format!("{kernel:?}"),
                    "threads": rayon::current_num_threads(),
                    "int8_s": t_int8, "int8_gmac_per_s": gmac / t_int8,
                    "f32_s": t_f32, "f32_gmac_per_s": gmac / t_f32,
                    "int8_over_f32": t_f32 / t_int8,
                    "packed_f32_gmac_per_s": gmac / t_packed,
                    "packed_f32_over_f32": t_f32 / t_packed,
                })
            );
        }
    }
    Ok(())
}
