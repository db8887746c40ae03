//! `--report report.html`: one self-contained HTML file (no scripts, no
//! network: inline CSS and SVG) with the inputs named (path, size, codec,
//! bitrate) and their means, a chart of every record key over time (one
//! line per distorted input, value and frame/time axes with gridlines,
//! values on hover through SVG titles, the window's width), the summary
//! table and the worst moments.
//! Charts keep a bounded number of points: past [`MAX_POINTS`] frames each
//! point is the min/max envelope of a run of frames, so memory does not
//! grow with the video.

use std::fmt::Write as _;

use super::{Output, Sink};
use crate::error::Error;
use crate::metrics::Better;
use crate::output::records::{FrameRecord, Header, Summary, WorstPicture};
use crate::stats::moments::{Moments, gap_frames};
use base64::Engine as _;

/// Points per chart line at most.
pub const MAX_POINTS: usize = 600;

/// Min/max envelope of a series in at most [`MAX_POINTS`] buckets.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    buckets: Vec<(f64, f64)>,
    per_bucket: u64,
    in_last: u64,
    /// Values pushed.
    pub count: u64,
}

impl Envelope {
    /// Adds the next value.
    pub fn push(&mut self, v: f64) {
        if self.per_bucket == 0 {
            self.per_bucket = 1;
        }
        self.count += 1;
        if !v.is_finite() {
            return;
        }
        let full = self.in_last >= self.per_bucket || self.buckets.is_empty();
        if full {
            if self.buckets.len() == MAX_POINTS {
                // halve the resolution: merge neighbours
                let merged: Vec<(f64, f64)> = self
                    .buckets
                    .chunks(2)
                    .map(|c| {
                        c.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, b| {
                            (a.0.min(b.0), a.1.max(b.1))
                        })
                    })
                    .collect();
                self.buckets = merged;
                self.per_bucket *= 2;
                self.in_last = self.per_bucket;
                if self.in_last >= self.per_bucket {
                    self.buckets.push((v, v));
                    self.in_last = 1;
                    return;
                }
            }
            self.buckets.push((v, v));
            self.in_last = 1;
        } else if let Some(b) = self.buckets.last_mut() {
            b.0 = b.0.min(v);
            b.1 = b.1.max(v);
            self.in_last += 1;
        }
    }

    /// The buckets: (min, max) each, `frames_per_point` frames each.
    pub fn points(&self) -> (&[(f64, f64)], u64) {
        (&self.buckets, self.per_bucket.max(1))
    }
}

/// Builds the HTML report.
pub struct ReportSink {
    out: Output,
    worst_n: usize,
    title: String,
    keys: Vec<String>,
    /// Which way the first key is better (it ranks the worst frames).
    first_better: Better,
    inputs: Vec<String>,
    /// Each input as the legend names it: path, size, codec, bitrate.
    described: Vec<String>,
    /// The reference's frame rate, for the time axis.
    frame_rate: Option<f64>,
    charts: Vec<Vec<Envelope>>,
    /// Per input, its worst moments (the item: the frame's time).
    worst: Vec<Moments<f64>>,
    /// `--worst-gap` in seconds.
    worst_gap: f64,
    summaries: Vec<Summary>,
    /// The worst moments' pictures, embedded.
    pictures: Vec<WorstPicture>,
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

/// "Nice" ticks (1, 2 or 5 times a power of ten apart) covering lo..hi,
/// about `want` of them, and their step.
fn ticks(lo: f64, hi: f64, want: usize) -> (Vec<f64>, f64) {
    let span = (hi - lo).max(1e-12);
    let raw = span / want.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).floor() * step;
    let mut out = Vec::new();
    let mut t = first;
    while t <= hi + step * 0.5 && out.len() < 4 * want + 2 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    (out, step)
}

/// Decimals that show a tick step exactly (0.05: 2).
fn decimals_for(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil().clamp(0.0, 12.0) as usize
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl ReportSink {
    /// A report at `out` listing the `worst_n` worst moments of each
    /// input, `worst_gap` seconds apart at least.
    pub fn new(out: Output, worst_n: usize, worst_gap: f64) -> Self {
        ReportSink {
            out,
            worst_n,
            worst_gap,
            title: String::new(),
            keys: Vec::new(),
            first_better: Better::default(),
            inputs: Vec::new(),
            described: Vec::new(),
            frame_rate: None,
            charts: Vec::new(),
            worst: Vec::new(),
            summaries: Vec::new(),
            pictures: Vec::new(),
        }
    }

    fn chart(&self, k: usize) -> String {
        let (w, h, left, right, top) = (900.0, 200.0, 64.0, 12.0, 8.0);
        let plot_w = w - left - right;
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        let mut frames = 1u64;
        for input in &self.charts {
            let env = &input[k];
            frames = frames.max(env.count);
            for (a, b) in env.points().0 {
                lo = lo.min(*a);
                hi = hi.max(*b);
            }
        }
        let key = esc(&self.keys[k]);
        let mut s = String::new();
        let _w = write!(
            s,
            "<svg class=\"chart\" viewBox=\"0 0 {w} {}\" preserveAspectRatio=\"xMinYMin meet\" role=\"img\" aria-label=\"{key}\">",
            h + top + 44.0,
        );
        let _w = write!(
            s,
            "<rect x=\"{left}\" y=\"{top}\" width=\"{plot_w}\" height=\"{h}\" fill=\"#fafafa\" stroke=\"#bbb\"/>"
        );
        if !lo.is_finite() {
            s.push_str("<text x=\"80\" y=\"100\">no values</text></svg>");
            return s;
        }
        if hi - lo < 1e-12 {
            hi = lo + 1.0;
        }
        // the plot spans the values exactly; the ticks within it are drawn
        let (y_ticks, y_step) = ticks(lo, hi, 5);
        let y_ticks: Vec<f64> = y_ticks
            .into_iter()
            .filter(|t| *t >= lo - 1e-9 * (hi - lo) && *t <= hi + 1e-9 * (hi - lo))
            .collect();
        let last = frames.saturating_sub(1).max(1) as f64;
        let x = |f: f64| left + plot_w * f / last;
        let y = |v: f64| top + h - h * (v - lo) / (hi - lo);
        let decimals = decimals_for(y_step);
        for t in &y_ticks {
            let _w = write!(
                s,
                "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/><text class=\"tick y\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{t:.decimals$}</text>",
                left + plot_w,
                left - 4.0,
                y(*t) + 3.0,
                yy = y(*t),
            );
        }
        let (x_ticks, _) = ticks(0.0, last, 8);
        for t in x_ticks.iter().filter(|t| **t >= 0.0 && **t <= last) {
            let xx = x(*t);
            let time = match self.frame_rate {
                Some(r) if r > 0.0 => format!("{:.2} s", t / r),
                _ => String::new(),
            };
            let _w = write!(
                s,
                "<line class=\"grid\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{top}\" y2=\"{}\"/><text class=\"tick x\" x=\"{xx:.1}\" y=\"{}\" text-anchor=\"middle\">{t:.0}</text><text class=\"tick t\" x=\"{xx:.1}\" y=\"{}\" text-anchor=\"middle\">{time}</text>",
                top + h,
                top + h + 14.0,
                top + h + 27.0,
            );
        }
        let _w = write!(
            s,
            "<text class=\"ax\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">frame (time)</text>",
            left + plot_w / 2.0,
            top + h + 41.0
        );
        for (i, input) in self.charts.iter().enumerate() {
            let (pts, per) = input[k].points();
            if pts.is_empty() {
                continue;
            }
            let color = COLORS[i % COLORS.len()];
            let mut path = String::new();
            for (j, (_, b)) in pts.iter().enumerate() {
                let _w = write!(path, "{:.1},{:.1} ", x((j as u64 * per) as f64), y(*b));
            }
            for (j, (a, _)) in pts.iter().enumerate().rev() {
                let _w = write!(path, "{:.1},{:.1} ", x((j as u64 * per) as f64), y(*a));
            }
            let _w = write!(
                s,
                "<polygon class=\"series\" points=\"{path}\" fill=\"{color}\" fill-opacity=\"0.3\" stroke=\"{color}\" stroke-width=\"1.5\"><title>input {i}: {}</title></polygon>",
                esc(&self.inputs[i])
            );
            // hover values: a point per bucket with its frames and values
            for (j, (a, b)) in pts.iter().enumerate() {
                let f0 = j as u64 * per;
                let frames_of = if per > 1 {
                    format!("frames {f0}-{}", f0 + per - 1)
                } else {
                    format!("frame {f0}")
                };
                let value = if a == b {
                    format!("{b:.6}")
                } else {
                    format!("{a:.6} to {b:.6}")
                };
                let _w = write!(
                    s,
                    "<circle class=\"pt\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>input {i}, {frames_of}: {key} {value}</title></circle>",
                    x(f0 as f64),
                    y(*b)
                );
            }
        }
        s.push_str("</svg>");
        s
    }

    fn render(&self) -> String {
        let mut s = String::new();
        let _w = write!(
            s,
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>vqm report: {}</title><style>\
body{{font-family:sans-serif;margin:24px;color:#222}}h2{{margin-top:28px}}table{{border-collapse:collapse;font-size:13px}}\
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}th{{background:#eee}}td.l,th.l{{text-align:left}}\
.ax{{font-size:11px;fill:#555}}.tick{{font-size:10px;fill:#555}}.grid{{stroke:#e2e2e2;stroke-width:1}}\
.wide{{overflow-x:auto}}svg.chart{{width:100%;max-width:1400px;height:auto;display:block}}circle.pt{{fill-opacity:0}}circle.pt:hover{{fill-opacity:1}}.legend span{{display:inline-block;margin-right:16px}}.worst figure{{margin:16px 0}}.worst img{{max-width:100%;height:auto;display:block}}.worst figcaption{{font-size:13px;color:#444}}.sw{{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}}\
</style></head><body><h1>vqm report</h1><p>{}</p>",
            esc(&self.title),
            esc(&self.title)
        );
        s.push_str("<div class=\"legend\">");
        for (i, p) in self.described.iter().enumerate() {
            let _w = write!(
                s,
                "<span><i class=\"sw\" style=\"background:{}\"></i>input {i}: {}</span>",
                COLORS[i % COLORS.len()],
                esc(p)
            );
        }
        s.push_str("</div>");
        // one row per input: what it is and its pooled means
        s.push_str("<h2>Inputs</h2><div class=\"wide\"><table><tr><th>input</th><th class=\"l\">path</th><th>resolution</th><th class=\"l\">codec</th><th>kb/s</th><th>frames</th>");
        for key in &self.keys {
            let _w = write!(s, "<th>mean {}</th>", esc(key));
        }
        s.push_str("</tr>");
        for sum in &self.summaries {
            let kbps = sum
                .bitrate
                .map(|b| format!("{:.0}", b as f64 / 1000.0))
                .unwrap_or_else(|| "-".to_string());
            let _w = write!(
                s,
                "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td>{kbps}</td><td>{}</td>",
                sum.input,
                esc(&sum.path),
                esc(&sum.resolution),
                esc(&sum.codec),
                sum.frames
            );
            for (_, p) in &sum.metrics {
                match p {
                    Some(p) => {
                        let _w = write!(s, "<td>{:.4}</td>", p.mean);
                    }
                    None => s.push_str("<td>-</td>"),
                }
            }
            s.push_str("</tr>");
        }
        s.push_str("</table></div>");
        for (k, key) in self.keys.iter().enumerate() {
            let _w = write!(s, "<h2>{}</h2>{}", esc(key), self.chart(k));
        }
        s.push_str("<h2>Summary</h2><table><tr><th class=\"l\">input</th><th class=\"l\">key</th><th>mean</th><th>min</th><th>max</th><th>median</th><th>p5</th><th>p95</th></tr>");
        for sum in &self.summaries {
            for (k, p) in &sum.metrics {
                if let Some(p) = p {
                    let _w = write!(
                        s,
                        "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{:.6}</td><td>{:.6}</td><td>{:.6}</td><td>{:.6}</td><td>{:.6}</td><td>{:.6}</td></tr>",
                        sum.input,
                        esc(k),
                        p.mean,
                        p.min,
                        p.max,
                        p.median,
                        p.p5,
                        p.p95
                    );
                }
            }
        }
        s.push_str("</table>");
        if let Some(key) = self.keys.first() {
            let _w = write!(
                s,
                "<h2>Worst frames by {}</h2><table><tr><th class=\"l\">input</th><th>frame</th><th>time (s)</th><th>{}</th></tr>",
                esc(key),
                esc(key)
            );
            for (i, list) in self.worst.iter().enumerate() {
                let name = self.inputs.get(i).map_or(String::new(), |p| esc(p));
                for w in list.pick() {
                    let _w = write!(
                        s,
                        "<tr><td class=\"l\">{i}: {name}</td><td>{}</td><td>{:.3}</td><td>{:.6}</td></tr>",
                        w.frame, w.item, w.value
                    );
                }
            }
            s.push_str("</table>");
            if !self.pictures.is_empty() {
                s.push_str("<div class=\"worst\">");
                for p in &self.pictures {
                    let name = self.inputs.get(p.input).map_or(String::new(), |n| esc(n));
                    let caption = format!(
                        "{name}: worst #{} at frame {}, {:.3} s, {} {:.6}",
                        p.rank,
                        p.frame,
                        p.time,
                        esc(key),
                        p.value
                    );
                    let _w = write!(
                        s,
                        "<figure><img alt=\"{caption}\" src=\"data:image/png;base64,{}\"><figcaption>{caption}</figcaption></figure>",
                        base64::engine::general_purpose::STANDARD.encode(&p.png)
                    );
                }
                s.push_str("</div>");
            }
        }
        s.push_str("</body></html>");
        s
    }
}

impl Sink for ReportSink {
    fn header(&mut self, h: &Header, _json: &str) -> Result<(), Error> {
        {
            self.title = format!("reference {}", h.reference.path);
            self.keys = h.keys.clone();
            self.first_better = h.better.first().copied().unwrap_or_default();
            self.inputs = h.distorted.iter().map(|d| d.info.path.clone()).collect();
            self.frame_rate = h.reference.frame_rate;
            self.described = h
                .distorted
                .iter()
                .map(|d| {
                    let i = &d.info;
                    let rate = i
                        .bitrate
                        .map(|b| format!(", {:.0} kb/s", b as f64 / 1000.0))
                        .unwrap_or_default();
                    format!("{} ({}x{}, {}{rate})", i.path, i.width, i.height, i.codec)
                })
                .collect();
            self.charts = vec![vec![Envelope::default(); h.keys.len()]; h.distorted.len()];
            let gap = gap_frames(self.worst_gap, h.reference.frame_rate);
            let lower_is_worse = self.first_better == Better::Higher;
            self.worst = (0..h.distorted.len())
                .map(|_| Moments::new(self.worst_n, gap, lower_is_worse))
                .collect();
        }
        Ok(())
    }
    fn frame(&mut self, f: &FrameRecord<'_>, _json: &str) -> Result<(), Error> {
        {
            if let Some(c) = self.charts.get_mut(f.input) {
                for (e, v) in c.iter_mut().zip(f.values) {
                    e.push(*v);
                }
            }
            if let (Some(list), Some(v)) = (self.worst.get_mut(f.input), f.values.first()) {
                list.offer(f.frame, *v, f.pts);
            }
        }
        Ok(())
    }
    fn summary(&mut self, s: &Summary, _json: &str) -> Result<(), Error> {
        self.summaries.push(s.clone());
        Ok(())
    }
    fn pictures(&mut self, pictures: &[WorstPicture]) -> Result<(), Error> {
        self.pictures = pictures.to_vec();
        Ok(())
    }
    fn finish(&mut self) -> Result<(), Error> {
        let html = self.render();
        self.out.line(&html)?;
        self.out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_stays_bounded_and_keeps_extremes() {
        let mut e = Envelope::default();
        for i in 0..100_000u64 {
            e.push(if i == 77_777 { -5.0 } else { (i % 100) as f64 });
        }
        let (pts, per) = e.points();
        assert!(pts.len() <= MAX_POINTS);
        assert!(per > 1);
        assert_eq!(pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min), -5.0);
        assert_eq!(
            pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
            99.0
        );
        assert_eq!(e.count, 100_000);
        let mut small = Envelope::default();
        for i in 0..10 {
            small.push(i as f64);
        }
        assert_eq!(small.points().0.len(), 10);
        assert_eq!(small.points().1, 1);
    }
}
