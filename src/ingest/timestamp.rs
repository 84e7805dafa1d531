//! Timestamps: RFC 3339 strings or integer epoch milliseconds, nothing else.

use chrono::DateTime;
use serde_json::Value;

use super::brief;

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// The hour (since the epoch) that `ts_ms` falls in: the one bucketing of time into hours
/// that features, linking and `neighbors` share.
pub fn hour_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(HOUR_MS)
}

/// Milliseconds since the Unix epoch, or a message saying what was wrong.
pub fn parse_timestamp(v: &Value) -> Result<i64, String> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|e| format!("not an RFC 3339 timestamp ({e}): {}", brief(v))),
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            format!(
                "expected integer epoch milliseconds or an RFC 3339 string, got {}",
                brief(v)
            )
        }),
        _ => Err(format!(
            "expected an RFC 3339 string or integer epoch milliseconds, got {}",
            brief(v)
        )),
    }
}
