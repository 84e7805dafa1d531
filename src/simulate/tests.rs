//! Tests against the real corpora bundled in `data/corpora` (the optional, unshippable ones
//! stood in for). The test that needs the optional corpora is ignored unless asked for:
//! `DISTILLGUARD_EXTRA_CORPORA=DIR cargo test -- --ignored extra_corpora`. Kept small: few
//! benign accounts, and the corpora are read once per test binary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::corpus::{Corpora, CorpusId};
use super::*;
use crate::ingest::parse_line;

const CORPORA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/corpora");

fn corpora() -> &'static Corpora {
    static C: OnceLock<Corpora> = OnceLock::new();
    C.get_or_init(|| Corpora::load(&[PathBuf::from(CORPORA)]).expect("corpora load"))
}

fn opts(dir: &Path, seed: u64) -> SimOptions {
    let mut o = SimOptions::new(
        vec![PathBuf::from(CORPORA)],
        dir.join("traffic.jsonl"),
        dir.join("labels.jsonl"),
        seed,
    );
    o.benign_accounts = 40;
    o.campaigns = extraction_plan().len();
    o.days = 5;
    o
}

fn small(seed: u64) -> Vec<Account> {
    generate(corpora(), &opts(Path::new("/unused"), seed))
}

fn write_both(dir: &Path, accounts: &[Account]) -> (Vec<u8>, Vec<u8>) {
    let o = opts(dir, 0);
    write_traffic(&o.traffic, accounts).unwrap();
    write_labels(&o.labels, accounts).unwrap();
    (
        std::fs::read(&o.traffic).unwrap(),
        std::fs::read(&o.labels).unwrap(),
    )
}

#[test]
fn same_seed_same_bytes_and_another_seed_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    // Two independent runs: the library entry point (its own corpus load) and the in-memory path.
    let stats = simulate(&opts(&a, 7)).unwrap();
    let (traffic, labels) = write_both(&b, &small(7));
    assert!(traffic == std::fs::read(a.join("traffic.jsonl")).unwrap());
    assert!(labels == std::fs::read(a.join("labels.jsonl")).unwrap());
    assert!(!a.join("traffic.jsonl.partial").exists());

    let fingerprint = |accounts: &[Account]| -> Vec<(String, i64, usize)> {
        accounts
            .iter()
            .map(|a| (a.id.clone(), a.requests[0].ts, a.requests.len()))
            .collect()
    };
    assert_eq!(fingerprint(&small(7)), fingerprint(&small(7)));
    assert_ne!(fingerprint(&small(7)), fingerprint(&small(8)));

    assert_eq!(stats.accounts, stats.benign + stats.extraction);
    assert_eq!(stats.benign, 40);
    assert_eq!(stats.campaigns, extraction_plan().len());
    let lines = traffic.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(stats.requests, lines);
    let kinds: usize = stats.kinds.values().map(|k| k.requests).sum();
    assert_eq!(kinds, lines);
}

#[test]
fn every_traffic_line_parses_and_is_sorted() {
    let tmp = tempfile::tempdir().unwrap();
    let (traffic, _) = write_both(tmp.path(), &small(3));
    let path = tmp.path().join("traffic.jsonl");
    let mut last = i64::MIN;
    let mut n = 0;
    for (i, line) in traffic.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let r = parse_line(&path, i as u64 + 1, line)
            .unwrap_or_else(|e| panic!("{e}"))
            .expect("no blank lines");
        assert!(r.timestamp_ms >= last, "line {} out of order", i + 1);
        last = r.timestamp_ms;
        assert!(r.response_tokens.is_some() && r.model.is_some() && r.ip.is_some());
        assert!(!r.prompt.is_empty());
        // RFC 3339 strings, not epoch numbers.
        assert!(line.starts_with(b"{\"account_id\":\"acct-"));
        assert!(std::str::from_utf8(line)
            .unwrap()
            .contains("\"timestamp\":\"2025-06-"));
        n += 1;
    }
    assert!(n > 1000, "{n} requests");
}

#[test]
fn labels_and_traffic_name_the_same_accounts_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (traffic, labels) = write_both(tmp.path(), &small(4));
    let in_traffic: BTreeSet<String> = String::from_utf8(traffic)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["account_id"].as_str().unwrap().to_string()
        })
        .collect();
    let mut labelled = BTreeMap::new();
    for l in String::from_utf8(labels).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let id = v["account_id"].as_str().unwrap().to_string();
        let label = v["label"].as_u64().unwrap();
        assert!(label <= 1);
        assert!(v["kind"].is_string());
        assert_eq!(label == 1, v.get("campaign").is_some(), "{l}");
        assert!(
            labelled.insert(id, label).is_none(),
            "account labelled twice: {l}"
        );
    }
    let labelled: BTreeSet<String> = labelled.into_keys().collect();
    assert_eq!(in_traffic, labelled);
}

#[test]
fn campaigns_span_several_accounts_except_the_single_extractor() {
    let accounts = small(5);
    let mut campaigns: BTreeMap<&str, (BTreeSet<&str>, usize)> = BTreeMap::new();
    for a in accounts.iter().filter(|a| a.label == 1) {
        let c = campaigns.entry(a.campaign.as_deref().unwrap()).or_default();
        c.0.insert(a.kind);
        c.1 += 1;
    }
    assert_eq!(campaigns.len(), extraction_plan().len());
    for (id, (kinds, n)) in &campaigns {
        assert_eq!(kinds.len(), 1, "{id} mixes kinds {kinds:?}");
        let kind = *kinds.iter().next().unwrap();
        if kind == "single_heavy" {
            assert_eq!(*n, 1);
        } else {
            assert!(*n >= 2, "{id} ({kind}) has {n} account(s)");
        }
    }
    // The per-account signal is weak: some campaign accounts are tiny.
    let smallest = accounts
        .iter()
        .filter(|a| a.label == 1)
        .map(|a| a.requests.len())
        .min()
        .unwrap();
    assert!(
        smallest <= 12,
        "smallest campaign account has {smallest} requests"
    );
    assert!(accounts
        .iter()
        .all(|a| a.label == 1 || a.campaign.is_none()));
}

#[test]
fn every_strategy_kind_appears() {
    let accounts = small(6);
    let seen: BTreeSet<&str> = accounts.iter().map(|a| a.kind).collect();
    let mut expected: BTreeSet<&str> = benign_plan().iter().map(|(s, _)| s.kind()).collect();
    expected.extend(extraction_plan().iter().map(|s| s.kind()));
    assert_eq!(seen, expected);
    for (s, _) in benign_plan() {
        assert_eq!(s.label(), 0, "{}", s.kind());
    }
    for s in extraction_plan() {
        assert_eq!(s.label(), 1, "{}", s.kind());
    }
    for a in &accounts {
        assert!(!a.requests.is_empty());
    }
}

#[test]
fn human_conversations_keep_turn_order() {
    let c = corpora();
    let accounts = small(9);
    let mut checked = 0;
    for a in accounts
        .iter()
        .filter(|a| matches!(a.kind, "benign_human" | "heavy_user"))
    {
        let mut convs: HashMap<&str, Vec<&Req>> = HashMap::new();
        for r in &a.requests {
            convs
                .entry(
                    r.conversation_id
                        .as_deref()
                        .expect("humans send a conversation id"),
                )
                .or_default()
                .push(r);
        }
        for (cid, mut reqs) in convs {
            reqs.sort_by_key(|r| r.ts);
            let o0 = reqs[0].origin.expect("human turns know their origin");
            let conv = o0.conv.expect("a replayed conversation");
            let rows = &c.get(o0.corpus).convs[conv as usize];
            assert_eq!(reqs.len(), rows.len(), "{cid}: whole conversation");
            for (i, r) in reqs.iter().enumerate() {
                let o = r.origin.unwrap();
                assert_eq!(
                    (o.corpus, o.conv, o.pos, o.row),
                    (o0.corpus, o0.conv, i as u32, rows[i]),
                    "{cid}"
                );
                assert_eq!(r.prompt, c.get(o.corpus).text(rows[i]), "{cid} turn {i}");
                if i > 0 {
                    assert!(r.ts > reqs[i - 1].ts, "{cid}: turns at the same instant");
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked} conversations checked");
}

#[test]
fn corpus_turns_are_sorted_and_authors_are_not_conversations() {
    let c = corpora();
    // hh-rlhf group 0 has three turns in order.
    let hh = c.get(CorpusId::HhRlhf);
    assert_eq!(hh.convs[0].len(), 3);
    assert_eq!(
        hh.text(hh.convs[0][0]),
        "what are some pranks with a pen i can do?"
    );
    // The prompt collection's groups are authors: every prompt stands alone.
    assert!(c
        .get(CorpusId::AwesomePrompts)
        .convs
        .iter()
        .all(|v| v.len() == 1));
    assert_eq!(
        c.get(CorpusId::Gsm8k).convs.len(),
        c.get(CorpusId::Gsm8k).texts.len()
    );
}

#[test]
fn missing_corpora_dir_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path(), 1);
    o.corpora = vec![tmp.path().join("no-such-dir"), PathBuf::from(CORPORA)];
    let e = simulate(&o).unwrap_err();
    assert_eq!(e.exit_code(), 3);
    let msg = e.to_string();
    assert!(
        msg.contains("no-such-dir: corpora directory not found"),
        "{msg}"
    );
    assert!(!o.traffic.exists() && !o.labels.exists());
}

#[cfg(unix)]
#[test]
fn missing_corpus_file_and_malformed_line_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpora");
    std::fs::create_dir(&dir).unwrap();
    // ShareGPT is read first, so a broken copy of it fails before anything else is parsed.
    let (missing, broken) = (CorpusId::Gsm8k, CorpusId::ShareGpt);
    for id in CorpusId::ALL {
        let name = id.file_name();
        if id != missing && id != broken && Path::new(CORPORA).join(name).is_file() {
            std::os::unix::fs::symlink(Path::new(CORPORA).join(name), dir.join(name)).unwrap();
        }
    }
    let good = r#"{"source": "s", "group": null, "turn": 0, "text": "What is 2+2?"}"#;
    std::fs::write(dir.join(broken.file_name()), good).unwrap();
    let mut o = opts(tmp.path(), 1);
    o.corpora = vec![dir.clone()];
    let msg = simulate(&o).unwrap_err().to_string();
    assert!(msg.contains("gsm8k.jsonl: corpus file not found"), "{msg}");
    std::os::unix::fs::symlink(
        Path::new(CORPORA).join(missing.file_name()),
        dir.join(missing.file_name()),
    )
    .unwrap();

    let cases = [
        (
            format!("{good}\n{{\"source\": \"s\", \"turn\": 0}}\n"),
            ":2: text: missing required field",
        ),
        (format!("{good}\n\n{{oops\n"), ":3: (line): malformed JSON"),
        (
            r#"{"source": "s", "turn": -1, "text": "x"}"#.to_string(),
            ":1: turn: expected a non-negative integer",
        ),
        (
            r#"{"source": "s", "group": 5, "text": "x"}"#.to_string(),
            ":1: group: expected a string or null",
        ),
        (
            r#"{"source": "s", "text": "  "}"#.to_string(),
            ":1: text: must not be empty",
        ),
        (
            r#"{"text": "x"}"#.to_string(),
            ":1: source: missing required field",
        ),
        ("\n\n".to_string(), ": empty corpus"),
    ];
    let mut cases: Vec<(Vec<u8>, &str)> = cases
        .into_iter()
        .map(|(b, w)| (b.into_bytes(), w))
        .collect();
    cases.push((
        b"{\"source\": \"s\", \"text\": \"\xff\"}".to_vec(),
        ":1: (line): not valid UTF-8",
    ));
    for (body, want) in cases {
        std::fs::write(dir.join(broken.file_name()), body).unwrap();
        let e = simulate(&o).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        let want = format!("sharegpt_v3_dev.jsonl{want}");
        assert!(e.to_string().contains(&want), "{e} / wanted {want}");
    }
    assert!(!o.traffic.exists() && !o.labels.exists());
}

#[test]
fn flags_that_make_no_sense_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path(), 1);
    o.days = 0;
    assert_eq!(o.validate().unwrap_err().exit_code(), 2);
    let mut o = opts(tmp.path(), 1);
    o.labels = o.traffic.clone();
    assert!(o.validate().unwrap_err().to_string().contains("same file"));
    let mut o = opts(tmp.path(), 1);
    (o.benign_accounts, o.campaigns) = (0, 0);
    assert!(o.validate().is_err());
    assert!(parse_start("2025-13-01").is_err());
    assert_eq!(parse_start("1970-01-01T00:00:01Z"), Ok(1000));
}

#[test]
fn split_is_exact_and_covers_every_share() {
    assert_eq!(
        split(200, &[0.66, 0.08, 0.11, 0.08, 0.07])
            .iter()
            .sum::<usize>(),
        200
    );
    assert_eq!(
        split(5, &[0.66, 0.08, 0.11, 0.08, 0.07]),
        vec![1, 1, 1, 1, 1]
    );
    assert_eq!(
        split(3, &[0.66, 0.08, 0.11, 0.08, 0.07])
            .iter()
            .sum::<usize>(),
        3
    );
    assert_eq!(split(0, &[0.5, 0.5]), vec![0, 0]);
    for n in 0..60 {
        assert_eq!(
            split(n, &[0.66, 0.08, 0.11, 0.08, 0.07])
                .iter()
                .sum::<usize>(),
            n
        );
    }
}

#[test]
fn wrappers_keep_the_task_and_vary_the_wording() {
    let task = "Natalia sold clips to 48 of her friends in April.";
    let mut rng = StdRng::seed_from_u64(1);
    let mut distinct = BTreeSet::new();
    for _ in 0..200 {
        let w = text::COT_WRAPPERS[0];
        let p = text::wrap(&mut rng, w, task);
        assert!(p.contains(task), "{p}");
        distinct.insert(p);
    }
    assert!(
        distinct.len() > 10,
        "{} variants of one wrapper",
        distinct.len()
    );
    let p = text::fill_rubric(&mut rng, text::RUBRIC_TEMPLATES[3], "T", "A1", "A2", "R");
    assert!(p.contains("T") && p.contains("A1") && p.contains("A2") && p.contains("R"));
    assert!(!p.contains('{'), "{p}");
}

fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn kinds_filter_yields_only_those_kinds_and_prefixes_name_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path(), 11);
    o.benign_accounts = 12;
    o.campaigns = 3;
    let allowed = [
        "benign_human",
        "bulk_business",
        "rubric_grading",
        "coding_sweep",
    ];
    o.kinds = Some(allowed.iter().map(|k| k.to_string()).collect());
    o.campaign_prefix = "test-camp".into();
    o.account_prefix = "s11".into();
    let stats = simulate(&o).unwrap();
    assert_eq!(stats.benign, 12);
    assert_eq!(stats.campaigns, 3);

    let labels = read_lines(&o.labels);
    let mut kind_of = HashMap::new();
    let mut campaign_kind: BTreeMap<String, String> = BTreeMap::new();
    for l in &labels {
        let id = l["account_id"].as_str().unwrap().to_string();
        let kind = l["kind"].as_str().unwrap().to_string();
        assert!(allowed.contains(&kind.as_str()), "{l}");
        assert!(id.starts_with("s11-"), "{id}");
        if let Some(c) = l["campaign"].as_str() {
            assert!(c.starts_with("test-camp-"), "{c}");
            campaign_kind.insert(c.to_string(), kind.clone());
        }
        kind_of.insert(id, kind);
    }
    // Campaigns cycle over the allowed extraction kinds only, in plan order.
    let cycle: Vec<&str> = campaign_kind.values().map(String::as_str).collect();
    assert_eq!(cycle, ["rubric_grading", "coding_sweep", "rubric_grading"]);
    // Both benign kinds get part of the budget.
    let seen: BTreeSet<&str> = kind_of.values().map(String::as_str).collect();
    assert_eq!(seen, allowed.iter().copied().collect());
    for t in read_lines(&o.traffic) {
        let id = t["account_id"].as_str().unwrap();
        assert!(kind_of.contains_key(id), "unlabelled account {id}");
    }

    // Only extraction kinds: no benign accounts, whatever --accounts says.
    let mut o = opts(tmp.path(), 11);
    o.kinds = Some(vec!["coding_sweep".into()]);
    o.campaigns = 2;
    let accounts = generate(corpora(), &o);
    assert!(!accounts.is_empty());
    assert!(accounts.iter().all(|a| a.kind == "coding_sweep"));
    let campaigns: BTreeSet<&str> = accounts
        .iter()
        .filter_map(|a| a.campaign.as_deref())
        .collect();
    assert_eq!(campaigns, BTreeSet::from(["camp-001", "camp-002"]));
}

/// A probe is drawn only when named, after the named kinds of the plan; naming it changes
/// nothing of the default traffic's kinds, and its accounts carry none of the markers the
/// presets are built from (no system prompt, personal pacing over the whole period).
#[test]
fn probes_are_generated_only_when_named() {
    let mut o = opts(Path::new("/unused"), 14);
    o.benign_accounts = 10;
    o.campaigns = extraction_plan().len() * 2;
    let kinds = |accounts: &[Account]| -> BTreeSet<&'static str> {
        accounts
            .iter()
            .filter(|a| a.label == 1)
            .map(|a| a.kind)
            .collect()
    };
    let probes = probe_names();
    assert!(!probes.is_empty());
    let default = generate(corpora(), &o);
    assert!(kinds(&default).iter().all(|k| !probes.contains(k)));
    o.randomise = true;
    assert!(kinds(&generate(corpora(), &o))
        .iter()
        .all(|k| !probes.contains(k)));

    o.randomise = false;
    o.campaigns = 2;
    o.kinds = Some(vec!["benign_human".into(), probes[0].into()]);
    let probed = generate(corpora(), &o);
    assert_eq!(kinds(&probed), BTreeSet::from([probes[0]]));
    let members: Vec<&Account> = probed.iter().filter(|a| a.label == 1).collect();
    assert!(members.len() >= 100, "{} accounts", members.len());
    assert!(members
        .iter()
        .flat_map(|a| &a.requests)
        .all(|r| r.system_prompt.is_none()));
}

/// `probe_chat_topics` asks what honest people ask: every prompt it sends comes from a human
/// chat corpus (or its stand-in), none from a public task set, while its form stays an
/// extractor's (shared proxy pool, wrappers around the item).
#[test]
fn the_chat_topics_probe_draws_only_from_human_corpora() {
    use super::corpus::CorpusId::*;
    let mut o = opts(Path::new("/unused"), 15);
    o.benign_accounts = 0;
    o.campaigns = 1;
    o.kinds = Some(vec!["probe_chat_topics".into()]);
    let accounts = generate(corpora(), &o);
    assert!(accounts.len() >= 30, "{} accounts", accounts.len());
    let requests: Vec<&Req> = accounts.iter().flat_map(|a| &a.requests).collect();
    let human = [ShareGpt, Lima, ArenaHard, HhRlhf, Oasst1Zh];
    for r in &requests {
        let origin = r.origin.as_ref().expect("every probe prompt has an origin");
        assert!(human.contains(&origin.corpus), "{:?}", origin.corpus);
        assert!(!r.prompt.is_empty());
    }
    let wrapped = requests
        .iter()
        .filter(|r| {
            let o = r.origin.as_ref().unwrap();
            r.prompt != corpora().get(o.corpus).text(o.row)
        })
        .count();
    assert!(
        wrapped * 2 > requests.len(),
        "{wrapped} of {} prompts wrapped",
        requests.len()
    );
}

/// `--honest-task-share`: people ask task-set items in about that share of their
/// conversations; by default never; a share of 1 or more is refused.
#[test]
fn people_ask_task_set_items_at_the_share_asked_for() {
    // The systematic task sets: every corpus after the six human ones.
    let tasks = &CorpusId::ALL[6..];
    let share_of_task_convs = |share: f64| -> f64 {
        let mut o = opts(Path::new("/unused"), 16);
        o.benign_accounts = 60;
        o.campaigns = 0;
        o.kinds = Some(vec!["benign_human".into(), "heavy_user".into()]);
        o.honest_task_share = share;
        let accounts = generate(corpora(), &o);
        let convs: BTreeSet<(Rc<str>, bool)> = accounts
            .iter()
            .flat_map(|a| &a.requests)
            .map(|r| {
                let task = tasks.contains(&r.origin.as_ref().unwrap().corpus);
                (r.conversation_id.clone().unwrap(), task)
            })
            .collect();
        convs.iter().filter(|c| c.1).count() as f64 / convs.len() as f64
    };
    assert_eq!(share_of_task_convs(0.0), 0.0);
    let got = share_of_task_convs(0.2);
    assert!((0.12..0.28).contains(&got), "task share {got}");
    let mut o = opts(Path::new("/unused"), 1);
    o.honest_task_share = 1.0;
    assert_eq!(o.validate().unwrap_err().exit_code(), 2);
}

/// `--people-prompting`: about that share of people add a habitual phrase of their phrasing
/// bank before or after their questions (and change nothing else); the train and test banks
/// share no phrase; by default no one does; a share above 1 is refused.
#[test]
fn some_people_add_a_prompting_habit_of_their_bank() {
    use super::text::PERSONAL_HABITS;
    let run_with = |share: f64, phrasings: Phrasings, wide: bool| {
        let mut o = opts(Path::new("/unused"), 17);
        o.benign_accounts = 200;
        o.campaigns = 0;
        o.kinds = Some(vec!["benign_human".into(), "heavy_user".into()]);
        o.people_prompting = share;
        o.phrasings = phrasings;
        o.wide_people = wide;
        let accounts = generate(corpora(), &o);
        let mut used = BTreeSet::new();
        let mut with_habit = 0;
        for a in &accounts {
            let mut phrases = BTreeSet::new();
            for r in &a.requests {
                let origin = r.origin.as_ref().unwrap();
                let text = corpora().get(origin.corpus).text(origin.row);
                if r.prompt == text {
                    continue;
                }
                let phrase = PERSONAL_HABITS
                    .iter()
                    .map(|h| h.1)
                    .find(|h| {
                        let before = r.prompt.starts_with(h) && r.prompt.ends_with(text);
                        let after = r.prompt.starts_with(text) && r.prompt.ends_with(h);
                        (before || after) && r.prompt.len() <= text.len() + h.len() + 2
                    })
                    .unwrap_or_else(|| panic!("changed beyond a habit: {:?}", r.prompt));
                phrases.insert(phrase);
            }
            assert!(phrases.len() <= 1, "one habit per person: {phrases:?}");
            with_habit += usize::from(!phrases.is_empty());
            used.extend(phrases);
        }
        (with_habit as f64 / accounts.len() as f64, used)
    };
    let run = |share: f64, phrasings: Phrasings| run_with(share, phrasings, false);
    assert_eq!(run(0.0, Phrasings::All).0, 0.0);
    // `--wide-people` gives twice the share of people a habit.
    let (plain, _) = run(0.25, Phrasings::Train);
    let (wide, _) = run_with(0.25, Phrasings::Train, true);
    assert!((1.4..3.2).contains(&(wide / plain)), "{wide} vs {plain}");
    let (all, _) = run(1.0, Phrasings::Train);
    let (train_share, train) = run(0.5, Phrasings::Train);
    let (_, test) = run(0.5, Phrasings::Test);
    // Everyone has a habit at 1; it shows unless all of a person's few turns missed it.
    assert!(all > 0.5, "{all}");
    let half = train_share / all;
    assert!((0.3..0.7).contains(&half), "{train_share} of {all}");
    assert!(train.len() >= 4 && test.len() >= 4, "{train:?} {test:?}");
    assert!(train.is_disjoint(&test), "{train:?} {test:?}");
    let mut o = opts(Path::new("/unused"), 1);
    o.people_prompting = 1.5;
    assert_eq!(o.validate().unwrap_err().exit_code(), 2);
}

/// `--wide-people` scales each person's corpus weights at random: heavy users' share of one-off
/// questions (single-turn conversations) spreads wider than the personas alone make it.
#[test]
fn wide_people_vary_their_conversation_shape() {
    let spread = |wide: bool| -> f64 {
        let mut o = opts(Path::new("/unused"), 23);
        o.benign_accounts = 120;
        o.campaigns = 0;
        o.kinds = Some(vec!["heavy_user".into()]);
        o.wide_people = wide;
        let shares: Vec<f64> = generate(corpora(), &o)
            .iter()
            .map(|a| {
                let mut turns: BTreeMap<Rc<str>, usize> = BTreeMap::new();
                for r in &a.requests {
                    *turns.entry(r.conversation_id.clone().unwrap()).or_default() += 1;
                }
                let one_off = a
                    .requests
                    .iter()
                    .filter(|r| turns[r.conversation_id.as_ref().unwrap()] == 1)
                    .count();
                one_off as f64 / a.requests.len() as f64
            })
            .collect();
        let mean = shares.iter().sum::<f64>() / shares.len() as f64;
        (shares.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / shares.len() as f64).sqrt()
    };
    let (plain, wide) = (spread(false), spread(true));
    assert!(wide > 1.3 * plain, "sd of one-off share: {wide} vs {plain}");
}

#[test]
fn listing_every_kind_is_the_default_run() {
    let mut o = opts(Path::new("/unused"), 12);
    o.benign_accounts = 15;
    o.campaigns = 2;
    let fingerprint = |accounts: Vec<Account>| -> Vec<(String, &'static str, usize, i64)> {
        accounts
            .into_iter()
            .map(|a| (a.id, a.kind, a.requests.len(), a.requests[0].ts))
            .collect()
    };
    let plain = fingerprint(generate(corpora(), &o));
    let (benign, extraction) = kind_names();
    o.kinds = Some(
        extraction
            .iter()
            .chain(&benign)
            .map(|k| k.to_string())
            .collect(),
    );
    assert_eq!(plain, fingerprint(generate(corpora(), &o)));
}

#[test]
fn unknown_or_no_kind_is_a_usage_error_naming_the_valid_kinds() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path(), 1);
    o.kinds = Some(vec!["benign_human".into(), "hydra_cott".into()]);
    let e = simulate(&o).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert!(msg.contains("\"hydra_cott\""), "{msg}");
    let (benign, extraction) = kind_names();
    for k in benign.iter().chain(&extraction) {
        assert!(msg.contains(k), "{msg} does not name {k}");
    }
    assert!(!o.traffic.exists() && !o.labels.exists());

    o.kinds = Some(Vec::new());
    assert_eq!(o.validate().unwrap_err().exit_code(), 2);
    // Only benign kinds and no accounts: nothing to do.
    o.kinds = Some(vec!["heavy_user".into()]);
    o.benign_accounts = 0;
    assert!(o
        .validate()
        .unwrap_err()
        .to_string()
        .contains("nothing to simulate"));
    let mut o = opts(tmp.path(), 1);
    o.account_prefix = String::new();
    assert_eq!(o.validate().unwrap_err().exit_code(), 2);
    o.account_prefix = "a b".into();
    assert!(o.validate().is_err());
}

/// The key (see `corpus::item_key`) of the corpus item each prompt was made from, with a check
/// that the prompt really carries that item's text.
fn item_keys(c: &Corpora, accounts: &[Account]) -> (BTreeSet<String>, usize) {
    let mut keys = BTreeSet::new();
    let mut n = 0;
    for r in accounts.iter().flat_map(|a| &a.requests) {
        let Some(o) = r.origin else { continue };
        let corpus = c.get(o.corpus);
        let text = corpus::item_key(corpus.text(o.row));
        assert!(r.prompt.contains(text), "{:?} lost its text", o);
        if let Some(conv) = o.conv {
            assert_eq!(corpus.conv_of[o.row as usize], conv);
        }
        keys.insert(corpus.conv_key(corpus.conv_of[o.row as usize]).to_string());
        n += 1;
    }
    (keys, n)
}

#[test]
fn slices_are_disjoint_cover_the_corpora_and_share_no_item() {
    let full = corpora();
    let halves = [full.slice(0, 2).unwrap(), full.slice(1, 2).unwrap()];
    // Every corpus is split, with nothing lost or repeated, and no item key (first turn, task
    // text) is in both halves, across corpora too (GSM8K test and its zero-shot-CoT copy).
    let mut all_keys: [BTreeSet<&str>; 2] = Default::default();
    for id in CorpusId::ALL {
        let f = full.get(id);
        let (a, b) = (halves[0].get(id), halves[1].get(id));
        assert_eq!(a.texts.len() + b.texts.len(), f.texts.len(), "{id:?}");
        assert_eq!(a.convs.len() + b.convs.len(), f.convs.len(), "{id:?}");
        assert!(!a.convs.is_empty() && !b.convs.is_empty(), "{id:?}");
        for (s, h) in halves.iter().enumerate() {
            let c = h.get(id);
            for conv in 0..c.convs.len() as u32 {
                all_keys[s].insert(c.conv_key(conv));
                for &row in &c.convs[conv as usize] {
                    assert_eq!(c.conv_of[row as usize], conv);
                }
            }
        }
    }
    assert!(all_keys[0].is_disjoint(&all_keys[1]));
    // The split does not depend on the seed and is roughly even.
    let (k0, k1) = (all_keys[0].len() as f64, all_keys[1].len() as f64);
    assert!((k0 / (k0 + k1) - 0.5).abs() < 0.05, "{k0} / {k1}");

    // What the strategies send: no conversation, task or document in both.
    let mut used: Vec<BTreeSet<String>> = Vec::new();
    let mut first_turns: Vec<BTreeSet<String>> = Vec::new();
    for (s, h) in halves.iter().enumerate() {
        let mut o = opts(Path::new("/unused"), 21 + s as u64);
        o.benign_accounts = 30;
        o.campaigns = extraction_plan().len();
        o.slice = Some((s as u32, 2));
        let accounts = generate(h, &o);
        let (keys, n) = item_keys(h, &accounts);
        assert!(n > 1000, "{n} prompts with an origin");
        used.push(keys);
        first_turns.push(
            accounts
                .iter()
                .filter(|a| a.label == 0)
                .flat_map(|a| &a.requests)
                .filter(|r| r.origin.is_some_and(|o| o.conv.is_some() && o.pos == 0))
                .map(|r| r.prompt.clone())
                .collect(),
        );
    }
    assert!(used[0].is_disjoint(&used[1]));
    assert!(first_turns[0].len() > 50 && first_turns[1].len() > 50);
    assert!(first_turns[0].is_disjoint(&first_turns[1]));
}

#[test]
fn bad_or_too_fine_slices_are_usage_errors_and_narrow_ones_still_work() {
    let tmp = tempfile::tempdir().unwrap();
    for slice in [(2, 2), (0, 0), (5, 3)] {
        let mut o = opts(tmp.path(), 1);
        o.slice = Some(slice);
        let e = o.validate().unwrap_err();
        assert_eq!(e.exit_code(), 2, "{slice:?}");
        assert!(e.to_string().contains("corpus slice"), "{e}");
        assert!(corpora().slice(slice.0, slice.1).is_err());
    }
    assert_eq!(parse_slice("1/2"), Ok((1, 2)));
    assert!(parse_slice("1-2").is_err() && parse_slice("a/2").is_err());
    // So many slices that a small corpus has nothing left: a clear error, not a panic.
    let e = corpora().slice(7, 5000).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("with no items"), "{e}");
    // A narrow slice leaves some task sets with a handful of items; every kind still runs.
    let narrow = corpora().slice(3, 8).unwrap();
    assert!(narrow.get(CorpusId::DistillMeta).texts.len() < 15);
    let mut o = opts(tmp.path(), 2);
    o.benign_accounts = 10;
    o.slice = Some((3, 8));
    let accounts = generate(&narrow, &o);
    let kinds: BTreeSet<&str> = accounts.iter().map(|a| a.kind).collect();
    assert!(kinds.len() >= 12, "{kinds:?}");
}

/// Every text of the shippable corpora in `c`.
fn shippable_texts(c: &Corpora) -> std::collections::HashSet<&str> {
    CorpusId::ALL
        .iter()
        .filter(|id| id.shippable())
        .flat_map(|&id| c.get(id).texts.iter().map(String::as_str))
        .collect()
}

/// Checks that every prompt of traffic generated from `c` comes from `shippable`.
fn assert_traffic_is_shippable(c: &Corpora, shippable: &std::collections::HashSet<&str>) {
    let accounts = generate(c, &opts(Path::new("/unused"), 11));
    let mut n = 0;
    for r in accounts.iter().flat_map(|a| &a.requests) {
        let Some(o) = r.origin else { continue };
        let text = c.get(o.corpus).text(o.row);
        assert!(
            shippable.contains(text),
            "{o:?} is not from a shippable corpus"
        );
        n += 1;
    }
    assert!(n > 500, "{n} prompts with an origin");
}

#[test]
fn bundled_corpora_stand_in_for_the_optional_ones() {
    let c = corpora();
    // The repository ships exactly the shippable corpora, and nothing else is read.
    for id in CorpusId::ALL {
        assert!(id.stand_in().shippable(), "{id:?}");
        let bundled = Path::new(CORPORA).join(id.file_name()).is_file();
        assert_eq!(bundled, id.shippable(), "{id:?}");
        assert_eq!(c.stood_in().contains(&id), !id.shippable(), "{id:?}");
        assert_eq!(c.get(id).texts, c.get(id.stand_in()).texts, "{id:?}");
    }
    assert_traffic_is_shippable(c, &shippable_texts(c));
    // A folder searched first wins; the bundled one fills in the rest.
    let tmp = tempfile::tempdir().unwrap();
    let name = CorpusId::TruthfulQa.file_name();
    let row = r#"{"source": "mine", "group": null, "turn": 0, "text": "Is the sky green?"}"#;
    std::fs::write(tmp.path().join(name), row).unwrap();
    let both = Corpora::load(&[tmp.path().to_path_buf(), PathBuf::from(CORPORA)]).unwrap();
    assert_eq!(both.get(CorpusId::TruthfulQa).texts, ["Is the sky green?"]);
    assert_eq!(
        both.get(CorpusId::Gsm8k).texts,
        c.get(CorpusId::Gsm8k).texts
    );
    // The simulate entry point reports the stand-ins.
    let stats = simulate(&opts(tmp.path(), 3)).unwrap();
    let stood: Vec<&str> = stats.stood_in.iter().map(|p| p.0).collect();
    assert!(stood.contains(&"sharegpt_v3_dev.jsonl"), "{stood:?}");
    assert!(stats
        .stood_in
        .contains(&("zero_shot_cot.jsonl", "gsm8k.jsonl")));
}

/// With the optional corpora (`DISTILLGUARD_EXTRA_CORPORA`, e.g. a local `shared/data/corpora`):
/// they are read, and `permissive_only` replaces every one of them by its stand-in.
#[test]
#[ignore = "needs the optional corpora: DISTILLGUARD_EXTRA_CORPORA=DIR cargo test -- --ignored extra_corpora"]
fn extra_corpora_are_read_and_permissive_only_replaces_them() {
    let extra = std::env::var_os("DISTILLGUARD_EXTRA_CORPORA")
        .expect("set DISTILLGUARD_EXTRA_CORPORA to the folder of the optional corpora");
    let full = Corpora::load(&[PathBuf::from(extra), PathBuf::from(CORPORA)]).unwrap();
    assert!(full.stood_in().is_empty(), "{:?}", full.stood_in());
    let permissive = full.permissive_only();
    let shippable = shippable_texts(&full);
    for id in CorpusId::ALL {
        assert_eq!(permissive.get(id).texts, full.get(id.stand_in()).texts);
        if !id.shippable() {
            assert_ne!(full.get(id).texts, full.get(id.stand_in()).texts, "{id:?}");
        }
    }
    assert_traffic_is_shippable(&permissive, &shippable);
}

/// The task endpoint: students, pure and mixed extraction accounts on their own model, with
/// the app's system prompt; the mixed accounts send exactly 25% off-task prompts, the pure ones
/// none from the task set; the general traffic before it is unchanged; under `--randomise`,
/// volume and off-task share vary within each kind's range.
#[test]
fn task_endpoint_accounts_differ_only_in_what_they_ask() {
    let mut o = opts(Path::new("/unused"), 3);
    let plain = generate(corpora(), &o);
    for (task, corpus, model) in [
        (EndpointTask::Math, CorpusId::Gsm8k, endpoint::MODEL_TUTOR),
        (
            EndpointTask::Quiz,
            CorpusId::TruthfulQa,
            "nova-quiz-helper-1",
        ),
        (EndpointTask::Code, CorpusId::Mbpp, "nova-code-coach-1"),
        (
            EndpointTask::Shell,
            CorpusId::AgentbenchOs,
            "nova-shell-helper-1",
        ),
    ] {
        o.task_endpoint = 20;
        o.endpoint_task = task;
        let with = generate(corpora(), &o);
        assert_eq!(with.len(), plain.len() + 30);
        for (a, b) in plain.iter().zip(&with) {
            assert_eq!(a.id, b.id);
            assert_eq!(a.requests.len(), b.requests.len());
        }
        let extra = &with[plain.len()..];
        let count = |k: &str| extra.iter().filter(|a| a.kind == k).count();
        assert_eq!(
            (
                count("endpoint_user"),
                count("endpoint_extraction"),
                count("endpoint_extraction_mixed")
            ),
            (20, 5, 5)
        );
        for a in extra {
            let on_task = a
                .requests
                .iter()
                .filter(|r| r.origin.map(|o| o.corpus) == Some(corpus))
                .count();
            assert!(a
                .requests
                .iter()
                .all(|r| r.model == Some(model) && r.system_prompt.is_some()));
            match a.kind {
                "endpoint_user" => assert_eq!(on_task, a.requests.len()),
                "endpoint_extraction" => assert_eq!((on_task, a.requests.len()), (0, 100)),
                _ => assert_eq!((on_task, a.requests.len()), (75, 100)),
            }
            assert_eq!(a.label, u8::from(a.kind != "endpoint_user"));
        }
    }
    // Under --randomise the extraction accounts' volume and off-task share vary within their
    // kind's range (rounding to whole requests moves a share by at most 1/40).
    o.randomise = true;
    o.task_endpoint = 40;
    o.endpoint_task = EndpointTask::Quiz;
    let mut shares = BTreeSet::new();
    for a in generate(corpora(), &o) {
        let n = a.requests.len();
        let on_task = |r: &Req| r.origin.map(|o| o.corpus) == Some(CorpusId::TruthfulQa);
        let off = a.requests.iter().filter(|r| !on_task(r)).count() as f64 / n as f64;
        let range = match a.kind {
            "endpoint_extraction" => 0.375..1.001,
            "endpoint_extraction_mixed" => 0.075..0.425,
            _ => continue,
        };
        assert!((20..=400).contains(&n), "{} requests", n);
        assert!(range.contains(&off), "{}: off-task share {off}", a.kind);
        shares.insert((off * 100.0).round() as u32);
    }
    assert!(shares.len() > 10, "{shares:?}");
}

/// The two phrasing banks split every wrapper list, and traffic drawn from the test bank
/// contains no wrapper text of the train bank (the wording a model trained on it has seen).
#[test]
fn test_bank_traffic_never_uses_train_bank_wording() {
    let lists: [&[text::Wrapper]; 8] = [
        text::COT_WRAPPERS,
        text::DETAIL_WRAPPERS,
        text::CODING_WRAPPERS,
        text::AGENT_WRAPPERS,
        text::RUBRIC_TEMPLATES,
        text::GENERATE_WRAPPERS,
        text::TRACE_WRAPPERS,
        text::ALTERNATIVE_WRAPPERS,
    ];
    // The parts randomised campaigns assemble wording from are split the same way.
    for parts in [text::OPENERS, text::FORMAT_DEMANDS] {
        let (train, test) = (Phrasings::Train.bank(parts), Phrasings::Test.bank(parts));
        assert!(!train.is_empty() && !test.is_empty());
        assert!(train.iter().all(|w| !test.contains(w)));
    }
    for list in lists {
        let (train, test) = (Phrasings::Train.bank(list), Phrasings::Test.bank(list));
        assert_eq!(train.len() + test.len(), list.len());
        assert!(train.iter().all(|w| !test.contains(w)));
        assert_eq!(Phrasings::All.bank(list), list.to_vec());
    }
    // The fixed text of each train-bank wrapper: its longest piece between slots.
    let train_only: Vec<&str> = lists
        .iter()
        .flat_map(|l| Phrasings::Train.bank(l))
        .filter_map(|w| {
            w.1.split(['{', '}'])
                .filter(|p| p.chars().count() >= 25)
                .max_by_key(|p| p.len())
        })
        .collect();
    assert!(train_only.len() >= 15, "{train_only:?}");
    let mut o = opts(Path::new("/unused"), 11);
    o.benign_accounts = 0;
    o.phrasings = Phrasings::Test;
    let mut accounts = generate(corpora(), &o);
    // Randomised campaigns too, whose wording is assembled from the parts.
    o.randomise = true;
    accounts.extend(generate(corpora(), &o));
    let parts: Vec<&str> = [text::OPENERS, text::FORMAT_DEMANDS]
        .iter()
        .flat_map(|l| Phrasings::Train.bank(l))
        .collect();
    for part in &parts {
        assert!(
            !accounts
                .iter()
                .flat_map(|a| &a.requests)
                .any(|r| r.prompt.contains(part)),
            "train part {part:?} in test-bank traffic"
        );
    }
    o.randomise = false;
    let prompts: Vec<&str> = accounts
        .iter()
        .flat_map(|a| a.requests.iter().map(|r| r.prompt.as_str()))
        .collect();
    assert!(prompts.len() > 1000);
    for piece in &train_only {
        assert!(
            !prompts.iter().any(|p| p.contains(piece.trim())),
            "train wording {piece:?} in test-bank traffic"
        );
    }
    // ...while the train bank's own traffic does use it.
    o.phrasings = Phrasings::Train;
    let train_traffic: String = generate(corpora(), &o)
        .iter()
        .flat_map(|a| a.requests.iter().map(|r| r.prompt.clone()))
        .collect();
    let used = train_only
        .iter()
        .filter(|p| train_traffic.contains(p.trim()))
        .count();
    assert!(
        used * 2 >= train_only.len(),
        "{used} of {}",
        train_only.len()
    );
}

/// `--randomise`: every kind keeps what it asks for, while accounts, volumes, cover, system
/// prompts and networks vary from campaign to campaign; the same seed gives the same traffic.
#[test]
fn randomised_campaigns_vary_their_strategy_and_stay_reproducible() {
    let mut o = opts(Path::new("/unused"), 21);
    o.benign_accounts = 0;
    o.campaigns = extraction_plan().len() * 3;
    o.randomise = true;
    let a = generate(corpora(), &o);
    let b = generate(corpora(), &o);
    assert_eq!(a.len(), b.len());
    assert!(a
        .iter()
        .zip(&b)
        .all(|(x, y)| x.id == y.id && x.requests.len() == y.requests.len()));
    let mut by_campaign: BTreeMap<&str, Vec<&Account>> = BTreeMap::new();
    for acc in &a {
        by_campaign
            .entry(acc.campaign.as_deref().unwrap())
            .or_default()
            .push(acc);
    }
    assert_eq!(by_campaign.len(), o.campaigns);
    let sizes: BTreeSet<usize> = by_campaign.values().map(|v| v.len()).collect();
    assert!(
        *sizes.first().unwrap() <= 3 && *sizes.last().unwrap() >= 60,
        "{sizes:?}"
    );
    // System prompts: some campaigns share one, some give each account its own, some none.
    let (mut shared, mut own, mut none) = (0, 0, 0);
    for accs in by_campaign.values().filter(|v| v.len() >= 3) {
        let systems: BTreeSet<Option<&str>> = accs
            .iter()
            .flat_map(|x| &x.requests)
            .filter(|r| r.origin.is_some_and(|o| o.conv.is_none()))
            .map(|r| r.system_prompt.as_deref())
            .collect();
        match systems.len() {
            1 if systems.contains(&None) => none += 1,
            1 => shared += 1,
            _ => own += 1,
        }
    }
    assert!(shared > 0 && own > 0 && none > 0, "{shared} {own} {none}");
    // Every preset kind still appears, and accounts of one proxy-pool campaign share exits.
    let kinds: BTreeSet<&str> = a.iter().map(|x| x.kind).collect();
    assert_eq!(kinds.len(), extraction_plan().len());
    let mut another = o.clone();
    another.seed = 22;
    let c = generate(corpora(), &another);
    assert!(
        c.len() != a.len()
            || c.iter()
                .zip(&a)
                .any(|(x, y)| x.requests.len() != y.requests.len())
    );
}

/// The new hard negatives carry what makes them hard: an enterprise team shares its NAT
/// addresses and system prompt, a coding agent's product prompt is the same across its users,
/// tutoring conversations have follow-ups.
#[test]
fn hard_negatives_share_infrastructure_and_prompts_like_campaigns_do() {
    let mut o = opts(Path::new("/unused"), 5);
    o.campaigns = 0;
    o.benign_accounts = 400;
    o.kinds = Some(
        ["enterprise_team", "coding_agent_user", "tutoring_platform"]
            .map(String::from)
            .to_vec(),
    );
    let accounts = generate(corpora(), &o);
    let of = |k: &'static str| accounts.iter().filter(move |a| a.kind == k);
    assert!(of("enterprise_team").count() >= 4);
    let ips = |a: &Account| -> BTreeSet<String> {
        a.requests
            .iter()
            .map(|r| r.ip.as_deref().unwrap().to_string())
            .collect()
    };
    let team: Vec<&Account> = of("enterprise_team").collect();
    let shared = team
        .iter()
        .filter(|x| {
            team.iter()
                .any(|y| y.id != x.id && !ips(x).is_disjoint(&ips(y)))
        })
        .count();
    assert!(shared * 10 >= team.len() * 9, "{shared} of {}", team.len());
    let agent_systems: BTreeMap<&str, usize> =
        of("coding_agent_user").fold(BTreeMap::new(), |mut m, a| {
            *m.entry(a.requests[0].system_prompt.as_deref().unwrap())
                .or_default() += 1;
            m
        });
    assert!(agent_systems.values().any(|&n| n >= 2), "{agent_systems:?}");
    for a in of("tutoring_platform") {
        let mut convs: HashMap<&str, usize> = HashMap::new();
        for r in &a.requests {
            *convs
                .entry(r.conversation_id.as_deref().unwrap())
                .or_default() += 1;
        }
        assert!(convs.values().any(|&n| n > 1), "follow-ups");
    }
}

/// `--address-churn` changes only the addresses, and only people's: some people switch among
/// a carrier's /16 or shared VPN exits between conversations, never inside one; every other
/// field and every other account is byte-identical; a share above 1 is refused.
#[test]
fn address_churn_moves_only_peoples_addresses() {
    let run = |share: f64| {
        let mut o = opts(Path::new("/unused"), 29);
        o.benign_accounts = 120;
        o.campaigns = 3;
        o.address_churn = share;
        generate(corpora(), &o)
    };
    let (plain, churned) = (run(0.0), run(0.5));
    assert_eq!(plain.len(), churned.len());
    let (mut people, mut moved) = (0, 0);
    let mut exits: std::collections::HashMap<String, BTreeSet<String>> = Default::default();
    for (p, c) in plain.iter().zip(&churned) {
        assert_eq!(
            (&p.id, p.kind, p.requests.len()),
            (&c.id, c.kind, c.requests.len())
        );
        let is_person = super::churn::is_person(p.kind);
        people += usize::from(is_person);
        let mut changed = false;
        let mut conv_ip: std::collections::HashMap<String, String> = Default::default();
        for (a, b) in p.requests.iter().zip(&c.requests) {
            assert_eq!(
                (a.ts, &a.prompt, &a.conversation_id),
                (b.ts, &b.prompt, &b.conversation_id)
            );
            assert_eq!(
                (a.model, a.user_agent, &a.system_prompt),
                (b.model, b.user_agent, &b.system_prompt)
            );
            changed |= a.ip != b.ip;
            if let (Some(conv), Some(ip)) = (&b.conversation_id, &b.ip) {
                let first = conv_ip.entry(conv.to_string()).or_insert(ip.to_string());
                assert_eq!(first, &ip.to_string(), "one address per conversation");
            }
            if a.ip != b.ip {
                exits
                    .entry(b.ip.as_deref().unwrap().to_string())
                    .or_default()
                    .insert(c.id.clone());
            }
        }
        assert!(is_person || !changed, "{} is not a person", p.kind);
        moved += usize::from(changed);
    }
    // About half the people churn (fewer show it: a one-request person may keep their address).
    assert!(
        moved * 5 > people && moved * 5 < people * 4,
        "{moved} of {people}"
    );
    // VPN exits are shared by several honest accounts.
    assert!(exits.values().any(|ids| ids.len() >= 2), "no shared exit");
    let mut o = opts(Path::new("/unused"), 1);
    o.address_churn = 1.5;
    assert_eq!(o.validate().unwrap_err().exit_code(), 2);
}
