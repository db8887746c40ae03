//! The series of one record key: its family, label and unit
//! ([`key_series`]), and the buckets of its per-frame histogram.

/// A Prometheus histogram: counts per bucket (each bucket's own, made
/// cumulative when served), their total and the sum of the values.
pub(super) struct Histogram {
    pub(super) bounds: &'static [f64],
    pub(super) counts: Vec<u64>,
    pub(super) count: u64,
    pub(super) sum: f64,
}

impl Histogram {
    pub(super) fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            count: 0,
            sum: 0.0,
        }
    }

    /// Counts `v` in the first bucket whose bound is at least `v` (none:
    /// only in `+Inf`, the total).
    pub(super) fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += v;
    }
}

/// Bucket bounds of the per-frame histograms, by a key's scale.
/// PSNR-like figures in dB.
pub(super) const DB_BUCKETS: &[f64] = &[
    20.0, 25.0, 30.0, 32.0, 34.0, 36.0, 38.0, 40.0, 45.0, 50.0, 60.0,
];
/// SSIM-like figures, 1 for identical pictures.
pub(super) const UNIT_BUCKETS: &[f64] =
    &[0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 1.0];
/// VMAF scores, 0 to 100.
pub(super) const VMAF_BUCKETS: &[f64] = &[
    10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0, 100.0,
];
/// Everything else (errors, divergences, entropies, CAMBI, VMAF's
/// elementary features): 1-2-5 steps over six decades.
pub(super) const WIDE_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
    200.0, 500.0, 1000.0,
];

/// A record key as a family and a label: `psnr_y` is `vqm_psnr_db` with
/// `plane="y"`; `vmaf` is `vqm_vmaf`, and VMAF's elementary features
/// (`--vmaf-features`) are `vqm_vmaf_feature` with `feature="integer_adm2"`.
pub(super) struct KeySeries {
    pub(super) family: String,
    /// The label's name: `plane`, `feature` for VMAF's features, `figure`
    /// for a bootstrap model's (`bagging`, `ci_p95_lo`, ...).
    pub(super) label: &'static str,
    /// Its value.
    pub(super) plane: String,
    /// The bounds of its histogram's buckets.
    pub(super) buckets: &'static [f64],
}

impl KeySeries {
    /// The family of the per-frame histogram: `vqm_psnr_db` is
    /// `vqm_frame_psnr_db` (the unit stays last).
    pub(super) fn histogram(&self) -> String {
        format!("vqm_frame_{}", self.family.trim_start_matches("vqm_"))
    }
}

pub(super) fn key_series(key: &str) -> KeySeries {
    // libvmaf's figures that are not split into planes: a family each
    if matches!(
        key,
        "vmaf" | "cambi" | "ciede2000" | "float_ssim" | "float_ms_ssim"
    ) {
        return KeySeries {
            family: format!("vqm_{key}"),
            label: "plane",
            plane: String::new(),
            buckets: match key {
                "vmaf" => VMAF_BUCKETS,
                // 45 - 20·log10(ΔE): a decibel scale
                "ciede2000" => DB_BUCKETS,
                "cambi" => WIDE_BUCKETS,
                _ => UNIT_BUCKETS,
            },
        };
    }
    if let Some(stat) = key.strip_prefix("vmaf_") {
        // a bootstrap model's figures (vmaf_ci_p95_lo, ...)
        return KeySeries {
            family: "vqm_vmaf_bootstrap".to_string(),
            label: "figure",
            plane: stat.to_string(),
            buckets: if stat == "stddev" {
                WIDE_BUCKETS
            } else {
                VMAF_BUCKETS
            },
        };
    }
    if key == "psnr_hvs" {
        return KeySeries {
            family: "vqm_psnr_hvs_db".to_string(),
            label: "plane",
            plane: "all".to_string(),
            buckets: DB_BUCKETS,
        };
    }
    if key.starts_with("integer_") {
        return KeySeries {
            family: "vqm_vmaf_feature".to_string(),
            label: "feature",
            plane: key.to_string(),
            buckets: WIDE_BUCKETS,
        };
    }
    let (metric, plane) = key.rsplit_once('_').unwrap_or((key, ""));
    let (unit, buckets) = if metric.starts_with("psnr") {
        ("_db", DB_BUCKETS)
    } else if matches!(metric, "ssim" | "ms_ssim") {
        ("", UNIT_BUCKETS)
    } else {
        ("", WIDE_BUCKETS)
    };
    let clean: String = metric
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    KeySeries {
        family: format!("vqm_{clean}{unit}"),
        label: "plane",
        plane: plane.to_string(),
        buckets,
    }
}
