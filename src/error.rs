//! The library's one error type.
//!
//! Every failure a user can cause names what to fix: input errors carry the file, the 1-based
//! line and the field; model errors the model folder and the file inside it. The binary maps
//! each kind to a stable exit code (see [`Error::exit_code`]) so that scripts can tell bad
//! input from a broken installation without parsing messages.

use std::path::{Path, PathBuf};

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One line of an input file is wrong.
    #[error("{}:{line}: {field}: {msg}", path.display())]
    Input {
        path: PathBuf,
        line: u64,
        field: String,
        msg: String,
    },
    /// An input file as a whole is wrong (empty, unreadable, nothing valid in it).
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// The embedding model is missing, corrupt, or its parts disagree.
    #[error("model {}: {msg}", path.display())]
    Model { path: PathBuf, msg: String },
    /// The requested compute device cannot be used.
    #[error("device: {0}")]
    Device(String),
    /// Flags that are individually valid but do not make sense together.
    #[error("usage: {0}")]
    Usage(String),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A tensor operation failed; this is a bug or a resource problem, not bad input.
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
}

impl Error {
    pub fn input(path: &Path, line: u64, field: &str, msg: impl Into<String>) -> Self {
        Error::Input {
            path: path.to_path_buf(),
            line,
            field: field.to_string(),
            msg: msg.into(),
        }
    }

    pub fn file(path: &Path, msg: impl Into<String>) -> Self {
        Error::File {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    pub fn model(path: &Path, msg: impl Into<String>) -> Self {
        Error::Model {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Exit code for the binary: 2 usage, 3 bad input data, 4 model, 5 device, 1 anything else
    /// (I/O, internal). Documented in the README; scripts rely on it.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Input { .. } | Error::File { .. } => 3,
            Error::Model { .. } => 4,
            Error::Device(_) => 5,
            Error::Io { .. } | Error::Tensor(_) => 1,
        }
    }
}

/// Attach a path to an `io::Result`.
pub trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
