use candle_core::{Device, Tensor};

use super::*;
use crate::features::{self, Accounts};
use crate::run::{RequestRecord, RowInfo};

fn rec(account: &str, ts_s: i64, row: u32, system: Option<&str>) -> Result<RequestRecord> {
    Ok(RequestRecord {
        line: 0,
        account_id: account.into(),
        timestamp_ms: ts_s * 1000,
        row,
        conversation_id: None,
        system_prompt_sha: system.map(Into::into),
        response_tokens: None,
        model: None,
        ip: None,
        user_agent: None,
    })
}

/// Accounts s0..s2 sweep the same ground (rows 0 and 1, close vectors) under one system prompt
/// in the same hours; "h" asks about something else (row 2, orthogonal).
#[test]
fn linked_accounts_form_a_campaign_and_outsiders_do_not() {
    let mut recs = Vec::new();
    for (i, a) in ["s0", "s1", "s2"].iter().enumerate() {
        recs.push(rec(a, i as i64 * 10, 0, Some("sys")));
        recs.push(rec(a, 100 + i as i64 * 10, 1, Some("sys")));
    }
    recs.push(rec("h", 0, 2, None));
    let acc = Accounts::from_records(recs.into_iter()).unwrap();
    let v = vec![1.0, 0.0, 0.0, 0.96, 0.28, 0.0, 0.0, 0.0, 1.0f32];
    let emb = Tensor::from_vec(v, (3, 3), &Device::Cpu).unwrap();
    let info = RowInfo {
        tokens: vec![5; 3],
        chars: vec![20; 3],
        markers: vec![0; 3],
    };
    let local = features::local(&emb, &info, &acc).unwrap();
    // Neighbours as the index would give them: the sweepers see each other at ~1.0, "h" at 0.
    let neighbors = vec![
        vec![(1, 0.99), (2, 0.99), (3, 0.0)],
        vec![(0, 0.99), (2, 0.99), (3, 0.0)],
        vec![(0, 0.99), (1, 0.99), (3, 0.0)],
        vec![(0, 0.0), (1, 0.0), (2, 0.0)],
    ];
    let ctx = analyse(&acc, &local, neighbors, &CampaignParams::default()).unwrap();
    assert_eq!(ctx.campaigns.len(), 1);
    let c = &ctx.campaigns[0];
    assert_eq!(c.members, vec![0, 1, 2]);
    assert_eq!(
        (
            c.id.as_str(),
            c.size,
            c.requests,
            c.shared_system_prompt_accounts
        ),
        ("G0001", 3, 6, 3)
    );
    assert_eq!(ctx.campaign_of[3], None);
    let f =
        |a: usize, name: &str| ctx.row(a)[CROSS_FEATURES.iter().position(|n| *n == name).unwrap()];
    assert!((f(0, "log_campaign_size") - 4f32.ln()).abs() < 1e-6);
    // Both of s0's neighbours among the sweepers use its system prompt; "h" has none.
    assert!((f(0, "log_system_prompt_neighbors") - 3f32.ln()).abs() < 1e-6);
    assert_eq!(f(3, "log_system_prompt_neighbors"), 0.0);
    assert_eq!(f(0, "sync_with_links"), 1.0);
    assert_eq!(f(0, "link_coverage"), 1.0);
    assert_eq!(f(3, "log_links"), 0.0);
    assert_eq!(f(3, "log_campaign_size"), 0.0);
    assert_eq!(
        feature_matrix(&local, &ctx).len(),
        4 * feature_names(local.dim).len()
    );
}
