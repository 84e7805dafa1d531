//! Normal traffic: per endpoint, a sample of the prompt embeddings of its honest accounts,
//! which the shift test and the endpoint-relative behaviour vector compare every account with.
//!
//! Drawn from the log being scored, the reference is mostly whoever sends most prompts: in a
//! week where campaigns are a large share of an endpoint's traffic, every honest account looks
//! unusual next to them, and by how much depends on the week's campaign mix, not on the
//! account (docs/evaluation.md measured the test week's heavy users moving from at most 0.006
//! to 0.56). A model trained on labelled accounts knows which were honest, so `train` draws
//! this sample from the accounts labelled benign and saves it beside the model
//! ([`NORMAL_TRAFFIC_FILE`]); `score` then compares every account of an endpoint the sample
//! knows with it, whatever else the log holds. Endpoints it does not know (a task endpoint that
//! opened after training) fall back to the log's own, trimmed reference.
//!
//! Beside the prompt samples, `train` keeps each endpoint's median honest account: the median
//! of every local feature over the accounts labelled benign on it ([`NormalTraffic::medians`]),
//! which the endpoint-relative features subtract ([`super::relative_to_endpoints`]).
//!
//! Endpoints are keyed by the `model` name requests went to, so a sample carries over between
//! logs of one API. Embeddings are stored in half precision (a fifth of a percent of a cosine;
//! the kernel's bandwidth is the median squared distance, about 0.9) and training uses the
//! rounded values too, so that the training features are the ones `score` computes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// The file in a model folder.
pub const NORMAL_TRAFFIC_FILE: &str = "normal_traffic.safetensors";
/// The safetensors metadata key of the header.
const META_KEY: &str = "distillguard.normal_traffic";
const VERSION: u32 = 1;

/// One endpoint's sample: reference prompts and a disjoint pool the shift test's null draws
/// from, each row-major `[rows, dim]` unit vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub reference: Vec<f32>,
    pub pool: Vec<f32>,
}

/// Samples of normal traffic for the endpoints of an API.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalTraffic {
    pub dim: usize,
    /// By the model name requests went to (`None`: requests without a model).
    pub endpoints: BTreeMap<Option<String>, Sample>,
    /// A sample over every endpoint, for accounts whose endpoint has none.
    pub whole: Option<Sample>,
    /// How many accounts the samples were drawn from.
    pub accounts: usize,
    /// By endpoint, the median of each local feature ([`super::LOCAL_FEATURES`], in order)
    /// over its accounts labelled benign, for endpoints with at least
    /// [`super::MIN_MEDIAN_ACCOUNTS`] of them. Empty in files written before it existed.
    pub medians: BTreeMap<Option<String>, Vec<f32>>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format_version: u32,
    dim: usize,
    accounts: usize,
    /// In tensor order: `e{i}.reference` and `e{i}.pool` belong to `endpoints[i]`.
    endpoints: Vec<Option<String>>,
    whole: bool,
    /// The endpoints with feature medians (`m{i}` belongs to `medians.endpoints[i]`) and the
    /// features they are of; absent in files written before medians were kept (readers then
    /// have none, and older readers ignore the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    medians: Option<MediansHeader>,
}

#[derive(Serialize, Deserialize)]
struct MediansHeader {
    features: Vec<String>,
    endpoints: Vec<Option<String>>,
}

/// `v` rounded to half precision, as it will be stored.
pub(crate) fn round_f16(v: &[f32]) -> Result<Vec<f32>> {
    Ok(Tensor::from_slice(v, v.len(), &Device::Cpu)?
        .to_dtype(DType::F16)?
        .to_dtype(DType::F32)?
        .to_vec1()?)
}

impl NormalTraffic {
    /// Whether the samples say nothing (no endpoint, no whole-log sample).
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty() && self.whole.is_none()
    }

    /// These samples with `other`'s endpoints in place of (or beside) this one's; the whole
    /// sample stays this one's when it has one. An endpoint `other` has a sample or medians
    /// for takes both from `other` (its medians, or none): medians of shift features are only
    /// meaningful against the sample they were computed with.
    pub fn overlaid(&self, other: &NormalTraffic) -> NormalTraffic {
        let mut out = self.clone();
        for k in other.endpoints.keys().chain(other.medians.keys()) {
            out.medians.remove(k);
        }
        out.endpoints
            .extend(other.endpoints.iter().map(|(k, v)| (k.clone(), v.clone())));
        if out.whole.is_none() {
            out.whole = other.whole.clone();
        }
        out.medians
            .extend(other.medians.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// Writes `dir/normal_traffic.safetensors` (via a temporary file and a rename; the same
    /// samples give the same bytes).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).at(dir)?;
        let path = dir.join(NORMAL_TRAFFIC_FILE);
        let mut tensors: Vec<(String, Tensor)> = Vec::new();
        let half = |v: &[f32]| -> Result<Tensor> {
            Ok(
                Tensor::from_slice(v, (v.len() / self.dim, self.dim), &Device::Cpu)?
                    .to_dtype(DType::F16)?,
            )
        };
        for (i, s) in self.endpoints.values().enumerate() {
            tensors.push((format!("e{i}.reference"), half(&s.reference)?));
            tensors.push((format!("e{i}.pool"), half(&s.pool)?));
        }
        if let Some(s) = &self.whole {
            tensors.push(("whole.reference".into(), half(&s.reference)?));
            tensors.push(("whole.pool".into(), half(&s.pool)?));
        }
        for (i, m) in self.medians.values().enumerate() {
            tensors.push((
                format!("m{i}"),
                Tensor::from_slice(m, m.len(), &Device::Cpu)?,
            ));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let header = Header {
            format_version: VERSION,
            dim: self.dim,
            accounts: self.accounts,
            endpoints: self.endpoints.keys().cloned().collect(),
            whole: self.whole.is_some(),
            medians: (!self.medians.is_empty()).then(|| MediansHeader {
                features: super::LOCAL_FEATURES
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                endpoints: self.medians.keys().cloned().collect(),
            }),
        };
        let meta = HashMap::from([(
            META_KEY.to_string(),
            serde_json::to_string(&header).expect("plain header serialises"),
        )]);
        let tmp = dir.join(format!("{NORMAL_TRAFFIC_FILE}.partial"));
        let ordered: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
        safetensors::serialize_to_file(ordered, Some(meta), &tmp)
            .map_err(|e| Error::model(&tmp, format!("cannot write normal traffic: {e}")))?;
        std::fs::rename(&tmp, &path).at(&path)
    }

    /// Reads `dir/normal_traffic.safetensors`: `None` when the folder has none (a model trained
    /// before models carried one, whose features compared accounts with the log's own
    /// reference); an error naming the file when it is corrupt, of another version or width.
    pub fn load(dir: &Path, dim: usize) -> Result<Option<NormalTraffic>> {
        let path = dir.join(NORMAL_TRAFFIC_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let bad = |msg: String| Error::model(&path, msg);
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a normal-traffic file: {e}")))?;
        let text = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(META_KEY).cloned())
            .ok_or_else(|| bad(format!("metadata {META_KEY:?} is missing")))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(format!("metadata {META_KEY:?} is corrupt: {e}")))?;
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(VERSION) => {}
            v => {
                return Err(bad(format!(
                    "format_version {v:?}; this build reads version {VERSION}"
                )))
            }
        }
        let header: Header = serde_json::from_value(value)
            .map_err(|e| bad(format!("metadata {META_KEY:?} is invalid: {e}")))?;
        if header.dim != dim {
            return Err(bad(format!(
                "embeddings of width {}; the embedding model gives {dim}",
                header.dim
            )));
        }
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| bad(format!("corrupt tensors: {e}")))?;
        let get = |name: &str| -> Result<Vec<f32>> {
            let t = tensors
                .get(name)
                .ok_or_else(|| bad(format!("no tensor named {name:?}")))?;
            match t.dims() {
                [rows, d] if *d == dim && *rows >= 2 => {}
                dims => return Err(bad(format!("tensor {name:?} has shape {dims:?}"))),
            }
            Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
        };
        let sample = |prefix: &str| -> Result<Sample> {
            Ok(Sample {
                reference: get(&format!("{prefix}.reference"))?,
                pool: get(&format!("{prefix}.pool"))?,
            })
        };
        let mut endpoints = BTreeMap::new();
        for (i, name) in header.endpoints.iter().enumerate() {
            if endpoints
                .insert(name.clone(), sample(&format!("e{i}"))?)
                .is_some()
            {
                return Err(bad(format!("endpoint {name:?} is listed twice")));
            }
        }
        let whole = if header.whole {
            Some(sample("whole")?)
        } else {
            None
        };
        let mut medians = BTreeMap::new();
        if let Some(m) = &header.medians {
            if m.features != super::LOCAL_FEATURES {
                return Err(bad(format!(
                    "feature medians of {} features ({}); this build's local features are {} ({})",
                    m.features.len(),
                    m.features.join(", "),
                    super::LOCAL_FEATURES.len(),
                    super::LOCAL_FEATURES.join(", ")
                )));
            }
            for (i, name) in m.endpoints.iter().enumerate() {
                let key = format!("m{i}");
                let t = tensors
                    .get(&key)
                    .ok_or_else(|| bad(format!("no tensor named {key:?}")))?;
                if t.dims() != [m.features.len()] {
                    return Err(bad(format!("tensor {key:?} has shape {:?}", t.dims())));
                }
                let v: Vec<f32> = t.to_dtype(DType::F32)?.to_vec1()?;
                if v.iter().any(|x| !x.is_finite()) {
                    return Err(bad(format!("tensor {key:?} holds a non-finite value")));
                }
                if medians.insert(name.clone(), v).is_some() {
                    return Err(bad(format!("endpoint {name:?} has medians twice")));
                }
            }
        }
        Ok(Some(NormalTraffic {
            dim,
            endpoints,
            whole,
            accounts: header.accounts,
            medians,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seed: usize, rows: usize, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..rows * dim)
            .map(|i| (((i + seed) * 2_654_435_761) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        for r in v.chunks_mut(dim) {
            let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
            r.iter_mut().for_each(|x| *x /= n);
        }
        round_f16(&v).unwrap()
    }

    #[test]
    fn saves_and_loads_the_same_samples_and_bytes() {
        let dim = 8;
        let nt = NormalTraffic {
            dim,
            endpoints: BTreeMap::from([
                (
                    Some("chat-large".to_string()),
                    Sample {
                        reference: sample(1, 4, dim),
                        pool: sample(2, 6, dim),
                    },
                ),
                (
                    None,
                    Sample {
                        reference: sample(3, 3, dim),
                        pool: sample(4, 5, dim),
                    },
                ),
            ]),
            whole: Some(Sample {
                reference: sample(5, 4, dim),
                pool: sample(6, 4, dim),
            }),
            accounts: 12,
            medians: BTreeMap::from([(
                Some("chat-large".to_string()),
                (0..crate::features::LOCAL_FEATURES.len())
                    .map(|i| i as f32 * 0.37 - 2.0)
                    .collect(),
            )]),
        };
        let dir = tempfile::tempdir().unwrap();
        nt.save(dir.path()).unwrap();
        let first = std::fs::read(dir.path().join(NORMAL_TRAFFIC_FILE)).unwrap();
        let back = NormalTraffic::load(dir.path(), dim).unwrap().unwrap();
        assert_eq!(back, nt);
        back.save(dir.path()).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(NORMAL_TRAFFIC_FILE)).unwrap(),
            first
        );
        // Another width is refused, naming the file.
        let e = NormalTraffic::load(dir.path(), 16).unwrap_err().to_string();
        assert!(
            e.contains(NORMAL_TRAFFIC_FILE) && e.contains("width 8"),
            "{e}"
        );
        // Overlaid with another sample of chat-large but no medians, the model's medians of
        // chat-large (computed against its own sample) go with its sample.
        let mut other = nt.clone();
        other.medians.clear();
        other.whole = None;
        let over = nt.overlaid(&other);
        assert!(over.medians.is_empty());
        assert_eq!(nt.overlaid(&nt), nt);
        // A non-finite median is refused, naming the file and the tensor.
        let mut nan = nt.clone();
        nan.medians.values_mut().for_each(|m| m[3] = f32::NAN);
        nan.save(dir.path()).unwrap();
        let e = NormalTraffic::load(dir.path(), dim)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(NORMAL_TRAFFIC_FILE) && e.contains("\"m0\" holds a non-finite value"),
            "{e}"
        );
        // A corrupt file is refused; a folder without one has none.
        std::fs::write(dir.path().join(NORMAL_TRAFFIC_FILE), b"not safetensors").unwrap();
        assert!(NormalTraffic::load(dir.path(), dim).is_err());
        let empty = tempfile::tempdir().unwrap();
        assert!(NormalTraffic::load(empty.path(), dim).unwrap().is_none());
    }
}
