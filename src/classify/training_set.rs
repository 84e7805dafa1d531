//! A model's training set in a text-free form, shipped beside the weights so that a user can
//! add a confirmed incident to what the model already knows (`train --base DIR`).
//!
//! `training_set.safetensors` in the model folder: tensors `x` (rows x features, f32, the
//! classifier's input before normalisation), `y` (rows, u8) and `oof` (rows, f32: each row's
//! out-of-fold score from the model trained on this set, the "before" of the next retraining);
//! one metadata entry `training_set`, a JSON object: `format_version`, `schema` (feature
//! names, as in model.json), `accounts`, `groups` (the split unit), `kinds` (strategy kind per
//! row, "" if unknown), `links` (link group per row, "" for none: what scores are pooled over;
//! absent from sets written before link pooling, whose rows read as in no group),
//! `group_weights` (loss multipliers of incident groups) and `incidents` (what was added, in
//! order). No prompt, embedding of a single prompt or request metadata is
//! kept: a row is the account's aggregate features (its mean behaviour vector among them).
//!
//! The set is versioned with the feature schema: [`TrainingSet::load`] refuses a set whose
//! schema differs from the caller's, naming the difference, because its rows would be read
//! column by column against the wrong features.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::model::{check_schema, Dataset};
use crate::error::{Error, IoContext, Result};

/// File name inside a model folder.
pub const TRAINING_SET_FILE: &str = "training_set.safetensors";
/// Bump on any change an older reader would misread.
pub const TRAINING_SET_VERSION: u32 = 1;

/// The safetensors metadata key of the header.
const META_KEY: &str = "training_set";

/// Everything but the tensors, in field order.
#[derive(Serialize, Deserialize)]
struct Header {
    format_version: u32,
    schema: Vec<String>,
    accounts: Vec<String>,
    groups: Vec<String>,
    kinds: Vec<String>,
    group_weights: BTreeMap<String, f32>,
    incidents: Vec<Incident>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    links: Vec<String>,
}

/// One incident added by `train --base`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The labels file it came from (its file name).
    pub name: String,
    /// Labelled accounts it added (or relabelled), and extraction accounts among them.
    pub rows: usize,
    pub positives: usize,
    /// Loss multiplier of its groups.
    pub weight: f32,
}

/// See the module notes.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSet {
    pub schema: Vec<String>,
    pub accounts: Vec<String>,
    pub groups: Vec<String>,
    pub kinds: Vec<String>,
    /// Link group of each row, "" for none; empty when unknown.
    pub links: Vec<String>,
    pub y: Vec<u8>,
    /// `rows x schema.len()`, row-major.
    pub x: Vec<f32>,
    /// Out-of-fold score of each row.
    pub oof: Vec<f32>,
    /// Fold of each row in every round, `rows x repeats` row-major; empty when unknown (a set
    /// written before warm starts).
    pub folds: Vec<u8>,
    pub group_weights: BTreeMap<String, f32>,
    pub incidents: Vec<Incident>,
}

impl TrainingSet {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The training set of a model fitted on `data`, with the out-of-fold scores `oof`.
    pub fn from_dataset(
        data: &Dataset,
        kinds: Vec<String>,
        oof: Vec<f32>,
        folds: Vec<u8>,
    ) -> TrainingSet {
        TrainingSet {
            schema: data.features.clone(),
            accounts: data.names.clone(),
            groups: data.groups.clone(),
            kinds,
            links: data.links.clone(),
            y: data.y.clone(),
            x: data.x.clone(),
            oof,
            folds,
            group_weights: data.group_weights.clone(),
            incidents: Vec::new(),
        }
    }

    /// The rows as a [`Dataset`] to train on.
    pub fn dataset(&self) -> Dataset {
        Dataset {
            features: self.schema.clone(),
            names: self.accounts.clone(),
            x: self.x.clone(),
            y: self.y.clone(),
            groups: self.groups.clone(),
            group_weights: self.group_weights.clone(),
            links: self.links.clone(),
        }
    }

    /// Writes `dir/training_set.safetensors` (via a temporary file and a rename).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).at(dir)?;
        let n = self.len();
        let d = self.schema.len();
        let mut tensors = HashMap::new();
        tensors.insert("x", Tensor::from_slice(&self.x, (n, d), &Device::Cpu)?);
        tensors.insert("y", Tensor::from_slice(&self.y, n, &Device::Cpu)?);
        tensors.insert("oof", Tensor::from_slice(&self.oof, n, &Device::Cpu)?);
        if !self.folds.is_empty() {
            let repeats = self.folds.len() / n.max(1);
            tensors.insert(
                "folds",
                Tensor::from_slice(&self.folds, (n, repeats), &Device::Cpu)?,
            );
        }
        // One metadata key holding one JSON object: the safetensors header writes a map's keys
        // in hash order, and the committed default set must be the same bytes on every run.
        let header = Header {
            format_version: TRAINING_SET_VERSION,
            schema: self.schema.clone(),
            accounts: self.accounts.clone(),
            groups: self.groups.clone(),
            kinds: self.kinds.clone(),
            group_weights: self.group_weights.clone(),
            incidents: self.incidents.clone(),
            links: self.links.clone(),
        };
        let meta = HashMap::from([(META_KEY.to_string(), to_json(&header))]);
        let path = dir.join(TRAINING_SET_FILE);
        let tmp = dir.join(format!("{TRAINING_SET_FILE}.partial"));
        // Sorted by name, so that the same set gives the same bytes.
        let mut ordered: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, t)| (*k, t)).collect();
        ordered.sort_by_key(|(k, _)| *k);
        safetensors::serialize_to_file(ordered, Some(meta), &tmp)
            .map_err(|e| Error::model(&tmp, format!("cannot write the training set: {e}")))?;
        std::fs::rename(&tmp, &path).at(&path)
    }

    /// Reads `dir/training_set.safetensors`, refusing (as [`Error::Model`], naming the file) a
    /// missing or corrupt file, another format version, inconsistent lengths, or a schema that
    /// differs from `expected_schema`.
    pub fn load(dir: &Path, expected_schema: &[String]) -> Result<TrainingSet> {
        let path = dir.join(TRAINING_SET_FILE);
        let bytes = std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::model(
                    &path,
                    "not found: this model folder has no training set to add incidents to \
                     (models trained before training sets were saved have none; retrain it, \
                     or train with --base none)",
                )
            } else {
                Error::io(&path, e)
            }
        })?;
        let bad = |msg: String| Error::model(&path, msg);
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a training set: {e}")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let text = meta
            .get(META_KEY)
            .ok_or_else(|| bad(format!("metadata {META_KEY:?} is missing")))?;
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| bad(format!("metadata {META_KEY:?} is corrupt: {e}")))?;
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == TRAINING_SET_VERSION as u64 => {}
            v => {
                return Err(bad(format!(
                    "format_version {v:?}; this build reads version {TRAINING_SET_VERSION}"
                )))
            }
        }
        let Header {
            schema,
            accounts,
            groups,
            kinds,
            group_weights,
            incidents,
            links,
            ..
        } = serde_json::from_value(value)
            .map_err(|e| bad(format!("metadata {META_KEY:?} is invalid: {e}")))?;
        check_schema(&schema, expected_schema, &path)?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| bad(format!("corrupt tensors: {e}")))?;
        let get = |name: &str| {
            tensors
                .get(name)
                .ok_or_else(|| bad(format!("no tensor named {name:?}")))
        };
        let x: Vec<f32> = get("x")?.flatten_all()?.to_vec1()?;
        let y: Vec<u8> = get("y")?.flatten_all()?.to_vec1()?;
        let oof: Vec<f32> = get("oof")?.flatten_all()?.to_vec1()?;
        let folds: Vec<u8> = match tensors.get("folds") {
            Some(t) => t
                .flatten_all()
                .and_then(|t| t.to_vec1())
                .map_err(|e| bad(format!("tensor \"folds\" is not one byte per entry: {e}")))?,
            None => Vec::new(),
        };
        let n = y.len();
        if x.len() != n * schema.len()
            || oof.len() != n
            || accounts.len() != n
            || groups.len() != n
            || kinds.len() != n
            || !(links.is_empty() || links.len() == n)
            || (n > 0 && !folds.len().is_multiple_of(n))
        {
            return Err(bad(format!(
                "lengths disagree: {n} labels, {} values for {} features, {} scores, {} \
                 accounts, {} groups, {} kinds, {} link groups, {} fold entries",
                x.len(),
                schema.len(),
                oof.len(),
                accounts.len(),
                groups.len(),
                kinds.len(),
                links.len(),
                folds.len()
            )));
        }
        if let Some(i) = y.iter().position(|&l| l > 1) {
            return Err(bad(format!("row {i}: label {} (must be 0 or 1)", y[i])));
        }
        Ok(TrainingSet {
            schema,
            accounts,
            groups,
            kinds,
            links,
            y,
            x,
            oof,
            folds,
            group_weights,
            incidents,
        })
    }
}

/// JSON of plain data, for the metadata map.
fn to_json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> TrainingSet {
        TrainingSet {
            schema: vec!["a".into(), "b".into()],
            accounts: vec!["x".into(), "y".into(), "z".into()],
            groups: vec!["campaign:c".into(), "campaign:c".into(), "account:z".into()],
            kinds: vec!["hydra".into(), "hydra".into(), String::new()],
            links: vec!["link:0".into(), "link:0".into(), String::new()],
            y: vec![1, 1, 0],
            x: vec![0.5, 1.0, -2.0, 3.0, 0.0, 7.25],
            oof: vec![0.9, 0.8, 0.1],
            folds: vec![0, 1, 0, 1, 1, 0],
            group_weights: BTreeMap::from([("campaign:c".to_string(), 3.0)]),
            incidents: vec![Incident {
                name: "inc.labels.jsonl".into(),
                rows: 2,
                positives: 2,
                weight: 3.0,
            }],
        }
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let s = set();
        s.save(dir.path()).unwrap();
        let bytes = std::fs::read(dir.path().join(TRAINING_SET_FILE)).unwrap();
        let back = TrainingSet::load(dir.path(), &s.schema).unwrap();
        assert_eq!(back, s);
        back.save(dir.path()).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(TRAINING_SET_FILE)).unwrap(),
            bytes
        );
        let data = back.dataset();
        assert_eq!((data.len(), data.dim()), (3, 2));
        assert_eq!(data.group_weights, s.group_weights);
        assert_eq!(data.link_of(), vec![Some("link:0"), Some("link:0"), None]);
    }

    #[test]
    fn folds_of_another_type_are_refused_naming_the_file_and_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let s = set();
        s.save(dir.path()).unwrap();
        // Rewrite the file with `folds` as f32.
        let path = dir.path().join(TRAINING_SET_FILE);
        let bytes = std::fs::read(&path).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap();
        let f = tensors["folds"].to_dtype(candle_core::DType::F32).unwrap();
        tensors.insert("folds".into(), f);
        let ordered: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
        safetensors::serialize_to_file(ordered, meta.metadata().clone(), &path).unwrap();
        let err = TrainingSet::load(dir.path(), &s.schema)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(TRAINING_SET_FILE) && err.contains("folds"),
            "{err}"
        );
    }

    #[test]
    fn another_schema_or_no_file_is_refused_naming_the_difference() {
        let dir = tempfile::tempdir().unwrap();
        let err = TrainingSet::load(dir.path(), &["a".into()]).unwrap_err();
        assert!(err.to_string().contains("no training set"), "{err}");
        set().save(dir.path()).unwrap();
        let err = TrainingSet::load(dir.path(), &["a".into(), "c".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains(TRAINING_SET_FILE), "{err}");
        assert!(err.contains("c") && err.contains("b"), "{err}");
        assert!(matches!(
            TrainingSet::load(dir.path(), &["b".into(), "a".into()]),
            Err(Error::Model { .. })
        ));
    }
}
