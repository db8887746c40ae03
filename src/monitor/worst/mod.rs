//! `--worst N --dump-worst DIR` (and `--report`): keeps the N worst
//! moments of each input (by the first record key) and draws them at the
//! end as PNG pictures — reference luma, distorted luma and the luma SSIM
//! map as a heat map, side by side (a row more per chroma plane with
//! `--worst-chroma`), between bands that name the inputs and give the
//! frame, time and scores beside the map's colour legend (`canvas`). While the run goes, a frame that enters the worst-N list costs
//! a copy of its two luma planes, or, for pictures wider than a panel
//! (where the panels take less room than the planes), its three panels
//! drawn at once, the SSIM map computed a strip at a time (the list holds
//! N of them per input, so memory stays bounded). The PNGs are encoded at
//! the end, a row at a time, straight to their files.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::Error;
use crate::frame::{Frame, Plane, PlaneView, Samples};
use crate::metrics::Better;
use crate::metrics::ssim::WINDOW;
use crate::metrics::ssim::map::ssim_map_grid;
use crate::output::file::temp_beside;
use crate::output::records::WorstPicture;
use crate::stats::moments::Moments;
use rayon::prelude::*;

mod canvas;

/// Panels are at most this wide.
pub const PANEL_WIDTH: usize = 640;

/// Creates `dir` if missing and checks it can be written (a usage error
/// otherwise, before any decoding).
pub fn prepare_dir(dir: &str) -> Result<(), Error> {
    let bad =
        |e: std::io::Error| Error::Usage(format!("--dump-worst '{dir}': cannot write there: {e}"));
    if Path::new(dir).exists() && !Path::new(dir).is_dir() {
        return Err(Error::Usage(format!(
            "--dump-worst '{dir}': is a file, not a directory"
        )));
    }
    std::fs::create_dir_all(dir).map_err(bad)?;
    let probe = Path::new(dir).join(".vqm-write-test");
    std::fs::write(&probe, b"").map_err(bad)?;
    std::fs::remove_file(&probe).map_err(bad)?;
    Ok(())
}

struct Entry {
    picture: Picture,
    peak: f64,
    /// The pair's record values, in key order.
    values: Vec<f64>,
    /// The reference frame's time (seconds).
    time: f64,
}

/// What an entry keeps until the end, per plane drawn (luma, then chroma
/// with `--worst-chroma`): whichever is smaller.
enum Picture {
    /// Reference and distorted planes, drawn at the end.
    Planes(Vec<(Plane, Plane)>),
    /// The panels, drawn already.
    Panels(Vec<Panels>),
}

/// What the pictures are labelled with.
pub struct Labels {
    /// The reference's path.
    pub reference: String,
    /// The distorted inputs' paths.
    pub distorted: Vec<String>,
    /// The record keys, in order.
    pub keys: Vec<String>,
    /// Draw the chroma planes too.
    pub chroma: bool,
}

/// A picture's three panels at panel size: reference and distorted gray,
/// and the SSIM heat map as palette entries ([`palette`]).
struct Panels {
    width: usize,
    height: usize,
    reference: Vec<u8>,
    distorted: Vec<u8>,
    heat: Vec<u8>,
}

/// Map rows computed together when drawing (a strip of the map).
const STRIP_ROWS: usize = 32;

/// The worst frames seen so far, per input.
pub struct WorstCapture {
    /// Where the PNGs go (`--dump-worst`), if anywhere.
    dir: Option<PathBuf>,
    labels: Labels,
    /// The pictures, once drawn.
    drawn: Mutex<Option<Vec<WorstPicture>>>,
    lists: Mutex<Vec<Moments<Entry>>>,
    /// Buffers of evicted entries, reused by the next one (no allocation
    /// churn while the list changes).
    spare: Mutex<Vec<Vec<(Plane, Plane)>>>,
}

impl WorstCapture {
    /// Keeps the `n` worst moments, at least `gap` frames apart, per
    /// distorted input of `labels`, ranked by a key that is `better` one
    /// way; their PNGs go to `dir` if given.
    pub fn new(dir: Option<&str>, n: usize, gap: u64, better: Better, labels: Labels) -> Self {
        let lower_is_worse = better == Better::Higher;
        WorstCapture {
            dir: dir.map(PathBuf::from),
            drawn: Mutex::new(None),
            lists: Mutex::new(
                (0..labels.distorted.len())
                    .map(|_| Moments::new(n, gap, lower_is_worse))
                    .collect(),
            ),
            spare: Mutex::new(Vec::new()),
            labels,
        }
    }

    fn wants(&self, input: usize, frame: u64, value: f64) -> bool {
        let lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        lists.get(input).is_some_and(|l| l.wants(frame, value))
    }

    /// Offers a measured pair (its record `values`, the first ranking it,
    /// and its `time`); keeps its planes only if it ranks among the worst
    /// so far.
    pub fn offer(
        &self,
        input: usize,
        frame: u64,
        values: &[f64],
        time: f64,
        reference: &Frame,
        distorted: &Frame,
    ) {
        let Some(&value) = values.first() else {
            return;
        };
        if !self.wants(input, frame, value) {
            return;
        }
        let planes = if self.labels.chroma { 3 } else { 1 };
        let pairs: Vec<(&Plane, &Plane)> = reference
            .planes
            .iter()
            .zip(&distorted.planes)
            .take(planes)
            .collect();
        let Some((r, _)) = pairs.first() else {
            return;
        };
        let peak = reference.peak();
        let bytes = match &r.samples {
            Samples::U8(_) => 1,
            Samples::U16(_) => 2,
        };
        let stored: usize = pairs
            .iter()
            .map(|(r, _)| 2 * r.width * r.height * bytes)
            .sum();
        let drawn: usize = pairs
            .iter()
            .filter_map(|(r, _)| panel_size(r.width, r.height).map(|(_, pw, ph)| 3 * pw * ph))
            .sum();
        let compact = drawn < stored;
        let panels: Option<Vec<Panels>> = compact
            .then(|| {
                pairs
                    .iter()
                    .map(|(r, d)| render(r, d, peak, false))
                    .collect()
            })
            .flatten();
        let picture = match panels {
            Some(p) => Picture::Panels(p),
            None => {
                let reuse = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
                match reuse {
                    Some(mut kept) if kept.len() == pairs.len() => {
                        for ((a, b), (r, d)) in kept.iter_mut().zip(&pairs) {
                            copy_into(a, r);
                            copy_into(b, d);
                        }
                        Picture::Planes(kept)
                    }
                    _ => {
                        Picture::Planes(pairs.iter().map(|(r, d)| (packed(r), packed(d))).collect())
                    }
                }
            }
        };
        let entry = Entry {
            picture,
            peak,
            values: values.to_vec(),
            time,
        };
        let freed = {
            let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
            let Some(list) = lists.get_mut(input) else {
                return;
            };
            // the entry it replaces, or this one if another worker's frames
            // overtook it meanwhile
            list.offer(frame, value, entry)
        };
        if let Some(Entry {
            picture: Picture::Planes(kept),
            ..
        }) = freed
        {
            let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
            if spare.is_empty() {
                spare.push(kept);
            }
        }
    }

    /// Draws the pictures of the worst moments (once; later calls give the
    /// same), each input's in rank order.
    pub fn pictures(&self) -> Vec<WorstPicture> {
        let mut drawn = self.drawn.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = drawn.as_ref() {
            return d.clone();
        }
        let lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        let chosen: Vec<(usize, usize, u64, f64, &Entry)> = lists
            .iter()
            .enumerate()
            .flat_map(|(i, list)| {
                list.pick()
                    .into_iter()
                    .enumerate()
                    .map(move |(rank, m)| (i, rank, m.frame, m.value, &m.item))
            })
            .collect();
        // pictures in parallel
        let pictures: Vec<WorstPicture> = chosen
            .par_iter()
            .filter_map(|&(input, rank, frame, value, e)| {
                let png = self.labelled(input, rank, frame, e)?;
                Some(WorstPicture {
                    input,
                    rank: rank + 1,
                    frame,
                    time: e.time,
                    value,
                    png,
                })
            })
            .collect();
        *drawn = Some(pictures.clone());
        pictures
    }

    /// The labelled PNG of one entry.
    fn labelled(&self, input: usize, rank: usize, frame: u64, e: &Entry) -> Option<Vec<u8>> {
        let drawn;
        let rows = match &e.picture {
            Picture::Panels(p) => p,
            Picture::Planes(planes) => {
                drawn = planes
                    .iter()
                    .map(|(a, b)| render(a, b, e.peak, true))
                    .collect::<Option<Vec<Panels>>>()?;
                &drawn
            }
        };
        let caption = canvas::Caption {
            reference: &self.labels.reference,
            distorted: self.labels.distorted.get(input).map_or("", String::as_str),
            input,
            rank: rank + 1,
            frame,
            time: e.time,
            scores: self
                .labels
                .keys
                .iter()
                .map(String::as_str)
                .zip(e.values.iter().copied())
                .collect(),
        };
        let c = canvas::compose(rows, &caption)?;
        let mut out = Vec::new();
        encode_rgb(c.width, c.height, &c.rgb, &mut out).ok()?;
        Some(out)
    }

    /// Writes the pictures to the `--dump-worst` directory:
    /// `worst-<input>-<rank>-frame<N>.png`, each whole or not at all.
    /// Returns the paths (none without a directory).
    pub fn write(&self) -> Result<Vec<PathBuf>, Error> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let mut written = Vec::new();
        for pic in self.pictures() {
            let p = dir.join(format!(
                "worst-{}-{:02}-frame{}.png",
                pic.input, pic.rank, pic.frame
            ));
            let fail = |err: std::io::Error| Error::Output {
                path: p.display().to_string(),
                source: err,
            };
            // whole or not at all: a temporary file renamed into place
            let mut tmp = temp_beside(&p, dir).map_err(fail)?;
            std::io::Write::write_all(tmp.as_file_mut(), &pic.png).map_err(fail)?;
            tmp.persist(&p).map_err(|e| fail(e.error))?;
            written.push(p);
        }
        Ok(written)
    }
}

/// Map rows `first, first + step, …` up to `last` (inclusive), at the
/// columns `col_first, col_first + step, …`, from the strip of plane rows
/// they read: the same values as the whole map's.
fn luma_map_strip(
    r: &Plane,
    d: &Plane,
    peak: f64,
    (first, last): (usize, usize),
    step: usize,
    col_first: usize,
) -> Option<Vec<f64>> {
    // views of the strip's rows in place (no copy)
    let (w, rows) = (r.width, last + WINDOW - first);
    let (lo, hi) = (first * w, (first + rows) * w);
    match (&r.samples, &d.samples) {
        (Samples::U8(a), Samples::U8(b)) => ssim_map_grid(
            PlaneView::new(a.get(lo..hi)?, w, rows)?,
            PlaneView::new(b.get(lo..hi)?, w, rows)?,
            peak,
            (0, step),
            (col_first, step),
        ),
        (Samples::U16(a), Samples::U16(b)) => ssim_map_grid(
            PlaneView::new(a.get(lo..hi)?, w, rows)?,
            PlaneView::new(b.get(lo..hi)?, w, rows)?,
            peak,
            (0, step),
            (col_first, step),
        ),
        _ => None,
    }
}

/// Copies `src`'s `width × height` samples into `dst`, reusing its buffer.
fn copy_into(dst: &mut Plane, src: &Plane) {
    let n = src.width * src.height;
    dst.width = src.width;
    dst.height = src.height;
    match (&mut dst.samples, &src.samples) {
        (Samples::U8(d), Samples::U8(s)) => {
            d.clear();
            d.extend_from_slice(&s[..n.min(s.len())]);
        }
        (Samples::U16(d), Samples::U16(s)) => {
            d.clear();
            d.extend_from_slice(&s[..n.min(s.len())]);
        }
        _ => *dst = packed(src),
    }
}

/// A copy of a plane's `width × height` samples.
fn packed(p: &Plane) -> Plane {
    let n = p.width * p.height;
    Plane {
        width: p.width,
        height: p.height,
        samples: match &p.samples {
            Samples::U8(v) => Samples::U8(v[..n.min(v.len())].to_vec()),
            Samples::U16(v) => Samples::U16(v[..n.min(v.len())].to_vec()),
        },
    }
}

/// Sample `i` of a plane as a number.
fn sample(p: &Plane, i: usize) -> f64 {
    match &p.samples {
        Samples::U8(v) => v.get(i).map_or(0.0, |x| *x as f64),
        Samples::U16(v) => v.get(i).map_or(0.0, |x| *x as f64),
    }
}

/// Heat-map palette entry of an SSIM value: 1 to 255 from 1 (dark
/// blue) down to 0.5 and below (bright red); 0 is the grey of the edges
/// the map does not cover.
fn heat_index(v: f64) -> u8 {
    // non-negative: adding ½ and truncating rounds to nearest
    1 + (((1.0 - v) * 2.0).clamp(0.0, 1.0) * 254.0 + 0.5) as u8
}

/// Colour of a heat-map palette entry.
fn palette(i: u8) -> [u8; 3] {
    if i == 0 {
        return [40, 40, 40];
    }
    let t = f64::from(i - 1) / 254.0;
    let r = (255.0 * t.sqrt()) as u8;
    let g = (255.0 * (t * (1.0 - t) * 2.0)) as u8;
    let b = (140.0 * (1.0 - t)) as u8;
    [r, g, b]
}

/// Heat-map colour of an SSIM value.
#[cfg(test)]
fn heat(v: f64) -> [u8; 3] {
    palette(heat_index(v))
}

/// Draws reference | distorted | SSIM map of the luma planes as an
/// unlabelled PNG.
#[cfg(test)]
fn draw(reference: &Frame, distorted: &Frame) -> Option<Vec<u8>> {
    let (rp, dp) = (reference.planes.first()?, distorted.planes.first()?);
    draw_planes(rp, dp, reference.peak())
}

/// Panel scale of a `w`×`h` picture: every `f`-th sample, in panels of
/// `pw`×`ph`.
fn panel_size(w: usize, h: usize) -> Option<(usize, usize, usize)> {
    let f = w.div_ceil(PANEL_WIDTH).max(1);
    let (pw, ph) = (w / f, h / f);
    (pw > 0 && ph > 0).then_some((f, pw, ph))
}

/// Draws the three panels of two luma planes, the map's strips in
/// `parallel` (at the end) or one after the other (during the run, on a
/// metric thread, where parallel strips cost more memory than time).
fn render(rp: &Plane, dp: &Plane, peak: f64, parallel: bool) -> Option<Panels> {
    let (w, h) = (rp.width, rp.height);
    if (dp.width, dp.height) != (w, h) {
        return None;
    }
    let (f, pw, ph) = panel_size(w, h)?;
    // gray of sample i: its share of peak on 0-255, rounded
    let gray = |p: &Plane, i: usize| -> u8 {
        match &p.samples {
            Samples::U8(v) if peak == 255.0 => v.get(i).copied().unwrap_or(0),
            _ => (sample(p, i) / peak * 255.0 + 0.5).clamp(0.0, 255.0) as u8,
        }
    };
    let points = |p: &Plane| -> Vec<u8> {
        let mut out = Vec::with_capacity(pw * ph);
        for y in 0..ph {
            match &p.samples {
                Samples::U8(v) if peak == 255.0 && v.len() >= w * h => {
                    let row = &v[y * f * w..];
                    out.extend(row.iter().step_by(f).take(pw));
                }
                _ => out.extend((0..pw).map(|x| gray(p, y * f * w + x * f))),
            }
        }
        out
    };
    let mut panels = Panels {
        width: pw,
        height: ph,
        reference: points(rp),
        distorted: points(dp),
        heat: vec![0; pw * ph],
    };
    // the map covers the valid region, 5 samples in from each edge: panel
    // row y reads map row y·f − 5; only those rows are computed, a strip
    // at a time (strips in parallel)
    let edge = WINDOW / 2;
    let (ow, oh) = (w.saturating_sub(WINDOW - 1), h.saturating_sub(WINDOW - 1));
    let ya = edge.div_ceil(f);
    let yb = (0..ph)
        .rfind(|y| y * f >= edge && y * f - edge < oh)
        .map_or(ya, |y| y + 1);
    // likewise panel column x reads map column x·f − 5, from xa on: only
    // those columns are computed
    let xa = edge.div_ceil(f);
    let xs: Vec<usize> = (xa..pw).filter(|x| x * f - edge < ow).collect();
    let kept = ow.saturating_sub(xa * f - edge).div_ceil(f);
    let strip = |(k, out): (usize, &mut [u8])| {
        let y0 = ya + k * STRIP_ROWS;
        let y1 = y0 + out.len() / pw - 1;
        let rows = (y0 * f - edge, y1 * f - edge);
        let Some(map) = luma_map_strip(rp, dp, peak, rows, f, xa * f - edge) else {
            return;
        };
        if kept == 0 {
            return;
        }
        for (j, row) in map.chunks_exact(kept).enumerate() {
            for x in &xs {
                out[j * pw + x] = heat_index(row[x - xa]);
            }
        }
    };
    if ya < yb {
        let rows = &mut panels.heat[pw * ya..pw * yb];
        if parallel {
            rows.par_chunks_mut(pw * STRIP_ROWS)
                .enumerate()
                .for_each(strip);
        } else {
            rows.chunks_mut(pw * STRIP_ROWS).enumerate().for_each(strip);
        }
    }
    Some(panels)
}

/// Encodes an RGB picture as a PNG into `out`.
fn encode_rgb(
    width: usize,
    height: usize,
    rgb: &[u8],
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let io = |e: png::EncodingError| match e {
        png::EncodingError::IoError(e) => e,
        other => std::io::Error::other(other),
    };
    let size = |v: usize| u32::try_from(v).map_err(std::io::Error::other);
    let mut enc = png::Encoder::new(out, size(width)?, size(height)?);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fastest);
    let mut writer = enc.write_header().map_err(io)?;
    writer.write_image_data(rgb).map_err(io)
}

/// The three panels side by side, unlabelled, as RGB.
#[cfg(test)]
fn side_by_side(p: &Panels) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(9 * p.width * p.height);
    for y in 0..p.height {
        let row = y * p.width..(y + 1) * p.width;
        rgb.extend(p.reference[row.clone()].iter().flat_map(|g| [*g; 3]));
        rgb.extend(p.distorted[row.clone()].iter().flat_map(|g| [*g; 3]));
        rgb.extend(p.heat[row].iter().flat_map(|i| palette(*i)));
    }
    rgb
}

/// Draws reference | distorted | SSIM map of two luma planes as an
/// unlabelled PNG.
#[cfg(test)]
fn draw_planes(rp: &Plane, dp: &Plane, peak: f64) -> Option<Vec<u8>> {
    let p = render(rp, dp, peak, true)?;
    let mut out = Vec::new();
    encode_rgb(3 * p.width, p.height, &side_by_side(&p), &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests;
