//! Summaries as a table, one row per distorted input: `--summary-csv`
//! (one run's inputs, a ladder's rungs) and `vqm merge` (a catalog's rows).
//! The columns: the input facts (path, resolution, codec, bitrate), frames,
//! unpaired counts, then for every metric key its pooled mean, harmonic
//! mean and 5th percentile, then the ladder mark. Rows are read from the
//! summary records' JSON, so a summary written by another run (a file on
//! disk) makes the same row as one made now.

use serde_json::Value;

use super::{Mode, Output, Sink};
use crate::error::Error;
use crate::output::csv::cell;
use crate::output::json::push_num;
use crate::output::records::Summary;

/// The pooled figures each metric key contributes, in column order.
const FIGURES: [&str; 3] = ["mean", "harmonic_mean", "p5"];

/// The columns before the metric keys: their header name and where a
/// summary record holds them.
const FACTS: [(&str, &[&str]); 8] = [
    ("input", &["input"]),
    ("path", &["path"]),
    ("resolution", &["resolution"]),
    ("codec", &["codec"]),
    ("bitrate", &["bitrate"]),
    ("frames", &["frames"]),
    ("unpaired_reference", &["unpaired", "reference"]),
    ("unpaired_distorted", &["unpaired", "distorted"]),
];

/// The columns after them: the ladder mark.
const LADDER: [(&str, &[&str]); 3] = [
    ("ladder_rank", &["ladder", "rank"]),
    ("on_hull", &["ladder", "on_hull"]),
    ("dominated_by", &["ladder", "dominated_by"]),
];

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| v.get(k).unwrap_or(&Value::Null))
}

fn value_cell(v: &Value, line: &mut String) {
    match v {
        Value::Null => {}
        Value::Bool(b) => line.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => push_num(line, x),
            _ => line.push_str(&n.to_string()),
        },
        Value::String(s) => cell(s, line),
        other => cell(&other.to_string(), line),
    }
}

/// The metric keys of `rows`, in the order they first appear.
fn keys(rows: &[(Vec<String>, Value)]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (_, s) in rows {
        if let Some(m) = s.get("metrics").and_then(Value::as_object) {
            for k in m.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    keys
}

/// One CSV line from its cells.
fn line(cells: &[String]) -> String {
    cells.join(",")
}

/// One cell's text.
fn text(v: &Value) -> String {
    let mut c = String::new();
    value_cell(v, &mut c);
    c
}

/// The CSV lines of `rows` (header first, no line breaks): each row is its
/// leading cells (named by `leading`, e.g. a manifest row's `id`) and a
/// summary record. A key a row lacks, or a figure that cannot exist, is an
/// empty cell.
pub fn table(leading: &[&str], rows: &[(Vec<String>, Value)]) -> Vec<String> {
    let keys = keys(rows);
    let mut header: Vec<String> = leading.iter().map(|s| s.to_string()).collect();
    header.extend(FACTS.iter().map(|(n, _)| n.to_string()));
    for k in &keys {
        header.extend(FIGURES.iter().map(|f| format!("{k}_{f}")));
    }
    header.extend(LADDER.iter().map(|(n, _)| n.to_string()));
    let header: Vec<String> = header
        .iter()
        .map(|h| text(&Value::from(h.as_str())))
        .collect();
    let mut lines = vec![line(&header)];
    for (lead, s) in rows {
        let mut cells: Vec<String> = lead
            .iter()
            .map(|c| text(&Value::from(c.as_str())))
            .collect();
        cells.extend(FACTS.iter().map(|(_, path)| text(at(s, path))));
        for k in &keys {
            cells.extend(FIGURES.iter().map(|f| text(at(s, &["metrics", k, f]))));
        }
        cells.extend(LADDER.iter().map(|(_, path)| text(at(s, path))));
        lines.push(line(&cells));
    }
    lines
}

/// `--summary-csv PATH|-`: the run's summaries as one table, written at the
/// end.
pub struct SummaryCsvSink {
    out: Output,
    rows: Vec<(Vec<String>, Value)>,
}

impl SummaryCsvSink {
    /// A summary table at `out`.
    pub fn new(out: Output) -> Self {
        SummaryCsvSink {
            out,
            rows: Vec::new(),
        }
    }

    /// How this sink's file is opened.
    pub const MODE: Mode = Mode::AtEnd;
}

impl Sink for SummaryCsvSink {
    fn summary(&mut self, _summary: &Summary, json: &str) -> Result<(), Error> {
        let v: Value = serde_json::from_str(json)
            .map_err(|e| Error::Internal(format!("a summary record is not JSON: {e}")))?;
        self.rows.push((Vec::new(), v));
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        for l in table(&[], &self.rows) {
            self.out.line(&l)?;
        }
        self.out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_key_order_and_leave_missing_figures_empty() {
        let a: Value = serde_json::from_str(
            r#"{"input": 0, "path": "a,b.mp4", "resolution": "640x360", "codec": "h264",
                "bitrate": null, "frames": 3, "unpaired": {"reference": 1, "distorted": 0},
                "metrics": {"psnr_y": {"mean": 40.5, "harmonic_mean": null, "p5": 39.0},
                            "ssim_y": {"mean": 0.9, "harmonic_mean": 0.89, "p5": 0.8}},
                "ladder": null}"#,
        )
        .unwrap();
        let b: Value = serde_json::from_str(
            r#"{"input": 1, "path": "=c.mp4", "frames": 0, "metrics": {"ssim_y": null, "vmaf": {"mean": 90.0}},
                "ladder": {"rank": 2, "on_hull": false, "dominated_by": 0}}"#,
        )
        .unwrap();
        let t = table(&["id"], &[(vec!["r1".into()], a), (vec!["r2".into()], b)]);
        assert_eq!(t.len(), 3);
        assert_eq!(
            t[0],
            "id,input,path,resolution,codec,bitrate,frames,unpaired_reference,unpaired_distorted,\
             psnr_y_mean,psnr_y_harmonic_mean,psnr_y_p5,ssim_y_mean,ssim_y_harmonic_mean,ssim_y_p5,\
             vmaf_mean,vmaf_harmonic_mean,vmaf_p5,ladder_rank,on_hull,dominated_by"
        );
        assert_eq!(
            t[1],
            "r1,0,\"a,b.mp4\",640x360,h264,,3,1,0,40.5,,39,0.9,0.89,0.8,,,,,,"
        );
        assert_eq!(t[2], "r2,1,'=c.mp4,,,,0,,,,,,,,,90,,,2,false,0");
    }
}
