//! Rolling statistics over the last N frames, kept in a ring buffer so
//! memory is fixed by N, not by the run.

use ringbuf::HeapRb;
use ringbuf::traits::Observer;

/// Mean, min and max of one key over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowStat {
    /// Mean of the finite values in the window.
    pub mean: f64,
    /// Smallest value in the window.
    pub min: f64,
    /// Largest value in the window.
    pub max: f64,
}

/// The last `capacity` rows of values, and statistics over them.
pub struct Rolling {
    rows: HeapRb<Box<[f64]>>,
    spare: Option<Box<[f64]>>,
    keys: usize,
}

impl Rolling {
    /// A window of `capacity` rows (at least 1) of `keys` values each.
    pub fn new(capacity: usize, keys: usize) -> Self {
        Rolling {
            rows: HeapRb::new(capacity.max(1)),
            spare: None,
            keys,
        }
    }

    /// Adds a row, evicting the oldest when full. Reuses evicted buffers.
    pub fn push(&mut self, values: &[f64]) {
        if self.rows.is_full() {
            self.spare = self.rows.try_pop();
        }
        let mut buf = self
            .spare
            .take()
            .unwrap_or_else(|| vec![0.0; self.keys].into_boxed_slice());
        buf.copy_from_slice(&values[..self.keys]);
        if let Err(rejected) = self.rows.try_push(buf) {
            // cannot happen after the eviction above; keep the buffer
            self.spare = Some(rejected);
        }
    }

    /// Rows currently in the window.
    pub fn len(&self) -> usize {
        self.rows.occupied_len()
    }

    /// True before the first row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Statistics of each key over the window.
    pub fn stats(&mut self) -> Vec<WindowStat> {
        let mut out = vec![
            WindowStat {
                mean: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
            };
            self.keys
        ];
        let n = self.len().max(1) as f64;
        for row in self.rows.iter() {
            for (s, v) in out.iter_mut().zip(row.iter()) {
                s.mean += v;
                s.min = s.min.min(*v);
                s.max = s.max.max(*v);
            }
        }
        for s in &mut out {
            s.mean /= n;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_last_rows() {
        let mut r = Rolling::new(3, 2);
        for i in 0..5 {
            r.push(&[i as f64, 10.0 * i as f64]);
        }
        assert_eq!(r.len(), 3);
        let s = r.stats();
        assert_eq!(s[0].mean, 3.0);
        assert_eq!(s[0].min, 2.0);
        assert_eq!(s[0].max, 4.0);
        assert_eq!(s[1].max, 40.0);
    }
}
