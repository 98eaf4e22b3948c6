//! Medians and percentiles by sorting: no statistics crate needed.

use std::time::Duration;

/// The distribution of one measurement.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// How many samples.
    pub n: usize,
    /// The median, in seconds.
    pub median: f64,
    /// The 99th percentile (nearest rank), in seconds.
    pub p99: f64,
}

impl Summary {
    /// Summarise durations; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        Summary::of_secs(
            &samples
                .iter()
                .map(Duration::as_secs_f64)
                .collect::<Vec<_>>(),
        )
    }

    /// Summarise values in seconds (or any unit).
    pub fn of_secs(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let rank = ((0.99 * n as f64).ceil() as usize).clamp(1, n);
        Some(Summary {
            n,
            median,
            p99: v[rank - 1],
        })
    }

    /// As JSON, in the given unit's scale (1e6 for microseconds).
    pub fn json(&self, scale: f64) -> serde_json::Value {
        serde_json::json!({
            "n": self.n,
            "median": self.median * scale,
            "p99": self.p99 * scale,
        })
    }
}

/// A duration in seconds, shown with a unit that suits it.
pub fn fmt_secs(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} us", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p99() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of_secs(&v).unwrap();
        assert_eq!(s.median, 50.5);
        assert_eq!(s.p99, 99.0);
        let s = Summary::of_secs(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!(s.median, 2.0);
        assert_eq!(s.p99, 3.0);
        assert!(Summary::of_secs(&[]).is_none());
    }
}
