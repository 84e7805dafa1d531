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
    let f = local(&emb, &info, &acc).unwrap();
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
    let f = local(&emb, &info, &acc).unwrap();
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
