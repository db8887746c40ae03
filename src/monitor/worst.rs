//! `--worst N --dump-worst DIR`: keeps the N worst frames of each input (by
//! the first record key) and draws them at the end as PNG pictures —
//! reference luma, distorted luma and the luma SSIM map as a heat map, side
//! by side. While the run goes, a frame that enters the worst-N list costs
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
use crate::stats::moments::Moments;
use rayon::prelude::*;

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
}

/// What an entry keeps until the end: whichever is smaller.
enum Picture {
    /// Reference and distorted luma, drawn at the end.
    Planes(Plane, Plane),
    /// The panels, drawn already.
    Panels(Panels),
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
    dir: PathBuf,
    lists: Mutex<Vec<Moments<Entry>>>,
    /// Buffers of evicted entries, reused by the next one (no allocation
    /// churn while the list changes).
    spare: Mutex<Vec<(Plane, Plane)>>,
}

impl WorstCapture {
    /// Keeps the `n` worst moments, at least `gap` frames apart, per input
    /// of `inputs`, ranked by a key that is `better` one way.
    pub fn new(dir: &str, n: usize, gap: u64, better: Better, inputs: usize) -> Self {
        let lower_is_worse = better == Better::Higher;
        WorstCapture {
            dir: PathBuf::from(dir),
            lists: Mutex::new(
                (0..inputs)
                    .map(|_| Moments::new(n, gap, lower_is_worse))
                    .collect(),
            ),
            spare: Mutex::new(Vec::new()),
        }
    }

    fn wants(&self, input: usize, frame: u64, value: f64) -> bool {
        let lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        lists.get(input).is_some_and(|l| l.wants(frame, value))
    }

    /// Offers a measured pair; keeps its luma planes only if it ranks
    /// among the worst so far.
    pub fn offer(
        &self,
        input: usize,
        frame: u64,
        value: f64,
        reference: &Frame,
        distorted: &Frame,
    ) {
        if !self.wants(input, frame, value) {
            return;
        }
        let (Some(r), Some(d)) = (reference.planes.first(), distorted.planes.first()) else {
            return;
        };
        let peak = reference.peak();
        let bytes = match &r.samples {
            Samples::U8(_) => 1,
            Samples::U16(_) => 2,
        };
        let planes = 2 * r.width * r.height * bytes;
        let compact = panel_size(r.width, r.height).is_some_and(|(_, pw, ph)| 3 * pw * ph < planes);
        let picture = match compact.then(|| render(r, d, peak, false)).flatten() {
            Some(p) => Picture::Panels(p),
            None => {
                let reuse = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
                match reuse {
                    Some((mut a, mut b)) => {
                        copy_into(&mut a, r);
                        copy_into(&mut b, d);
                        Picture::Planes(a, b)
                    }
                    None => Picture::Planes(packed(r), packed(d)),
                }
            }
        };
        let entry = Entry { picture, peak };
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
            picture: Picture::Planes(a, b),
            ..
        }) = freed
        {
            let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
            if spare.is_empty() {
                spare.push((a, b));
            }
        }
    }

    /// Draws and writes the PNGs: `worst-<input>-<rank>-frame<N>.png`.
    /// Returns the paths.
    pub fn write(&self) -> Result<Vec<PathBuf>, Error> {
        let lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        let chosen: Vec<(usize, usize, u64, &Entry)> = lists
            .iter()
            .enumerate()
            .flat_map(|(i, list)| {
                list.pick()
                    .into_iter()
                    .enumerate()
                    .map(move |(rank, m)| (i, rank, m.frame, &m.item))
            })
            .collect();
        // pictures in parallel, each encoded a row at a time into its file
        let written: Vec<Result<Option<PathBuf>, Error>> = chosen
            .par_iter()
            .map(|&(i, rank, frame, e)| {
                let drawn;
                let panels = match &e.picture {
                    Picture::Panels(p) => p,
                    Picture::Planes(a, b) => match render(a, b, e.peak, true) {
                        Some(p) => {
                            drawn = p;
                            &drawn
                        }
                        None => return Ok(None),
                    },
                };
                let p = self
                    .dir
                    .join(format!("worst-{i}-{:02}-frame{frame}.png", rank + 1));
                // whole or not at all: a temporary file renamed into place
                let fail = |err: std::io::Error| Error::Output {
                    path: p.display().to_string(),
                    source: err,
                };
                let mut tmp = temp_beside(&p, &self.dir).map_err(fail)?;
                let mut file = std::io::BufWriter::new(tmp.as_file_mut());
                encode(panels, &mut file)
                    .and_then(|()| std::io::Write::flush(&mut file))
                    .map_err(fail)?;
                drop(file);
                tmp.persist(&p).map_err(|e| fail(e.error))?;
                Ok(Some(p))
            })
            .collect();
        // the first failure in rank order, else every path in that order
        let written: Vec<Option<PathBuf>> = written.into_iter().collect::<Result<_, _>>()?;
        let written: Vec<PathBuf> = written.into_iter().flatten().collect();
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

/// Draws reference | distorted | SSIM map of the luma planes as a PNG.
pub fn draw(reference: &Frame, distorted: &Frame) -> Option<Vec<u8>> {
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

/// Encodes the panels side by side as a PNG into `out`, a row at a time.
fn encode(p: &Panels, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let io = |e: png::EncodingError| match e {
        png::EncodingError::IoError(e) => e,
        other => std::io::Error::other(other),
    };
    let mut enc = png::Encoder::new(out, (3 * p.width) as u32, p.height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fastest);
    let mut writer = enc.write_header().map_err(io)?;
    let mut stream = writer.stream_writer().map_err(io)?;
    let colours: Vec<[u8; 3]> = (0..=255).map(palette).collect();
    let mut row = vec![0u8; 9 * p.width];
    for y in 0..p.height {
        let (left, rest) = row.split_at_mut(3 * p.width);
        let (middle, right) = rest.split_at_mut(3 * p.width);
        for x in 0..p.width {
            left[3 * x..3 * x + 3].fill(p.reference[y * p.width + x]);
            middle[3 * x..3 * x + 3].fill(p.distorted[y * p.width + x]);
        }
        for (x, i) in p.heat[y * p.width..(y + 1) * p.width].iter().enumerate() {
            right[3 * x..3 * x + 3].copy_from_slice(&colours[*i as usize]);
        }
        std::io::Write::write_all(&mut stream, &row)?;
    }
    stream.finish().map_err(io)
}

/// Draws reference | distorted | SSIM map of two luma planes as a PNG.
fn draw_planes(rp: &Plane, dp: &Plane, peak: f64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    encode(&render(rp, dp, peak, true)?, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ssim::{Precision, ssim_cs_gaussian_in};

    /// Rows `first, first + step, …` of the whole map at the columns
    /// `col, col + step, …`, through the strip reader the drawing uses.
    fn luma_map(
        r: &Plane,
        d: &Plane,
        peak: f64,
        (first, col): (usize, usize),
        step: usize,
    ) -> Option<Vec<f64>> {
        let oh = r.height.checked_sub(WINDOW - 1)?;
        let last = first + (oh - 1 - first) / step * step;
        luma_map_strip(r, d, peak, (first, last), step, col)
    }

    #[test]
    fn the_map_averages_to_the_plane_ssim() {
        let (w, h) = (140, 90);
        let a: Vec<u8> = (0..w * h).map(|i| ((i * 37) % 251) as u8).collect();
        let b: Vec<u8> = a.iter().map(|x| x.wrapping_add(x % 7)).collect();
        let pa = Plane {
            width: w,
            height: h,
            samples: Samples::U8(a.clone()),
        };
        let pb = Plane {
            width: w,
            height: h,
            samples: Samples::U8(b.clone()),
        };
        let ow = w - 10;
        let map = luma_map(&pa, &pb, 255.0, (0, 0), 1).unwrap();
        assert_eq!(map.len(), ow * (h - 10));
        let mean = map.iter().sum::<f64>() / map.len() as f64;
        let want = ssim_cs_gaussian_in(
            PlaneView::new(&a, w, h).unwrap(),
            PlaneView::new(&b, w, h).unwrap(),
            255.0,
            Precision::Double,
        )
        .unwrap()
        .ssim;
        // the same double-precision kernel, summed in another order
        assert!((mean - want).abs() < 1e-12, "{mean} vs {want}");
        assert!(map.iter().all(|v| *v <= 1.0 && v.is_finite()));
        // every third row from row 2 and column 1: the same values as
        // the whole map's
        let rows = luma_map(&pa, &pb, 255.0, (2, 1), 3).unwrap();
        let want: Vec<f64> = map
            .chunks(ow)
            .skip(2)
            .step_by(3)
            .flat_map(|row| row.iter().skip(1).step_by(3))
            .copied()
            .collect();
        assert_eq!(rows, want);
        // identical pictures: 1 everywhere
        let same = luma_map(&pa, &pa, 255.0, (0, 0), 1).unwrap();
        assert!(same.iter().all(|v| *v == 1.0));
    }

    #[test]
    fn only_the_worst_are_kept_and_drawn_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let cap = WorstCapture::new(dir.path().to_str().unwrap(), 2, 1, Better::Higher, 1);
        let f = Frame::from_u8(vec![(
            32,
            24,
            (0..32 * 24).map(|i| (i % 256) as u8).collect(),
        )]);
        for (frame, v) in [(0, 30.0), (1, 20.0), (2, 40.0), (3, 10.0), (4, f64::NAN)] {
            cap.offer(0, frame, v, &f, &f);
        }
        let written = cap.write().unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec!["worst-0-01-frame3.png", "worst-0-02-frame1.png"]
        );
        let lower = WorstCapture::new(dir.path().to_str().unwrap(), 1, 1, Better::Lower, 1);
        for (frame, v) in [(0, 3.0), (1, 9.0), (2, 1.0)] {
            lower.offer(0, frame, v, &f, &f);
        }
        let w = lower.write().unwrap();
        assert!(w[0].ends_with("worst-0-01-frame1.png"), "{w:?}");
    }

    #[test]
    fn draws_a_three_panel_png() {
        let f = Frame::from_u8(vec![(
            64,
            48,
            (0..64 * 48).map(|i| (i % 256) as u8).collect(),
        )]);
        let png = draw(&f, &f).unwrap();
        let dec = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = dec.read_info().unwrap();
        let (w, h) = (reader.info().width as usize, reader.info().height as usize);
        assert_eq!((w, h), (192, 48));
        let mut img = vec![0u8; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut img).unwrap();
        let px = |x: usize, y: usize| &img[3 * (y * w + x)..3 * (y * w + x) + 3];
        // both gray panels show the samples; the map of identical pictures
        // is 1 (dark blue) inside the valid region and grey at the edges
        for (x, y) in [(0, 0), (7, 3), (63, 47), (20, 30)] {
            let s = ((y * 64 + x) % 256) as u8;
            assert_eq!(px(x, y), [s; 3]);
            assert_eq!(px(64 + x, y), [s; 3]);
        }
        assert_eq!(px(128 + 5, 5), heat(1.0));
        assert_eq!(px(128 + 58, 42), heat(1.0));
        assert_eq!(px(128 + 4, 20), [40, 40, 40]);
        assert_eq!(px(128 + 59, 20), [40, 40, 40]);
        assert_eq!(px(128 + 20, 43), [40, 40, 40]);
    }
    #[test]
    fn a_wide_picture_is_drawn_at_panel_size_from_the_full_map() {
        // 1300 wide: panels are drawn every 3rd sample and map row
        wide_picture(40, false);
        // taller: the map is computed in strips, and a frame captured
        // during the run keeps its panels (smaller than its planes)
        wide_picture(200, true);
    }

    fn wide_picture(h: usize, captured: bool) {
        let w = 1300;
        let r: Vec<u8> = (0..w * h).map(|i| ((i * 7) % 251) as u8).collect();
        let d: Vec<u8> = r
            .iter()
            .enumerate()
            .map(|(i, x)| if i % 5 == 0 { x / 2 } else { *x })
            .collect();
        let (fr, fd) = (
            Frame::from_u8(vec![(w, h, r.clone())]),
            Frame::from_u8(vec![(w, h, d.clone())]),
        );
        let dir = tempfile::tempdir().unwrap();
        let png = if captured {
            let cap = WorstCapture::new(dir.path().to_str().unwrap(), 1, 1, Better::Higher, 1);
            cap.offer(0, 7, 0.5, &fr, &fd);
            let lists = cap.lists.lock().unwrap();
            assert!(matches!(
                lists[0].pick()[0].item.picture,
                Picture::Panels(_)
            ));
            drop(lists);
            let png = std::fs::read(&cap.write().unwrap()[0]).unwrap();
            // drawn during the run or at the end: the same picture
            assert_eq!(png, draw(&fr, &fd).unwrap());
            png
        } else {
            draw(&fr, &fd).unwrap()
        };
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let iw = reader.info().width as usize;
        let (f, pw) = (3, 433);
        assert_eq!((iw, reader.info().height as usize), (3 * pw, h / f));
        let mut img = vec![0u8; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut img).unwrap();
        let full = luma_map(&fr.planes[0], &fd.planes[0], 255.0, (0, 0), 1).unwrap();
        let ow = w - 10;
        let mut checked = 0;
        for y in 2..h / f {
            for x in [2, 3, 100, 250, 430, 431, 432] {
                let (sx, sy) = (x * f, y * f);
                if sx - 5 >= ow || sy - 5 >= h - 10 {
                    assert_eq!(img[3 * (y * iw + 2 * pw + x)], 40, "edge {x},{y}");
                    continue;
                }
                let want = heat(full[(sy - 5) * ow + (sx - 5)]);
                let at = 3 * (y * iw + 2 * pw + x);
                assert_eq!(&img[at..at + 3], want, "panel pixel {x},{y}");
                assert_eq!(img[3 * (y * iw + x)], r[sy * w + sx]);
                assert_eq!(img[3 * (y * iw + pw + x)], d[sy * w + sx]);
                checked += 1;
            }
        }
        assert!(checked > 40);
    }
}
