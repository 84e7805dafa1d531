//! CPU feature detection, in one place: the SIMD kernels (similarity tiles and dots, the fused
//! encoder ops, int8 GEMM) take their AVX2, AVX-512 or AMX path only where this says so, else
//! their portable twin, which is also their test oracle.

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

/// Whether the running CPU has AVX-512 F and BW besides AVX2 and FMA (x86_64; `false`
/// elsewhere).
#[inline]
pub fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx2_fma()
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this process may run AMX int8 tile instructions: the CPU has AMX-TILE and AMX-INT8
/// and Linux granted the process the tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM,
/// XFEATURE_XTILEDATA)`, asked once; the grant covers every thread of the process). `false`
/// off x86_64 Linux.
pub fn amx_int8() -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        static GRANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *GRANTED.get_or_init(|| {
            // CPUID leaf 7: EDX bit 24 is AMX-TILE, bit 25 AMX-INT8 (the standard library's
            // detection of these is unstable). Whether the OS supports the tile state is what
            // the system call below answers.
            let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
            if edx & (1 << 24) == 0 || edx & (1 << 25) == 0 {
                return false;
            }
            const SYS_ARCH_PRCTL: i64 = 158;
            const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
            const XFEATURE_XTILEDATA: i64 = 18;
            let ret: i64;
            // SAFETY: the arch_prctl system call with these arguments only asks the kernel for
            // a permission; it reads and writes no memory of ours. `syscall` clobbers rcx and
            // r11.
            unsafe {
                std::arch::asm!(
                    "syscall",
                    inlateout("rax") SYS_ARCH_PRCTL => ret,
                    in("rdi") ARCH_REQ_XCOMP_PERM,
                    in("rsi") XFEATURE_XTILEDATA,
                    lateout("rcx") _,
                    lateout("r11") _,
                    options(nostack),
                );
            }
            ret == 0
        })
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
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

/// Ask glibc's allocator to keep freed memory for reuse instead of handing it back to the
/// kernel (Linux with glibc; a no-op elsewhere). Called once per process by
/// [`crate::embed::Embedder::load`] on the CPU.
///
/// Why: the CPU encoder allocates fresh buffers of 1-16 MB for every op of every batch. By
/// default glibc serves blocks over its (adaptive) mmap threshold with fresh mappings and
/// trims the heap top after frees, so each batch pays page faults and zeroing of new pages in
/// the kernel: about a tenth of the encoder's time in `perf` (benches/README.md). Raising the
/// mmap threshold to its maximum (32 MiB on 64-bit) and disabling trimming keeps those pages
/// mapped; the process keeps its peak heap until it exits, which a batch job does soon.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            extern "C" {
                fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
            }
            const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
            const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
            // SAFETY: mallopt only changes allocator parameters; values in glibc's ranges.
            unsafe {
                mallopt(M_MMAP_THRESHOLD, 32 << 20);
                mallopt(M_TRIM_THRESHOLD, std::ffi::c_int::MAX);
            }
        });
    }
}
