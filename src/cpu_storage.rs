//! Access to CPU tensor storage for custom ops' `cpu_fwd`: one place that turns a storage and
//! its layout into a plain `&[f32]`, or a clear error, so no op indexes storage by hand.

use candle_core::{bail, CpuStorage, Layout, Result};

/// The contiguous f32 data behind `layout`; `op` names the caller in error messages.
pub fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((start, end))) => Ok(&v[start..end]),
        (CpuStorage::F32(_), None) => bail!("{op}: input must be contiguous"),
        _ => bail!("{op}: input must be f32"),
    }
}
