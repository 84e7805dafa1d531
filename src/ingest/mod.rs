//! Streaming reader for request logs (JSONL, one request per line; contract in DESIGN.md).
//!
//! The reader never holds more than one line: a week of logs streams through in constant memory.
//! Each line is validated field by field, so an error names the file, the 1-based line and the
//! field at fault. By default the first bad line stops the run; with `skip_invalid` bad lines are
//! counted, the first few kept with their errors, and reading goes on, so that nothing a user gave
//! disappears unreported. Blank lines carry no request and are counted, not treated as errors.
//! While reading, the raw bytes are hashed (SHA-256) so that a run records exactly which input it
//! saw without a second pass over the file.

pub mod labels;
mod timestamp;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};

pub use labels::{Label, Labels};
pub use timestamp::{hour_of, parse_timestamp, HOUR_MS};

/// One validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// 1-based line number in the input file.
    pub line: u64,
    pub account_id: String,
    /// Milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: i64,
    pub prompt: String,
    pub conversation_id: Option<String>,
    pub system_prompt: Option<String>,
    pub response_tokens: Option<u64>,
    pub model: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// How many lines were skipped under `--skip-invalid`, and which.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SkipReport {
    pub count: u64,
    /// The first [`SkipReport::KEEP`] skipped lines with their errors.
    pub first: Vec<SkippedLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedLine {
    pub line: u64,
    pub error: String,
}

impl SkipReport {
    pub const KEEP: usize = 10;

    fn record(&mut self, line: u64, err: &Error) {
        self.count += 1;
        if self.first.len() < Self::KEEP {
            self.first.push(SkippedLine {
                line,
                error: err.to_string(),
            });
        }
    }

    /// One line for stderr, e.g. `skipped 3 invalid lines (lines 4, 9, 12)`.
    pub fn summary(&self) -> String {
        let lines: Vec<String> = self.first.iter().map(|s| s.line.to_string()).collect();
        let more = if self.count as usize > self.first.len() {
            ", ..."
        } else {
            ""
        };
        format!(
            "skipped {} invalid line{} (line{} {}{more})",
            self.count,
            if self.count == 1 { "" } else { "s" },
            if self.count == 1 { "" } else { "s" },
            lines.join(", ")
        )
    }
}

/// What reading the whole file found, available once the reader is exhausted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadStats {
    pub bytes: u64,
    pub lines: u64,
    pub requests: u64,
    pub blank_lines: u64,
    pub skipped: SkipReport,
}

/// Iterator over the valid requests of one JSONL file.
pub struct RequestReader<R: Read> {
    path: PathBuf,
    reader: BufReader<R>,
    buf: Vec<u8>,
    hasher: Sha256,
    skip_invalid: bool,
    stats: ReadStats,
    done: bool,
}

impl RequestReader<File> {
    /// Open `path` for reading.
    pub fn open(path: &Path, skip_invalid: bool) -> Result<Self> {
        let file = File::open(path).at(path)?;
        Ok(Self::new(path, file, skip_invalid))
    }
}

impl<R: Read> RequestReader<R> {
    /// Read requests from any byte source; `path` is used in error messages.
    pub fn new(path: &Path, source: R, skip_invalid: bool) -> Self {
        RequestReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, source),
            buf: Vec::new(),
            hasher: Sha256::new(),
            skip_invalid,
            stats: ReadStats::default(),
            done: false,
        }
    }

    /// Bytes consumed so far (for progress bars).
    pub fn bytes_read(&self) -> u64 {
        self.stats.bytes
    }

    /// Counts so far; complete once the iterator has returned `None`.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// Consume the reader: counts and the SHA-256 (hex) of every byte read.
    /// Fails if the file held no valid request at all.
    pub fn finish(self) -> Result<(ReadStats, String)> {
        if self.stats.requests == 0 {
            let msg = if self.stats.lines == 0 || self.stats.lines == self.stats.blank_lines {
                "empty file: no requests".to_string()
            } else {
                format!(
                    "no valid requests ({}): every line was invalid",
                    self.stats.skipped.summary()
                )
            };
            return Err(Error::file(&self.path, msg));
        }
        Ok((self.stats, hex(&self.hasher.finalize())))
    }

    fn next_line(&mut self) -> Result<bool> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .at(&self.path)?;
        if n == 0 {
            return Ok(false);
        }
        self.hasher.update(&self.buf);
        self.stats.bytes += n as u64;
        self.stats.lines += 1;
        Ok(true)
    }
}

impl<R: Read> Iterator for RequestReader<R> {
    type Item = Result<Request>;

    fn next(&mut self) -> Option<Result<Request>> {
        while !self.done {
            match self.next_line() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(false) => self.done = true,
                Ok(true) => {
                    let line_no = self.stats.lines;
                    match parse_line(&self.path, line_no, &self.buf) {
                        Ok(None) => self.stats.blank_lines += 1,
                        Ok(Some(req)) => {
                            self.stats.requests += 1;
                            return Some(Ok(req));
                        }
                        Err(e) if self.skip_invalid => self.stats.skipped.record(line_no, &e),
                        Err(e) => {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                }
            }
        }
        None
    }
}

/// The fields of the contract, each still an untyped JSON value so that type errors can name
/// the field. Unknown fields are ignored.
#[derive(Deserialize)]
struct RawRequest {
    account_id: Option<Value>,
    timestamp: Option<Value>,
    prompt: Option<Value>,
    conversation_id: Option<Value>,
    system_prompt: Option<Value>,
    response_tokens: Option<Value>,
    model: Option<Value>,
    ip: Option<Value>,
    user_agent: Option<Value>,
}

/// Decode one JSONL line into `T`: UTF-8 check, line ending stripped, `Ok(None)` for a blank
/// line, and errors naming file, line and the field serde names (a missing field), else
/// `(line)`. Shared by every JSONL reader of the crate (request logs, corpora, labels, scores).
pub fn parse_json_line<T: serde::de::DeserializeOwned>(
    path: &Path,
    line: u64,
    bytes: &[u8],
) -> Result<Option<T>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::input(
            path,
            line,
            "(line)",
            format!(
                "not valid UTF-8 (bad byte at column {})",
                e.valid_up_to() + 1
            ),
        )
    })?;
    let text = text.trim_end_matches(['\n', '\r']);
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text).map(Some).map_err(|e| {
        if !e.is_data() {
            return Error::input(path, line, "(line)", format!("malformed JSON: {e}"));
        }
        // serde names the field it misses between backticks: "missing field `score`".
        let msg = e.to_string();
        let field = msg
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .unwrap_or("(line)");
        Error::input(path, line, field, format!("expected a JSON object: {e}"))
    })
}

/// Call `f(line_number, bytes)` for every line of `path` (1-based; line ending included),
/// reading one line at a time. Pair with [`parse_json_line`] to decode.
pub fn for_each_line(path: &Path, mut f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
    let mut reader = BufReader::new(File::open(path).at(path)?);
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).at(path)? == 0 {
            return Ok(());
        }
        line += 1;
        f(line, &buf)?;
    }
}

/// Parse one line; `Ok(None)` for a blank line.
pub fn parse_line(path: &Path, line: u64, bytes: &[u8]) -> Result<Option<Request>> {
    let Some(raw) = parse_json_line::<RawRequest>(path, line, bytes)? else {
        return Ok(None);
    };
    let err = |field: &str, msg: String| Error::input(path, line, field, msg);

    let account_id =
        required_string(raw.account_id, "account_id").map_err(|m| err("account_id", m))?;
    if account_id.is_empty() {
        return Err(err("account_id", "must not be empty".into()));
    }
    let prompt = required_string(raw.prompt, "prompt").map_err(|m| err("prompt", m))?;
    let timestamp_ms = match raw.timestamp {
        None | Some(Value::Null) => return Err(err("timestamp", "missing required field".into())),
        Some(v) => parse_timestamp(&v).map_err(|m| err("timestamp", m))?,
    };
    let response_tokens = match raw.response_tokens {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(v) => {
            return Err(err(
                "response_tokens",
                format!("expected a non-negative integer, got {}", brief(&v)),
            ))
        }
    };
    Ok(Some(Request {
        line,
        account_id,
        timestamp_ms,
        prompt,
        conversation_id: optional_string(raw.conversation_id)
            .map_err(|m| err("conversation_id", m))?,
        system_prompt: optional_string(raw.system_prompt).map_err(|m| err("system_prompt", m))?,
        response_tokens,
        model: optional_string(raw.model).map_err(|m| err("model", m))?,
        ip: optional_string(raw.ip).map_err(|m| err("ip", m))?,
        user_agent: optional_string(raw.user_agent).map_err(|m| err("user_agent", m))?,
    }))
}

fn required_string(v: Option<Value>, _field: &str) -> std::result::Result<String, String> {
    match v {
        None | Some(Value::Null) => Err("missing required field".into()),
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(format!("expected a string, got {}", brief(&v))),
    }
}

fn optional_string(v: Option<Value>) -> std::result::Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(format!("expected a string, got {}", brief(&v))),
    }
}

/// A JSON value shortened for an error message.
pub(crate) fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

pub(crate) use crate::hash::hex;

#[cfg(test)]
mod tests;
