//! `RUN_DIR/features.safetensors`, written by `score` and `train` after detection and read by
//! `neighbors` and `eval`: the classifier's feature matrix, the behaviour vectors, and per
//! account its id and reported campaign.
//!
//! Tensors `"x"` `[accounts, features]` f32 and `"behaviour"` `[accounts, dim]` f32; one
//! metadata key, [`HEADER_KEY`], holds the account ids, feature names and campaigns as one
//! JSON object, so that the same features give the same bytes (safetensors writes a metadata
//! map in hash order). Files of the earlier layout, with the three lists under their own keys,
//! are still read.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// The file's name inside a run directory.
pub const FEATURES: &str = "features.safetensors";
/// The metadata key of the [`Header`].
pub const HEADER_KEY: &str = "distillguard.features";

/// What the file says of its rows and columns.
#[derive(Serialize, Deserialize)]
struct Header {
    accounts: Vec<String>,
    features: Vec<String>,
    campaigns: Vec<Option<String>>,
}

/// The features of a run, as [`write_features`] takes them.
pub struct FeaturesOut<'a> {
    pub accounts: &'a [String],
    /// Column names of `x`.
    pub names: &'a [String],
    /// `accounts x names.len()`, row-major.
    pub x: &'a [f32],
    /// `accounts x dim`, row-major.
    pub behaviour: &'a [f32],
    pub dim: usize,
    /// Per account, the reported campaign it belongs to, if any.
    pub campaigns: &'a [Option<String>],
}

/// Write `dir/features.safetensors` (via a temporary file and a rename).
pub fn write_features(dir: &Path, f: &FeaturesOut) -> Result<()> {
    let n = f.accounts.len();
    let path = dir.join(FEATURES);
    let tmp = dir.join(format!("{FEATURES}.partial"));
    if f.campaigns.len() != n || f.x.len() != n * f.names.len() || f.behaviour.len() != n * f.dim {
        return Err(Error::file(
            &path,
            format!(
                "cannot write features: {n} accounts, {} campaigns, {} values for {} features, \
                 {} behaviour values of width {}",
                f.campaigns.len(),
                f.x.len(),
                f.names.len(),
                f.behaviour.len(),
                f.dim
            ),
        ));
    }
    let x = Tensor::from_slice(f.x, (n, f.names.len()), &Device::Cpu)?;
    let behaviour = Tensor::from_slice(f.behaviour, (n, f.dim), &Device::Cpu)?;
    let header = Header {
        accounts: f.accounts.to_vec(),
        features: f.names.to_vec(),
        campaigns: f.campaigns.to_vec(),
    };
    let meta = HashMap::from([(
        HEADER_KEY.to_string(),
        serde_json::to_string(&header).expect("plain data serialises"),
    )]);
    safetensors::serialize_to_file([("behaviour", &behaviour), ("x", &x)], Some(meta), &tmp)
        .map_err(|e| Error::file(&tmp, format!("cannot write features: {e}")))?;
    std::fs::rename(&tmp, &path).at(&path)
}

/// A run's saved features (see the module notes).
pub struct SavedFeatures {
    pub accounts: Vec<String>,
    /// Column names of the feature matrix.
    pub names: Vec<String>,
    /// `accounts x dim`, row-major.
    pub behaviour: Vec<f32>,
    pub dim: usize,
    pub campaigns: Vec<Option<String>>,
    /// The feature matrix `[accounts, names.len()]`, read by column as needed.
    x: Tensor,
}

impl SavedFeatures {
    /// Account id to its row.
    pub fn rows_by_id(&self) -> HashMap<&str, usize> {
        self.accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.as_str(), i))
            .collect()
    }

    /// Every account's value of feature `name`, or `None` when the file has no such column
    /// (written by a version without that feature).
    pub fn column(&self, name: &str) -> Result<Option<Vec<f32>>> {
        match self.names.iter().position(|n| n == name) {
            Some(c) => Ok(Some(self.x.narrow(1, c, 1)?.flatten_all()?.to_vec1()?)),
            None => Ok(None),
        }
    }
}

/// Read `dir/features.safetensors`; a missing, corrupt or inconsistent file is an
/// [`Error::File`] naming it.
pub fn read_features(dir: &Path) -> Result<SavedFeatures> {
    let path = dir.join(FEATURES);
    let bytes = std::fs::read(&path).at(&path)?;
    let bad = |msg: String| Error::file(&path, msg);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a features file: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let header = match meta.get(HEADER_KEY) {
        Some(text) => serde_json::from_str::<Header>(text)
            .map_err(|e| bad(format!("metadata {HEADER_KEY:?} is corrupt: {e}")))?,
        None => {
            // The earlier layout: one key per list.
            fn field<T: serde::de::DeserializeOwned>(
                meta: &HashMap<String, String>,
                key: &str,
                path: &Path,
            ) -> Result<T> {
                let text = meta
                    .get(key)
                    .ok_or_else(|| Error::file(path, format!("metadata {key:?} is missing")))?;
                serde_json::from_str(text)
                    .map_err(|e| Error::file(path, format!("metadata {key:?} is corrupt: {e}")))
            }
            Header {
                accounts: field(&meta, "accounts", &path)?,
                features: field(&meta, "features", &path)?,
                campaigns: field(&meta, "campaigns", &path)?,
            }
        }
    };
    let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| bad(format!("corrupt tensors: {e}")))?;
    let n = header.accounts.len();
    // A [accounts, cols] matrix by name, and its column count.
    let mut take = |name: &str| -> Result<(Tensor, usize)> {
        let t = tensors
            .remove(name)
            .ok_or_else(|| bad(format!("no tensor named {name:?}")))?;
        let (rows, cols) = t.dims2()?;
        if rows != n {
            return Err(bad(format!("{name} has {rows} rows for {n} accounts")));
        }
        Ok((t, cols))
    };
    let (x, cols) = take("x")?;
    let (behaviour, dim) = take("behaviour")?;
    if cols != header.features.len() || header.campaigns.len() != n {
        return Err(bad(
            "feature names or campaigns disagree with the matrix".into()
        ));
    }
    Ok(SavedFeatures {
        accounts: header.accounts,
        names: header.features,
        behaviour: behaviour.flatten_all()?.to_vec1()?,
        dim,
        campaigns: header.campaigns,
        x,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accounts, feature names, matrix, behaviour vectors (width 4), campaigns.
    type Sample = (
        Vec<String>,
        Vec<String>,
        Vec<f32>,
        Vec<f32>,
        Vec<Option<String>>,
    );

    fn sample() -> Sample {
        let accounts = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let names = vec!["f0".to_string(), "f1".to_string()];
        let x = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let behaviour = vec![0.5; 3 * 4];
        let campaigns = vec![Some("C0001".to_string()), None, Some("C0001".to_string())];
        (accounts, names, x, behaviour, campaigns)
    }

    fn write(dir: &Path) {
        let (accounts, names, x, behaviour, campaigns) = sample();
        write_features(
            dir,
            &FeaturesOut {
                accounts: &accounts,
                names: &names,
                x: &x,
                behaviour: &behaviour,
                dim: 4,
                campaigns: &campaigns,
            },
        )
        .unwrap();
    }

    #[test]
    fn round_trips_and_writes_the_same_bytes_every_time() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path());
        let first = std::fs::read(dir.path().join(FEATURES)).unwrap();
        for _ in 0..3 {
            write(dir.path());
            assert_eq!(std::fs::read(dir.path().join(FEATURES)).unwrap(), first);
        }
        let f = read_features(dir.path()).unwrap();
        let (accounts, names, _, behaviour, campaigns) = sample();
        assert_eq!(f.accounts, accounts);
        assert_eq!(f.names, names);
        assert_eq!((&f.behaviour, f.dim), (&behaviour, 4));
        assert_eq!(f.campaigns, campaigns);
        assert_eq!(f.column("f1").unwrap(), Some(vec![2.0, 4.0, 6.0]));
        assert_eq!(f.column("f9").unwrap(), None);
        assert_eq!(f.rows_by_id()["c"], 2);
    }

    fn json<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn reads_the_earlier_layout_and_refuses_inconsistent_files() {
        let dir = tempfile::tempdir().unwrap();
        let (accounts, names, x, behaviour, campaigns) = sample();
        let x = Tensor::from_slice(&x, (3, 2), &Device::Cpu).unwrap();
        let b = Tensor::from_slice(&behaviour, (3, 4), &Device::Cpu).unwrap();
        let meta = HashMap::from([
            ("accounts".to_string(), json(&accounts)),
            ("features".to_string(), json(&names)),
            ("campaigns".to_string(), json(&campaigns)),
        ]);
        let path = dir.path().join(FEATURES);
        safetensors::serialize_to_file([("behaviour", &b), ("x", &x)], Some(meta), &path).unwrap();
        let f = read_features(dir.path()).unwrap();
        assert_eq!((f.accounts, f.campaigns), (accounts.clone(), campaigns));

        // Two campaigns for three accounts.
        let meta = HashMap::from([(
            HEADER_KEY.to_string(),
            json(&Header {
                accounts,
                features: names,
                campaigns: vec![None, None],
            }),
        )]);
        safetensors::serialize_to_file([("behaviour", &b), ("x", &x)], Some(meta), &path).unwrap();
        let e = read_features(dir.path()).err().unwrap().to_string();
        assert!(
            e.contains("features.safetensors") && e.contains("disagree"),
            "{e}"
        );
        std::fs::write(&path, b"not safetensors").unwrap();
        let e = read_features(dir.path()).err().unwrap().to_string();
        assert!(e.contains("not a features file"), "{e}");
    }
}
