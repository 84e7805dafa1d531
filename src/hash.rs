//! SHA-256 helpers shared by the stages: one way to hash a file and to write a digest, so that
//! every recorded hash (input logs, model weights, index files) reads the same.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{IoContext, Result};

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Size and lowercase hex SHA-256 of a file's bytes, read in 1 MiB blocks.
pub fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut f = File::open(path).at(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let got = f.read(&mut buf).at(path)?;
        if got == 0 {
            break;
        }
        hasher.update(&buf[..got]);
        bytes += got as u64;
    }
    Ok((bytes, hex(&hasher.finalize())))
}

/// Lowercase hex SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    hash_file(path).map(|(_, sha)| sha)
}
