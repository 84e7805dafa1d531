//! CPU feature detection, in one place: the SIMD kernels (similarity tiles and dots, the fused
//! encoder ops, int8 GEMM) take their AVX2 path only where this says so, else their portable
//! twin, which is also their test oracle.

/// Whether the running CPU has AVX2 and FMA (x86_64; `false` elsewhere). The standard
/// library caches the answer, so calling this in a hot path costs a load.
#[inline]
pub fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the running CPU has AVX2 (x86_64; `false` elsewhere).
#[inline]
pub fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
