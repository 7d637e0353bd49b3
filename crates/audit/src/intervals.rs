//! Bounded summaries of the intervals between repeats, and the robust
//! statistics the polling score is made of (Bowley skew, median absolute
//! deviation), as beacon detectors such as RITA use them.

/// A uniform sample of at most `capacity` intervals (reservoir sampling), so
/// that a poller that runs for a year costs the same memory as one that ran
/// for an hour. The sampling is deterministic: the same calls give the same report.
/// Intervals are kept as `f32` seconds (a tenth of a millisecond at an hour):
/// a log with a hundred thousand repeating streams keeps 256 of them each.
#[derive(Debug, Clone)]
pub(crate) struct IntervalSample {
    values: Vec<f32>,
    seen: u64,
    rng: u64,
}

impl IntervalSample {
    /// An empty sample; `seed` makes streams sample independently.
    pub fn new(seed: u64) -> IntervalSample {
        IntervalSample { values: Vec::new(), seen: 0, rng: seed | 1 }
    }

    /// Offers one interval (in seconds).
    pub fn push(&mut self, v: f64, capacity: usize) {
        self.seen += 1;
        if self.values.len() < capacity {
            self.values.push(v as f32);
            return;
        }
        // xorshift64*: tiny, deterministic, good enough to pick a slot.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let slot = r % self.seen;
        if (slot as usize) < capacity {
            self.values[slot as usize] = v as f32;
        }
    }

    /// The sampled intervals, in seconds.
    pub fn values(&self) -> Vec<f64> {
        self.values.iter().map(|&v| f64::from(v)).collect()
    }

    /// How many intervals the sample holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// How many intervals were offered in all.
    pub fn seen(&self) -> u64 {
        self.seen
    }
}

/// The `q` quantile (0–1) of sorted values, interpolated; `None` when empty.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

/// Bowley (quartile) skew of sorted values: `(Q3 + Q1 − 2·Q2) / (Q3 − Q1)`,
/// in −1…1; 0 when the quartiles coincide (perfectly regular).
pub(crate) fn bowley_skew(sorted: &[f64]) -> f64 {
    let (Some(q1), Some(q2), Some(q3)) = (quantile(sorted, 0.25), quantile(sorted, 0.5), quantile(sorted, 0.75)) else {
        return 0.0;
    };
    let spread = q3 - q1;
    if spread <= f64::EPSILON * q2.abs().max(1.0) {
        return 0.0;
    }
    ((q3 + q1 - 2.0 * q2) / spread).clamp(-1.0, 1.0)
}

/// Median absolute deviation of sorted values from their median.
pub(crate) fn median_abs_deviation(sorted: &[f64]) -> f64 {
    let Some(median) = quantile(sorted, 0.5) else { return 0.0 };
    let mut dev: Vec<f64> = sorted.iter().map(|v| (v - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    quantile(&dev, 0.5).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_robust_spread() {
        let v = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert_eq!(quantile(&v, 0.25), Some(2.0));
        assert_eq!(median_abs_deviation(&v), 1.0, "one outlier does not move it");
        assert_eq!(bowley_skew(&[5.0; 9]), 0.0);
        assert!(bowley_skew(&[1.0, 1.0, 1.1, 1.2, 5.0, 9.0, 20.0]) > 0.5, "a long right tail skews");
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_sample_stays_bounded_and_uniform() {
        let mut s = IntervalSample::new(7);
        for i in 0..100_000 {
            s.push(i as f64, 100);
        }
        assert_eq!((s.values().len(), s.seen()), (100, 100_000));
        let mean = s.values().iter().sum::<f64>() / 100.0;
        assert!((30_000.0..70_000.0).contains(&mean), "sample mean {mean}");
    }
}
