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
        let _w = writeln!(
            s,
            "  {:<12} {:>12} {:>12} {:>12}",
            "metric", "mean", "min", "max"
        );
        for (k, p) in &sum.metrics {
            match p {
                Some(p) => {
                    let _w = writeln!(
                        s,
                        "  {:<12} {:>12.6} {:>12.6} {:>12.6}",
                        k, p.mean, p.min, p.max
                    );
                }
                None => {
                    let _w = writeln!(s, "  {:<12} {:>12} {:>12} {:>12}", k, "-", "-", "-");
                }
            }
        }
        if let Some(g) = &sum.psnr_global {
            let parts: Vec<String> = g.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            let _w = writeln!(s, "  PSNR of the mean MSE (dB): {}", parts.join("  "));
        }
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
