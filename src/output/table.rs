//! The human-readable summary table printed on stderr at the end of a run.

use std::fmt::Write;

use crate::output::records::{Header, Summary, Timing};

fn fps(frames: u64, secs: f64) -> String {
    if secs > 0.0 && frames > 0 {
        format!("{:.1} fps", frames as f64 / secs)
    } else {
        "n/a".to_string()
    }
}

/// Renders the summary table of a finished run.
pub fn table(header: &Header, summaries: &[Summary], timing: &Timing) -> String {
    let mut s = String::new();
    let reference = &header.reference.path;
    for sum in summaries {
        let _w = writeln!(
            s,
            "vqm: '{}' vs reference '{}': {} frame(s) compared",
            sum.path, reference, sum.frames
        );
        if let Some(c) = &sum.conversion {
            let _w = writeln!(s, "  distorted converted: {c}");
        }
        if sum.unpaired_reference > 0 || sum.unpaired_distorted > 0 {
            let _w = writeln!(
                s,
                "  unpaired frames: reference {}, distorted {}",
                sum.unpaired_reference, sum.unpaired_distorted
            );
        }
        if sum.decode_errors > 0 {
            let _w = writeln!(s, "  decode errors: {}", sum.decode_errors);
        }
        // the key column as wide as the longest key (vmaf_ci_p95_lo)
        let kw = sum
            .metrics
            .iter()
            .map(|(k, _)| k.len())
            .fold(12, usize::max);
        let _w = writeln!(
            s,
            "  {:<kw$} {:>12} {:>12} {:>12}",
            "metric", "mean", "min", "max"
        );
        for (k, p) in &sum.metrics {
            match p {
                Some(p) => {
                    let _w = writeln!(
                        s,
                        "  {:<kw$} {:>12.6} {:>12.6} {:>12.6}",
                        k, p.mean, p.min, p.max
                    );
                }
                None => {
                    let _w = writeln!(s, "  {:<kw$} {:>12} {:>12} {:>12}", k, "-", "-", "-");
                }
            }
        }
        if let Some(g) = &sum.psnr_global {
            let parts: Vec<String> = g.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            let _w = writeln!(s, "  PSNR of the mean MSE (dB): {}", parts.join("  "));
        }
    }
    if summaries.len() > 1 {
        s.push_str(&ladder_table(summaries));
    }
    let t = timing;
    // live: frames come at the stream's rate, so the decoder's busy time
    // says nothing; the arrival rate and the lag do
    let lag_p99 = summaries
        .iter()
        .filter_map(|x| x.lag_ms.map(|l| l.p99))
        .reduce(f64::max);
    let source = match lag_p99 {
        Some(p99) => format!(
            "arrival {} (reference), lag p99 {p99:.0} ms",
            fps(t.reference_frames, t.wall.as_secs_f64())
        ),
        None => format!(
            "decode {} (reference)",
            fps(t.reference_frames, t.reference_decode.as_secs_f64())
        ),
    };
    let _w = writeln!(
        s,
        "  speed: {source}, metrics {} ({} worker threads), overall {} in {:.2} s",
        fps(t.pairs, t.compute.as_secs_f64()),
        t.threads,
        fps(t.pairs, t.wall.as_secs_f64()),
        t.wall.as_secs_f64()
    );
    s
}

/// The keys a ladder row shows (at most three): each metric's overall
/// figure, in this order, or else the first key.
const HEADLINE: [&str; 9] = [
    "vmaf",
    "psnr_avg",
    "ssim_all",
    "ms_ssim_y",
    "psnr_hvs",
    "float_ssim",
    "cambi",
    "mse_avg",
    "ciede2000",
];

/// One row per distorted input, by bitrate: what it is, its pooled means
/// and 5th percentiles, and whether it is on the rate-quality hull.
fn ladder_table(summaries: &[Summary]) -> String {
    let mut s = String::new();
    let Some(first) = summaries.first() else {
        return s;
    };
    let mut keys: Vec<&str> = HEADLINE
        .iter()
        .copied()
        .filter(|h| first.metrics.iter().any(|(k, _)| k == h))
        .take(3)
        .collect();
    if keys.is_empty() {
        keys.extend(first.metrics.first().map(|(k, _)| k.as_str()));
    }
    let mut order: Vec<&Summary> = summaries.iter().collect();
    order.sort_by_key(|x| (x.bitrate.is_none(), x.bitrate, x.input));
    let hull_key = summaries
        .iter()
        .find_map(|x| x.ladder.as_ref())
        .map(|m| m.quality_key.clone());
    let _w = match &hull_key {
        Some(k) => writeln!(
            s,
            "ladder, by bitrate (hull: on the rate-quality convex hull of mean {k}):"
        ),
        None => writeln!(s, "ladder (no bitrate for a rate-quality hull):"),
    };
    let name_w = order
        .iter()
        .map(|x| x.path.chars().count())
        .fold(5, usize::max)
        .min(40);
    let mut head = format!(
        "  {:<name_w$} {:>11} {:>6} {:>9} {:>6}",
        "input", "resolution", "codec", "kb/s", "frames"
    );
    for k in &keys {
        let _w = write!(
            head,
            " {:>13} {:>13}",
            format!("{k} mean"),
            format!("{k} p5")
        );
    }
    if hull_key.is_some() {
        head.push_str("  hull");
    }
    let _w = writeln!(s, "{head}");
    for x in order {
        let name: String = x
            .path
            .chars()
            .rev()
            .take(name_w)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let kbps = x
            .bitrate
            .map(|b| format!("{:.0}", b as f64 / 1000.0))
            .unwrap_or_else(|| "-".to_string());
        let mut row = format!(
            "  {:<name_w$} {:>11} {:>6} {:>9} {:>6}",
            name, x.resolution, x.codec, kbps, x.frames
        );
        for k in &keys {
            match x
                .metrics
                .iter()
                .find(|(key, _)| key == k)
                .and_then(|(_, p)| p.as_ref())
            {
                Some(p) => {
                    let _w = write!(row, " {:>13.4} {:>13.4}", p.mean, p.p5);
                }
                None => {
                    let _w = write!(row, " {:>13} {:>13}", "-", "-");
                }
            }
        }
        if hull_key.is_some() {
            row.push_str(match &x.ladder {
                Some(m) if m.on_hull => "  yes",
                Some(m) => match m.dominated_by {
                    Some(_) => "  no (dominated)",
                    None => "  no",
                },
                None => "  -",
            });
        }
        let _w = writeln!(s, "{row}");
    }
    s
}
