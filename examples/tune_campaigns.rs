//! How the campaign-linking defaults (`CampaignParams::default()`) were chosen: sweep the
//! linking thresholds on an embedded, labelled run and print campaign pair precision/recall and
//! how many benign accounts end up inside a campaign.
//!
//! ```text
//! cargo run --release --example tune_campaigns -- RUN_DIR LABELS.jsonl
//! ```
//! RUN_DIR comes from `distillguard embed` (or `score`/`train`) on simulated traffic; LABELS is
//! the simulator's labels file. Results are recorded in docs/evaluation.md.

use std::collections::HashMap;
use std::path::PathBuf;

use distillguard::campaign::{self, CampaignParams};
use distillguard::classify::pair_precision_recall;
use distillguard::features::{self, Accounts};
use distillguard::index::{AccountIndex, IndexParams};
use distillguard::ingest::Labels;
use distillguard::run::Run;

fn main() -> distillguard::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [run_dir, labels] = args.as_slice() else {
        eprintln!("usage: tune_campaigns RUN_DIR LABELS.jsonl");
        std::process::exit(2);
    };
    let run = Run::open(&PathBuf::from(run_dir))?;
    let labels = Labels::read(&PathBuf::from(labels))?;
    let accounts = Accounts::from_run(&run)?;
    let local = features::local(&run.embeddings, &run.rows, &accounts)?;
    let index = AccountIndex::build(
        accounts.ids.clone(),
        &local.behaviour,
        local.dim,
        IndexParams::default(),
    )?;
    let k_max = 20;
    let all = index.all_neighbors(k_max);
    let truth = labels.true_campaigns();
    let label_of: HashMap<&str, u8> = labels
        .labels
        .iter()
        .map(|l| (l.account_id.as_str(), l.label))
        .collect();
    println!(
        "{:>3} {:>6} {:>6} {:>6} {:>9} {:>7} {:>9} {:>13} {:>13}",
        "k",
        "linksim",
        "match",
        "cover",
        "campaigns",
        "pair_P",
        "pair_R",
        "benign_in_c",
        "extr_in_c"
    );
    for k in [10] {
        for link_similarity in [0.7f32, 0.75, 0.8] {
            for prompt_match in [0.45f32, 0.5, 0.55] {
                for link_coverage in [0.2f32, 0.3, 0.4] {
                    let params = CampaignParams {
                        k,
                        link_similarity,
                        prompt_match,
                        link_coverage,
                        ..CampaignParams::default()
                    };
                    let neighbors: Vec<Vec<(usize, f32)>> = all
                        .iter()
                        .map(|ns| ns.iter().take(k).map(|n| (n.row, n.similarity)).collect())
                        .collect();
                    let ctx = campaign::analyse(&accounts, &local, neighbors, &params)?;
                    let pred: HashMap<String, Option<String>> = accounts
                        .ids
                        .iter()
                        .enumerate()
                        .filter(|(_, id)| truth.contains_key(*id))
                        .map(|(a, id)| {
                            (
                                id.clone(),
                                ctx.campaign_of[a].map(|c| ctx.campaigns[c].id.clone()),
                            )
                        })
                        .collect();
                    let (p, r) = pair_precision_recall(&pred, &truth);
                    let in_campaign = |label: u8| {
                        accounts
                            .ids
                            .iter()
                            .enumerate()
                            .filter(|(a, id)| {
                                ctx.campaign_of[*a].is_some()
                                    && label_of.get(id.as_str()) == Some(&label)
                            })
                            .count()
                    };
                    println!(
                        "{k:>3} {link_similarity:>6.2} {prompt_match:>6.2} {link_coverage:>6.2} {:>9} {p:>7.4} {r:>9.4} {:>13} {:>13}",
                        ctx.campaigns.len(),
                        in_campaign(0),
                        in_campaign(1)
                    );
                }
            }
        }
    }
    Ok(())
}
