//! `--csv PATH|-`: one row per measured pair (input, frame, pts, ref_frame,
//! dist_frame, then every record key), with a header row. Values use the
//! same shortest round-trip formatting as the JSON records; a value that
//! cannot exist is an empty cell. pandas and spreadsheets read it as is.

use super::{Output, Sink};
use crate::error::Error;
use crate::output::json::push_num;
use crate::output::records::{FrameRecord, Header};

/// Writes frame records as CSV rows, flushed as produced.
pub struct CsvSink {
    out: Output,
    line: String,
}

impl CsvSink {
    /// A CSV file at `out`.
    pub fn new(out: Output) -> Self {
        CsvSink {
            out,
            line: String::new(),
        }
    }
}

/// Appends a text cell, quoted when it holds a separator, a quote or a
/// line break; text a spreadsheet would run as a formula (starting with
/// `=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`.
pub(super) fn cell(text: &str, line: &mut String) {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let text = if formula {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&text.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(&text);
    }
}

impl Sink for CsvSink {
    fn header(&mut self, h: &Header, _json: &str) -> Result<(), Error> {
        {
            self.line.clear();
            self.line
                .push_str("input,path,frame,pts,ref_frame,dist_frame");
            for k in &h.keys {
                self.line.push(',');
                cell(k, &mut self.line);
            }
            self.out.line(&self.line)
        }
    }
    fn frame(&mut self, f: &FrameRecord<'_>, _json: &str) -> Result<(), Error> {
        {
            self.line.clear();
            let l = &mut self.line;
            l.push_str(&f.input.to_string());
            l.push(',');
            cell(f.path, l);
            l.push(',');
            l.push_str(&f.frame.to_string());
            l.push(',');
            push_num(l, f.pts);
            l.push(',');
            l.push_str(&f.ref_frame.to_string());
            l.push(',');
            l.push_str(&f.dist_frame.to_string());
            for v in f.values {
                l.push(',');
                if v.is_finite() {
                    push_num(l, *v);
                }
            }
            self.out.line(&self.line)
        }
    }
    fn finish(&mut self) -> Result<(), Error> {
        self.out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cells_are_quoted_and_never_run_as_formulas() {
        let cases = [
            ("plain.mp4", "plain.mp4"),
            ("a,b.mp4", "\"a,b.mp4\""),
            ("say \"hi\".mp4", "\"say \"\"hi\"\".mp4\""),
            ("=cmd|' -C calc'!A0.mp4", "'=cmd|' -C calc'!A0.mp4"),
            ("+1.mp4", "'+1.mp4"),
            ("-x.mp4", "'-x.mp4"),
            ("@SUM(A1).mp4", "'@SUM(A1).mp4"),
            ("\tx.mp4", "'\tx.mp4"),
            ("\rx.mp4", "\"'\rx.mp4\""),
            ("=a,b", "\"'=a,b\""),
        ];
        for (text, want) in cases {
            let mut line = String::new();
            cell(text, &mut line);
            assert_eq!(line, want, "{text:?}");
        }
    }
}
