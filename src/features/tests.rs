use candle_core::Device;

use super::*;
use crate::run::RequestRecord;

fn rec(
    account: &str,
    ts_s: i64,
    row: u32,
    conv: Option<&str>,
    system: Option<&str>,
) -> Result<RequestRecord> {
    Ok(RequestRecord {
        line: 0,
        account_id: account.into(),
        timestamp_ms: ts_s * 1000,
        row,
        conversation_id: conv.map(Into::into),
        system_prompt_sha: system.map(Into::into),
        response_tokens: Some(100),
        model: None,
        ip: None,
        user_agent: None,
    })
}

fn feature(f: &LocalFeatures, a: usize, name: &str) -> f32 {
    let i = LOCAL_FEATURES.iter().position(|n| *n == name).unwrap();
    f.row(a)[i]
}

/// Rows 0 and 1 identical, row 2 orthogonal, row 3 close to row 2 (cos 0.8).
fn embeddings() -> (Tensor, RowInfo) {
    let mut v = vec![0f32; 4 * 4];
    v[0] = 1.0;
    v[4] = 1.0;
    v[8 + 1] = 1.0;
    v[12 + 1] = 0.8;
    v[12 + 2] = 0.6;
    let info = RowInfo {
        tokens: vec![10, 10, 20, 30],
        chars: vec![40, 40, 80, 120],
        markers: vec![
            Marker::Reasoning.bit(),
            Marker::Reasoning.bit(),
            0,
            Marker::Grading.bit(),
        ],
    };
    (Tensor::from_vec(v, (4, 4), &Device::Cpu).unwrap(), info)
}

#[test]
fn groups_by_account_in_time_order() {
    let recs = vec![
        rec("b", 50, 2, None, None),
        rec("a", 30, 1, None, None),
        rec("a", 10, 0, None, None),
    ];
    let acc = Accounts::from_records(recs.into_iter()).unwrap();
    assert_eq!(acc.ids, vec!["b", "a"]);
    assert_eq!(
        acc.requests[1].iter().map(|q| q.ts_ms).collect::<Vec<_>>(),
        vec![10_000, 30_000]
    );
}

#[test]
fn timing_conversation_and_marker_features() {
    // Account "s": a scripted sweep, 10 s apart, all single-shot, same system prompt, rows 0,1,0.
    // Account "h": one conversation of three turns at uneven gaps.
    let recs = vec![
        rec("s", 0, 0, None, Some("sys")),
        rec("s", 10, 1, None, Some("sys")),
        rec("s", 20, 0, None, Some("sys")),
        rec("h", 0, 2, Some("c1"), None),
        rec("h", 60, 3, Some("c1"), None),
        rec("h", 600, 2, Some("c1"), None),
    ];
    let acc = Accounts::from_records(recs.into_iter()).unwrap();
    assert_eq!(acc.systems, 1);
    let (emb, info) = embeddings();
    let f = local(&emb, &info, &acc, Normal::Log).unwrap();
    assert!((feature(&f, 0, "log_requests") - 4f32.ln()).abs() < 1e-6);
    assert_eq!(feature(&f, 0, "gap_cv"), 0.0, "perfectly regular gaps");
    assert_eq!(feature(&f, 0, "gap_regularity"), 1.0);
    assert!((feature(&f, 0, "log_median_gap_s") - 11f32.ln()).abs() < 1e-6);
    assert_eq!(feature(&f, 0, "single_shot_rate"), 1.0);
    assert_eq!(feature(&f, 0, "followup_rate"), 0.0);
    assert_eq!(feature(&f, 0, "system_prompt_rate"), 1.0);
    assert_eq!(feature(&f, 0, "marker_reasoning"), 1.0);
    assert!((feature(&f, 0, "distinct_prompt_ratio") - 2.0 / 3.0).abs() < 1e-6);
    assert_eq!(feature(&f, 1, "followup_rate"), 2.0 / 3.0);
    assert_eq!(feature(&f, 1, "single_shot_rate"), 0.0);
    assert!((feature(&f, 1, "marker_grading") - 1.0 / 3.0).abs() < 1e-6);
    assert!(feature(&f, 1, "gap_cv") > 0.5, "uneven gaps are bursty");
    assert!(
        (feature(&f, 1, "log_mean_chars") - (1.0f32 + (80.0 + 120.0 + 80.0) / 3.0).ln()).abs()
            < 1e-5
    );
}

#[test]
fn embedding_geometry() {
    let recs = vec![
        rec("dup", 0, 0, None, None),
        rec("dup", 5, 1, None, None),
        rec("pair", 0, 2, None, None),
        rec("pair", 5, 3, None, None),
        rec("one", 0, 2, None, None),
    ];
    let acc = Accounts::from_records(recs.into_iter()).unwrap();
    let (emb, info) = embeddings();
    let f = local(&emb, &info, &acc, Normal::Log).unwrap();
    // Two identical prompts: one near-duplicate pair out of one, both reuse a template.
    assert_eq!(feature(&f, 0, "near_dup_rate"), 1.0);
    assert_eq!(feature(&f, 0, "template_rate"), 1.0);
    assert!((feature(&f, 0, "concentration") - 1.0).abs() < 1e-6);
    assert!(feature(&f, 0, "successive_jump").abs() < 1e-6);
    // cos 0.8: below the near-duplicate bar, above the template bar.
    assert_eq!(feature(&f, 1, "near_dup_rate"), 0.0);
    assert_eq!(feature(&f, 1, "template_rate"), 1.0);
    assert!((feature(&f, 1, "mean_max_sim") - 0.8).abs() < 1e-6);
    assert!((feature(&f, 1, "successive_jump") - 0.2).abs() < 1e-6);
    // A single prompt has no pairs: geometry features are 0, the behaviour vector is the prompt.
    assert_eq!(feature(&f, 2, "near_dup_rate"), 0.0);
    assert_eq!(f.behaviour(2), &[0.0, 1.0, 0.0, 0.0]);
    for a in 0..3 {
        let n: f32 = f.behaviour(a).iter().map(|v| v * v).sum();
        assert!((n - 1.0).abs() < 1e-5);
    }
}

#[test]
fn large_accounts_are_sampled_evenly() {
    let recs = (0..1000).map(|i| rec("big", i, i as u32, None, None));
    let acc = Accounts::from_records(recs).unwrap();
    let rows = acc.distinct_rows(0, 10);
    assert_eq!(rows, (0..10).map(|i| i * 100).collect::<Vec<u32>>());
}

/// A log of one chat endpoint: 10 honest accounts asking around one direction of the
/// embedding space and `campaign` accounts sweeping another, 12 distinct prompts each, plus
/// one account on a task endpoint (`math`, 70 prompts) around a third direction.
fn mixed_log(campaign: usize) -> (Tensor, RowInfo, Accounts) {
    let dim = 16;
    let mut v: Vec<f32> = Vec::new();
    let mut recs = Vec::new();
    let mut state = 7u64;
    let mut push = |account: String, model: &str, centre: usize, n: usize, v: &mut Vec<f32>| {
        for i in 0..n {
            let mut e: Vec<f32> = (0..dim)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    ((state >> 33) % 1000) as f32 / 1000.0 - 0.5
                })
                .collect();
            e[centre] += 2.0;
            let norm = e.iter().map(|x| x * x).sum::<f32>().sqrt();
            e.iter_mut().for_each(|x| *x /= norm);
            let row = (v.len() / dim) as u32;
            v.extend(e);
            let mut r = rec(&account, i as i64 * 60, row, None, None).unwrap();
            r.model = Some(model.into());
            recs.push(Ok(r));
        }
    };
    for h in 0..10 {
        push(format!("h{h}"), "chat", 0, 12, &mut v);
    }
    for c in 0..campaign {
        push(format!("c{c}"), "chat", 1, 12, &mut v);
    }
    push("student".into(), "math", 2, 70, &mut v);
    let rows = v.len() / dim;
    let info = RowInfo {
        tokens: vec![10; rows],
        chars: vec![40; rows],
        markers: vec![0; rows],
    };
    let acc = Accounts::from_records(recs.into_iter()).unwrap();
    (
        Tensor::from_vec(v, (rows, dim), &Device::Cpu).unwrap(),
        info,
        acc,
    )
}

#[test]
fn a_given_normal_traffic_makes_honest_accounts_independent_of_the_campaign_mix() {
    let (few_emb, few_info, few) = mixed_log(2);
    let (many_emb, many_info, many) = mixed_log(30);
    let shift = |f: &LocalFeatures| {
        (
            feature(f, 0, "shift_log_z"),
            feature(f, 0, "shift_log_p"),
            f.reference.centre(0).unwrap().to_vec(),
        )
    };
    // Against the log's own reference, an honest account's shift and centre move with how
    // much of the endpoint the campaign is (30 campaign accounts: 75% of its prompts).
    let log_few = local(&few_emb, &few_info, &few, Normal::Log).unwrap();
    let log_many = local(&many_emb, &many_info, &many, Normal::Log).unwrap();
    let (_, _, c_few) = shift(&log_few);
    let (_, _, c_many) = shift(&log_many);
    let moved: f32 = c_few.iter().zip(&c_many).map(|(a, b)| (a - b).abs()).sum();
    assert!(moved > 0.3, "the log's centre moved by {moved}");

    // Drawn from the honest accounts of one week and given to both, nothing about the honest
    // account depends on the rest of the log.
    let honest: std::collections::HashSet<String> = (0..10).map(|h| format!("h{h}")).collect();
    let drawn = local(&few_emb, &few_info, &few, Normal::Benign(&honest)).unwrap();
    let normal = drawn.normal.clone().expect("a sample was drawn");
    assert_eq!(normal.accounts, 10);
    assert!(
        normal.endpoints.contains_key(&Some("chat".to_string())),
        "the chat endpoint has 120 honest prompts"
    );
    assert!(
        !normal.endpoints.contains_key(&Some("math".to_string())),
        "no honest account was labelled on the math endpoint"
    );
    // Every sampled prompt is an honest one (around direction 0), none the campaign's.
    let chat = &normal.endpoints[&Some("chat".to_string())];
    for row in chat.reference.chunks(16).chain(chat.pool.chunks(16)) {
        assert!(row[0] > row[1], "a campaign prompt in the sample");
    }
    let given_few = local(&few_emb, &few_info, &few, Normal::Given(&normal)).unwrap();
    let given_many = local(&many_emb, &many_info, &many, Normal::Given(&normal)).unwrap();
    assert_eq!(shift(&given_few), shift(&given_many));
    // What training computed is what scoring with the saved sample computes.
    assert_eq!(given_few.x, drawn.x);
    assert_eq!(given_few.normal.as_ref(), Some(&normal));
    // The campaign accounts are shifted from the honest sample, the honest account is not.
    let campaign = feature(&given_many, 10, "shift_log_z");
    assert!(
        campaign > 1.0 && campaign > feature(&given_many, 0, "shift_log_z"),
        "campaign {campaign}"
    );
    // An endpoint the sample does not know uses the log's own reference: the student is
    // compared with its own endpoint, not with chat.
    let student = many.len() - 1;
    let own = given_many.reference.centre(student).unwrap();
    assert!(
        own[2] > own[0],
        "the student's centre is the math endpoint's"
    );
    assert_eq!(
        Some(own),
        log_many.reference.centre(student),
        "the log's own reference of the math endpoint"
    );
}

/// Local features relative to the endpoint's typical account: `train` keeps the medians of
/// the honest accounts of each endpoint with enough of them, scoring with them computes the
/// same values, an honest account's values do not depend on how many campaign accounts share
/// its endpoint, and an endpoint no model knows is compared with its own accounts.
#[test]
fn relative_features_compare_an_account_with_its_endpoints_typical_honest_account() {
    let (few_emb, few_info, few) = mixed_log(2);
    let (many_emb, many_info, many) = mixed_log(30);
    let col = |name: &str| LOCAL_FEATURES.iter().position(|n| *n == name).unwrap();
    let rel = |f: &LocalFeatures, a: usize, name: &str| f.relative_row(a)[col(name)];
    let honest: std::collections::HashSet<String> = (0..10).map(|h| format!("h{h}")).collect();
    let drawn = local(&few_emb, &few_info, &few, Normal::Benign(&honest)).unwrap();
    let normal = drawn.normal.clone().expect("a sample was drawn");
    // Ten honest accounts on chat (MIN_MEDIAN_ACCOUNTS), none on math.
    assert_eq!(
        normal.medians.keys().cloned().collect::<Vec<_>>(),
        vec![Some("chat".to_string())]
    );
    let med = &normal.medians[&Some("chat".to_string())];
    for a in 0..few.len() - 1 {
        for (j, m) in med.iter().enumerate() {
            assert_eq!(drawn.relative_row(a)[j], drawn.row(a)[j] - m);
        }
    }
    // Scoring with the saved medians computes what training did.
    let given_few = local(&few_emb, &few_info, &few, Normal::Given(&normal)).unwrap();
    assert_eq!(given_few.relative, drawn.relative);
    // With 30 campaign accounts on chat the log's own median is a campaign account's, and an
    // honest account looks unusual; against the saved medians it does not move.
    let given_many = local(&many_emb, &many_info, &many, Normal::Given(&normal)).unwrap();
    let log_many = local(&many_emb, &many_info, &many, Normal::Log).unwrap();
    for a in 0..10 {
        assert_eq!(given_many.relative_row(a), given_few.relative_row(a));
    }
    let shifted = rel(&given_many, 10, "shift_log_z");
    assert!(
        shifted > 0.5,
        "a campaign account against honest chat: {shifted}"
    );
    assert!(
        rel(&log_many, 0, "shift_log_z") > 0.5,
        "an honest account against a campaign majority: {}",
        rel(&log_many, 0, "shift_log_z")
    );
    // The student is alone on an endpoint no medians were kept for: it is its own typical
    // account.
    let student = many.len() - 1;
    assert!(given_many.relative_row(student).iter().all(|&v| v == 0.0));
}
