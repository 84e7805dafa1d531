//! Save and load: `model.json` (schema, normalisation, threshold, metrics, settings) and
//! `model.safetensors` (the members' weights), with the checks that refuse a model this build
//! would misread.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::Linear;
use serde::{Deserialize, Serialize};

use super::{Model, TrainingSummary, FORMAT_VERSION, META_FILE, WEIGHTS_FILE};
use crate::classify::metrics::Metrics;
use crate::error::{Error, IoContext, Result};

/// Value of the `kind` field in `model.json`.
const KIND: &str = "distillguard-account-mlp";

/// `model.json`, field for field.
#[derive(Serialize, Deserialize)]
pub(super) struct ModelJson {
    format_version: u32,
    kind: String,
    schema: Vec<String>,
    mean: Vec<f32>,
    std: Vec<f32>,
    hidden: Vec<usize>,
    members: usize,
    threshold: f32,
    target_fpr: f64,
    metrics: Metrics,
    training: TrainingSummary,
    #[serde(default)]
    linking: serde_json::Value,
}

impl Model {
    /// Writes `dir/model.safetensors` and then `dir/model.json` (each via a temporary file and
    /// a rename), creating `dir` if needed.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).at(dir)?;
        let mut tensors = HashMap::new();
        for (m, layers) in self.members.iter().enumerate() {
            for (i, layer) in layers.iter().enumerate() {
                tensors.insert(format!("m{m}.fc{i}.weight"), layer.weight().clone());
                if let Some(b) = layer.bias() {
                    tensors.insert(format!("m{m}.fc{i}.bias"), b.clone());
                }
            }
        }
        let weights = dir.join(WEIGHTS_FILE);
        let tmp = dir.join(format!("{WEIGHTS_FILE}.partial"));
        candle_core::safetensors::save(&tensors, &tmp)?;
        std::fs::rename(&tmp, &weights).at(&weights)?;

        let meta = ModelJson {
            format_version: FORMAT_VERSION,
            kind: KIND.to_string(),
            schema: self.schema.clone(),
            mean: self.mean.clone(),
            std: self.std.clone(),
            hidden: self.hidden.clone(),
            members: self.members.len(),
            threshold: self.threshold,
            target_fpr: self.target_fpr,
            metrics: self.metrics.clone(),
            training: self.training.clone(),
            linking: self.linking.clone(),
        };
        let json_path = dir.join(META_FILE);
        let tmp = dir.join(format!("{META_FILE}.partial"));
        let mut bytes = serde_json::to_vec_pretty(&meta)
            .map_err(|e| Error::model(&json_path, format!("cannot serialise: {e}")))?;
        bytes.push(b'\n');
        std::fs::write(&tmp, bytes).at(&tmp)?;
        std::fs::rename(&tmp, &json_path).at(&json_path)
    }

    /// Loads a model folder written by [`Model::save`], refusing (as [`Error::Model`], naming
    /// the file) a missing file, corrupt JSON or weights, another `format_version`, or a feature
    /// schema that differs from `expected_schema`.
    pub fn load(dir: &Path, expected_schema: &[String]) -> Result<Model> {
        let json_path = dir.join(META_FILE);
        let text = read_model_file(&json_path, || std::fs::read_to_string(&json_path))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::model(&json_path, format!("corrupt JSON: {e}")))?;
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == FORMAT_VERSION as u64 => {}
            Some(v) => {
                return Err(Error::model(
                    &json_path,
                    format!("format_version {v}; this build reads version {FORMAT_VERSION}"),
                ))
            }
            None => {
                return Err(Error::model(
                    &json_path,
                    "no format_version: not a distillguard classifier",
                ))
            }
        }
        let meta: ModelJson = serde_json::from_value(value)
            .map_err(|e| Error::model(&json_path, format!("invalid model metadata: {e}")))?;
        check_meta(&meta, &json_path)?;
        check_schema(&meta.schema, expected_schema, &json_path)?;

        let weights = dir.join(WEIGHTS_FILE);
        let bytes = read_model_file(&weights, || std::fs::read(&weights))?;
        let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| Error::model(&weights, format!("corrupt weights: {e}")))?;
        let mut members = Vec::with_capacity(meta.members);
        for m in 0..meta.members {
            let mut layers = Vec::new();
            let mut fan_in = meta.schema.len();
            for (i, &out) in meta.hidden.iter().chain(std::iter::once(&1)).enumerate() {
                let mut take = |name: String, shape: &[usize]| -> Result<Tensor> {
                    let t = tensors.remove(&name).ok_or_else(|| {
                        Error::model(&weights, format!("tensor {name} is missing"))
                    })?;
                    if t.dims() != shape {
                        return Err(Error::model(
                            &weights,
                            format!(
                                "tensor {name} has shape {:?}, model.json implies {shape:?}",
                                t.dims()
                            ),
                        ));
                    }
                    Ok(t.to_dtype(DType::F32)?)
                };
                let w = take(format!("m{m}.fc{i}.weight"), &[out, fan_in])?;
                let b = take(format!("m{m}.fc{i}.bias"), &[out])?;
                layers.push(Linear::new(w, Some(b)));
                fan_in = out;
            }
            members.push(layers);
        }
        if let Some(extra) = tensors.keys().min() {
            return Err(Error::model(
                &weights,
                format!("unexpected tensor {extra}: weights do not match model.json"),
            ));
        }
        Ok(Model {
            schema: meta.schema,
            mean: meta.mean,
            std: meta.std,
            hidden: meta.hidden,
            threshold: meta.threshold,
            target_fpr: meta.target_fpr,
            metrics: meta.metrics,
            training: meta.training,
            linking: meta.linking,
            members,
        })
    }

    /// Refuses a model whose linking settings differ from `expected` (those this build computes
    /// features with), naming every setting that differs. `dir` is the model folder.
    pub fn check_linking(&self, dir: &Path, expected: &serde_json::Value) -> Result<()> {
        if &self.linking == expected {
            return Ok(());
        }
        let mut diffs = Vec::new();
        json_diff("", &self.linking, expected, &mut diffs);
        Err(Error::model(
            &dir.join(META_FILE),
            format!(
                "the model was trained with other linking settings than this build's ({}): retrain it",
                diffs.join("; ")
            ),
        ))
    }
}

/// The dotted paths at which `model` and `build` differ, as "path: model X, this build Y".
pub(super) fn json_diff(
    path: &str,
    model: &serde_json::Value,
    build: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (model, build) {
        (Value::Object(m), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = m.keys().chain(b.keys()).collect();
            for k in keys {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                json_diff(
                    &sub,
                    m.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (m, b) if m != b => out.push(format!(
            "{}: model {m}, this build {b}",
            if path.is_empty() { "linking" } else { path }
        )),
        _ => {}
    }
}

/// Reads a file of a model folder; a missing file is a model error, other failures I/O.
pub(super) fn read_model_file<T>(
    path: &Path,
    read: impl FnOnce() -> std::io::Result<T>,
) -> Result<T> {
    read().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::model(
                path,
                "not found (a model folder holds model.json and model.safetensors)",
            )
        } else {
            Error::io(path, e)
        }
    })
}

/// Internal consistency of `model.json`.
pub(super) fn check_meta(meta: &ModelJson, path: &Path) -> Result<()> {
    let bad = |msg: String| Err(Error::model(path, msg));
    if meta.kind != KIND {
        return bad(format!("kind {:?}, expected {KIND:?}", meta.kind));
    }
    let d = meta.schema.len();
    if d == 0 {
        return bad("empty feature schema".into());
    }
    if meta.mean.len() != d || meta.std.len() != d {
        return bad(format!(
            "{d} features but {} means and {} standard deviations",
            meta.mean.len(),
            meta.std.len()
        ));
    }
    if meta.mean.iter().any(|v| !v.is_finite())
        || meta.std.iter().any(|&v| !(v.is_finite() && v > 0.0))
    {
        return bad("non-finite mean or non-positive standard deviation".into());
    }
    if meta.hidden.contains(&0) {
        return bad(format!("hidden layer of width 0 in {:?}", meta.hidden));
    }
    if !meta.threshold.is_finite() {
        return bad(format!("threshold {} is not finite", meta.threshold));
    }
    if meta.members == 0 {
        return bad("no ensemble members".into());
    }
    Ok(())
}

/// Refuses a model trained on a different feature vector, saying exactly how it differs.
pub(crate) fn check_schema(model: &[String], expected: &[String], path: &Path) -> Result<()> {
    if model == expected {
        return Ok(());
    }
    let missing: Vec<&str> = expected
        .iter()
        .filter(|f| !model.contains(f))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = model
        .iter()
        .filter(|f| !expected.contains(f))
        .map(String::as_str)
        .collect();
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing from the model: {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        parts.push(format!("extra in the model: {}", extra.join(", ")));
    }
    if missing.is_empty() && extra.is_empty() {
        if model.len() == expected.len() {
            let moved: Vec<String> = model
                .iter()
                .zip(expected)
                .enumerate()
                .filter(|(_, (m, e))| m != e)
                .take(5)
                .map(|(i, (m, e))| format!("position {i}: model has {m}, expected {e}"))
                .collect();
            parts.push(format!(
                "same features in a different order ({})",
                moved.join("; ")
            ));
        } else {
            parts.push(format!(
                "same feature names but {} columns in the model and {} expected (duplicates)",
                model.len(),
                expected.len()
            ));
        }
    }
    Err(Error::model(
        path,
        format!(
            "feature schema differs from this build's ({} features in the model, {} expected): {}; retrain the classifier",
            model.len(),
            expected.len(),
            parts.join("; ")
        ),
    ))
}
