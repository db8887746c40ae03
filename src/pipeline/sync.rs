//! Temporal alignment: finding the frame offset between two inputs by
//! comparing downscaled luma ("thumbnails"), so the search buffers stay
//! small (a 1080p frame becomes about 160×90 samples).

use crate::frame::{Frame, Samples};
use crate::metrics::psnr::psnr_from_mse;

/// Thumbnails are at most this wide.
pub const THUMB_WIDTH: usize = 160;
/// Frames compared for each candidate offset.
pub const COMPARE_FRAMES: usize = 30;
/// Default search range (`--sync auto` without `:K`) of files and pipes.
pub const DEFAULT_MAX_OFFSET: usize = 60;
/// Default search range of live inputs, in seconds (encode chains and
/// contribution links delay a stream by several seconds, up to tens).
pub const LIVE_RANGE_SECONDS: f64 = 30.0;
/// The largest search range, in frames (live inputs: twice that, 30 s at
/// 60 fps and more).
pub const MAX_RANGE_FRAMES: usize = 1000;

/// A search range as given: `auto`, `auto:K` (frames) or `auto:Ns`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SyncRange {
    /// `auto`: [`DEFAULT_MAX_OFFSET`] frames, [`LIVE_RANGE_SECONDS`] live.
    Default,
    /// `auto:K`.
    Frames(usize),
    /// `auto:Ns`.
    Seconds(f64),
}

impl SyncRange {
    /// The range in frames at `fps` (25 when unknown), at most
    /// [`MAX_RANGE_FRAMES`].
    pub fn frames(self, fps: Option<f64>, live: bool) -> usize {
        let fps = fps.filter(|f| f.is_finite() && *f > 0.0).unwrap_or(25.0);
        let k = match self {
            SyncRange::Default if live => (LIVE_RANGE_SECONDS * fps).ceil() as usize,
            SyncRange::Default => DEFAULT_MAX_OFFSET,
            SyncRange::Frames(k) => k,
            SyncRange::Seconds(s) => (s * fps).ceil() as usize,
        };
        k.clamp(
            1,
            if live {
                2 * MAX_RANGE_FRAMES
            } else {
                MAX_RANGE_FRAMES
            },
        )
    }
}

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

/// Thumbnails of the searches that run beside the pairing (kept for the
/// whole run on a live input, two per frame of the range) are at most this
/// wide: a quarter of the memory of [`THUMB_WIDTH`].
pub const RUN_THUMB_WIDTH: usize = 80;

/// The luma thumbnail of `frame` (at most [`THUMB_WIDTH`] wide).
pub fn thumb(frame: &Frame) -> Thumb {
    thumb_within(frame, THUMB_WIDTH)
}

/// The luma thumbnail of `frame`, at most `max_width` wide.
pub fn thumb_within(frame: &Frame, max_width: usize) -> Thumb {
    let Some(p) = frame.planes.first() else {
        return Thumb {
            data: Vec::new(),
            width: 0,
            height: 0,
        };
    };
    let factor = p.width.div_ceil(max_width.max(1)).max(1);
    let (tw, th) = (p.width / factor, p.height / factor);
    let mut data = vec![0f32; tw * th];
    let norm = 1.0 / (factor * factor) as f32;
    // sums each block row by row: one pass over the rows it covers
    let mut acc = vec![0u32; tw];
    for ty in 0..th {
        acc.iter_mut().for_each(|a| *a = 0);
        for y in ty * factor..(ty + 1) * factor {
            let row = y * p.width..y * p.width + tw * factor;
            match &p.samples {
                Samples::U8(v) => sum_blocks(v.get(row), factor, &mut acc),
                Samples::U16(v) => sum_blocks(v.get(row), factor, &mut acc),
            }
        }
        for (o, a) in data[ty * tw..(ty + 1) * tw].iter_mut().zip(&acc) {
            *o = *a as f32 * norm;
        }
    }
    Thumb {
        data,
        width: tw,
        height: th,
    }
}

/// Adds the sums of each `factor` samples of `row` to `acc` (nothing when
/// the row is missing: a short plane counts as black).
fn sum_blocks<T: Copy + Into<u32>>(row: Option<&[T]>, factor: usize, acc: &mut [u32]) {
    let Some(row) = row else {
        return;
    };
    for (a, block) in acc.iter_mut().zip(row.chunks_exact(factor)) {
        *a += block.iter().map(|&x| x.into()).sum::<u32>();
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

/// Offsets this close to the best one are its neighbours: slow motion
/// makes them nearly as good, so they are never its rivals.
pub const NEIGHBOURS: i64 = 2;

/// When a sync result is accepted (live inputs): its score must clear
/// `floor_db`, and every offset that is not a neighbour must score at
/// least `margin_db` lower, unless it pairs the same reference content.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confidence {
    /// Lowest mean thumbnail PSNR accepted (dB).
    pub floor_db: f64,
    /// How much better than any rival the best offset must be (dB).
    pub margin_db: f64,
}

impl Default for Confidence {
    fn default() -> Self {
        Confidence {
            floor_db: 30.0,
            margin_db: 1.0,
        }
    }
}

/// What a search concluded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// An offset to pair from: `runner_up` is the best offset that is not
    /// a neighbour (and does not pair the same reference content).
    Found {
        /// Reference index minus distorted index.
        offset: i64,
        /// Its mean thumbnail PSNR.
        psnr: f64,
        /// The next best distinct offset and its score.
        runner_up: Option<(i64, f64)>,
    },
    /// The best offset scores under the floor: the inputs may not show
    /// the same pictures at all.
    Low {
        /// The best offset.
        offset: i64,
        /// Its score.
        psnr: f64,
    },
    /// Another offset, pairing other reference content, scores within the
    /// margin of the best.
    Ambiguous {
        /// The best offset.
        offset: i64,
        /// Its score.
        psnr: f64,
        /// The rival and its score.
        runner_up: (i64, f64),
    },
}

impl Verdict {
    /// The best offset and its score, whatever the verdict.
    pub fn best(&self) -> (i64, f64) {
        match *self {
            Verdict::Found { offset, psnr, .. }
            | Verdict::Low { offset, psnr }
            | Verdict::Ambiguous { offset, psnr, .. } => (offset, psnr),
        }
    }
}

/// Mean thumbnail PSNR of `a[j + oa]` against `b[j + ob]` over up to
/// [`COMPARE_FRAMES`] frames `j` (both indices in range); `None` under 3.
fn mean_psnr(a: &[Thumb], oa: i64, b: &[Thumb], ob: i64, peak: f64) -> Option<f64> {
    let j0 = 0i64.max(-oa).max(-ob);
    let end = (a.len() as i64 - oa).min(b.len() as i64 - ob);
    let n = (end - j0).clamp(0, COMPARE_FRAMES as i64);
    if n < 3 {
        return None;
    }
    let sum: f64 = (j0..j0 + n)
        .map(|j| thumb_psnr(&a[(j + oa) as usize], &b[(j + ob) as usize], peak))
        .sum();
    Some(sum / n as f64)
}

/// Judges every offset `o` in `−max..=max` such that reference frame
/// `j + o` matches distorted frame `j`, by mean thumbnail PSNR over up to
/// [`COMPARE_FRAMES`] pairs. Ties go to `prefer` (the offset pairing now)
/// when it is among them, else to the smaller `|o|`. Without `confidence`
/// the best offset is always found; with it, see [`Confidence`]. `None`
/// when no offset has 3 pairs.
pub fn judge(
    refs: &[Thumb],
    dists: &[Thumb],
    max: usize,
    peak: f64,
    prefer: i64,
    confidence: Option<Confidence>,
) -> Option<Verdict> {
    let max = max as i64;
    let mut scores: Vec<(i64, f64)> = Vec::new();
    for o in (0..=max).flat_map(|o| [o, -o]).skip(1) {
        if let Some(m) = mean_psnr(refs, o, dists, 0, peak) {
            scores.push((o, m));
        }
    }
    let mut best: Option<(i64, f64)> = None;
    for &(o, m) in &scores {
        if best.is_none_or(|(_, b)| m > b + 1e-9) {
            best = Some((o, m));
        }
    }
    let (mut offset, mut psnr) = best?;
    let margin = confidence.map_or(0.0, |c| c.margin_db);
    // Keep the offset pairing now when it ties, or (with a confidence
    // test) when it pairs the same reference pictures within the margin.
    if let Some(&(o, m)) = scores.iter().find(|(o, _)| *o == prefer)
        && (m >= psnr - 1e-9
            || (confidence.is_some()
                && m >= psnr - margin
                && mean_psnr(refs, o, refs, offset, peak).is_some_and(|a| a >= psnr - margin)))
    {
        (offset, psnr) = (o, m);
    }
    // Rivals: distinct offsets as good as the best within the margin. One
    // that pairs the same reference pictures (a loop, a still) measures
    // the same, so it is no rival.
    let mut runner_up: Option<(i64, f64)> = None;
    let mut rival: Option<(i64, f64)> = None;
    for &(o, m) in &scores {
        if (o - offset).abs() <= NEIGHBOURS {
            continue;
        }
        let close = confidence.is_some() && m >= psnr - margin;
        let same_pictures = close
            && mean_psnr(refs, o, refs, offset, peak).is_some_and(|alike| alike >= psnr - margin);
        if same_pictures {
            continue;
        }
        if runner_up.is_none_or(|(_, b)| m > b) {
            runner_up = Some((o, m));
        }
        if close && rival.is_none_or(|(_, b)| m > b) {
            rival = Some((o, m));
        }
    }
    Some(match (confidence, rival) {
        (Some(c), _) if psnr < c.floor_db => Verdict::Low { offset, psnr },
        (Some(_), Some(runner_up)) => Verdict::Ambiguous {
            offset,
            psnr,
            runner_up,
        },
        _ => Verdict::Found {
            offset,
            psnr,
            runner_up,
        },
    })
}

/// The best offset and its mean PSNR ([`judge`] without a confidence
/// test, ties to the smaller `|o|`), or `None` when no offset has 3 pairs.
pub fn best_offset(refs: &[Thumb], dists: &[Thumb], max: usize, peak: f64) -> Option<(i64, f64)> {
    judge(refs, dists, max, peak, 0, None).map(|v| v.best())
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
    fn an_offset_is_accepted_only_above_the_floor_and_the_margin() {
        let c = Some(Confidence::default());
        let seq: Vec<Thumb> = (0..80).map(|i| t(((i * 37) % 200) as f32)).collect();
        let dist: Vec<Thumb> = seq[3..].to_vec();
        match judge(&seq, &dist, 10, 255.0, 0, c) {
            Some(Verdict::Found {
                offset: 3,
                psnr,
                runner_up: Some((o, p)),
            }) => {
                assert_eq!(psnr, 100.0);
                assert!((o - 3).abs() > NEIGHBOURS && p < psnr - 1.0);
            }
            other => panic!("{other:?}"),
        }
        // a distorted picture halfway between reference frames j+1 and j+4:
        // two distinct offsets score the same
        let noise = |seed: u64| {
            let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            Thumb {
                data: (0..64)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        (s >> 56) as f32
                    })
                    .collect(),
                width: 8,
                height: 8,
            }
        };
        let seq: Vec<Thumb> = (0..80).map(noise).collect();
        let mixed: Vec<Thumb> = (0..60)
            .map(|j| Thumb {
                data: seq[j + 1]
                    .data
                    .iter()
                    .zip(&seq[j + 4].data)
                    .map(|(a, b)| (a + b) / 2.0)
                    .collect(),
                ..noise(0)
            })
            .collect();
        let low_floor = Some(Confidence {
            floor_db: 10.0,
            margin_db: 1.0,
        });
        match judge(&seq, &mixed, 10, 255.0, 0, low_floor) {
            Some(Verdict::Ambiguous {
                offset, runner_up, ..
            }) => {
                let mut both = [offset, runner_up.0];
                both.sort();
                assert_eq!(both, [1, 4]);
            }
            other => panic!("{other:?}"),
        }
        // without a confidence test the best is taken
        assert!(matches!(
            judge(&seq, &mixed, 10, 255.0, 0, None),
            Some(Verdict::Found { .. })
        ));
        // nothing alike: under the floor
        let other: Vec<Thumb> = (100..160).map(noise).collect();
        assert!(matches!(
            judge(&seq, &other, 10, 255.0, 0, c),
            Some(Verdict::Low { .. })
        ));
    }

    #[test]
    fn a_tie_keeps_the_offset_pairing_now() {
        let flat: Vec<Thumb> = (0..40).map(|_| t(9.0)).collect();
        let c = Some(Confidence::default());
        // a still picture: every offset pairs the same pictures
        assert!(matches!(
            judge(&flat, &flat, 10, 255.0, 7, c),
            Some(Verdict::Found {
                offset: 7,
                runner_up: None,
                ..
            })
        ));
        assert_eq!(best_offset(&flat, &flat, 10, 255.0).map(|v| v.0), Some(0));
    }

    #[test]
    fn ranges_in_seconds_follow_the_frame_rate() {
        assert_eq!(
            SyncRange::Default.frames(Some(25.0), false),
            DEFAULT_MAX_OFFSET
        );
        assert_eq!(SyncRange::Default.frames(Some(25.0), true), 750);
        assert_eq!(SyncRange::Default.frames(None, true), 750);
        assert_eq!(SyncRange::Seconds(2.5).frames(Some(50.0), false), 125);
        assert_eq!(
            SyncRange::Seconds(60.0).frames(Some(60.0), true),
            2 * MAX_RANGE_FRAMES
        );
        assert_eq!(
            SyncRange::Seconds(60.0).frames(Some(60.0), false),
            MAX_RANGE_FRAMES
        );
        assert_eq!(SyncRange::Frames(7).frames(Some(60.0), true), 7);
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
