//! Runtime CPU-feature dispatch. The level is detected once; kernels take
//! it as an argument and keep a portable path that is tested equal to every
//! accelerated one. No `target-cpu=native`: the binary runs on any x86-64.

use std::sync::atomic::{AtomicU8, Ordering};

/// Code paths a kernel can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuLevel {
    /// Portable code (SSE2 on x86-64).
    Scalar,
    /// AVX2 (x86-64 only).
    Avx2,
}

static FORCED: AtomicU8 = AtomicU8::new(0);

/// The best level this CPU supports (detected on first use), unless
/// [`force_level`] capped it.
pub fn cpu_level() -> CpuLevel {
    match FORCED.load(Ordering::Relaxed) {
        1 => return CpuLevel::Scalar,
        2 => return detected(),
        _ => {}
    }
    detected()
}

fn detected() -> CpuLevel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            return CpuLevel::Avx2;
        }
    }
    CpuLevel::Scalar
}

/// Every level this CPU can run, portable first (for tests and benches).
pub fn available_levels() -> Vec<CpuLevel> {
    let mut v = vec![CpuLevel::Scalar];
    if detected() == CpuLevel::Avx2 {
        v.push(CpuLevel::Avx2);
    }
    v
}

/// Caps the level used from now on (`VQM_CPU=scalar` in the CLI); `None`
/// restores detection.
pub fn force_level(level: Option<CpuLevel>) {
    let v = match level {
        Some(CpuLevel::Scalar) => 1,
        Some(CpuLevel::Avx2) => 2,
        None => 0,
    };
    FORCED.store(v, Ordering::Relaxed);
}
