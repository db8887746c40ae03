//! `--worst N --dump-worst DIR`: keeps the N worst frames of each input (by
//! the first record key) as PNG pictures — reference luma, distorted luma
//! and the luma SSIM map as a heat map, side by side — and writes them at the
//! end. Only frames that enter the worst-N list are drawn, and the list
//! holds compressed PNGs, so memory stays bounded.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::Error;
use crate::frame::{Frame, Plane, Samples};
use crate::metrics::Better;
use crate::metrics::ssim::{K1, K2, WINDOW, gaussian_taps};

/// Panels are at most this wide.
pub const PANEL_WIDTH: usize = 640;

/// Creates `dir` if missing and checks it can be written (a usage error
/// otherwise, before any decoding).
pub fn prepare_dir(dir: &str) -> Result<(), Error> {
    let bad =
        |e: std::io::Error| Error::Usage(format!("--dump-worst '{dir}': cannot write there: {e}"));
    std::fs::create_dir_all(dir).map_err(bad)?;
    let probe = Path::new(dir).join(".vqm-write-test");
    std::fs::write(&probe, b"").map_err(bad)?;
    std::fs::remove_file(&probe).map_err(bad)?;
    Ok(())
}

struct Entry {
    value: f64,
    frame: u64,
    png: Vec<u8>,
}

/// The worst frames seen so far, per input.
pub struct WorstCapture {
    dir: PathBuf,
    n: usize,
    better: Better,
    lists: Mutex<Vec<Vec<Entry>>>,
}

impl WorstCapture {
    /// Keeps `n` frames per input of `inputs`, ranked by a key that is
    /// `better` one way.
    pub fn new(dir: &str, n: usize, better: Better, inputs: usize) -> Self {
        WorstCapture {
            dir: PathBuf::from(dir),
            n,
            better,
            lists: Mutex::new((0..inputs).map(|_| Vec::new()).collect()),
        }
    }

    fn worse(&self, a: f64, b: f64) -> bool {
        self.better.worse(a, b)
    }

    fn wants(&self, input: usize, value: f64) -> bool {
        if self.n == 0 || !value.is_finite() {
            return false;
        }
        let lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        match lists.get(input) {
            Some(l) if l.len() < self.n => true,
            Some(l) => l.last().is_some_and(|e| self.worse(value, e.value)),
            None => false,
        }
    }

    /// Offers a measured pair; draws it only if it ranks among the worst.
    pub fn offer(
        &self,
        input: usize,
        frame: u64,
        value: f64,
        reference: &Frame,
        distorted: &Frame,
    ) {
        if !self.wants(input, value) {
            return;
        }
        let Some(png) = draw(reference, distorted) else {
            return;
        };
        let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = lists.get_mut(input) else {
            return;
        };
        let pos = list
            .iter()
            .position(|e| self.worse(value, e.value))
            .unwrap_or(list.len());
        if pos < self.n {
            list.insert(pos, Entry { value, frame, png });
            list.truncate(self.n);
        }
    }

    /// Writes the PNGs: `worst-<input>-<rank>-frame<N>.png`. Returns the paths.
    pub fn write(&self) -> Result<Vec<PathBuf>, Error> {
        let lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        let mut written = Vec::new();
        for (i, list) in lists.iter().enumerate() {
            for (rank, e) in list.iter().enumerate() {
                let p = self
                    .dir
                    .join(format!("worst-{i}-{:02}-frame{}.png", rank + 1, e.frame));
                std::fs::write(&p, &e.png).map_err(|err| Error::Output {
                    path: p.display().to_string(),
                    source: err,
                })?;
                written.push(p);
            }
        }
        Ok(written)
    }
}

fn luma_f64(p: &Plane) -> Vec<f64> {
    match &p.samples {
        Samples::U8(v) => v.iter().map(|x| *x as f64).collect(),
        Samples::U16(v) => v.iter().map(|x| *x as f64).collect(),
    }
}

/// Per-pixel Gaussian SSIM map of the valid region ((w−10)×(h−10)).
pub fn ssim_map(a: &[f64], b: &[f64], w: usize, h: usize, peak: f64) -> Vec<f64> {
    if w < WINDOW || h < WINDOW {
        return Vec::new();
    }
    let t = gaussian_taps();
    let (ow, oh) = (w - (WINDOW - 1), h - (WINDOW - 1));
    let src = [
        a.to_vec(),
        b.to_vec(),
        a.iter().map(|x| x * x).collect::<Vec<_>>(),
        b.iter().map(|x| x * x).collect(),
        a.iter().zip(b).map(|(x, y)| x * y).collect(),
    ];
    let horiz: Vec<Vec<f64>> = src
        .iter()
        .map(|s| {
            let mut out = vec![0.0; ow * h];
            for y in 0..h {
                for x in 0..ow {
                    out[y * ow + x] = (0..WINDOW).map(|k| t[k] * s[y * w + x + k]).sum();
                }
            }
            out
        })
        .collect();
    let (c1, c2) = ((K1 * peak).powi(2), (K2 * peak).powi(2));
    let mut map = vec![0.0; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            let v = |m: usize| {
                (0..WINDOW)
                    .map(|k| t[k] * horiz[m][(y + k) * ow + x])
                    .sum::<f64>()
            };
            let (ux, uy) = (v(0), v(1));
            let (vx, vy, vxy) = (v(2) - ux * ux, v(3) - uy * uy, v(4) - ux * uy);
            map[y * ow + x] = (2.0 * ux * uy + c1) * (2.0 * vxy + c2)
                / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
        }
    }
    map
}

/// Heat-map colour of an SSIM value: 1 is dark blue, 0.5 and below bright red.
fn heat(v: f64) -> [u8; 3] {
    let t = ((1.0 - v) * 2.0).clamp(0.0, 1.0);
    let r = (255.0 * t.sqrt()) as u8;
    let g = (255.0 * (t * (1.0 - t) * 2.0)) as u8;
    let b = (140.0 * (1.0 - t)) as u8;
    [r, g, b]
}

/// Draws reference | distorted | SSIM map of the luma planes as a PNG.
pub fn draw(reference: &Frame, distorted: &Frame) -> Option<Vec<u8>> {
    let (rp, dp) = (reference.planes.first()?, distorted.planes.first()?);
    let (w, h) = (rp.width, rp.height);
    if w == 0 || h == 0 || (dp.width, dp.height) != (w, h) {
        return None;
    }
    let peak = reference.peak();
    let (ra, da) = (luma_f64(rp), luma_f64(dp));
    let map = ssim_map(&ra, &da, w, h, peak);
    let f = w.div_ceil(PANEL_WIDTH).max(1);
    let (pw, ph) = (w / f, h / f);
    if pw == 0 || ph == 0 {
        return None;
    }
    let mut img = vec![0u8; 3 * pw * 3 * ph];
    let row_len = 3 * pw * 3;
    for y in 0..ph {
        for x in 0..pw {
            let (sx, sy) = (x * f, y * f);
            let g = |v: &[f64]| (v[sy * w + sx] / peak * 255.0).round().clamp(0.0, 255.0) as u8;
            let (gr, gd) = (g(&ra), g(&da));
            let base = y * row_len;
            img[base + 3 * x..base + 3 * x + 3].copy_from_slice(&[gr; 3]);
            img[base + 3 * (pw + x)..base + 3 * (pw + x) + 3].copy_from_slice(&[gd; 3]);
            // the map covers the valid region, 5 samples in from each edge
            let (mx, my) = (sx as i64 - 5, sy as i64 - 5);
            let ow = w.saturating_sub(WINDOW - 1);
            let c = if mx >= 0
                && my >= 0
                && (mx as usize) < ow
                && (my as usize) * ow + (mx as usize) < map.len()
            {
                heat(map[my as usize * ow + mx as usize])
            } else {
                [40, 40, 40]
            };
            img[base + 3 * (2 * pw + x)..base + 3 * (2 * pw + x) + 3].copy_from_slice(&c);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, (3 * pw) as u32, ph as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().ok()?;
        wr.write_image_data(&img).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::PlaneView;
    use crate::metrics::ssim::ssim_gaussian;

    #[test]
    fn the_map_averages_to_the_plane_ssim() {
        let (w, h) = (40, 30);
        let a: Vec<u8> = (0..w * h).map(|i| ((i * 37) % 251) as u8).collect();
        let b: Vec<u8> = a.iter().map(|x| x.wrapping_add(x % 7)).collect();
        let fa: Vec<f64> = a.iter().map(|x| *x as f64).collect();
        let fb: Vec<f64> = b.iter().map(|x| *x as f64).collect();
        let map = ssim_map(&fa, &fb, w, h, 255.0);
        let mean = map.iter().sum::<f64>() / map.len() as f64;
        let want = ssim_gaussian(
            PlaneView::new(&a, w, h).unwrap(),
            PlaneView::new(&b, w, h).unwrap(),
            255.0,
        )
        .unwrap();
        // the plane value comes from the fast single-precision kernel
        assert!((mean - want).abs() < 1e-6, "{mean} vs {want}");
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
        let reader = dec.read_info().unwrap();
        let info = reader.info();
        assert_eq!((info.width, info.height), (192, 48));
    }
}
