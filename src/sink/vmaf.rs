//! `--summary-format vmaf`: the summary in libvmaf's JSON layout
//! (`frames[].frameNum/metrics`, `pooled_metrics.{min,max,mean,
//! harmonic_mean}`), so tools that read libvmaf's output read vqm's. Frame
//! entries stream into a temporary file per input as they are measured, so
//! memory stays bounded however long the run; each input's object is
//! written, one per line, when its summary is ready.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};

use super::{Output, Sink};
use crate::error::Error;
use crate::json::{Obj, push_num, push_str};
use crate::record::Record;

struct Pending {
    file: BufWriter<File>,
    count: u64,
}

/// Writes libvmaf-layout summaries.
pub struct VmafSink {
    out: Output,
    keys: Vec<String>,
    frame_rate: Option<f64>,
    pending: Vec<Pending>,
}

fn io(e: std::io::Error) -> Error {
    Error::Output {
        path: "temporary file of --summary-format vmaf".to_string(),
        source: e,
    }
}

impl VmafSink {
    /// A libvmaf-layout summary at `out`.
    pub fn new(out: Output) -> Self {
        VmafSink {
            out,
            keys: Vec::new(),
            frame_rate: None,
            pending: Vec::new(),
        }
    }
}

impl Sink for VmafSink {
    fn write(&mut self, record: &Record<'_>, _json: &str) -> Result<(), Error> {
        match record {
            Record::Header(h) => {
                self.keys = h.keys.clone();
                self.frame_rate = h.reference.frame_rate;
                self.pending.clear();
                for _ in &h.distorted {
                    let f = tempfile::tempfile().map_err(io)?;
                    self.pending.push(Pending {
                        file: BufWriter::new(f),
                        count: 0,
                    });
                }
                Ok(())
            }
            Record::Frame(f) => {
                let Some(p) = self.pending.get_mut(f.input) else {
                    return Ok(());
                };
                let mut s = String::new();
                if p.count > 0 {
                    s.push(',');
                }
                let mut o = Obj::new(&mut s);
                o.int("frameNum", f.frame);
                o.obj("metrics", |m| {
                    for (k, v) in f.keys.iter().zip(f.values) {
                        m.num(k, *v);
                    }
                });
                o.close();
                p.count += 1;
                p.file.write_all(s.as_bytes()).map_err(io)
            }
            Record::Summary(sum) => {
                let Some(p) = self.pending.get_mut(sum.input) else {
                    return Ok(());
                };
                p.file.flush().map_err(io)?;
                let mut frames = String::new();
                let f = p.file.get_mut();
                f.seek(SeekFrom::Start(0)).map_err(io)?;
                f.read_to_string(&mut frames).map_err(io)?;
                let mut s = String::new();
                s.push('{');
                s.push_str("\"version\":");
                push_str(&mut s, concat!("vqm ", env!("CARGO_PKG_VERSION")));
                s.push_str(",\"fps\":");
                match self.frame_rate {
                    Some(r) => push_num(&mut s, r),
                    None => s.push_str("null"),
                }
                s.push_str(",\"input\":");
                push_str(&mut s, &sum.path);
                s.push_str(",\"frames\":[");
                s.push_str(&frames);
                s.push_str("],\"pooled_metrics\":");
                let mut o = Obj::new(&mut s);
                for (k, p) in &sum.metrics {
                    if let Some(p) = p {
                        o.obj(k, |e| {
                            e.num("min", p.min)
                                .num("max", p.max)
                                .num("mean", p.mean)
                                .opt_num("harmonic_mean", p.harmonic_mean);
                        });
                    }
                }
                o.close();
                s.push_str(",\"aggregate_metrics\":{}}");
                self.out.line(&s)
            }
            _ => Ok(()),
        }
    }
    fn finish(&mut self) -> Result<(), Error> {
        self.out.flush()
    }
}
