//! CPU (or CUDA) embedding throughput on a fixed prompt set.
//!
//! usage: cargo bench --bench embed -- PROMPTS.txt [--max-seq-len N] [--max-batch N]
//!        [--batch-tokens N] [--repeat N] [--device cpu|cuda:N] [--precision f32|int8]
//!        [--no-agreement]
//! PROMPTS.txt is JSONL with one {"text": ...} per line (benches/compare_embed.sh makes it).
//! Prints one JSON object on stdout: prompts/s and tokens/s of tokenize+embed, best of --repeat
//! runs after one warm-up, plus the share of time spent tokenizing. With `--precision int8` it
//! also embeds the set with the f32 model (untimed) and reports the cosine of every int8
//! embedding to its f32 one: minimum, mean and the share under 0.99 (`--no-agreement` skips it,
//! for profiling the int8 path alone).

use std::time::Instant;

use distillguard::device::{self, DeviceSpec};
use distillguard::embed::{default_model_dir, EmbedOptions, Embedder};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut path = None;
    let mut opts = EmbedOptions::default();
    let mut repeat = 3;
    let mut spec = DeviceSpec::Cpu;
    let mut agreement = true;
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--max-seq-len" => opts.max_seq_len = val()?.parse()?,
            "--max-batch" => opts.max_batch = val()?.parse()?,
            "--batch-tokens" => opts.batch_tokens = val()?.parse()?,
            "--repeat" => repeat = val()?.parse()?,
            "--device" => spec = val()?.parse().map_err(anyhow::Error::msg)?,
            "--no-agreement" => agreement = false,
            "--precision" => {
                opts.cpu_int8 = match val()?.as_str() {
                    "f32" => false,
                    "int8" => true,
                    p => anyhow::bail!("--precision {p}: not f32 or int8"),
                }
            }
            _ => path = Some(a),
        }
    }
    let path = path.ok_or_else(|| anyhow::anyhow!("usage: embed PROMPTS.jsonl [flags]"))?;
    let texts: Vec<String> = std::fs::read_to_string(&path)?
        .lines()
        .map(|l| {
            Ok(serde_json::from_str::<serde_json::Value>(l)?["text"]
                .as_str()
                .unwrap_or_default()
                .to_string())
        })
        .collect::<anyhow::Result<_>>()?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let dev = device::resolve(spec, &distillguard::progress::Silent)?;
    let emb = Embedder::load(&default_model_dir(), &dev, opts.clone())?;

    let _ = emb.embed(&refs[..refs.len().min(256)])?; // warm-up
    let mut best = f64::MAX;
    let mut tok_share = 0.0;
    let mut tokens = 0usize;
    let mut last = Vec::new();
    for _ in 0..repeat {
        let t0 = Instant::now();
        let tok = emb.tokenize(&refs)?;
        let t1 = Instant::now();
        last = emb.embed_tokenized(&tok)?;
        let total = t0.elapsed().as_secs_f64();
        if total < best {
            best = total;
            tok_share = (t1 - t0).as_secs_f64() / total;
        }
        tokens = tok.iter().map(|t| t.ids.len()).sum();
    }
    let agreement = if opts.cpu_int8 && agreement {
        let f32_model = Embedder::load(
            &default_model_dir(),
            &dev,
            distillguard::embed::EmbedOptions {
                cpu_int8: false,
                ..opts.clone()
            },
        )?;
        let reference = f32_model.embed(&refs)?;
        let d = emb.dim();
        let cos: Vec<f64> = last
            .chunks(d)
            .zip(reference.chunks(d))
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum())
            .collect();
        let min = cos.iter().cloned().fold(f64::MAX, f64::min);
        let mean = cos.iter().sum::<f64>() / cos.len() as f64;
        let under = cos.iter().filter(|&&c| c < 0.99).count() as f64 / cos.len() as f64;
        serde_json::json!({"min": min, "mean": mean, "share_under_0_99": under})
    } else {
        serde_json::Value::Null
    };
    println!(
        "{}",
        serde_json::json!({
            "impl": if opts.cpu_int8 { "distillguard-int8" } else { "distillguard" },
            "cosine_to_f32": agreement,
            "device": device::name(&dev),
            "threads": candle_core::utils::get_num_threads(),
            "prompts": texts.len(),
            "tokens": tokens,
            "max_seq_len": opts.max_seq_len,
            "max_batch": opts.max_batch,
            "batch_tokens": opts.batch_tokens,
            "seconds": best,
            "prompts_per_s": texts.len() as f64 / best,
            "tokens_per_s": tokens as f64 / best,
            "tokenize_share": tok_share,
        })
    );
    Ok(())
}
