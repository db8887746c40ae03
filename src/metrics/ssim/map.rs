//! The per-pixel Gaussian SSIM map (heat maps of `--dump-worst`): the
//! same double-precision filter as the reported SSIM's reference pass,
//! at chosen rows and columns.

use rayon::prelude::*;

use super::{BandParams, Columns, K1, K2, WINDOW, band_height, band_rows, gaussian_taps};
use crate::cpu::{CpuLevel, cpu_level};
use crate::frame::PlaneView;

/// Rows of the per-pixel Gaussian SSIM map of the valid region of two
/// equal-size planes, in double precision (the kernel whose mean is the
/// reported SSIM): the rows `first, first + step, …` of the
/// `(w − 10) × (h − 10)` map, each `w − 10` values long, one after another
/// (`step` 1 and `first` 0 give the whole map). `None` under one window.
/// Bands run in parallel.
pub fn ssim_map_rows<T: Copy + Into<f64> + Sync>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    peak: f64,
    first: usize,
    step: usize,
) -> Option<Vec<f64>> {
    let all = Columns::all(a.width.max(WINDOW));
    ssim_map_grid(a, b, peak, (first, step), (all.first, all.step))
}

/// [`ssim_map_rows`] at the columns `first, first + step, …` of the map
/// only (a heat map at a smaller scale): each kept row holds those
/// columns' values, the same bits as the whole map's.
pub fn ssim_map_grid<T: Copy + Into<f64> + Sync>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    peak: f64,
    (first, step): (usize, usize),
    (col_first, col_step): (usize, usize),
) -> Option<Vec<f64>> {
    let (w, h) = (a.width, a.height);
    if w < WINDOW || h < WINDOW || (b.width, b.height) != (w, h) {
        return None;
    }
    let oh = h - (WINDOW - 1);
    let cols = Columns::of(w, col_first, col_step);
    let ow = cols.count;
    if ow == 0 {
        return Some(Vec::new());
    }
    let step = step.max(1);
    let rows = oh.saturating_sub(first).div_ceil(step);
    let p = BandParams {
        taps: gaussian_taps(),
        c1: (K1 * peak) * (K1 * peak),
        c2: (K2 * peak) * (K2 * peak),
    };
    let mut map = vec![0.0; rows * ow];
    // bands of whole kept rows: band k holds kept rows k·per..(k+1)·per
    let per = band_height(oh).div_ceil(step).max(1);
    let level = cpu_level();
    map.par_chunks_mut(per * ow)
        .enumerate()
        .for_each(|(k, out)| {
            let y0 = first + k * per * step;
            let y1 = (y0 + per * step).min(oh);
            let grid = Grid {
                rows: (y0, y1),
                kept: (first, step),
                cols,
            };
            map_band(a, b, grid, p, out, level);
        });
    Some(map)
}

/// Which values of the map a band computes: output rows `rows.0..rows.1`
/// of which those `kept.0, kept.0 + kept.1, …`, at the columns `cols`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grid {
    pub(super) rows: (usize, usize),
    pub(super) kept: (usize, usize),
    pub(super) cols: Columns,
}

/// Map values of one band of [`ssim_map_grid`] into `out`, on the best
/// code path the CPU has (the same bits on every path).
pub(super) fn map_band<T: Copy + Into<f64>>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    grid: Grid,
    p: BandParams,
    out: &mut [f64],
    level: CpuLevel,
) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: these levels are only produced when the CPU reports AVX2.
        CpuLevel::Avx2 | CpuLevel::Avx2Fma | CpuLevel::Avx512 => unsafe {
            map_band_avx2(a, b, grid, p, out)
        },
        _ => map_band_body(a, b, grid, p, out),
    }
}

/// [`map_band`] compiled for AVX2 (without FMA: bit-identical).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn map_band_avx2<T: Copy + Into<f64>>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    grid: Grid,
    p: BandParams,
    out: &mut [f64],
) {
    map_band_body(a, b, grid, p, out)
}

#[inline(always)]
fn map_band_body<T: Copy + Into<f64>>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    grid: Grid,
    p: BandParams,
    out: &mut [f64],
) {
    let ow = grid.cols.count;
    let ((y0, y1), (first, step)) = (grid.rows, grid.kept);
    let keep = |o: usize| o >= first && (o - first).is_multiple_of(step);
    band_rows(a, b, (y0, y1), grid.cols, p, keep, |o, smap, _| {
        let at = (o - y0) / step * ow;
        out[at..at + ow].copy_from_slice(smap);
    });
}
