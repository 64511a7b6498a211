//! A latency histogram that many tasks record into without locks: log-linear buckets of
//! nanoseconds, each an atomic counter, within 1% of the true value. Not a general-purpose
//! histogram (no merging across processes, no serialization).
//!
//! Hand-written rather than a crate: a few dozen lines, and recording must cost one atomic add
//! so that the load generator's own cost stays far below the server's.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two: 2^7 keeps the relative error under 1/128.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Values up to 2^42 ns (73 minutes) are told apart; longer ones share the last bucket.
const TOP_BIT: u32 = 42;
const BUCKETS: usize = ((TOP_BIT - SUB_BITS + 2) as usize) << SUB_BITS;

/// Latencies in nanoseconds: count, max, and quantiles within 1%.
///
/// ```
/// use outer_bench::histogram::Histogram;
/// let h = Histogram::new();
/// for us in 1..=100 {
///     h.record(us * 1_000);
/// }
/// assert_eq!(h.count(), 100);
/// let p50 = h.quantile(0.5) as f64;
/// assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.01);
/// assert_eq!(h.max(), 100_000);
/// ```
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index(value: u64) -> usize {
    if value < SUB {
        return value as usize;
    }
    let bit = (63 - value.leading_zeros()).min(TOP_BIT);
    let shift = bit - SUB_BITS;
    let sub = (value >> shift).min(2 * SUB - 1) - SUB;
    ((shift as usize + 1) << SUB_BITS) + sub as usize
}

/// The middle of bucket `index`'s range.
fn value_at(index: usize) -> u64 {
    let (row, sub) = (index >> SUB_BITS, (index as u64) & (SUB - 1));
    if row == 0 {
        return sub;
    }
    let shift = row as u32 - 1;
    let low = (SUB + sub) << shift;
    low + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    /// Records one value (nanoseconds).
    pub fn record(&self, value: u64) {
        self.buckets[index(value)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(value, Ordering::Relaxed);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The largest value recorded, exactly (0 when empty).
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// The value below which a fraction `q` (0 to 1) of the recorded values lie, within 1%
    /// (0 when empty).
    pub fn quantile(&self, q: f64) -> u64 {
        let count = self.count();
        if count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return value_at(i).min(self.max());
            }
        }
        self.max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_whose_middle_is_within_one_percent() {
        let mut value = 1u64;
        while value < 1 << 41 {
            for v in [value, value + value / 3, value * 2 - 1] {
                let mid = value_at(index(v));
                let error = (mid as f64 - v as f64).abs() / v as f64;
                assert!(error < 0.01, "{v} maps to {mid}");
            }
            value *= 2;
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let h = Histogram::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p99 = h.quantile(0.99) as f64;
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.01, "{p99}");
        assert_eq!(Histogram::new().quantile(0.5), 0);
    }
}
