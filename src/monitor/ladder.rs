//! The ladder answer: with several distorted inputs (the rungs of an
//! encoding ladder), each rung's place among the others by bitrate, and
//! whether it is on the rate-quality convex hull — the rungs an engineer
//! keeps. A rung is off the hull when another gives at least its quality
//! for no more bits (it is dominated), or when it lies under the straight
//! line between two rungs around it (mixing those two would do better).

pub use crate::output::records::LadderMark;

/// The quality keys the hull prefers, best first: VMAF, then PSNR over
/// the planes, then luma PSNR, then SSIM.
pub const QUALITY_KEYS: [&str; 5] = ["vmaf", "psnr_avg", "psnr_y", "ssim_all", "ssim_y"];

/// The ladder marks of rungs given as (bitrate, quality) points in input
/// order; `None` for a rung without both. Needs two rungs with both.
pub fn marks(points: &[Option<(u64, f64)>], key: &str) -> Vec<Option<LadderMark>> {
    let mut known: Vec<(usize, u64, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.filter(|(_, q)| q.is_finite()).map(|(b, q)| (i, b, q)))
        .collect();
    if known.len() < 2 {
        return vec![None; points.len()];
    }
    // by bitrate, then best quality first among equal bitrates
    known.sort_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)));
    let dominated_by = |&(i, b, q): &(usize, u64, f64)| {
        known
            .iter()
            .filter(|&&(j, bj, qj)| j != i && bj <= b && qj > q)
            .max_by(|x, y| x.2.total_cmp(&y.2))
            .map(|x| x.0)
    };
    // the upper hull, left to right, over the rungs no other dominates
    let mut hull: Vec<(usize, u64, f64)> = Vec::new();
    for p in known.iter().filter(|p| dominated_by(p).is_none()) {
        while hull.len() >= 2 {
            let (a, b) = (hull[hull.len() - 2], hull[hull.len() - 1]);
            // b is under (or on) the line from a to p: drop it
            let cross =
                (b.1 as f64 - a.1 as f64) * (p.2 - a.2) - (b.2 - a.2) * (p.1 as f64 - a.1 as f64);
            if cross >= 0.0 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(*p);
    }
    let mut out = vec![None; points.len()];
    for (rank, p) in known.iter().enumerate() {
        out[p.0] = Some(LadderMark {
            rank: rank + 1,
            quality_key: key.to_string(),
            quality: p.2,
            on_hull: hull.iter().any(|h| h.0 == p.0),
            dominated_by: dominated_by(p),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hull_of(points: &[Option<(u64, f64)>]) -> Vec<bool> {
        marks(points, "vmaf")
            .iter()
            .map(|m| m.as_ref().is_some_and(|m| m.on_hull))
            .collect()
    }

    #[test]
    fn a_rung_worse_than_a_cheaper_one_is_off_the_hull() {
        // input 1 costs more than input 0 and scores less
        let p = [Some((1000, 80.0)), Some((1500, 78.0)), Some((3000, 92.0))];
        let m = marks(&p, "vmaf");
        assert_eq!(hull_of(&p), vec![true, false, true]);
        let m1 = m[1].as_ref().unwrap();
        assert_eq!((m1.rank, m1.dominated_by), (2, Some(0)));
        assert_eq!(m[2].as_ref().unwrap().rank, 3);
    }

    #[test]
    fn a_rung_under_the_line_between_its_neighbours_is_off_the_hull() {
        // input 1 is better than input 0 but under the chord 0-2
        let p = [Some((1000, 60.0)), Some((2000, 65.0)), Some((3000, 90.0))];
        assert_eq!(hull_of(&p), vec![true, false, true]);
        assert_eq!(marks(&p, "vmaf")[1].as_ref().unwrap().dominated_by, None);
        // a concave ladder keeps every rung
        let p = [Some((1000, 60.0)), Some((2000, 80.0)), Some((3000, 90.0))];
        assert_eq!(hull_of(&p), vec![true, true, true]);
    }

    #[test]
    fn rungs_without_a_bitrate_are_left_out() {
        let p = [Some((1000, 60.0)), None, Some((3000, 90.0))];
        let m = marks(&p, "vmaf");
        assert!(m[1].is_none());
        assert_eq!(m[2].as_ref().unwrap().rank, 2);
        assert!(
            marks(&[Some((1, 1.0)), None], "vmaf")
                .iter()
                .all(Option::is_none)
        );
    }
}
