//! Temporal alignment: finding the frame offset between two inputs by
//! comparing downscaled luma ("thumbnails"), so the search buffers stay
//! small (a 1080p frame becomes about 160×90 samples).

use crate::frame::{Frame, Samples};
use crate::metrics::psnr::psnr_from_mse;

/// Thumbnails are at most this wide.
pub const THUMB_WIDTH: usize = 160;
/// Frames compared for each candidate offset.
pub const COMPARE_FRAMES: usize = 30;
/// Default search range (`--sync auto` without `:K`).
pub const DEFAULT_MAX_OFFSET: usize = 60;

/// Downscaled luma of one frame: box means over `factor × factor` blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumb {
    /// Samples, row-major.
    pub data: Vec<f32>,
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
}

/// The luma thumbnail of `frame` (at most [`THUMB_WIDTH`] wide).
pub fn thumb(frame: &Frame) -> Thumb {
    let Some(p) = frame.planes.first() else {
        return Thumb {
            data: Vec::new(),
            width: 0,
            height: 0,
        };
    };
    let factor = p.width.div_ceil(THUMB_WIDTH).max(1);
    let (tw, th) = (p.width / factor, p.height / factor);
    let mut data = vec![0f32; tw * th];
    let get = |i: usize| -> f32 {
        match &p.samples {
            Samples::U8(v) => v.get(i).copied().unwrap_or(0) as f32,
            Samples::U16(v) => v.get(i).copied().unwrap_or(0) as f32,
        }
    };
    let norm = 1.0 / (factor * factor) as f32;
    for ty in 0..th {
        for tx in 0..tw {
            let mut s = 0f32;
            for y in ty * factor..(ty + 1) * factor {
                for x in tx * factor..(tx + 1) * factor {
                    s += get(y * p.width + x);
                }
            }
            data[ty * tw + tx] = s * norm;
        }
    }
    Thumb {
        data,
        width: tw,
        height: th,
    }
}

/// PSNR of two thumbnails of the same size, capped at 100 dB.
pub fn thumb_psnr(a: &Thumb, b: &Thumb, peak: f64) -> f64 {
    if a.data.len() != b.data.len() || a.data.is_empty() {
        return 0.0;
    }
    let sse: f64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| {
            let d = (*x - *y) as f64;
            d * d
        })
        .sum();
    psnr_from_mse(sse / a.data.len() as f64, peak, 100.0)
}

/// The best offset `o` in `−max..=max` such that reference frame `j + o`
/// matches distorted frame `j`, by mean thumbnail PSNR over up to
/// [`COMPARE_FRAMES`] pairs. Ties go to the smaller `|o|`. Returns the
/// offset and its mean PSNR, or `None` when no offset has 3 pairs.
pub fn best_offset(refs: &[Thumb], dists: &[Thumb], max: usize, peak: f64) -> Option<(i64, f64)> {
    let mut best: Option<(i64, f64)> = None;
    let max = max as i64;
    let mut candidates: Vec<i64> = (0..=max).flat_map(|o| [o, -o]).collect();
    candidates.dedup();
    for o in candidates {
        let (r0, d0) = if o >= 0 {
            (o as usize, 0)
        } else {
            (0, (-o) as usize)
        };
        let n = refs
            .len()
            .saturating_sub(r0)
            .min(dists.len().saturating_sub(d0))
            .min(COMPARE_FRAMES);
        if n < 3 {
            continue;
        }
        let mean = (0..n)
            .map(|j| thumb_psnr(&refs[r0 + j], &dists[d0 + j], peak))
            .sum::<f64>()
            / n as f64;
        if best.is_none_or(|(_, b)| mean > b + 1e-9) {
            best = Some((o, mean));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: f32) -> Thumb {
        Thumb {
            data: (0..16).map(|i| v + i as f32).collect(),
            width: 4,
            height: 4,
        }
    }

    #[test]
    fn finds_a_cut_in_either_direction() {
        let seq: Vec<Thumb> = (0..80).map(|i| t(((i * 37) % 200) as f32)).collect();
        // distorted lost its first 7 frames: dist[j] = ref[j + 7]
        let dist: Vec<Thumb> = seq[7..].to_vec();
        assert_eq!(best_offset(&seq, &dist, 60, 255.0).unwrap().0, 7);
        // reference lost its first 5: ref[j] = dist[j + 5]
        let refs: Vec<Thumb> = seq[5..].to_vec();
        assert_eq!(best_offset(&refs, &seq, 60, 255.0).unwrap().0, -5);
        // identical content everywhere ties: offset 0
        let flat: Vec<Thumb> = (0..40).map(|_| t(9.0)).collect();
        assert_eq!(best_offset(&flat, &flat, 10, 255.0).unwrap().0, 0);
    }

    #[test]
    fn thumbnails_box_average() {
        let f = Frame::from_u8(vec![(4, 2, vec![0, 2, 4, 6, 2, 4, 6, 8])]);
        let th = thumb(&f);
        assert_eq!((th.width, th.height), (4, 2));
        let big = Frame::from_u8(vec![(
            320,
            2,
            (0..640).map(|i| (i % 2) as u8 * 2).collect(),
        )]);
        let th = thumb(&big);
        assert_eq!((th.width, th.height), (160, 1));
        assert!(th.data.iter().all(|v| (*v - 1.0).abs() < 1e-6));
    }
}
