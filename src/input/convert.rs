//! Conversion of decoded pictures to the measured layout: swscale when
//! the format or size differs, rows copied out of FFmpeg's frames by their
//! stride into packed pooled planes (with the luma signature fed on the
//! way), and each frame's index and timestamps.

use ff::software::scaling;
use ffmpeg_next as ff;

use super::format::{self, ScaleAlgo, Target};
use crate::cpu::{CpuLevel, cpu_level};
use crate::frame::signature::SigAcc;
use crate::frame::{Frame, Samples};

/// Turns decoded frames into planar frames of a fixed target layout,
/// converting with swscale when the decoded frame is in another format or
/// size, and numbering and timing them.
pub(super) struct Convert {
    /// How pictures are resized.
    scale: ScaleAlgo,
    pub(super) target: Target,
    pub(super) depth: u32,
    pub(super) order: Vec<usize>,
    pub(super) dims: Vec<(usize, usize)>,
    pub(super) scaler: Option<scaling::Context>,
    pub(super) scaled: ff::frame::Video,
    pub(super) next_index: u64,
    pub(super) first_ts: Option<i64>,
    /// pts of the session's first frame (0, or where a reopened live
    /// input continues the timeline).
    pub(super) base_pts: f64,
    pub(super) last_pts: f64,
    pub(super) frame_rate: Option<f64>,
    pub(super) waiting: std::time::Duration,
    /// Frames the timestamps say are missing before the frame just filled.
    pub(super) missing: u64,
}

impl Convert {
    pub(super) fn new(target: Target, frame_rate: Option<f64>, scale: ScaleAlgo) -> Self {
        Convert {
            target,
            scale,
            depth: format::depth_of(target.pixel),
            order: format::plane_order(target.pixel),
            dims: format::plane_dims(target.pixel, target.width, target.height),
            scaler: None,
            scaled: ff::frame::Video::empty(),
            next_index: 0,
            first_ts: None,
            base_pts: 0.0,
            last_pts: 0.0,
            frame_rate,
            waiting: std::time::Duration::ZERO,
            missing: 0,
        }
    }

    /// A reopened input: its timestamps start anew, so its timeline goes on
    /// one frame interval after the last frame delivered.
    pub(super) fn restart(&mut self, frame_rate: Option<f64>) {
        if frame_rate.is_some() {
            self.frame_rate = frame_rate;
        }
        let step = self
            .frame_rate
            .filter(|r| *r > 0.0)
            .map(|r| 1.0 / r)
            .unwrap_or(0.0);
        self.base_pts = if self.next_index > 0 {
            self.last_pts + step
        } else {
            0.0
        };
        self.first_ts = None;
    }

    pub(super) fn fill(
        &mut self,
        src: &ff::frame::Video,
        out: &mut Frame,
        time_base: f64,
    ) -> Result<(), String> {
        // SAFETY: copying the line sizes of a frame the decoder filled.
        let linesize = unsafe { (*src.as_ptr()).linesize };
        let positive = linesize[..self.dims.len().min(3)].iter().all(|l| *l > 0);
        // Bottom-up pictures (negative line sizes) go through swscale, which
        // writes a frame of our own with positive ones.
        let native = positive
            && (src.width(), src.height()) == (self.target.width, self.target.height)
            && format::same_planes(src.format(), self.target.pixel);
        let pic: &ff::frame::Video = if native {
            src
        } else {
            let stale = match &self.scaler {
                Some(s) => {
                    s.input().format != src.format()
                        || s.input().width != src.width()
                        || s.input().height != src.height()
                }
                None => true,
            };
            if stale {
                let ctx = scaling::Context::get(
                    src.format(),
                    src.width(),
                    src.height(),
                    self.target.pixel,
                    self.target.width,
                    self.target.height,
                    self.scale.flags(),
                )
                .map_err(|e| {
                    format!(
                        "cannot convert {} {}x{} to {} {}x{}: {e}",
                        format::name(src.format()),
                        src.width(),
                        src.height(),
                        format::name(self.target.pixel),
                        self.target.width,
                        self.target.height
                    )
                })?;
                self.scaler = Some(ctx);
            }
            let Some(scaler) = self.scaler.as_mut() else {
                return Err("internal error: no scaler".to_string());
            };
            scaler
                .run(src, &mut self.scaled)
                .map_err(|e| format!("conversion failed: {e}"))?;
            &self.scaled
        };
        self.shape(out);
        let mut sig = SigAcc::default();
        for (i, (plane, &(w, _))) in out.planes.iter_mut().zip(&self.dims).enumerate() {
            let data_index = self.order[i];
            let stride = pic.stride(data_index);
            let bytes = pic.data(data_index);
            let sig = if i == 0 { Some(&mut sig) } else { None };
            match &mut plane.samples {
                Samples::U8(dst) => copy_rows(cpu_level(), dst, bytes, stride, w, sig),
                Samples::U16(dst) => copy_rows(cpu_level(), dst, bytes, stride, w, sig),
            }
        }
        out.luma_sig = Some(sig.finish(((1u64 << self.depth) - 1) as f64));
        self.stamp(out, src.timestamp(), time_base);
        Ok(())
    }

    /// Gives `out` this input's planes, sized, in the target's depth.
    pub(super) fn shape(&self, out: &mut Frame) {
        out.bit_depth = self.depth;
        out.planes.truncate(self.dims.len());
        while out.planes.len() < self.dims.len() {
            out.planes
                .push(crate::frame::Plane::zeroed(0, 0, self.depth));
        }
        for (plane, &(w, h)) in out.planes.iter_mut().zip(&self.dims) {
            plane.reshape(w, h, self.depth);
        }
    }

    /// Numbers and times a filled frame from its timestamp `ts` (in
    /// `time_base` units), and counts frames the timestamps say are
    /// missing before it.
    pub(super) fn stamp(&mut self, out: &mut Frame, ts: Option<i64>, time_base: f64) {
        out.index = self.next_index;
        out.abs_pts = ts.map(|ts| ts as f64 * time_base);
        out.pts = match ts {
            Some(ts) => {
                let first = *self.first_ts.get_or_insert(ts);
                self.base_pts + (ts - first) as f64 * time_base
            }
            None => match self.frame_rate {
                Some(r) if r > 0.0 => self.next_index as f64 / r,
                _ => self.last_pts,
            },
        };
        out.decoded_at = Some(std::time::Instant::now());
        // A constant-rate stream whose timestamps jump lost frames on the way
        // (a decode error the decoder did not report otherwise).
        self.missing = match self.frame_rate {
            Some(r) if r > 0.0 && self.next_index > 0 && ts.is_some() => {
                let gap = (out.pts - self.last_pts) * r - 1.0;
                if gap >= 0.5 { gap.round() as u64 } else { 0 }
            }
            _ => 0,
        };
        self.last_pts = out.pts;
        self.next_index += 1;
    }
}

/// Sample types a plane is copied into from FFmpeg's bytes.
trait RowSample: Copy {
    /// Bytes per sample.
    const BYTES: usize;
    /// Converts one row of little-endian bytes.
    fn copy_row(dst: &mut [Self], src: &[u8]);
    /// Feeds the row to the luma signature.
    fn feed(sig: &mut SigAcc, row: &[Self]);
}

impl RowSample for u8 {
    const BYTES: usize = 1;
    #[inline(always)]
    fn copy_row(dst: &mut [u8], src: &[u8]) {
        dst.copy_from_slice(src);
    }
    #[inline(always)]
    fn feed(sig: &mut SigAcc, row: &[u8]) {
        sig.feed_u8(row);
    }
}

impl RowSample for u16 {
    const BYTES: usize = 2;
    #[inline(always)]
    fn copy_row(dst: &mut [u16], src: &[u8]) {
        for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
            *d = u16::from_le_bytes([s[0], s[1]]);
        }
    }
    #[inline(always)]
    fn feed(sig: &mut SigAcc, row: &[u16]) {
        sig.feed_u16(row);
    }
}

/// Copies a plane's rows out of a frame with the given stride, feeding
/// each row to `sig` while it is in cache (luma only).
fn copy_rows<T: RowSample>(
    level: CpuLevel,
    dst: &mut [T],
    src: &[u8],
    stride: usize,
    w: usize,
    sig: Option<&mut SigAcc>,
) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: these levels are only produced when the CPU reports AVX2.
        CpuLevel::Avx2 | CpuLevel::Avx2Fma | CpuLevel::Avx512 => unsafe {
            copy_rows_avx2(dst, src, stride, w, sig)
        },
        _ => copy_rows_body(dst, src, stride, w, sig),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn copy_rows_avx2<T: RowSample>(
    dst: &mut [T],
    src: &[u8],
    stride: usize,
    w: usize,
    sig: Option<&mut SigAcc>,
) {
    copy_rows_body(dst, src, stride, w, sig)
}

#[inline(always)]
fn copy_rows_body<T: RowSample>(
    dst: &mut [T],
    src: &[u8],
    stride: usize,
    w: usize,
    mut sig: Option<&mut SigAcc>,
) {
    for (y, row) in dst.chunks_exact_mut(w.max(1)).enumerate() {
        let start = y * stride;
        // a few rows ahead, while this one is copied
        let ahead = start + 4 * stride;
        if let Some(r) = src.get(ahead..ahead + T::BYTES * w) {
            crate::cpu::prefetch(r);
        }
        T::copy_row(row, &src[start..start + T::BYTES * w]);
        if let Some(sig) = sig.as_deref_mut() {
            T::feed(sig, row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::available_levels;

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        crate::metrics::ssim::dispatch_tests::noise(n, seed, 255)
            .into_iter()
            .map(|v| v as u8)
            .collect()
    }

    /// `copy_rows` at `level` into a fresh plane: the samples and the
    /// luma signature.
    fn copied<T: RowSample + Default>(
        level: CpuLevel,
        src: &[u8],
        stride: usize,
        w: usize,
        h: usize,
    ) -> (Vec<T>, (u64, bool)) {
        let mut dst = vec![T::default(); w * h];
        let mut sig = SigAcc::default();
        copy_rows(level, &mut dst, src, stride, w, Some(&mut sig));
        (dst, sig.finish(255.0))
    }

    #[test]
    fn copy_rows_at_every_level_equals_a_plain_row_by_row_copy() {
        // widths around the vector and chunk sizes, strides with padding
        for (w, h, pad) in [
            (1, 1, 0),
            (7, 3, 9),
            (32, 4, 32),
            (333, 5, 51),
            (1030, 3, 2),
        ] {
            let stride = w * 2 + pad;
            let src = noise(stride * h, (w * 31 + h) as u64);
            // the expected planes, sample by sample from the rows' bytes
            let want8: Vec<u8> = (0..h)
                .flat_map(|y| src[y * stride..y * stride + w].to_vec())
                .collect();
            let mut want16: Vec<u16> = Vec::new();
            for y in 0..h {
                for x in 0..w {
                    let i = y * stride + 2 * x;
                    want16.push(u16::from_le_bytes([src[i], src[i + 1]]));
                }
            }
            let (p8, s8) = copied::<u8>(CpuLevel::Scalar, &src, stride, w, h);
            let (p16, s16) = copied::<u16>(CpuLevel::Scalar, &src, stride, w, h);
            assert_eq!(p8, want8, "{w}x{h}");
            assert_eq!(p16, want16, "{w}x{h}");
            for level in available_levels() {
                assert_eq!(
                    copied::<u8>(level, &src, stride, w, h),
                    (p8.clone(), s8),
                    "{level:?} {w}x{h}"
                );
                assert_eq!(
                    copied::<u16>(level, &src, stride, w, h),
                    (p16.clone(), s16),
                    "{level:?} {w}x{h}"
                );
            }
            // a changed sample changes the signature
            let mut moved = src.clone();
            moved[stride * (h - 1) + w - 1] ^= 0x5a;
            let (_, other) = copied::<u8>(CpuLevel::Scalar, &moved, stride, w, h);
            assert_ne!(other.0, s8.0, "{w}x{h}");
        }
    }
}
