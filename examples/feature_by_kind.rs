//! One feature's distribution per labelled kind, for checking what a feature separates before
//! training on it.
//!
//! ```text
//! cargo run --release --example feature_by_kind -- RUN_DIR LABELS.jsonl FEATURE [FEATURE...]
//! ```
//! Prints, per kind, the accounts, and for each feature its mean and 10th/50th/90th
//! percentiles. Local and cross-account features only (names as in model.json), computed
//! against the normal traffic of the default model (`DISTILLGUARD_CLASSIFIER_DIR`, else
//! models/classifier), as `score` with that model computes them.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use candle_core::Device;
use distillguard::campaign::CampaignParams;
use distillguard::features::normal::NormalTraffic;
use distillguard::features::Normal;
use distillguard::ingest::Labels;
use distillguard::pipeline;
use distillguard::run::Run;

fn main() -> distillguard::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [run_dir, labels, names @ ..] = args.as_slice() else {
        eprintln!("usage: feature_by_kind RUN_DIR LABELS.jsonl FEATURE [FEATURE...]");
        std::process::exit(2);
    };
    let run = Run::open(&PathBuf::from(run_dir))?;
    let labels = Labels::read(&PathBuf::from(labels))?;
    // The features exactly as `score` computes them (this also saves the run's index).
    let model = std::env::var_os("DISTILLGUARD_CLASSIFIER_DIR")
        .map_or_else(|| PathBuf::from("models/classifier"), PathBuf::from);
    let normal = NormalTraffic::load(&model, run.embeddings.dims2()?.1)?;
    let detection = pipeline::detect(
        &run,
        &CampaignParams::default(),
        normal.as_ref().map_or(Normal::Log, Normal::Given),
        &Device::Cpu,
        &distillguard::progress::Silent,
    )?;
    let (accounts, all, x) = (&detection.accounts, &detection.names, &detection.x);
    let d = all.len();
    let cols: Vec<usize> = names
        .iter()
        .map(|n| {
            all.iter().position(|a| a == n).unwrap_or_else(|| {
                eprintln!("unknown feature {n:?}");
                std::process::exit(2)
            })
        })
        .collect();
    let kind_of: HashMap<&str, String> = labels
        .labels
        .iter()
        .map(|l| {
            let k = l
                .kind
                .clone()
                .unwrap_or_else(|| format!("label {}", l.label));
            (l.account_id.as_str(), format!("{} {k}", l.label))
        })
        .collect();
    let mut by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (a, id) in accounts.ids.iter().enumerate() {
        let k = kind_of
            .get(id.as_str())
            .cloned()
            .unwrap_or("unlabelled".into());
        by.entry(k).or_default().push(a);
    }
    print!("{:<28} {:>5}", "kind", "n");
    for n in names {
        print!("  {:>30}", format!("{n} mean p10/p50/p90"));
    }
    println!();
    for (k, accs) in &by {
        print!("{k:<28} {:>5}", accs.len());
        for &c in &cols {
            let mut v: Vec<f32> = accs.iter().map(|&a| x[a * d + c]).collect();
            v.sort_by(f32::total_cmp);
            let q = |p: f32| v[((v.len() - 1) as f32 * p) as usize];
            let mean = v.iter().sum::<f32>() / v.len() as f32;
            print!(
                "  {:>30}",
                format!("{mean:.2} {:.2}/{:.2}/{:.2}", q(0.1), q(0.5), q(0.9))
            );
        }
        println!();
    }
    Ok(())
}
