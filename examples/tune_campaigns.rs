//! How the linking defaults (`CampaignParams::default()`) were chosen: sweep the form and
//! infrastructure link thresholds on an embedded, labelled run and print link-group pair
//! precision/recall (every group of at least `min_size` accounts, flagged or not), how many
//! benign and extraction accounts end up in a group, and pair recall per extraction kind.
//!
//! ```text
//! cargo run --release --example tune_campaigns -- RUN_DIR LABELS.jsonl
//! ```
//! RUN_DIR comes from `distillguard embed` (or `score`/`train`) on simulated traffic; LABELS is
//! the simulator's labels file. Results are recorded in docs/evaluation.md.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use distillguard::campaign::{self, CampaignParams, FormParams, InfraParams};
use distillguard::classify::pair_precision_recall;
use distillguard::features::{self, Accounts};
use distillguard::index::AccountIndex;
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
    // Link groups do not depend on the normal traffic (only a group's shift score does).
    let local = features::local(&run.embeddings, &run.rows, &accounts, features::Normal::Log)?;
    let index = AccountIndex::for_accounts(accounts.ids.clone(), &local.behaviour, local.dim)?;
    let defaults = CampaignParams::default();
    let all = index.all_neighbors(defaults.k);
    let truth = labels.true_campaigns();
    let label_of: HashMap<&str, (u8, String)> = labels
        .labels
        .iter()
        .map(|l| {
            let kind = l.kind.clone().unwrap_or_default();
            (l.account_id.as_str(), (l.label, kind))
        })
        .collect();
    println!(
        "{:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>8} {:>8}  per-kind pair recall",
        "share",
        "jacc",
        "shared",
        "coact",
        "infra",
        "struct",
        "groups",
        "pair_P",
        "pair_R",
        "benign_g",
        "extr_g"
    );
    // GRID=full sweeps the settings around the defaults; DUMP=1 lists every group's make-up.
    let grid = std::env::var("GRID").unwrap_or_default() == "full";
    let f = &defaults.form;
    let shares: &[f32] = if grid {
        &[0.1, 0.15, 0.2, 0.3]
    } else {
        &[f.min_share]
    };
    let jaccs: &[f32] = if grid {
        &[0.3, 0.4, 0.5]
    } else {
        &[f.min_jaccard]
    };
    let shareds: &[usize] = if grid { &[4, 6, 8] } else { &[f.min_shared] };
    let coacts: &[f32] = if grid {
        &[0.0, 0.25, 0.5]
    } else {
        &[f.min_co_activity]
    };
    let overlaps: &[f32] = if grid {
        &[0.4, 0.5]
    } else {
        &[defaults.infra.min_overlap]
    };
    let structural: &[f32] = if grid {
        &[0.0, 0.2]
    } else {
        &[defaults.min_structural_similarity]
    };
    for &min_share in shares {
        for &min_jaccard in jaccs {
            for &min_shared in shareds {
                for &min_co_activity in coacts {
                    for &min_overlap in overlaps {
                        for &min_structural_similarity in structural {
                            let params = CampaignParams {
                                form: FormParams {
                                    min_share,
                                    min_jaccard,
                                    min_shared,
                                    min_co_activity,
                                    ..defaults.form.clone()
                                },
                                infra: InfraParams {
                                    min_overlap,
                                    ..defaults.infra.clone()
                                },
                                min_structural_similarity,
                                ..defaults.clone()
                            };
                            let neighbors: Vec<Vec<(usize, f32)>> = all
                                .iter()
                                .map(|ns| ns.iter().map(|n| (n.row, n.similarity)).collect())
                                .collect();
                            let linking = campaign::analyse(
                                &accounts,
                                &local,
                                &run.shingles,
                                neighbors,
                                &params,
                            )?;
                            let row = report(&linking, &accounts, &truth, &label_of);
                            if std::env::var("DUMP").is_ok() {
                                dump(&linking, &accounts, &truth, &label_of);
                            }
                            if let Ok(kind) = std::env::var("DIAG") {
                                diagnose(
                                    &kind, &linking, &accounts, &run, &params, &truth, &label_of,
                                );
                            }
                            println!(
                            "{min_share:>6.2} {min_jaccard:>6.2} {min_shared:>6} {min_co_activity:>6.2} {min_overlap:>6.2} {min_structural_similarity:>6.2} {row}"
                        );
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// One table row: groups, pair precision/recall, benign and extraction accounts in groups,
/// pair recall per extraction kind.
fn report(
    linking: &campaign::Linking,
    accounts: &Accounts,
    truth: &HashMap<String, Option<String>>,
    label_of: &HashMap<&str, (u8, String)>,
) -> String {
    let group_of = |a: usize| linking.group_of[a].map(|c| linking.groups[c].id.clone());
    let pred: HashMap<String, Option<String>> = accounts
        .ids
        .iter()
        .enumerate()
        .filter(|(_, id)| truth.contains_key(*id))
        .map(|(a, id)| (id.clone(), group_of(a)))
        .collect();
    let (p, r) = pair_precision_recall(&pred, truth);
    let in_group = |label: u8| {
        (0..accounts.len())
            .filter(|&a| {
                linking.group_of[a].is_some()
                    && label_of.get(accounts.ids[a].as_str()).map(|l| l.0) == Some(label)
            })
            .count()
    };
    // Pair recall per extraction kind: the truth restricted to that kind.
    let mut kinds: BTreeMap<&str, HashMap<String, Option<String>>> = BTreeMap::new();
    for (id, c) in truth {
        if let Some((1, kind)) = label_of.get(id.as_str()) {
            kinds
                .entry(kind.as_str())
                .or_default()
                .insert(id.clone(), c.clone());
        }
    }
    let per_kind: Vec<String> = kinds
        .iter()
        .map(|(kind, t)| {
            let pred: HashMap<String, Option<String>> = t
                .keys()
                .map(|id| (id.clone(), pred.get(id).cloned().flatten()))
                .collect();
            let (_, r) = pair_precision_recall(&pred, t);
            format!("{kind}={r:.2}")
        })
        .collect();
    format!(
        "{:>7} {p:>7.4} {r:>7.4} {:>8} {:>8}  {}",
        linking.groups.len(),
        in_group(0),
        in_group(1),
        per_kind.join(" ")
    )
}

/// Each link group's make-up: labelled campaigns (or benign kinds) and their account counts.
fn dump(
    linking: &campaign::Linking,
    accounts: &Accounts,
    truth: &HashMap<String, Option<String>>,
    label_of: &HashMap<&str, (u8, String)>,
) {
    for c in &linking.groups {
        let mut parts: BTreeMap<String, usize> = BTreeMap::new();
        for &m in &c.members {
            let id = accounts.ids[m].as_str();
            let key = match (truth.get(id).cloned().flatten(), label_of.get(id)) {
                (Some(camp), Some((_, kind))) => format!("{camp}:{kind}"),
                (_, Some((_, kind))) => format!("benign:{kind}"),
                _ => "unlabelled".to_string(),
            };
            *parts.entry(key).or_default() += 1;
        }
        let parts: Vec<String> = parts.iter().map(|(k, n)| format!("{k}={n}")).collect();
        println!(
            "  {} size {} form {} infra {}: {}",
            c.id,
            c.size,
            c.form_links,
            c.infra_links,
            parts.join(" ")
        );
    }
}

/// Why the accounts of extraction kind `kind` left out of every link group were not linked:
/// per such account, its signature size and its best form overlap, co-activity and footprint
/// overlap with any account of its own campaign.
fn diagnose(
    kind: &str,
    linking: &campaign::Linking,
    accounts: &Accounts,
    run: &Run,
    params: &CampaignParams,
    truth: &HashMap<String, Option<String>>,
    label_of: &HashMap<&str, (u8, String)>,
) {
    let sigs = campaign::Signatures::new(accounts, &run.shingles, &params.form);
    let foot = campaign::Footprints::new(accounts);
    let camp = |a: usize| truth.get(accounts.ids[a].as_str()).cloned().flatten();
    let of_kind =
        |a: usize| label_of.get(accounts.ids[a].as_str()).map(|l| l.1.as_str()) == Some(kind);
    for a in (0..accounts.len()).filter(|&a| of_kind(a) && linking.group_of[a].is_none()) {
        let mine = camp(a);
        let sibs: Vec<usize> = (0..accounts.len())
            .filter(|&b| b != a && camp(b) == mine)
            .collect();
        let best_j = sibs
            .iter()
            .map(|&b| (sigs.overlap(a, b), b))
            .max_by(|x, y| x.0.jaccard.total_cmp(&y.0.jaccard));
        let best_co = sibs
            .iter()
            .map(|&b| foot.co_activity(a, b))
            .fold(0f32, f32::max);
        let tokens = sibs
            .iter()
            .filter(|&&b| {
                let o = foot.overlap(a, b);
                o.networks + o.user_agents + o.system_prompts > 0
            })
            .count();
        let ok_form = sibs
            .iter()
            .filter(|&&b| sigs.overlap(a, b).shares_form(&params.form))
            .count();
        println!(
            "    {} reqs {} distinct {} sig {} best_jacc {:?} best_co {best_co:.2} token_sibs {tokens}/{} form_sibs {ok_form} links {}",
            accounts.ids[a],
            accounts.requests[a].len(),
            accounts.distinct_rows(a, 1000).len(),
            sigs.of(a).len(),
            best_j.map(|(o, _)| (o.jaccard, o.shared)),
            sibs.len(),
            linking.links[a].len(),
        );
    }
}
