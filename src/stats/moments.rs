//! The worst *moments* of a run (`--worst N`, `--worst-gap`): the N worst
//! frames at least a gap apart, so that one bad second is not listed five
//! times. Frames may be offered in any order (metric workers finish out of
//! order) and the result does not depend on it.
//!
//! A moment is the worst frame of its bucket of `gap` frames (the timeline
//! cut at multiples of `gap`); the N worst moments at least `gap` apart are
//! picked greedily, worst first. While the run goes each bucket keeps its
//! worst frame so far; of those, the 3N worst are kept (with their item, a
//! picture for `--dump-worst`). At the end they are picked, skipping any closer
//! than `gap` to one already picked: only
//! the two neighbouring buckets can hold such a frame, so each pick skips
//! at most two others and the 3N kept always hold the N picks. A bucket's
//! final worst frame, if among the 3N worst, is never turned away: what it
//! is compared with only gets worse as the run goes on.

/// `--worst-gap` seconds in frames at `rate` (25 fps when unknown).
pub fn gap_frames(seconds: f64, rate: Option<f64>) -> u64 {
    (seconds * rate.filter(|r| *r > 0.0).unwrap_or(25.0)).round() as u64
}

/// One kept frame: the worst of its bucket so far.
#[derive(Debug, Clone)]
pub struct Moment<T> {
    /// The frame (pair index).
    pub frame: u64,
    /// Its ranking value.
    pub value: f64,
    /// What was kept with it.
    pub item: T,
}

/// The worst frames of each bucket of `gap` frames, the 3N worst of them.
#[derive(Debug)]
pub struct Moments<T> {
    n: usize,
    gap: u64,
    lower_is_worse: bool,
    kept: Vec<Moment<T>>,
}

impl<T> Moments<T> {
    /// The `n` worst moments at least `gap` frames apart (`gap` 0 or 1:
    /// the `n` worst frames); lower values are worse when `lower_is_worse`.
    pub fn new(n: usize, gap: u64, lower_is_worse: bool) -> Self {
        Moments {
            n,
            gap: gap.max(1),
            lower_is_worse,
            kept: Vec::new(),
        }
    }

    /// Frame `a` (frame, value) is worse than `b`: by value, then the
    /// earlier frame.
    fn worse(&self, a: (u64, f64), b: (u64, f64)) -> bool {
        let by_value = if self.lower_is_worse {
            a.1 < b.1
        } else {
            a.1 > b.1
        };
        by_value || (a.1 == b.1 && a.0 < b.0)
    }

    fn bucket(&self, frame: u64) -> u64 {
        frame / self.gap
    }

    /// What an offer of (`frame`, `value`) would do: `Some(Some(i))`
    /// replace kept entry `i` (its bucket's, or the least bad when full),
    /// `Some(None)` add it, `None` turn it away.
    fn place(&self, frame: u64, value: f64) -> Option<Option<usize>> {
        if self.n == 0 || !value.is_finite() {
            return None;
        }
        let b = self.bucket(frame);
        if let Some(i) = self.kept.iter().position(|m| self.bucket(m.frame) == b) {
            let m = &self.kept[i];
            return self
                .worse((frame, value), (m.frame, m.value))
                .then_some(Some(i));
        }
        if self.kept.len() < 3 * self.n {
            return Some(None);
        }
        let least = (0..self.kept.len()).reduce(|a, c| {
            let (x, y) = (&self.kept[a], &self.kept[c]);
            if self.worse((x.frame, x.value), (y.frame, y.value)) {
                c
            } else {
                a
            }
        })?;
        let m = &self.kept[least];
        self.worse((frame, value), (m.frame, m.value))
            .then_some(Some(least))
    }

    /// Whether an offer of (`frame`, `value`) would be kept (to skip
    /// making its item when not).
    pub fn wants(&self, frame: u64, value: f64) -> bool {
        self.place(frame, value).is_some()
    }

    /// Offers a frame with its item; returns the item no longer kept (the
    /// one replaced, or this one if turned away), to reuse its buffers.
    pub fn offer(&mut self, frame: u64, value: f64, item: T) -> Option<T> {
        let m = Moment { frame, value, item };
        match self.place(frame, value) {
            None => Some(m.item),
            Some(None) => {
                self.kept.push(m);
                None
            }
            Some(Some(i)) => Some(std::mem::replace(&mut self.kept[i], m).item),
        }
    }

    /// The worst moments, worst first: at most N, each at least `gap`
    /// frames from the others.
    pub fn pick(&self) -> Vec<&Moment<T>> {
        let mut order: Vec<&Moment<T>> = self.kept.iter().collect();
        order.sort_by(|a, b| {
            if self.worse((a.frame, a.value), (b.frame, b.value)) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        });
        let mut out: Vec<&Moment<T>> = Vec::new();
        for m in order {
            if out.len() == self.n {
                break;
            }
            if out.iter().all(|p| p.frame.abs_diff(m.frame) >= self.gap) {
                out.push(m);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The picks of `values` (frame i has values[i]) offered in `order`.
    fn picks(values: &[f64], order: &[usize], n: usize, gap: u64) -> Vec<u64> {
        let mut m = Moments::new(n, gap, true);
        for &i in order {
            m.offer(i as u64, values[i], ());
        }
        m.pick().iter().map(|x| x.frame).collect()
    }

    /// The picks by definition, over every frame at once: each bucket's
    /// worst frame, then greedily the worst at least `gap` apart.
    fn by_definition(values: &[f64], n: usize, gap: u64) -> Vec<u64> {
        let g = gap.max(1) as usize;
        let mut idx: Vec<usize> = (0..values.len())
            .step_by(g)
            .map(|start| {
                (start..(start + g).min(values.len()))
                    .min_by(|a, b| values[*a].total_cmp(&values[*b]).then(a.cmp(b)))
                    .unwrap()
            })
            .collect();
        idx.sort_by(|a, b| values[*a].total_cmp(&values[*b]).then(a.cmp(b)));
        let mut out: Vec<u64> = Vec::new();
        for i in idx {
            if out.len() < n && out.iter().all(|p| p.abs_diff(i as u64) >= gap.max(1)) {
                out.push(i as u64);
            }
        }
        out
    }

    #[test]
    fn one_bad_moment_is_listed_once() {
        // frames 139..150 are all bad: one moment, then the next worst
        let mut v = vec![40.0; 300];
        for (i, x) in v.iter_mut().enumerate().skip(139).take(11) {
            *x = 20.0 + (i % 3) as f64;
        }
        v[40] = 30.0;
        v[250] = 35.0;
        let order: Vec<usize> = (0..300).collect();
        assert_eq!(picks(&v, &order, 3, 25), vec![141, 40, 250]);
        // without a gap, the five worst frames of that one second
        assert_eq!(picks(&v, &order, 5, 1).len(), 5);
        assert!(
            picks(&v, &order, 5, 1)
                .iter()
                .all(|f| (139..150).contains(f))
        );
    }

    #[test]
    fn the_order_frames_arrive_in_does_not_matter() {
        // a pseudo-random series, offered forwards, backwards and shuffled
        let mut s = 12345u64;
        let v: Vec<f64> = (0..500)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) % 1000) as f64 / 10.0
            })
            .collect();
        let forward: Vec<usize> = (0..500).collect();
        let backward: Vec<usize> = (0..500).rev().collect();
        let shuffled: Vec<usize> = (0..500).map(|i| (i * 211) % 500).collect();
        for (n, gap) in [(5, 25), (10, 7), (3, 100), (8, 1)] {
            let want = by_definition(&v, n, gap);
            for order in [&forward, &backward, &shuffled] {
                assert_eq!(picks(&v, order, n, gap), want, "n {n} gap {gap}");
            }
        }
    }

    #[test]
    fn higher_is_worse_for_errors_and_nothing_is_kept_for_zero() {
        let mut m = Moments::new(1, 10, false);
        for (f, v) in [(0, 1.0), (30, 5.0), (60, 2.0)] {
            m.offer(f, v, ());
        }
        assert_eq!(m.pick()[0].frame, 30);
        let mut none = Moments::new(0, 10, true);
        assert!(!none.wants(0, 1.0));
        assert!(none.offer(0, 1.0, ()).is_some());
        assert!(none.pick().is_empty());
        // a value that is not a number is never a moment
        let mut m = Moments::new(2, 1, true);
        assert!(!m.wants(0, f64::NAN));
        assert!(m.offer(0, f64::NAN, ()).is_some());
    }
}
