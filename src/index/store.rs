//! Saving and loading an [`AccountIndex`]: `hnsw_rs`'s dump plus a sidecar we control.
//!
//! A saved index is a directory holding
//! - `accounts.hnsw.graph` and `accounts.hnsw.data`: `hnsw_rs`'s `file_dump` (graph topology;
//!   the unit vectors), in its native-endian binary format;
//! - [`SIDECAR`] (`index.json`): format version, metric, dimension, count, parameters, tool
//!   and `hnsw_rs` versions, the account ids in row order, and the size and SHA-256 of both
//!   dump files. It is written last, so a directory without it holds no finished index.
//!
//! Why the sidecar: `hnsw_rs` records neither our ids nor the metric's meaning, and it does not
//! survive bad input. A truncated or corrupt dump makes it `panic!`, or `std::process::exit(1)`
//! from inside the library, after printing to stdout. So [`AccountIndex::load`] reads the
//! sidecar, checks it against what the caller expects and checks both dump files' sizes and
//! hashes *before* handing them to `hnsw_rs`; every refusal is an [`Error::File`] naming the
//! file at fault. A panic that still escapes `hnsw_rs` is caught and reported the same way.
//!
//! The lifetime problem: `HnswIo::load_hnsw` returns an `Hnsw<'b, ..>` that borrows the
//! `HnswIo` (for memory-mapped data, which we do not use), so the loader must outlive the
//! index. Rather than pushing that lifetime onto every caller, or building a self-referential
//! struct with `unsafe`, [`load`](AccountIndex::load) leaks the loader (`Box::leak`): it holds
//! a directory path, a file name and a counter, a few hundred bytes per load, and no data
//! because mmap is off. The loaded graph is then `Hnsw<'static, ..>` and [`AccountIndex`]
//! stays a plain owned value.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use hnsw_rs::api::AnnT;
use hnsw_rs::hnswio::HnswIo;
use serde::{Deserialize, Serialize};

use super::{collect_points, row_map, AccountIndex, Graph, IndexParams};
use crate::error::{Error, IoContext, Result};
use crate::hash::hash_file;

/// Name of the sidecar file in an index directory.
pub const SIDECAR: &str = "index.json";

/// Version of the saved-index layout (sidecar fields, dump basename, distance type). Bump it
/// when any of them changes; [`AccountIndex::load`] refuses other versions.
pub const SIDECAR_FORMAT_VERSION: u32 = 1;

/// Basename of the `hnsw_rs` dump files.
const BASENAME: &str = "accounts";
/// The `hnsw_rs` release line the dump format comes from (keep in step with Cargo.toml).
const HNSW_RS_VERSION: &str = "0.3";
const METRIC: &str = "cosine";
/// Folder inside the index directory where `hnsw_rs` dumps before the files are moved in place.
pub(super) const STAGING: &str = ".index-staging";

#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    format_version: u32,
    tool: String,
    tool_version: String,
    hnsw_rs_version: String,
    metric: String,
    dim: usize,
    count: usize,
    params: IndexParams,
    graph_file: DumpFile,
    data_file: DumpFile,
    ids: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DumpFile {
    name: String,
    bytes: u64,
    sha256: String,
}

impl AccountIndex {
    /// Save into `dir` (created if needed), replacing an index saved there before.
    ///
    /// The old sidecar is removed first and the new one written last (to a temporary name,
    /// then renamed), so an interrupted save leaves a directory that [`load`](Self::load)
    /// refuses rather than a mix of old and new files.
    pub fn save(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).at(dir)?;
        let sidecar_path = dir.join(SIDECAR);
        match fs::remove_file(&sidecar_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(&sidecar_path, e))
            }
            _ => {}
        }
        // hnsw_rs will not overwrite dump files of an index that was itself loaded from disk
        // (it invents a new basename instead), so dump into an empty folder and move the files.
        let staging = dir.join(STAGING);
        if staging.exists() {
            fs::remove_dir_all(&staging).at(&staging)?;
        }
        fs::create_dir(&staging).at(&staging)?;
        let dumped = catch_unwind(AssertUnwindSafe(|| {
            self.graph.file_dump(&staging, BASENAME)
        }));
        let basename = match dumped {
            Ok(Ok(name)) => name,
            Ok(Err(e)) => return Err(Error::file(&staging, format!("hnsw_rs dump failed: {e}"))),
            Err(panic) => {
                return Err(Error::file(
                    &staging,
                    format!("hnsw_rs dump panicked: {}", panic_message(&panic)),
                ))
            }
        };
        let mut files = Vec::with_capacity(2);
        for ext in ["hnsw.graph", "hnsw.data"] {
            let from = staging.join(format!("{basename}.{ext}"));
            let name = format!("{BASENAME}.{ext}");
            let to = dir.join(&name);
            fs::rename(&from, &to).at(&to)?;
            let (bytes, sha256) = hash_file(&to)?;
            files.push(DumpFile {
                name,
                bytes,
                sha256,
            });
        }
        fs::remove_dir_all(&staging).at(&staging)?;
        let data_file = files.pop().expect("two dump files");
        let graph_file = files.pop().expect("two dump files");

        let sidecar = Sidecar {
            format_version: SIDECAR_FORMAT_VERSION,
            tool: env!("CARGO_PKG_NAME").to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            hnsw_rs_version: HNSW_RS_VERSION.to_string(),
            metric: METRIC.to_string(),
            dim: self.dim,
            count: self.len(),
            params: self.params,
            graph_file,
            data_file,
            ids: self.ids.clone(),
        };
        let json = serde_json::to_vec_pretty(&sidecar)
            .map_err(|e| Error::file(&sidecar_path, format!("cannot serialise sidecar: {e}")))?;
        let tmp = dir.join(format!("{SIDECAR}.tmp"));
        fs::write(&tmp, json).at(&tmp)?;
        fs::rename(&tmp, &sidecar_path).at(&sidecar_path)?;
        Ok(())
    }

    /// Load an index saved by [`save`](Self::save) from `dir`.
    ///
    /// With `expected_dim`, an index of another dimension is refused (behaviour vectors from
    /// another embedding model would give meaningless neighbours). A missing, unreadable or
    /// inconsistent sidecar, a sidecar from another format version or metric, and dump files
    /// whose size or hash differ from the sidecar's are refused with an [`Error::File`] naming
    /// the file.
    pub fn load(dir: &Path, expected_dim: Option<usize>) -> Result<AccountIndex> {
        let sidecar_path = dir.join(SIDECAR);
        let sidecar = read_sidecar(&sidecar_path)?;
        let bad = |msg: String| Error::file(&sidecar_path, msg);
        if let Some(expected) = expected_dim {
            if sidecar.dim != expected {
                return Err(bad(format!(
                    "index has behaviour vectors of dimension {}, expected {expected} \
                     (rebuild the index with the current model)",
                    sidecar.dim
                )));
            }
        }
        if sidecar.ids.len() != sidecar.count {
            return Err(bad(format!(
                "sidecar lists {} ids for count {}",
                sidecar.ids.len(),
                sidecar.count
            )));
        }
        let rows = row_map(&sidecar.ids).map_err(bad)?;
        let graph_path = verify_dump_file(dir, &sidecar_path, &sidecar.graph_file, "hnsw.graph")?;
        verify_dump_file(dir, &sidecar_path, &sidecar.data_file, "hnsw.data")?;

        let loaded = catch_unwind(AssertUnwindSafe(|| {
            // Deliberate leak, see the module docs: the loaded graph borrows its loader.
            let loader: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, BASENAME)));
            loader.load_hnsw::<f32, super::UnitCosine>()
        }));
        let mut graph: Graph = match loaded {
            Ok(Ok(graph)) => graph,
            Ok(Err(e)) => {
                return Err(Error::file(
                    &graph_path,
                    format!("hnsw_rs cannot load the index: {e}"),
                ))
            }
            Err(panic) => {
                return Err(Error::file(
                    &graph_path,
                    format!("hnsw_rs cannot load the index: {}", panic_message(&panic)),
                ))
            }
        };
        graph.set_searching_mode(true);
        let points = collect_points(&graph, sidecar.count, sidecar.dim)
            .map_err(|msg| Error::file(&graph_path, format!("does not match {SIDECAR}: {msg}")))?;
        Ok(AccountIndex {
            graph,
            points,
            ids: sidecar.ids,
            rows,
            dim: sidecar.dim,
            params: sidecar.params,
        })
    }
}

fn read_sidecar(path: &Path) -> Result<Sidecar> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::file(
                path,
                "index sidecar is missing (not an index directory, or an interrupted save)",
            ))
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let sidecar: Sidecar = serde_json::from_str(&text)
        .map_err(|e| Error::file(path, format!("corrupt index sidecar: {e}")))?;
    let bad = |msg: String| Err(Error::file(path, msg));
    if sidecar.format_version != SIDECAR_FORMAT_VERSION {
        return bad(format!(
            "index format version {} (written by {} {}), this build reads version {}",
            sidecar.format_version, sidecar.tool, sidecar.tool_version, SIDECAR_FORMAT_VERSION
        ));
    }
    if sidecar.hnsw_rs_version != HNSW_RS_VERSION {
        return bad(format!(
            "index was dumped by hnsw_rs {}, this build reads hnsw_rs {HNSW_RS_VERSION} dumps \
             (rebuild the index)",
            sidecar.hnsw_rs_version
        ));
    }
    if sidecar.metric != METRIC {
        return bad(format!(
            "index metric is {:?}, expected {METRIC:?}",
            sidecar.metric
        ));
    }
    if sidecar.dim == 0 || sidecar.count == 0 {
        return bad(format!(
            "index has dimension {} and {} accounts; both must be positive",
            sidecar.dim, sidecar.count
        ));
    }
    if let Err(e) = sidecar.params.check() {
        return bad(format!("index parameters: {e}"));
    }
    Ok(sidecar)
}

/// Check one dump file against the sidecar; returns its path.
fn verify_dump_file(dir: &Path, sidecar: &Path, file: &DumpFile, ext: &str) -> Result<PathBuf> {
    let expected = format!("{BASENAME}.{ext}");
    if file.name != expected {
        return Err(Error::file(
            sidecar,
            format!("dump file is named {:?}, expected {expected:?}", file.name),
        ));
    }
    let path = dir.join(&file.name);
    if !path.is_file() {
        return Err(Error::file(
            &path,
            format!("index file is missing (listed in {SIDECAR})"),
        ));
    }
    let (bytes, sha256) = hash_file(&path)?;
    if bytes != file.bytes || sha256 != file.sha256 {
        return Err(Error::file(
            &path,
            format!(
                "index file is corrupt or was replaced: {bytes} bytes, sha256 {sha256}; \
                 {SIDECAR} records {} bytes, sha256 {}",
                file.bytes, file.sha256
            ),
        ));
    }
    Ok(path)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}
