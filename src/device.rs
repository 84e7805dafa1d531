//! Choice of compute device, in one place.
//!
//! Model and kernel code never decide where they run: they receive a [`candle_core::Device`]
//! chosen here. `auto` takes CUDA device 0 when the binary was built with the `cuda` feature and
//! a device can be opened, and otherwise falls back to the CPU with one line on stderr.
//! Asking for `cuda` explicitly never falls back: it either works or is an error.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use crate::error::{Error, Result};
use crate::progress::Progress;

/// What the user asked for with `--device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => match s.strip_prefix("cuda:") {
                Some(n) => n.parse().map(DeviceSpec::Cuda).map_err(|_| {
                    format!("bad CUDA ordinal in {s:?}: expected cuda:N with N a number")
                }),
                None => Err(format!(
                    "unknown device {s:?}: expected auto, cpu, cuda or cuda:N"
                )),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Auto => write!(f, "auto"),
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Open the device the user asked for. With `auto` and a `cuda` build that finds no usable
/// device, `progress` is told why the job runs on the CPU.
pub fn resolve(spec: DeviceSpec, progress: &dyn Progress) -> Result<Device> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(n) => open_cuda(n),
        DeviceSpec::Auto => match open_cuda(0) {
            Ok(d) => Ok(d),
            Err(e) => {
                if cfg!(feature = "cuda") {
                    progress.note(&format!("no usable CUDA device ({e}); running on the CPU"));
                }
                Ok(Device::Cpu)
            }
        },
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize) -> Result<Device> {
    Device::new_cuda(ordinal).map_err(|e| Error::Device(format!("cannot open cuda:{ordinal}: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(ordinal: usize) -> Result<Device> {
    Err(Error::Device(format!(
        "cuda:{ordinal} requested but this binary was built without the `cuda` feature \
         (rebuild with `cargo build --release --features cuda`, or use --device cpu)"
    )))
}

/// Short name for manifests and logs: `cpu` or `cuda:N`.
pub fn name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(_) => match device.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            _ => "cuda".to_string(),
        },
        _ => format!("{:?}", device.location()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_flags() {
        assert_eq!("auto".parse::<DeviceSpec>(), Ok(DeviceSpec::Auto));
        assert_eq!("cpu".parse::<DeviceSpec>(), Ok(DeviceSpec::Cpu));
        assert_eq!("cuda".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(0)));
        assert_eq!("cuda:3".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(3)));
        assert!("cuda:x"
            .parse::<DeviceSpec>()
            .unwrap_err()
            .contains("cuda:N"));
        assert!("gpu"
            .parse::<DeviceSpec>()
            .unwrap_err()
            .contains("unknown device"));
    }

    #[test]
    fn auto_always_yields_a_device() {
        assert!(resolve(DeviceSpec::Auto, &crate::progress::Silent).is_ok());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_feature_is_a_clear_error() {
        let e = resolve(DeviceSpec::Cuda(0), &crate::progress::Silent).unwrap_err();
        assert_eq!(e.exit_code(), 5);
        assert!(e.to_string().contains("without the `cuda` feature"), "{e}");
    }
}
