//! Runtime CPU-feature dispatch. The level is detected once; kernels take
//! it as an argument and keep a portable path that is tested equal to every
//! accelerated one. No `target-cpu=native`: the binary runs on any x86-64.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// Code paths a kernel can take, from the most portable up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CpuLevel {
    /// Portable code (SSE2 on x86-64).
    Scalar,
    /// AVX2 without fused multiply-adds (bit-identical to `Scalar`).
    Avx2,
    /// AVX2 with fused multiply-adds where a kernel has a use for them.
    Avx2Fma,
    /// AVX-512F (with AVX2 and FMA) where a kernel has a 16-lane build;
    /// the others run their AVX2 build.
    Avx512,
}

impl CpuLevel {
    /// The level's name, as `VQM_CPU` takes it and the header records it.
    pub fn name(self) -> &'static str {
        match self {
            CpuLevel::Scalar => "scalar",
            CpuLevel::Avx2 => "avx2",
            CpuLevel::Avx2Fma => "fma",
            CpuLevel::Avx512 => "avx512",
        }
    }

    /// The level named `name` (see [`CpuLevel::name`]).
    pub fn from_name(name: &str) -> Option<CpuLevel> {
        [
            CpuLevel::Scalar,
            CpuLevel::Avx2,
            CpuLevel::Avx2Fma,
            CpuLevel::Avx512,
        ]
        .into_iter()
        .find(|l| l.name() == name)
    }
}

/// The best level this CPU supports, whatever [`force_level`] asked.
pub fn detected_level() -> CpuLevel {
    detected()
}

static FORCED: AtomicU8 = AtomicU8::new(0);

/// The best level this CPU supports (detected on first use), unless
/// [`force_level`] capped it.
pub fn cpu_level() -> CpuLevel {
    let best = detected();
    match FORCED.load(Ordering::Relaxed) {
        1 => CpuLevel::Scalar,
        2 => best.min(CpuLevel::Avx2),
        3 => best.min(CpuLevel::Avx2Fma),
        _ => best,
    }
}

fn detected() -> CpuLevel {
    static LEVEL: OnceLock<CpuLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                if std::arch::is_x86_feature_detected!("fma") {
                    if std::arch::is_x86_feature_detected!("avx512f") {
                        return CpuLevel::Avx512;
                    }
                    return CpuLevel::Avx2Fma;
                }
                return CpuLevel::Avx2;
            }
        }
        CpuLevel::Scalar
    })
}

/// Every level this CPU can run, portable first (for tests and benches).
pub fn available_levels() -> Vec<CpuLevel> {
    [
        CpuLevel::Scalar,
        CpuLevel::Avx2,
        CpuLevel::Avx2Fma,
        CpuLevel::Avx512,
    ]
    .into_iter()
    .filter(|l| *l <= detected())
    .collect()
}

/// Caps the level used from now on (`VQM_CPU=scalar`, `avx2`, `fma` or
/// `avx512` in the CLI); `None` restores detection.
pub fn force_level(level: Option<CpuLevel>) {
    let v = match level {
        Some(CpuLevel::Scalar) => 1,
        Some(CpuLevel::Avx2) => 2,
        Some(CpuLevel::Avx2Fma) => 3,
        Some(CpuLevel::Avx512) | None => 0,
    };
    FORCED.store(v, Ordering::Relaxed);
}

/// Asks for the cache lines of `s` (a hint: no effect on results).
#[inline(always)]
pub fn prefetch<T>(s: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let bytes = std::mem::size_of_val(s);
        let p = s.as_ptr() as *const i8;
        let mut off = 0;
        while off < bytes {
            // SAFETY: a prefetch of an address inside `s`; SSE is part of
            // x86-64.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off)) };
            off += 64;
        }
        // SAFETY: as above, the last byte of `s`.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(bytes.saturating_sub(1))) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = s;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_has_its_documented_name_and_is_found_by_it() {
        let levels = [
            (CpuLevel::Scalar, "scalar"),
            (CpuLevel::Avx2, "avx2"),
            (CpuLevel::Avx2Fma, "fma"),
            (CpuLevel::Avx512, "avx512"),
        ];
        for (level, name) in levels {
            assert_eq!(level.name(), name);
            assert_eq!(CpuLevel::from_name(name), Some(level));
        }
        for other in ["", "xyzzy", "AVX2", "sse2"] {
            assert_eq!(CpuLevel::from_name(other), None, "{other:?}");
        }
    }

    #[test]
    fn available_levels_run_from_the_portable_path_to_the_best() {
        let all = [
            CpuLevel::Scalar,
            CpuLevel::Avx2,
            CpuLevel::Avx2Fma,
            CpuLevel::Avx512,
        ];
        let best = all.iter().position(|l| *l == detected_level());
        let n = best.map_or(0, |i| i + 1);
        assert!(n >= 1, "the detected level is one of the four");
        assert_eq!(available_levels(), all[..n].to_vec());
    }
}
