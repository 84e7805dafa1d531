//! Compiles kernels/*.cu to PTX with nvcc, only when the `cuda` feature is on (the default,
//! CPU-only build needs no CUDA toolkit). The PTX is embedded with `include_str!` and loaded
//! at run time by the custom ops in src/similarity/cuda.rs. `CUDA_COMPUTE_CAP` picks the
//! virtual architecture (default 80; the driver JIT-compiles it for newer GPUs such as sm_90).

use std::path::PathBuf;
use std::process::Command;

/// Sources in kernels/ (without `.cu`); each becomes `$OUT_DIR/<name>.ptx`.
const KERNELS: &[&str] = &["similarity"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "80".into());
    let nvcc = std::env::var("CUDA_HOME")
        .map(|h| PathBuf::from(h).join("bin/nvcc"))
        .unwrap_or_else(|_| PathBuf::from("nvcc"));
    for name in KERNELS {
        let src = format!("kernels/{name}.cu");
        println!("cargo:rerun-if-changed={src}");
        let ptx = out.join(format!("{name}.ptx"));
        let status = Command::new(&nvcc)
            .args(["--ptx", "-O3", "-std=c++17"])
            .arg(format!("-arch=compute_{cap}"))
            .arg(&src)
            .arg("-o")
            .arg(&ptx)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {} to compile {src}: {e}", nvcc.display()));
        assert!(status.success(), "nvcc failed on {src}");
    }
    // The toolkit's libraries on the GPU machines (see ../shared/cuda/README.md).
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,/usr/local/cuda/lib64");
}
