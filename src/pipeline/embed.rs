//! `embed`: stream the log once; for each request hash the prompt, give a new text the next
//! embedding row, append the request to the table. New texts wait in a chunk; a full chunk is
//! tokenized, length-sorted, embedded and dropped, so memory holds the embeddings and one chunk
//! of text, never the log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::device;
use crate::embed::Embedder;
use crate::error::{IoContext, Result};
use crate::ingest::{hex, RequestReader};
use crate::lexical;
use crate::progress::Progress;
use crate::run::{
    self, EmbeddingsInfo, InputInfo, Manifest, RequestRecord, RowInfo, StoreDType, TableWriter,
    Timing,
};
use crate::shingles;

/// Distinct prompts embedded together; large enough for good length bucketing.
const CHUNK: usize = 8192;

pub struct EmbedJob<'a> {
    pub input: PathBuf,
    pub out: PathBuf,
    pub skip_invalid: bool,
    pub store_dtype: StoreDType,
    pub embedder: &'a Embedder,
    /// Told of the bytes of input read, each embedded chunk, and skipped lines.
    pub progress: &'a dyn Progress,
}

fn prompt_key(text: &str) -> [u8; 16] {
    let d = Sha256::digest(text.as_bytes());
    d[..16].try_into().expect("16 bytes")
}

/// Hex of the first 16 bytes of a SHA-256, for identities that do not need the text.
pub fn short_hash(text: &str) -> String {
    hex(&prompt_key(text))
}

struct Pending<'a> {
    embedder: &'a Embedder,
    texts: Vec<String>,
    embeddings: Vec<f32>,
    rows: RowInfo,
    shingles: run::RowShingles,
    truncated: u64,
    timing: Timing,
}

impl Pending<'_> {
    fn flush(&mut self) -> Result<()> {
        if self.texts.is_empty() {
            return Ok(());
        }
        let t0 = Instant::now();
        let refs: Vec<&str> = self.texts.iter().map(String::as_str).collect();
        let tok = self.embedder.tokenize(&refs)?;
        let t1 = Instant::now();
        let emb = self.embedder.embed_tokenized(&tok)?;
        self.timing.tokenize_seconds += (t1 - t0).as_secs_f64();
        self.timing.model_seconds += t1.elapsed().as_secs_f64();
        self.truncated += tok.iter().filter(|t| t.truncated).count() as u64;
        self.rows
            .tokens
            .extend(tok.iter().map(|t| t.ids.len() as u32));
        for t in &self.texts {
            self.rows.markers.push(lexical::markers(t));
            self.shingles.push(&shingles::shingles(t))?;
            self.rows
                .chars
                .push(t.chars().count().min(u32::MAX as usize) as u32);
        }
        self.embeddings.extend_from_slice(&emb);
        self.texts.clear();
        Ok(())
    }
}

/// Run `embed` end to end and return the manifest it wrote.
pub fn embed(job: &EmbedJob) -> Result<Manifest> {
    let started = Instant::now();
    let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    std::fs::create_dir_all(&job.out).at(&job.out)?;
    let total = std::fs::metadata(&job.input).at(&job.input)?.len();
    job.progress.stage("embed", Some(total));

    let mut reader = RequestReader::open(&job.input, job.skip_invalid)?;
    let mut table = TableWriter::create(&job.out)?;
    let mut rows: HashMap<[u8; 16], u32> = HashMap::new();
    let mut pending = Pending {
        embedder: job.embedder,
        texts: Vec::new(),
        embeddings: Vec::new(),
        rows: RowInfo::default(),
        shingles: run::RowShingles::default(),
        truncated: 0,
        timing: Timing::default(),
    };
    let mut duplicates = 0u64;
    while let Some(req) = reader.next() {
        let req = req?;
        let next = rows.len() as u32;
        let row = *rows.entry(prompt_key(&req.prompt)).or_insert(next);
        if row == next {
            pending.texts.push(req.prompt);
        } else {
            duplicates += 1;
        }
        table.write(&RequestRecord {
            line: req.line,
            account_id: req.account_id,
            timestamp_ms: req.timestamp_ms,
            row,
            conversation_id: req.conversation_id,
            system_prompt_sha: req.system_prompt.as_deref().map(short_hash),
            response_tokens: req.response_tokens,
            model: req.model,
            ip: req.ip,
            user_agent: req.user_agent,
        })?;
        if pending.texts.len() >= CHUNK {
            pending.flush()?;
            job.progress.milestone(&format!(
                "embed: {} distinct prompts embedded, {:.0}% of {} read, {:.0} s",
                rows.len(),
                100.0 * reader.bytes_read() as f64 / total.max(1) as f64,
                job.input.display(),
                started.elapsed().as_secs_f64()
            ));
        }
        job.progress.advance(reader.bytes_read());
    }
    pending.flush()?;
    job.progress.done();
    let (stats, sha256) = reader.finish()?;
    if stats.skipped.count > 0 {
        job.progress.note(&format!(
            "{}: {}",
            job.input.display(),
            stats.skipped.summary()
        ));
    }
    table.commit()?;

    let dim = job.embedder.dim();
    let rows_n = pending.rows.tokens.len() as u64;
    let tokens_total: u64 = pending.rows.tokens.iter().map(|&t| t as u64).sum();
    run::write_shingles(&job.out, std::mem::take(&mut pending.shingles))?;
    run::write_embeddings(
        &job.out,
        pending.embeddings,
        dim,
        pending.rows,
        job.store_dtype,
    )?;
    let mut timing = pending.timing;
    timing.wall_seconds = started.elapsed().as_secs_f64();
    let manifest = Manifest {
        tool: "distillguard".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        format_version: run::FORMAT_VERSION,
        created_at,
        input: InputInfo {
            path: absolute(&job.input),
            sha256,
            bytes: stats.bytes,
            lines: stats.lines,
            requests: stats.requests,
            blank_lines: stats.blank_lines,
            skipped: stats.skipped,
        },
        model: job.embedder.info().clone(),
        embeddings: EmbeddingsInfo {
            file: run::EMBEDDINGS.into(),
            table: run::REQUESTS.into(),
            rows: rows_n,
            dim,
            dtype: job.store_dtype.name().into(),
            duplicate_requests: duplicates,
            truncated_prompts: pending.truncated,
            tokens: tokens_total,
        },
        device: device::name(job.embedder.device()),
        threads: candle_core::utils::get_num_threads(),
        timing,
    };
    run::write_manifest(&job.out, &manifest)?;
    Ok(manifest)
}

/// Write the shingles ([`crate::shingles`]) of every distinct prompt of `input` into the run
/// directory `dir`, row for row as [`embed`] numbered them (first-seen order of the prompt
/// hashes, lines skipped by the same rule): for a run directory embedded before shingles
/// existed, which gets them from one pass over the log (seconds) instead of being embedded
/// again (minutes). `embed` computes them as it goes. `rows` is the run's row count, checked
/// at the end.
pub fn build_shingles(input: &Path, dir: &Path, skip_invalid: bool, rows: u64) -> Result<()> {
    let mut reader = RequestReader::open(input, skip_invalid)?;
    let mut seen: std::collections::HashSet<[u8; 16]> = std::collections::HashSet::new();
    let mut out = run::RowShingles::default();
    for req in reader.by_ref() {
        let req = req?;
        if seen.insert(prompt_key(&req.prompt)) {
            out.push(&shingles::shingles(&req.prompt))?;
        }
    }
    reader.finish()?;
    if out.rows() as u64 != rows {
        return Err(crate::error::Error::file(
            input,
            format!(
                "holds {} distinct prompts but the run directory {} has {rows}: the input changed",
                out.rows(),
                dir.display()
            ),
        ));
    }
    run::write_shingles(dir, out)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
