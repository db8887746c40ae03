//! The records vqm writes (SPEC "Records"): header, frame, window, event
//! and summary, each serialised as one compact JSON object with keys in a
//! fixed order.

use crate::input::InputInfo;
use crate::json::Obj;
use crate::stats::Pooled;
use crate::stats::rolling::WindowStat;

/// Version of the record layout.
pub const SCHEMA: u64 = 1;

/// One distorted input as the header describes it.
#[derive(Debug, Clone)]
pub struct DistortedHeader {
    /// What the input is.
    pub info: InputInfo,
    /// Frames skipped at its start.
    pub offset: u64,
    /// Reference frames skipped at the start for this input.
    pub reference_offset: u64,
    /// The automatic sync result (offset, mean thumbnail PSNR), if done
    /// before the run.
    pub sync: Option<(i64, f64)>,
}

/// The first record of a log.
#[derive(Debug, Clone)]
pub struct Header {
    /// The reference input.
    pub reference: InputInfo,
    /// Frames skipped at the reference's start.
    pub reference_offset: u64,
    /// The distorted inputs, in `input` order.
    pub distorted: Vec<DistortedHeader>,
    /// Selected metric names.
    pub metrics: Vec<String>,
    /// Record keys of each frame, in order.
    pub keys: Vec<String>,
    /// Planar format measured in.
    pub measured_format: String,
    /// Bit depth measured at.
    pub bit_depth: u32,
    /// SSIM convention.
    pub ssim_mode: String,
    /// PSNR cap in dB.
    pub psnr_max: f64,
    /// Rolling window.
    pub window: crate::stats::WindowSpec,
    /// Pairing: `index` or `pts`.
    pub align: String,
    /// `--sync auto` search range, if asked.
    pub sync_range: Option<u64>,
    /// Live monitoring.
    pub live: bool,
    /// The kernels' code path (`scalar`, `avx2`, `fma`, `avx512`).
    pub cpu: String,
}

fn input_obj(o: &mut Obj<'_>, info: &InputInfo, offset: u64) {
    o.str("path", &info.path)
        .str("codec", &info.codec)
        .int("width", info.width as u64)
        .int("height", info.height as u64)
        .str("pix_fmt", &info.pix_fmt)
        .int("bit_depth", info.bit_depth as u64)
        .opt_num("frame_rate", info.frame_rate)
        .opt_str("conversion", info.conversion.as_deref())
        .str("range", &info.range)
        .raw("interlaced", if info.interlaced { "true" } else { "false" })
        .int("offset", offset);
}

impl Header {
    /// Serialises the header record.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        let mut o = Obj::new(&mut s);
        o.str("type", "header")
            .int("schema", SCHEMA)
            .str("version", env!("CARGO_PKG_VERSION"))
            .obj("reference", |r| {
                input_obj(r, &self.reference, self.reference_offset)
            });
        o.raw("distorted", &{
            let mut a = String::from("[");
            for (i, d) in self.distorted.iter().enumerate() {
                if i > 0 {
                    a.push(',');
                }
                let mut inner = Obj::new(&mut a);
                input_obj(&mut inner, &d.info, d.offset);
                inner.int("reference_offset", d.reference_offset);
                match d.sync {
                    Some((off, psnr)) => {
                        inner.obj("sync", |e| {
                            e.raw("offset", &off.to_string()).num("psnr", psnr);
                        });
                    }
                    None => {
                        inner.raw("sync", "null");
                    }
                }
                inner.close();
            }
            a.push(']');
            a
        });
        o.str_array("metrics", self.metrics.iter().map(String::as_str))
            .str_array("keys", self.keys.iter().map(String::as_str))
            .str("measured_format", &self.measured_format)
            .int("bit_depth", self.bit_depth as u64)
            .str("ssim_mode", &self.ssim_mode)
            .num("psnr_max", self.psnr_max);
        match self.window {
            crate::stats::WindowSpec::Frames(n) => {
                o.int("window", n as u64).raw("window_seconds", "null");
            }
            crate::stats::WindowSpec::Seconds(sec) => {
                o.raw("window", "null").num("window_seconds", sec);
            }
        }
        o.str("align", &self.align);
        match self.sync_range {
            Some(k) => o.int("sync_range", k),
            None => o.raw("sync_range", "null"),
        };
        o.raw("live", if self.live { "true" } else { "false" });
        o.str("cpu", &self.cpu);
        o.close();
        s
    }
}

/// One measured pair.
#[derive(Debug, Clone, Copy)]
pub struct FrameRecord<'a> {
    /// Distorted input index.
    pub input: usize,
    /// The distorted input's path (not in the JSON: `input` says it).
    pub path: &'a str,
    /// Index of the pair in output order.
    pub frame: u64,
    /// Index of the reference frame in its input.
    pub ref_frame: u64,
    /// Index of the distorted frame in its input.
    pub dist_frame: u64,
    /// Reference presentation time in seconds from its first frame.
    pub pts: f64,
    /// Keys of `values`.
    pub keys: &'a [String],
    /// One value per key.
    pub values: &'a [f64],
}

impl FrameRecord<'_> {
    /// Serialises the frame record.
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(64 + 24 * self.keys.len());
        let mut o = Obj::new(&mut s);
        o.str("type", "frame")
            .int("input", self.input as u64)
            .int("frame", self.frame)
            .int("ref_frame", self.ref_frame)
            .int("dist_frame", self.dist_frame)
            .num("pts", self.pts);
        for (k, v) in self.keys.iter().zip(self.values) {
            o.num(k, *v);
        }
        o.close();
        s
    }
}

/// Rolling statistics over the last window of one input.
#[derive(Debug, Clone, Copy)]
pub struct WindowRecord<'a> {
    /// Distorted input index.
    pub input: usize,
    /// Last pair index in the window.
    pub end_frame: u64,
    /// Pairs in the window.
    pub frames: u64,
    /// Keys of `stats`.
    pub keys: &'a [String],
    /// Statistics per key.
    pub stats: &'a [WindowStat],
}

impl WindowRecord<'_> {
    /// Serialises the window record.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        let mut o = Obj::new(&mut s);
        o.str("type", "window")
            .int("input", self.input as u64)
            .int("end_frame", self.end_frame)
            .int("frames", self.frames);
        for (k, st) in self.keys.iter().zip(self.stats) {
            o.obj(k, |w| {
                w.num("mean", st.mean).num("min", st.min).num("max", st.max);
            });
        }
        o.close();
        s
    }
}

/// Something that happened during the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `mismatch`, `decode_error`, …
    pub kind: &'static str,
    /// Distorted input index it concerns, if any.
    pub input: Option<usize>,
    /// Which input it concerns by role and path (`reference`/`distorted`).
    pub source: Option<(String, String)>,
    /// Integer details in order.
    pub counts: Vec<(&'static str, i64)>,
    /// A numeric detail, if any.
    pub value: Option<(&'static str, f64)>,
    /// The alert rule it concerns, if any.
    pub rule: Option<String>,
    /// Human-readable explanation.
    pub message: String,
}

impl Event {
    /// Serialises the event record.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        let mut o = Obj::new(&mut s);
        o.str("type", "event").str("kind", self.kind);
        if let Some(i) = self.input {
            o.int("input", i as u64);
        }
        if let Some((role, path)) = &self.source {
            o.str("role", role).str("path", path);
        }
        for (k, v) in &self.counts {
            o.raw(k, &v.to_string());
        }
        if let Some((k, v)) = self.value {
            o.num(k, v);
        }
        if let Some(r) = &self.rule {
            o.str("rule", r);
        }
        o.str("message", &self.message);
        o.close();
        s
    }
}

/// The pooled result of one distorted input.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Distorted input index.
    pub input: usize,
    /// The distorted input's path.
    pub path: String,
    /// Pairs measured.
    pub frames: u64,
    /// Pooled figures per key, in key order (`None` for a key never seen).
    pub metrics: Vec<(String, Option<Pooled>)>,
    /// PSNR of the mean MSE per plane and average, when PSNR/MSE ran.
    pub psnr_global: Option<Vec<(String, f64)>>,
    /// Reference frames left unpaired.
    pub unpaired_reference: u64,
    /// Distorted frames left unpaired.
    pub unpaired_distorted: u64,
    /// Decode errors seen on the reference and on this input.
    pub decode_errors: u64,
    /// How the distorted frames were converted, if they were.
    pub conversion: Option<String>,
    /// Reference index minus distorted index of the last pairs (offsets,
    /// sync and resyncs included).
    pub offset: i64,
    /// The automatic sync result: offset and mean thumbnail PSNR.
    pub sync: Option<(i64, f64)>,
    /// Distorted frames identical to their predecessor while the reference changed.
    pub frozen_frames: u64,
    /// Distorted frames black while the reference was not.
    pub black_frames: u64,
    /// Reference frames with no distorted frame at their time (`--align pts`).
    pub dropped_frames: u64,
    /// Times this input (or the reference) was lost and restored.
    pub reconnects: u64,
    /// Alert rules that fired on this input.
    pub alerts: Vec<String>,
    /// Quality gates and their outcome.
    pub gates: Vec<crate::gate::GateResult>,
    /// Latency from both frames decoded to the record written, ms:
    /// median, p99, max.
    pub latency_ms: Option<(f64, f64, f64)>,
    /// Whether the run was stopped by a signal before its inputs ended.
    pub interrupted: bool,
}

impl Summary {
    /// Serialises the summary record.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        let mut o = Obj::new(&mut s);
        o.str("type", "summary")
            .int("schema", SCHEMA)
            .int("input", self.input as u64)
            .str("path", &self.path)
            .int("frames", self.frames);
        o.obj("metrics", |m| {
            for (k, p) in &self.metrics {
                match p {
                    Some(p) => {
                        m.obj(k, |e| {
                            e.num("mean", p.mean)
                                .num("min", p.min)
                                .num("max", p.max)
                                .num("stddev", p.stddev)
                                .opt_num("harmonic_mean", p.harmonic_mean)
                                .num("median", p.median)
                                .num("p5", p.p5)
                                .num("p95", p.p95);
                        });
                    }
                    None => {
                        m.raw(k, "null");
                    }
                }
            }
        });
        match &self.psnr_global {
            Some(g) => {
                o.obj("psnr_global", |e| {
                    for (k, v) in g {
                        e.num(k, *v);
                    }
                });
            }
            None => {
                o.raw("psnr_global", "null");
            }
        }
        o.obj("unpaired", |u| {
            u.int("reference", self.unpaired_reference)
                .int("distorted", self.unpaired_distorted);
        })
        .int("decode_errors", self.decode_errors)
        .opt_str("conversion", self.conversion.as_deref());
        o.raw("offset", &self.offset.to_string());
        match self.sync {
            Some((off, psnr)) => {
                o.obj("sync", |e| {
                    e.raw("offset", &off.to_string()).num("psnr", psnr);
                });
            }
            None => {
                o.raw("sync", "null");
            }
        }
        o.int("frozen_frames", self.frozen_frames)
            .int("black_frames", self.black_frames)
            .int("dropped_frames", self.dropped_frames)
            .int("reconnects", self.reconnects)
            .str_array("alerts", self.alerts.iter().map(String::as_str));
        o.raw("gates", &{
            let mut a = String::from("[");
            for (i, g) in self.gates.iter().enumerate() {
                if i > 0 {
                    a.push(',');
                }
                let mut e = Obj::new(&mut a);
                e.str("gate", &g.gate)
                    .opt_num("value", g.value)
                    .raw("failed", if g.failed { "true" } else { "false" });
                e.close();
            }
            a.push(']');
            a
        });
        match self.latency_ms {
            Some((p50, p99, max)) => {
                o.obj("latency_ms", |e| {
                    e.num("median", p50).num("p99", p99).num("max", max);
                });
            }
            None => {
                o.raw("latency_ms", "null");
            }
        }
        o.raw(
            "interrupted",
            if self.interrupted { "true" } else { "false" },
        );
        o.close();
        s
    }
}

/// Any record, for the sinks.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    /// The header.
    Header(&'a Header),
    /// A measured pair.
    Frame(&'a FrameRecord<'a>),
    /// Rolling statistics.
    Window(&'a WindowRecord<'a>),
    /// An event.
    Event(&'a Event),
    /// A pooled summary.
    Summary(&'a Summary),
}
