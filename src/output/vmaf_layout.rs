//! `--summary-format vmaf`: the summary in libvmaf's JSON layout
//! (`frames[].frameNum/metrics`, `pooled_metrics.{min,max,mean,
//! harmonic_mean}`), so tools that read libvmaf's output read vqm's. Frame
//! entries stream into a temporary file per input as they are measured, so
//! memory stays bounded however long the run; each input's object is
//! written when its summary is ready. One distorted input gives one object,
//! several a JSON array of them (one document either way). Keys libvmaf
//! also computes take its names: PSNR's chroma planes are `psnr_cb` and
//! `psnr_cr`; vqm's own SSIM keeps its names (`ssim_y`, not libvmaf's
//! `float_ssim`: the values differ).

/// libvmaf's name for record key `k`.
pub fn libvmaf_name(k: &str) -> &str {
    match k {
        "psnr_u" => "psnr_cb",
        "psnr_v" => "psnr_cr",
        _ => k,
    }
}

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};

use super::{Output, Sink};
use crate::error::Error;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::output::json;
use crate::output::records::{FrameRecord, Header, Summary};

struct Pending {
    file: BufWriter<File>,
    count: u64,
}

/// Writes libvmaf-layout summaries.
pub struct VmafLayoutSink {
    out: Output,
    frame_rate: Option<f64>,
    pending: Vec<Pending>,
    /// Objects written so far (several inputs: the array's elements).
    written: usize,
}

fn io(e: std::io::Error) -> Error {
    Error::Output {
        path: "temporary file of --summary-format vmaf".to_string(),
        source: e,
    }
}

impl VmafLayoutSink {
    /// A libvmaf-layout summary at `out`.
    pub fn new(out: Output) -> Self {
        VmafLayoutSink {
            out,
            frame_rate: None,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// `{"frameNum":n,"metrics":{key:value,...}}`.
struct FrameOut<'a>(&'a FrameRecord<'a>);

impl Serialize for FrameOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Values<'a>(&'a [String], &'a [f64]);
        impl Serialize for Values<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0.iter().zip(self.1) {
                    m.serialize_entry(libvmaf_name(k), v)?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("frameNum", &self.0.frame)?;
        m.serialize_entry("metrics", &Values(self.0.keys, self.0.values))?;
        m.end()
    }
}

#[derive(Serialize)]
struct PooledOut {
    min: f64,
    max: f64,
    mean: f64,
    harmonic_mean: Option<f64>,
}

/// Everything of an input's object but its frames, which are spliced in.
#[derive(Serialize)]
struct Head<'a> {
    version: &'static str,
    fps: Option<f64>,
    input: &'a str,
}

/// The keys after the frames.
struct Tail<'a>(&'a Summary);

impl Serialize for Tail<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, p) in &self.0.metrics {
            if let Some(p) = p {
                let out = PooledOut {
                    min: p.min,
                    max: p.max,
                    mean: p.mean,
                    harmonic_mean: p.harmonic_mean,
                };
                m.serialize_entry(libvmaf_name(k), &out)?;
            }
        }
        m.end()
    }
}

impl Sink for VmafLayoutSink {
    fn header(&mut self, h: &Header, _json: &str) -> Result<(), Error> {
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
    fn frame(&mut self, f: &FrameRecord<'_>, _json: &str) -> Result<(), Error> {
        let Some(p) = self.pending.get_mut(f.input) else {
            return Ok(());
        };
        if p.count > 0 {
            p.file.write_all(b",").map_err(io)?;
        }
        p.count += 1;
        p.file
            .write_all(json::line(&FrameOut(f))?.as_bytes())
            .map_err(io)
    }
    fn summary(&mut self, sum: &Summary, _json: &str) -> Result<(), Error> {
        let Some(p) = self.pending.get_mut(sum.input) else {
            return Ok(());
        };
        p.file.flush().map_err(io)?;
        let mut frames = String::new();
        let f = p.file.get_mut();
        f.seek(SeekFrom::Start(0)).map_err(io)?;
        f.read_to_string(&mut frames).map_err(io)?;
        let mut s = json::line(&Head {
            version: concat!("vqm ", env!("CARGO_PKG_VERSION")),
            fps: self.frame_rate,
            input: &sum.path,
        })?;
        // {"version":…,"input":…} → {…,"frames":[…],"pooled_metrics":{…},"aggregate_metrics":{}}
        s.pop();
        s.push_str(",\"frames\":[");
        s.push_str(&frames);
        s.push_str("],\"pooled_metrics\":");
        s.push_str(&json::line(&Tail(sum))?);
        s.push_str(",\"aggregate_metrics\":{}}");
        if self.pending.len() > 1 {
            s.insert(0, if self.written == 0 { '[' } else { ',' });
        }
        self.written += 1;
        self.out.line(&s)
    }
    fn finish(&mut self) -> Result<(), Error> {
        if self.pending.len() > 1 && self.written > 0 {
            self.out.line("]")?;
        }
        self.out.finish()
    }
}
