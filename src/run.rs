//! The run directory: what `embed` writes and later stages read back.
//!
//! ```text
//! RUN_DIR/manifest.json           what was read, with which model, on which device, how long
//! RUN_DIR/embeddings.safetensors  "embeddings" [rows, 384] f32|f16, L2-normalised, one row per
//!                                 distinct prompt (first-seen order); per row, u32: "tokens"
//!                                 (count after truncation), "chars" (prompt length in chars),
//!                                 "markers" (lexical marker bits, see lexical.rs)
//! RUN_DIR/requests.jsonl          one line per request, in input order: its input line, account,
//!                                 timestamp (epoch ms), embedding row and optional metadata
//! RUN_DIR/shingles.safetensors    per row, the prompt's word-shingle hashes (shingles.rs) in CSR
//!                                 form: u32 "offsets" [rows + 1], u32 "hashes"; metadata
//!                                 "scheme" names the shingling, so another one is never mixed in
//! RUN_DIR/index/                  the account index (hnsw_rs dump + index.json sidecar, written
//!                                 and read by index/store.rs)
//! RUN_DIR/features.safetensors    per account: feature matrix, behaviour vector, id, reported
//!                                 campaign (features.rs here)
//! RUN_DIR/score.json              counts and per-stage time and peak memory of the last `score`
//! ```
//! The first four come from embedding; the last three from detection, rewritten by each `score`
//! or `train`.
//! Files are written to a temporary name and renamed, so a crashed run never leaves a file that
//! looks complete. `FORMAT_VERSION` changes whenever a reader would misread an older run.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::embed::ModelInfo;
use crate::error::{Error, IoContext, Result};
use crate::ingest::SkipReport;

pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
pub const EMBEDDINGS: &str = "embeddings.safetensors";
pub const REQUESTS: &str = "requests.jsonl";
pub const SHINGLES: &str = "shingles.safetensors";
/// The account index's folder.
pub const INDEX_DIR: &str = "index";
/// Stage timings of the last `score`.
pub const SCORE_STATS: &str = "score.json";

mod features;
pub use features::{read_features, write_features, FeaturesOut, SavedFeatures, FEATURES};

/// One line of `requests.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub line: u64,
    pub account_id: String,
    pub timestamp_ms: i64,
    pub row: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// First 16 bytes of the SHA-256 of the system prompt, hex: identical system prompts compare
    /// equal without storing their text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt_sha: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub tool: String,
    pub version: String,
    pub format_version: u32,
    pub created_at: String,
    pub input: InputInfo,
    pub model: ModelInfo,
    pub embeddings: EmbeddingsInfo,
    pub device: String,
    pub threads: usize,
    pub timing: Timing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputInfo {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    pub lines: u64,
    pub requests: u64,
    pub blank_lines: u64,
    pub skipped: SkipReport,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsInfo {
    pub file: String,
    pub table: String,
    pub rows: u64,
    pub dim: usize,
    pub dtype: String,
    /// Requests whose prompt text had been seen before (embedded once, row shared).
    pub duplicate_requests: u64,
    /// Distinct prompts cut at `max_seq_len` tokens.
    pub truncated_prompts: u64,
    /// Tokens fed to the model, [CLS]/[SEP] included, after truncation.
    pub tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub wall_seconds: f64,
    pub tokenize_seconds: f64,
    pub model_seconds: f64,
}

/// Output precision of the stored embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDType {
    F32,
    F16,
}

impl StoreDType {
    pub fn candle(self) -> DType {
        match self {
            StoreDType::F32 => DType::F32,
            StoreDType::F16 => DType::F16,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            StoreDType::F32 => "f32",
            StoreDType::F16 => "f16",
        }
    }
}

/// Streams `requests.jsonl` to a temporary file; [`TableWriter::commit`] renames it into place.
pub struct TableWriter {
    tmp: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
}

impl TableWriter {
    pub fn create(dir: &Path) -> Result<Self> {
        let path = dir.join(REQUESTS);
        let tmp = dir.join(format!("{REQUESTS}.partial"));
        let out = BufWriter::new(File::create(&tmp).at(&tmp)?);
        Ok(TableWriter { tmp, path, out })
    }

    pub fn write(&mut self, rec: &RequestRecord) -> Result<()> {
        serde_json::to_writer(&mut self.out, rec).map_err(|e| Error::io(&self.tmp, e.into()))?;
        self.out.write_all(b"\n").at(&self.tmp)
    }

    pub fn commit(self) -> Result<()> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        file.sync_all().at(&self.tmp)?;
        std::fs::rename(&self.tmp, &self.path).at(&self.path)
    }
}

/// What is known of each distinct prompt besides its embedding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowInfo {
    /// Tokens after truncation, [CLS]/[SEP] included.
    pub tokens: Vec<u32>,
    /// Length of the prompt in characters.
    pub chars: Vec<u32>,
    /// Lexical marker bits ([`crate::lexical::Marker`]).
    pub markers: Vec<u32>,
}

/// Write the embedding matrix (`rows * dim` f32, row-major) and the per-row data.
pub fn write_embeddings(
    dir: &Path,
    data: Vec<f32>,
    dim: usize,
    info: RowInfo,
    dtype: StoreDType,
) -> Result<()> {
    let rows = info.tokens.len();
    let mut emb = Tensor::from_vec(data, (rows, dim), &Device::Cpu)?;
    if dtype.candle() != DType::F32 {
        emb = emb.to_dtype(dtype.candle())?;
    }
    let u32s = |v: Vec<u32>| Tensor::from_vec(v, rows, &Device::Cpu);
    let tensors = HashMap::from([
        ("embeddings".to_string(), emb),
        ("tokens".to_string(), u32s(info.tokens)?),
        ("chars".to_string(), u32s(info.chars)?),
        ("markers".to_string(), u32s(info.markers)?),
    ]);
    let path = dir.join(EMBEDDINGS);
    let tmp = dir.join(format!("{EMBEDDINGS}.partial"));
    candle_core::safetensors::save(&tensors, &tmp)?;
    std::fs::rename(&tmp, &path).at(&path)
}

/// Every row's shingle hashes, in CSR form: row `r` holds `hashes[offsets[r]..offsets[r + 1]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RowShingles {
    pub offsets: Vec<u32>,
    pub hashes: Vec<u32>,
}

impl Default for RowShingles {
    fn default() -> Self {
        RowShingles {
            offsets: vec![0],
            hashes: Vec::new(),
        }
    }
}

impl RowShingles {
    pub fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn row(&self, r: u32) -> &[u32] {
        let r = r as usize;
        &self.hashes[self.offsets[r] as usize..self.offsets[r + 1] as usize]
    }

    /// Append the next row.
    pub fn push(&mut self, hashes: &[u32]) -> Result<()> {
        self.hashes.extend_from_slice(hashes);
        let end = u32::try_from(self.hashes.len())
            .map_err(|_| Error::Usage("more than 2^32 shingles in one run".into()))?;
        self.offsets.push(end);
        Ok(())
    }
}

pub fn write_shingles(dir: &Path, s: RowShingles) -> Result<()> {
    let (rows1, n) = (s.offsets.len(), s.hashes.len());
    let tensors = HashMap::from([
        (
            "offsets".to_string(),
            Tensor::from_vec(s.offsets, rows1, &Device::Cpu)?,
        ),
        (
            "hashes".to_string(),
            Tensor::from_vec(s.hashes, n, &Device::Cpu)?,
        ),
    ]);
    let path = dir.join(SHINGLES);
    let tmp = dir.join(format!("{SHINGLES}.partial"));
    let meta = HashMap::from([("scheme".to_string(), crate::shingles::SCHEME.to_string())]);
    safetensors::serialize_to_file(
        tensors.iter().map(|(k, v)| (k.clone(), v)),
        Some(meta),
        &tmp,
    )
    .map_err(|e| Error::file(&tmp, format!("cannot write shingles: {e}")))?;
    std::fs::rename(&tmp, &path).at(&path)
}

/// The run's shingles, or `None` when the file is absent or holds another scheme (both mean:
/// compute them again). A file that exists but is corrupt, or disagrees with `rows`, is an error.
pub fn read_shingles(dir: &Path, rows: u64) -> Result<Option<RowShingles>> {
    let path = dir.join(SHINGLES);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).at(&path)?;
    let bad = |msg: String| Error::file(&path, msg);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a shingles file: {e}")))?;
    let scheme = meta.metadata().as_ref().and_then(|m| m.get("scheme"));
    if scheme.map(String::as_str) != Some(crate::shingles::SCHEME) {
        return Ok(None);
    }
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| bad(format!("corrupt tensors: {e}")))?;
    let get = |name: &str| -> Result<Vec<u32>> {
        Ok(tensors
            .get(name)
            .ok_or_else(|| bad(format!("no tensor named {name:?}")))?
            .to_vec1::<u32>()?)
    };
    let s = RowShingles {
        offsets: get("offsets")?,
        hashes: get("hashes")?,
    };
    let consistent = s.offsets.len() as u64 == rows + 1
        && s.offsets.first() == Some(&0)
        && s.offsets.windows(2).all(|w| w[0] <= w[1])
        && s.offsets.last().map(|&e| e as usize) == Some(s.hashes.len());
    if !consistent {
        return Err(bad(format!(
            "offsets do not describe {rows} rows of {} hashes",
            s.hashes.len()
        )));
    }
    Ok(Some(s))
}

pub fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let path = dir.join(MANIFEST);
    let text = serde_json::to_string_pretty(m).expect("manifest serialises");
    std::fs::write(&path, text + "\n").at(&path)
}

/// A run directory read back: manifest, embeddings as f32 `[rows, dim]`, per-row data.
pub struct Run {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub embeddings: Tensor,
    pub rows: RowInfo,
    pub shingles: RowShingles,
}

/// The run directory's manifest (the one reader of `manifest.json`).
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let mpath = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&mpath).at(&mpath)?;
    serde_json::from_str(&text)
        .map_err(|e| Error::file(&mpath, format!("not a distillguard manifest: {e}")))
}

/// Whether the run directory holds shingles of this build's scheme, from the file's header
/// alone (the tensors are not read).
pub fn shingles_current(dir: &Path) -> Result<bool> {
    use std::io::Read;
    let path = dir.join(SHINGLES);
    let Ok(mut f) = File::open(&path) else {
        return Ok(false);
    };
    let mut len = [0u8; 8];
    if f.read_exact(&mut len).is_err() {
        return Ok(false);
    }
    let n = u64::from_le_bytes(len);
    if n > 1 << 20 {
        return Ok(false);
    }
    let mut header = vec![0u8; n as usize];
    if f.read_exact(&mut header).is_err() {
        return Ok(false);
    }
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap_or_default();
    Ok(header["__metadata__"]["scheme"].as_str() == Some(crate::shingles::SCHEME))
}

impl Run {
    pub fn open(dir: &Path) -> Result<Self> {
        let mpath = dir.join(MANIFEST);
        let manifest = read_manifest(dir)?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(Error::file(
                &mpath,
                format!(
                    "run format version {} but this build reads version {FORMAT_VERSION}: re-run embed",
                    manifest.format_version
                ),
            ));
        }
        let epath = dir.join(EMBEDDINGS);
        let mut tensors = candle_core::safetensors::load(&epath, &Device::Cpu)
            .map_err(|e| Error::file(&epath, format!("cannot read embeddings: {e}")))?;
        let missing = |name: &str| Error::file(&epath, format!("no tensor named {name:?}"));
        let embeddings = tensors
            .remove("embeddings")
            .ok_or_else(|| missing("embeddings"))?
            .to_dtype(DType::F32)?;
        let mut u32s = |name: &str| -> Result<Vec<u32>> {
            Ok(tensors
                .remove(name)
                .ok_or_else(|| missing(name))?
                .to_vec1::<u32>()?)
        };
        let rows_info = RowInfo {
            tokens: u32s("tokens")?,
            chars: u32s("chars")?,
            markers: u32s("markers")?,
        };
        let (rows, dim) = embeddings.dims2()?;
        let per_row = [&rows_info.tokens, &rows_info.chars, &rows_info.markers];
        if rows as u64 != manifest.embeddings.rows
            || dim != manifest.embeddings.dim
            || per_row.iter().any(|v| v.len() != rows)
        {
            return Err(Error::file(
                &epath,
                format!(
                    "holds [{rows}, {dim}] but the manifest says [{}, {}]",
                    manifest.embeddings.rows, manifest.embeddings.dim
                ),
            ));
        }
        let shingles = read_shingles(dir, rows as u64)?.ok_or_else(|| {
            Error::file(
                &dir.join(SHINGLES),
                "missing or of another scheme: run `distillguard embed` or `score` on this run again",
            )
        })?;
        Ok(Run {
            dir: dir.to_path_buf(),
            manifest,
            embeddings,
            rows: rows_info,
            shingles,
        })
    }

    /// Iterate the request table, in input order.
    pub fn requests(&self) -> Result<impl Iterator<Item = Result<RequestRecord>>> {
        let path = self.dir.join(REQUESTS);
        let reader = BufReader::new(File::open(&path).at(&path)?);
        Ok(reader.lines().enumerate().map(move |(i, line)| {
            let line = line.at(&path)?;
            serde_json::from_str(&line).map_err(|e| {
                Error::input(&path, i as u64 + 1, "(line)", format!("bad table row: {e}"))
            })
        }))
    }
}
