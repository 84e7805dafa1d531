//! `score`, `neighbors`, `eval` and `train` as a user runs them, on a small simulated log with a
//! planted campaign (tests/fixtures/planted.jsonl: 16 benign accounts, one 8-account coding
//! sweep; labels in planted.labels.jsonl). The log is embedded once per test binary and the
//! run directory reused by every test (which also exercises run-directory reuse).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use distillguard::report::{read_scores, ScoreLine};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_distillguard"));
    c.env("DISTILLGUARD_MODEL_DIR", common::model_dir());
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Labels of the fixture: account -> (label, campaign).
fn labels() -> HashMap<String, (u8, Option<String>)> {
    std::fs::read_to_string(common::fixture("planted.labels.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["account_id"].as_str().unwrap().to_string(),
                (
                    v["label"].as_u64().unwrap() as u8,
                    v["campaign"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

struct Scored {
    _dir: tempfile::TempDir,
    out: PathBuf,
    run: PathBuf,
    summary: String,
}

/// `score` on the fixture with the default model, once.
fn scored() -> &'static Scored {
    static S: OnceLock<Scored> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("scores.jsonl");
        let o = bin()
            .args(["score", "--device", "cpu", "--input"])
            .arg(common::fixture("planted.jsonl"))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "score failed: {}", stderr(&o));
        Scored {
            run: dir.path().join("scores.run"),
            out,
            summary: stdout(&o),
            _dir: dir,
        }
    })
}

/// A private copy of the embedded fixture run in `dir`: tests that score or train rewrite a
/// run's index and features, which the other tests read.
fn private_run(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    std::fs::create_dir(&run).unwrap();
    for f in ["manifest.json", "embeddings.safetensors", "requests.jsonl"] {
        std::fs::copy(scored().run.join(f), run.join(f)).unwrap();
    }
    run
}

fn scores() -> Vec<ScoreLine> {
    read_scores(&scored().out).unwrap()
}

#[test]
fn score_finds_the_planted_campaign_and_ranks_it_above_benign_accounts() {
    let s = scores();
    let labels = labels();
    // One line per account, in the DESIGN.md format, most suspicious first.
    assert_eq!(s.len(), labels.len());
    assert!(s.windows(2).all(|w| w[0].score >= w[1].score));
    for line in &s {
        assert!(labels.contains_key(&line.account_id), "{}", line.account_id);
        assert!((0.0..=1.0).contains(&line.score));
        assert!(line.neighbors.len() <= 5);
    }
    let total: u64 = s.iter().map(|l| l.requests).sum();
    let lines = std::fs::read_to_string(common::fixture("planted.jsonl"))
        .unwrap()
        .lines()
        .count() as u64;
    assert_eq!(total, lines, "every request is counted for its account");

    // Every planted account scores above every benign account and is flagged (the campaign is
    // reported when at least half are flagged on their own, and then link pooling scores every
    // member at least as high as its middle one); no benign account is.
    let planted: Vec<&ScoreLine> = s.iter().filter(|l| labels[&l.account_id].0 == 1).collect();
    let benign: Vec<&ScoreLine> = s.iter().filter(|l| labels[&l.account_id].0 == 0).collect();
    assert!(planted.len() >= 5 && benign.len() >= 10);
    let lowest_planted = planted.iter().map(|l| l.score).fold(1.0, f32::min);
    let highest_benign = benign.iter().map(|l| l.score).fold(0.0, f32::max);
    assert!(
        lowest_planted > highest_benign,
        "planted {lowest_planted} vs benign {highest_benign}"
    );
    assert!(planted.iter().all(|l| l.flagged));
    assert!(benign.iter().all(|l| !l.flagged));
    // The default model has members blind to the behaviour vector: each flagged account says
    // what they score it, and what the members that read every input do; no other account.
    let views = |l: &ScoreLine| {
        l.reasons
            .iter()
            .filter(|r| r.starts_with("by its behaviour and coordination alone it scores "))
            .count()
    };
    assert!(s.iter().all(|l| views(l) == usize::from(l.flagged)));
    let pooled: Vec<&&ScoreLine> = planted
        .iter()
        .filter(|l| {
            l.reasons
                .iter()
                .any(|r| r.starts_with("scored with its link group"))
        })
        .collect();
    assert!(
        2 * pooled.len() <= planted.len(),
        "at most half are raised by their group: {}",
        pooled.len()
    );

    // All planted accounts, flagged or not, are reported as one campaign, with reasons, and no
    // benign account is in a campaign: the unflagged ones are caught through their campaign.
    let ids: HashSet<Option<&str>> = planted.iter().map(|l| l.campaign.as_deref()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let campaign = ids.into_iter().next().unwrap().expect("a campaign id");
    assert!(benign.iter().all(|l| l.campaign.is_none()));
    assert!(planted
        .iter()
        .all(|l| l.reasons[0].starts_with(&format!("member of campaign {campaign}"))));

    // campaigns.jsonl lists it with its members; the summary names it.
    let camps = std::fs::read_to_string(scored().out.with_file_name("campaigns.jsonl")).unwrap();
    let camps: Vec<serde_json::Value> = camps
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(camps.len(), 1);
    assert_eq!(camps[0]["id"], campaign);
    assert_eq!(camps[0]["size"], planted.len());
    // What the campaign shares, signal by signal: the coding sweep's accounts share a system
    // prompt and a few subnets, and every link of the group is counted.
    let links = &camps[0]["links"];
    assert!(links["infrastructure"].as_u64().unwrap() >= planted.len() as u64 - 1);
    assert!(links["total"].as_u64().unwrap() >= links["infrastructure"].as_u64().unwrap());
    assert!(camps[0]["mean_infra_overlap"].as_f64().unwrap() >= 0.4);
    let members: HashSet<&str> = camps[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(
        members,
        planted.iter().map(|l| l.account_id.as_str()).collect()
    );
    assert!(scored().summary.contains(campaign), "{}", scored().summary);
    assert!(scored().summary.contains("Top accounts"));
}

/// The users' complaint, as a test: people who ask for step-by-step reasoning (every one of
/// 80 honest accounts has a prompting habit, in wording of the test bank, and asks task-set
/// items in 15% of conversations) are not flagged for it. The model trained before such
/// people were simulated flags 11 of these 80 (docs/evaluation.md, session 18); the default
/// model, 1.
#[test]
fn people_who_ask_for_step_by_step_reasoning_are_not_flagged_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("people.jsonl");
    let o = bin()
        .args(["simulate", "--quiet", "--permissive-only", "--seed", "11"])
        .args([
            "--accounts",
            "80",
            "--campaigns",
            "0",
            "--phrasings",
            "test",
        ])
        .args(["--kinds", "benign_human,heavy_user"])
        .args(["--honest-task-share", "0.15", "--people-prompting", "1"])
        .arg("--out")
        .arg(&log)
        .arg("--labels")
        .arg(dir.path().join("people.labels.jsonl"))
        .output()
        .unwrap();
    assert!(o.status.success(), "simulate failed: {}", stderr(&o));
    let out = dir.path().join("people.scores.jsonl");
    let o = bin()
        .args(["score", "--device", "cpu", "--no-summary", "--input"])
        .arg(&log)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "score failed: {}", stderr(&o));
    let scores = read_scores(&out).unwrap();
    assert_eq!(scores.len(), 80);
    let flagged: Vec<(&str, f32)> = scores
        .iter()
        .filter(|s| s.flagged)
        .map(|s| (s.account_id.as_str(), s.score))
        .collect();
    assert!(flagged.len() <= 2, "honest accounts flagged: {flagged:?}");
}

#[test]
fn neighbors_of_a_planted_account_are_its_campaign() {
    let labels = labels();
    let s = scores();
    let planted: HashSet<&str> = s
        .iter()
        .filter(|l| labels[&l.account_id].0 == 1)
        .map(|l| l.account_id.as_str())
        .collect();
    let target = s[0].account_id.clone();
    let o = bin()
        .args(["neighbors", &target, "--json", "-k", "3", "--run-dir"])
        .arg(&scored().run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The account, its k index neighbours, then up to k accounts linked to it by form or
    // infrastructure that the index did not return.
    assert!((4..=7).contains(&rows.len()), "{} rows", rows.len());
    let mut linked_index_neighbours = 0;
    assert_eq!(rows[0]["account_id"], target.as_str());
    for (i, r) in rows[1..].iter().enumerate() {
        let id = r["account_id"].as_str().unwrap();
        assert!(planted.contains(id), "{id} is not planted");
        assert!(r["shared_system_prompts"].as_u64().unwrap() >= 1);
        assert!(r["campaign"].is_string());
        let by: Vec<&str> = r["linked_by"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if i < 3 {
            assert!(r["similarity"].as_f64().unwrap() > 0.5);
            linked_index_neighbours += usize::from(by.contains(&"infrastructure"));
        } else {
            // Listed for a link, not for its topic.
            assert!(
                by.contains(&"infrastructure") || by.contains(&"form"),
                "{id}: {by:?}"
            );
        }
    }
    // The planted sweep shares a system prompt and subnets: linked by infrastructure (links
    // are pairwise; the group is their closure, so not every pair need be linked).
    assert!(linked_index_neighbours >= 1);
    // The index gives the same neighbours as scores.jsonl (saved and reloaded).
    let from_scores: Vec<&str> = s[0]
        .neighbors
        .iter()
        .take(3)
        .map(|n| n.account_id.as_str())
        .collect();
    let from_index: Vec<&str> = rows[1..4]
        .iter()
        .map(|r| r["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(from_scores, from_index);
    // scores.jsonl records the account's links and what made them.
    assert!(!s[0].links.is_empty());
    assert!(s[0]
        .links
        .iter()
        .all(|l| planted.contains(l.account_id.as_str()) && !l.by.is_empty()));

    let o = bin()
        .args(["neighbors", "no-such-account", "--run-dir"])
        .arg(&scored().run)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("account \"no-such-account\" is not in run"),
        "{}",
        stderr(&o)
    );
}

/// `eval` of the fixture's scores against `labels`.
fn eval(labels: &Path, extra: &[&str]) -> Output {
    bin()
        .args(["eval", "--scores"])
        .arg(&scored().out)
        .arg("--labels")
        .arg(labels)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn eval_reports_metrics_and_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("eval.json");
    let o = eval(
        &common::fixture("planted.labels.jsonl"),
        &["--out", json.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["model"]["auroc"], 1.0);
    assert_eq!(r["model"]["false_positives"], 0);
    assert_eq!(r["campaign_pairs"]["precision"], 1.0);
    assert_eq!(r["campaign_pairs"]["recall"], 1.0);
    assert!(r["baselines"]["volume"]["auroc"].is_number());
    assert!(stdout(&o).contains("baseline: volume"));
    let kinds: Vec<&str> = r["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"coding_sweep"), "{kinds:?}");

    // Labels for an account that was not scored: error naming the file, line and field.
    let bad = dir.path().join("labels.jsonl");
    std::fs::write(&bad, "{\"account_id\":\"ghost\",\"label\":1}\n").unwrap();
    let o = eval(&bad, &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("labels.jsonl:1: account_id: 1 labelled account is not in the scores"),
        "{}",
        stderr(&o)
    );
}

/// `train` on the fixture log with `labels`, the run directory `run` and the model folder `out`,
/// plus `extra` flags.
/// The feature schema a model folder's model.json records.
fn schema_of(model: &Path) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(model.join("model.json")).unwrap(),
    )
    .unwrap()["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn train_on(run: &Path, labels: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    bin()
        .args(["train", "--device", "cpu", "--input"])
        .arg(common::fixture("planted.jsonl"))
        .arg("--labels")
        .arg(labels)
        .arg("--run-dir")
        .arg(run)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// Train on the fixture (reusing the embedded run), score again with the new model, and check
/// that a model with another schema is refused.
#[test]
fn train_then_score_with_the_new_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let run = private_run(dir.path());
    let train = |labels: &Path| train_on(&run, labels, &model, &[]);
    // The fixture's labels hold a single campaign, which cannot be split into train and
    // validation by campaign: training must say so rather than report an unearned score.
    let o = train(&common::fixture("planted.labels.jsonl"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot split"), "{}", stderr(&o));

    // Label each planted account as its own incident: now there are groups to split.
    let labels_path = dir.path().join("labels.jsonl");
    let text: String = labels()
        .iter()
        .map(|(id, (l, _))| format!("{{\"account_id\":\"{id}\",\"label\":{l}}}\n"))
        .collect();
    std::fs::write(&labels_path, text).unwrap();
    let o = train(&labels_path);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("reusing embeddings"),
        "the run directory is reused: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("out-of-fold: AUROC"), "{}", stderr(&o));
    assert!(model.join("model.safetensors").is_file() && model.join("model.json").is_file());

    let out = dir.path().join("again.jsonl");
    let score = |model: &Path| {
        bin()
            .args([
                "score",
                "--quiet",
                "--no-summary",
                "--device",
                "cpu",
                "--input",
            ])
            .arg(common::fixture("planted.jsonl"))
            .arg("--run-dir")
            .arg(&run)
            .arg("--out")
            .arg(&out)
            .arg("--model")
            .arg(model)
            .output()
            .unwrap()
    };
    let o = score(&model);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert_eq!(read_scores(&out).unwrap().len(), labels().len());
    // The model carries the normal traffic drawn from the accounts labelled benign, and
    // `score` computes against it exactly the features the model was trained on.
    assert!(model.join("normal_traffic.safetensors").is_file());
    let names = schema_of(&model);
    let set = distillguard::classify::TrainingSet::load(&model, &names).unwrap();
    let saved = distillguard::run::read_features(&run).unwrap();
    let rows = saved.rows_by_id();
    for (c, name) in names.iter().enumerate() {
        let column = saved.column(name).unwrap().unwrap();
        for (i, account) in set.accounts.iter().enumerate() {
            assert_eq!(
                column[rows[account.as_str()]],
                set.x[i * names.len() + c],
                "{name} of {account}: scored and trained on differ"
            );
        }
    }

    // A model trained on other features is refused, naming what differs.
    let meta = model.join("model.json");
    let text = std::fs::read_to_string(&meta)
        .unwrap()
        .replace("\"log_requests\"", "\"log_requests_v0\"");
    std::fs::write(&meta, text).unwrap();
    let o = score(&model);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("log_requests"), "{}", stderr(&o));
}

/// The retraining loop: a base model, an incident added to its training set, a second
/// incident on top of that, the two models compared on the log, and a base whose schema
/// differs refused.
#[test]
fn incidents_are_added_to_the_base_and_accumulate() {
    use distillguard::classify::TrainingSet;
    let dir = tempfile::tempdir().unwrap();
    let run = private_run(dir.path());
    // One round of folds for speed; an incident fine-tuned from a base keeps the base's.
    let train = |labels: &Path, base: &str, out: &Path| match base {
        "none" => train_on(&run, labels, out, &["--base", base, "--repeats", "1"]),
        _ => train_on(&run, labels, out, &["--base", base]),
    };
    let write_labels = |name: &str, rows: &[(&String, u8, Option<&str>)]| {
        let path = dir.path().join(name);
        let text: String = rows
            .iter()
            .map(|(id, l, c)| match c {
                Some(c) => {
                    format!("{{\"account_id\":\"{id}\",\"label\":{l},\"campaign\":\"{c}\"}}\n")
                }
                None => format!("{{\"account_id\":\"{id}\",\"label\":{l}}}\n"),
            })
            .collect();
        std::fs::write(&path, text).unwrap();
        path
    };
    let all = labels();
    let mut ids: Vec<&String> = all.keys().collect();
    ids.sort();
    let planted: Vec<&String> = ids.iter().copied().filter(|id| all[*id].0 == 1).collect();
    let benign: Vec<&String> = ids.iter().copied().filter(|id| all[*id].0 == 0).collect();
    // The base: every account its own group.
    let base_labels: Vec<_> = ids.iter().map(|id| (*id, all[*id].0, None)).collect();
    let base = dir.path().join("base");
    let o = train(&write_labels("base.jsonl", &base_labels), "none", &base);
    assert!(o.status.success(), "{}", stderr(&o));
    let schema = schema_of(&base);
    let base_set = TrainingSet::load(&base, &schema).unwrap();
    assert_eq!(base_set.len(), ids.len());
    assert!(base_set.incidents.is_empty());

    // Incident 1: half the planted accounts confirmed as one campaign, one benign account
    // cleared. They replace their base rows; the campaign is one weighted group.
    let mut inc1: Vec<_> = planted[..4]
        .iter()
        .map(|id| (*id, 1, Some("inc-a")))
        .collect();
    inc1.push((benign[0], 0, None));
    let m1 = dir.path().join("m1");
    let o = train(
        &write_labels("incident1.jsonl", &inc1),
        base.to_str().unwrap(),
        &m1,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("changes against the base"), "{err}");
    assert!(err.contains("fine-tuning its members"), "{err}");
    assert!(err.contains("incident1.jsonl (extraction)"), "{err}");
    assert!(m1.join("changes.json").is_file());
    let s1 = TrainingSet::load(&m1, &schema).unwrap();
    assert_eq!(
        s1.len(),
        ids.len(),
        "relabelled rows replace their base rows"
    );
    assert_eq!(s1.incidents.len(), 1);
    assert_eq!((s1.incidents[0].rows, s1.incidents[0].positives), (5, 4));
    assert_eq!(
        s1.group_weights.get("incident1/campaign:inc-a"),
        Some(&distillguard::pipeline::DEFAULT_INCIDENT_WEIGHT)
    );
    let campaign_rows = s1
        .groups
        .iter()
        .filter(|g| *g == "incident1/campaign:inc-a")
        .count();
    assert_eq!(campaign_rows, 4);
    // The cleared account keeps the fold it had in the base (the base members of the other
    // folds trained on its old row); the base rows keep theirs.
    let fold_of = |set: &TrainingSet, id: &str| {
        let i = set.accounts.iter().position(|a| a == id).unwrap();
        set.folds[i]
    };
    assert_eq!(fold_of(&s1, benign[0]), fold_of(&base_set, benign[0]));
    assert_eq!(fold_of(&s1, benign[1]), fold_of(&base_set, benign[1]));

    // Incident 2 on top: the same campaign id again is another group of another incident.
    let inc2: Vec<_> = planted[4..6]
        .iter()
        .map(|id| (*id, 1, Some("inc-a")))
        .collect();
    let m2 = dir.path().join("m2");
    let o = train(
        &write_labels("incident2.jsonl", &inc2),
        m1.to_str().unwrap(),
        &m2,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s2 = TrainingSet::load(&m2, &schema).unwrap();
    assert_eq!(s2.incidents.len(), 2);
    assert_eq!(s2.incidents[1].name, "incident2.jsonl");
    assert_eq!(s2.len(), ids.len());
    assert!(s2.group_weights.contains_key("incident1/campaign:inc-a"));
    assert!(s2.group_weights.contains_key("incident2/campaign:inc-a"));
    // Each row keeps its link group, tagged by the incident that brought it, so that groups of
    // two logs never pool together.
    assert_eq!(s2.links.len(), s2.len());
    let link_of = |set: &TrainingSet, id: &str| {
        set.links[set.accounts.iter().position(|a| a == id).unwrap()].clone()
    };
    assert!(link_of(&s2, planted[4]).starts_with("incident2/link:"));
    assert!(link_of(&s2, planted[0]).starts_with("incident1/link:"));
    assert!(base_set
        .links
        .iter()
        .all(|l| l.is_empty() || l.starts_with("link:")));
    // Both were fine-tuned from their base (the default), every row keeping a fold.
    let warm_start = |m: &Path| {
        let text = std::fs::read_to_string(m.join("model.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["training"]["warm_start"].clone()
    };
    assert!(warm_start(&m1)["epochs"].is_number(), "{}", warm_start(&m1));
    assert!(warm_start(&m2)["lr"].is_number(), "{}", warm_start(&m2));
    assert!(warm_start(&base).is_null());
    assert_eq!(s2.folds.len(), s2.len(), "one round: one fold per row");
    // An incident of accounts the base does not flag (here: honest ones labelled as a
    // campaign) is a kind it misses: a new ensemble is trained, unless --warm.
    let flipped: Vec<_> = benign[2..6]
        .iter()
        .map(|id| (*id, 1, Some("flip")))
        .collect();
    let flip = write_labels("flipped.jsonl", &flipped);
    let o = train(&flip, base.to_str().unwrap(), &dir.path().join("mf"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("a kind it misses"), "{}", stderr(&o));
    assert!(warm_start(&dir.path().join("mf")).is_null());
    let o = train_on(
        &run,
        &flip,
        &dir.path().join("mfw"),
        &["--base", base.to_str().unwrap(), "--warm"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(warm_start(&dir.path().join("mfw"))["epochs"].is_number());
    // --refit trains a new ensemble instead.
    let refit = dir.path().join("refit");
    let o = train_on(
        &run,
        &write_labels("incident1r.jsonl", &inc1),
        &refit,
        &[
            "--base",
            base.to_str().unwrap(),
            "--refit",
            "--repeats",
            "1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(warm_start(&refit).is_null());
    // A recipe flag with a fine-tuned incident would be ignored: refused.
    let o = train_on(
        &run,
        &write_labels("incident1h.jsonl", &inc1),
        &dir.path().join("m1h"),
        &["--base", base.to_str().unwrap(), "--hidden", "16"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--refit"), "{}", stderr(&o));
    // A set with incidents but without folds (written before warm starts) cannot be continued;
    // the error names the file and the way out.
    let old = dir.path().join("old");
    std::fs::create_dir(&old).unwrap();
    for f in std::fs::read_dir(&m1).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, old.join(f.file_name().unwrap())).unwrap();
        }
    }
    let mut s = TrainingSet::load(&old, &schema).unwrap();
    s.folds.clear();
    s.save(&old).unwrap();
    let o = train(
        &write_labels("incident2b.jsonl", &inc2),
        old.to_str().unwrap(),
        &dir.path().join("m2b"),
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("training_set.safetensors") && err.contains("--refit"),
        "{err}"
    );

    // The two models on the same log: the accounts they flag differently, with both scores.
    let out = dir.path().join("scores.jsonl");
    let o = bin()
        .args(["score", "--quiet", "--device", "cpu", "--input"])
        .arg(common::fixture("planted.jsonl"))
        .arg("--run-dir")
        .arg(&run)
        .arg("--out")
        .arg(&out)
        .arg("--model")
        .arg(&base)
        .arg("--compare-model")
        .arg(&m2)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("flagged differently by"),
        "{}",
        stdout(&o)
    );
    let compare = std::fs::read_to_string(dir.path().join("compare.jsonl")).unwrap();
    for line in compare.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_ne!(v["flagged"], v["other_flagged"]);
        assert!(v["score"].is_number() && v["other_score"].is_number());
    }

    // Incidents keep the base's normal traffic, so their rows are computed as the base's were.
    let normal = |m: &Path| std::fs::read(m.join("normal_traffic.safetensors")).unwrap();
    assert_eq!(normal(&m1), normal(&base));
    assert_eq!(normal(&m2), normal(&base));

    // A model trained afresh on other labels draws other normal traffic: compared with the
    // base, it is scored on features computed against its own, as when scored alone.
    let fresh = dir.path().join("fresh");
    let fresh_labels: Vec<_> = base_labels[1..].to_vec();
    let o = train(&write_labels("fresh.jsonl", &fresh_labels), "none", &fresh);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(normal(&fresh), normal(&base));
    // At threshold 0 it flags every account, so every account the base does not flag is
    // compared below.
    let meta = fresh.join("model.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    m["threshold"] = serde_json::json!(0.0);
    std::fs::write(&meta, m.to_string()).unwrap();
    let score_with = |model: &Path, compare: Option<&Path>, out: &Path| {
        let mut c = bin();
        c.args(["score", "--quiet", "--device", "cpu", "--input"])
            .arg(common::fixture("planted.jsonl"))
            .arg("--run-dir")
            .arg(&run)
            .arg("--out")
            .arg(out)
            .arg("--model")
            .arg(model);
        if let Some(m) = compare {
            c.arg("--compare-model").arg(m);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };
    let alone = dir.path().join("fresh.scores.jsonl");
    score_with(&fresh, None, &alone);
    let alone: HashMap<String, f32> = read_scores(&alone)
        .unwrap()
        .into_iter()
        .map(|l| (l.account_id, l.score))
        .collect();
    let both = dir.path().join("both").join("scores.jsonl");
    std::fs::create_dir_all(both.parent().unwrap()).unwrap();
    score_with(&base, Some(&fresh), &both);
    let compared = std::fs::read_to_string(both.with_file_name("compare.jsonl")).unwrap();
    let benign_count = all.values().filter(|(l, _)| *l == 0).count();
    assert!(compared.lines().count() >= benign_count / 2, "{compared}");
    for line in compared.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["account_id"].as_str().unwrap();
        assert_eq!(v["other_score"].as_f64().unwrap() as f32, alone[id], "{id}");
    }

    // A base trained on other features is refused before training, naming the difference.
    let meta = base.join("model.json");
    let text = std::fs::read_to_string(&meta)
        .unwrap()
        .replace("\"log_requests\"", "\"log_requests_v0\"");
    std::fs::write(&meta, text).unwrap();
    let o = train(
        &write_labels("incident3.jsonl", &inc2),
        base.to_str().unwrap(),
        &dir.path().join("m3"),
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("log_requests"), "{}", stderr(&o));
    assert!(!dir.path().join("m3").exists());
    // ...before the run directory is even looked at.
    assert!(!stderr(&o).contains("reusing embeddings"), "{}", stderr(&o));
}

/// `reference` draws normal traffic from a log of honest accounts, and `score --reference`
/// puts its endpoints in place of the model's.
#[test]
fn a_reference_of_honest_traffic_replaces_the_models_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let run = private_run(dir.path());
    let reference = |extra: &[&str], out: &Path| {
        bin()
            .args(["reference", "--device", "cpu", "--input"])
            .arg(common::fixture("planted.jsonl"))
            .arg("--run-dir")
            .arg(&run)
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap()
    };
    // Every account of the log taken as honest (the planted campaign too).
    let everyone = dir.path().join("everyone");
    let o = reference(&[], &everyone);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "normal traffic of {} honest accounts",
            labels().len()
        )),
        "{}",
        stderr(&o)
    );
    assert!(everyone.join("normal_traffic.safetensors").is_file());
    // A labels file naming an account the log does not hold is refused, naming the file.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"account_id\":\"nobody\",\"label\":0}\n").unwrap();
    let o = reference(
        &["--labels", bad.to_str().unwrap()],
        &dir.path().join("bad"),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bad.jsonl"), "{}", stderr(&o));

    let score = |extra: &[&str], name: &str| {
        let out = dir.path().join(name);
        let o = bin()
            .args(["score", "--no-summary", "--device", "cpu", "--input"])
            .arg(common::fixture("planted.jsonl"))
            .arg("--run-dir")
            .arg(&run)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        let scores: HashMap<String, f32> = read_scores(&out)
            .map(|s| s.into_iter().map(|l| (l.account_id, l.score)).collect())
            .unwrap_or_default();
        (o, scores)
    };
    let (o, plain) = score(&[], "plain.jsonl");
    assert!(o.status.success(), "{}", stderr(&o));
    // The default model's own normal traffic as the reference changes nothing.
    let own = distillguard::embed::default_dir("DISTILLGUARD_CLASSIFIER_DIR", "models/classifier");
    let (o, same) = score(&["--reference", own.to_str().unwrap()], "same.jsonl");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("normal traffic of"), "{}", stderr(&o));
    assert_eq!(same, plain);
    // A reference with the campaign's own prompts in it moves the scores.
    let (o, moved) = score(&["--reference", everyone.to_str().unwrap()], "moved.jsonl");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(moved.len(), plain.len());
    assert!(moved.iter().any(|(a, s)| plain[a] != *s));
    // A folder without normal traffic is refused, naming the file it looked for.
    let (o, _) = score(&["--reference", dir.path().to_str().unwrap()], "none.jsonl");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("normal_traffic.safetensors"),
        "{}",
        stderr(&o)
    );
}

/// A run directory is reused only for the same input: another log is embedded afresh, and
/// says why on stderr.
#[test]
fn run_directory_is_reembedded_for_another_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = private_run(dir.path());
    let text = std::fs::read_to_string(common::fixture("planted.jsonl")).unwrap();
    let part = dir.path().join("part.jsonl");
    std::fs::write(&part, text.lines().take(60).collect::<Vec<_>>().join("\n")).unwrap();
    let o = bin()
        .args(["score", "--no-summary", "--device", "cpu", "--input"])
        .arg(&part)
        .arg("--run-dir")
        .arg(&run)
        .arg("--out")
        .arg(dir.path().join("s.jsonl"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("re-embedding into") && stderr(&o).contains("it holds another input"),
        "{}",
        stderr(&o)
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["input"]["requests"], 60);
    let accounts: HashSet<String> = text
        .lines()
        .take(60)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["account_id"].to_string())
        .collect();
    assert_eq!(
        read_scores(&dir.path().join("s.jsonl")).unwrap().len(),
        accounts.len()
    );
}
