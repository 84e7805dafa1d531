use std::path::Path;

use super::*;

fn read(text: &[u8], skip: bool) -> (Vec<Result<Request>>, RequestReader<&[u8]>) {
    let mut r = RequestReader::new(Path::new("log.jsonl"), text, skip);
    let items: Vec<_> = r.by_ref().collect();
    (items, r)
}

fn first_error(text: &str) -> String {
    let (items, _) = read(text.as_bytes(), false);
    items
        .into_iter()
        .find_map(|r| r.err())
        .expect("an error")
        .to_string()
}

const OK: &str = r#"{"account_id":"a1","timestamp":"2026-01-02T03:04:05Z","prompt":"hi"}"#;

#[test]
fn parses_all_contract_fields_and_ignores_unknown_ones() {
    let line = r#"{"account_id":"acc","timestamp":1767323045000,"prompt":"p","conversation_id":"c",
        "system_prompt":"s","response_tokens":12,"model":"m","ip":"1.2.3.4","user_agent":"ua","extra":[1]}"#
        .replace('\n', "");
    let r = parse_line(Path::new("f"), 1, line.as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(r.account_id, "acc");
    assert_eq!(r.timestamp_ms, 1_767_323_045_000);
    assert_eq!(r.conversation_id.as_deref(), Some("c"));
    assert_eq!(r.system_prompt.as_deref(), Some("s"));
    assert_eq!(r.response_tokens, Some(12));
    assert_eq!(r.model.as_deref(), Some("m"));
    assert_eq!(r.ip.as_deref(), Some("1.2.3.4"));
    assert_eq!(r.user_agent.as_deref(), Some("ua"));
}

#[test]
fn rfc3339_and_epoch_millis_agree() {
    let a = parse_timestamp(&serde_json::json!("2026-01-02T03:04:05.250+01:00")).unwrap();
    let b = parse_timestamp(&serde_json::json!(1_767_319_445_250i64)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn errors_name_file_line_and_field() {
    let cases = [
        (
            format!("{OK}\n{{not json"),
            "log.jsonl:2: (line): malformed JSON",
        ),
        (
            "[1,2]".to_string(),
            "log.jsonl:1: (line): expected a JSON object",
        ),
        (
            r#"{"timestamp":1,"prompt":"x"}"#.to_string(),
            "log.jsonl:1: account_id: missing required field",
        ),
        (
            r#"{"account_id":"","timestamp":1,"prompt":"x"}"#.to_string(),
            "log.jsonl:1: account_id: must not be empty",
        ),
        (
            r#"{"account_id":7,"timestamp":1,"prompt":"x"}"#.to_string(),
            "log.jsonl:1: account_id: expected a string, got 7",
        ),
        (
            r#"{"account_id":"a","timestamp":1}"#.to_string(),
            "log.jsonl:1: prompt: missing required field",
        ),
        (
            r#"{"account_id":"a","prompt":"x"}"#.to_string(),
            "log.jsonl:1: timestamp: missing required field",
        ),
        (
            r#"{"account_id":"a","timestamp":"yesterday","prompt":"x"}"#.to_string(),
            "log.jsonl:1: timestamp: not an RFC 3339 timestamp",
        ),
        (
            r#"{"account_id":"a","timestamp":1.5,"prompt":"x"}"#.to_string(),
            "log.jsonl:1: timestamp: expected integer epoch milliseconds",
        ),
        (
            r#"{"account_id":"a","timestamp":true,"prompt":"x"}"#.to_string(),
            "log.jsonl:1: timestamp: expected an RFC 3339 string",
        ),
        (
            r#"{"account_id":"a","timestamp":1,"prompt":"x","response_tokens":-3}"#.to_string(),
            "log.jsonl:1: response_tokens: expected a non-negative integer",
        ),
        (
            r#"{"account_id":"a","timestamp":1,"prompt":"x","ip":5}"#.to_string(),
            "log.jsonl:1: ip: expected a string",
        ),
    ];
    for (text, want) in cases {
        let got = first_error(&text);
        assert!(
            got.starts_with(want),
            "input {text:?}\n got: {got}\nwant: {want}..."
        );
    }
}

#[test]
fn non_utf8_line_is_an_error_with_its_column() {
    let mut bytes = format!("{OK}\n").into_bytes();
    bytes.extend_from_slice(b"{\"account_id\":\"a\xff\"}\n");
    let (items, _) = read(&bytes, false);
    let e = items[1].as_ref().unwrap_err().to_string();
    assert!(
        e.starts_with("log.jsonl:2: (line): not valid UTF-8 (bad byte at column 17)"),
        "{e}"
    );
}

#[test]
fn stops_at_first_error_by_default() {
    let text = format!("{OK}\nbad\n{OK}\n");
    let (items, _) = read(text.as_bytes(), false);
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok() && items[1].is_err());
}

#[test]
fn skip_invalid_counts_and_reports_skipped_lines() {
    let text = format!("{OK}\nbad\n\n{OK}\n{{}}\n{OK}");
    let (items, r) = read(text.as_bytes(), true);
    assert_eq!(items.len(), 3);
    assert_eq!(
        items
            .iter()
            .map(|r| r.as_ref().unwrap().line)
            .collect::<Vec<_>>(),
        vec![1, 4, 6]
    );
    let (stats, sha) = r.finish().unwrap();
    assert_eq!(stats.lines, 6);
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.blank_lines, 1);
    assert_eq!(stats.skipped.count, 2);
    assert_eq!(
        stats
            .skipped
            .first
            .iter()
            .map(|s| s.line)
            .collect::<Vec<_>>(),
        vec![2, 5]
    );
    assert!(stats.skipped.first[1].error.contains("account_id: missing"));
    assert_eq!(
        stats.skipped.summary(),
        "skipped 2 invalid lines (lines 2, 5)"
    );
    assert_eq!(stats.bytes, text.len() as u64);
    assert_eq!(sha, hex(&Sha256::digest(text.as_bytes())));
}

#[test]
fn skip_report_keeps_only_the_first_few() {
    let text = "x\n".repeat(25) + OK;
    let (_, r) = read(text.as_bytes(), true);
    let (stats, _) = r.finish().unwrap();
    assert_eq!(stats.skipped.count, 25);
    assert_eq!(stats.skipped.first.len(), SkipReport::KEEP);
    assert!(stats.skipped.summary().ends_with(", ...)"));
}

#[test]
fn empty_or_all_invalid_file_is_an_error() {
    for text in ["", "\n\n  \n"] {
        let (_, r) = read(text.as_bytes(), false);
        assert_eq!(
            r.finish().unwrap_err().to_string(),
            "log.jsonl: empty file: no requests"
        );
    }
    let (_, r) = read(b"bad\n", true);
    let e = r.finish().unwrap_err().to_string();
    assert!(
        e.starts_with("log.jsonl: no valid requests (skipped 1 invalid line (line 1))"),
        "{e}"
    );
}

#[test]
fn crlf_and_missing_final_newline_are_accepted() {
    let text = format!("{OK}\r\n{OK}");
    let (items, _) = read(text.as_bytes(), false);
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|r| r.as_ref().unwrap().prompt == "hi"));
}
