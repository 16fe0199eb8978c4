//! Statistics a gate can trust: means with a 95% bootstrap confidence interval over cases, Wilson
//! intervals for pass rates, and paired differences between two runs. Bootstrap resampling is
//! seeded, so the same scores always give the same interval.

use serde::{Deserialize, Serialize};

/// Bootstrap resamples per interval.
const RESAMPLES: usize = 2000;
/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// A value with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The mean of `values` with a percentile-bootstrap 95% interval; `None` for no values.
pub fn bootstrap_mean(values: &[f64], seed: u64) -> Option<Estimate> {
    let value = mean(values)?;
    if values.len() == 1 {
        return Some(Estimate {
            value,
            low: value,
            high: value,
        });
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let total: f64 = (0..values.len())
                .map(|_| values[rng.usize(..values.len())])
                .sum();
            total / values.len() as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    Some(Estimate {
        value,
        low: percentile(&means, 0.025),
        high: percentile(&means, 0.975),
    })
}

/// The pass rate `passed / total` with its Wilson score 95% interval; `None` for no trials.
pub fn wilson(passed: usize, total: usize) -> Option<Estimate> {
    if total == 0 {
        return None;
    }
    let n = total as f64;
    let p = passed as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Some(Estimate {
        value: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    })
}

/// The mean of paired differences (`after - before`, one pair per case) with a bootstrap 95%
/// interval; a regression is significant when the whole interval is below zero.
pub fn paired_difference(pairs: &[(f64, f64)], seed: u64) -> Option<Estimate> {
    let differences: Vec<f64> = pairs.iter().map(|(before, after)| after - before).collect();
    bootstrap_mean(&differences, seed)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = q * (sorted.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    let weight = rank - low as f64;
    sorted[low] * (1.0 - weight) + sorted[high] * weight
}

/// A stable seed for a metric's interval, so reports do not change between identical runs.
pub fn seed_for(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook_interval() {
        // 8 of 10: the Wilson 95% interval is about [0.490, 0.943].
        let estimate = wilson(8, 10).expect("trials");
        assert!((estimate.low - 0.4902).abs() < 1e-3, "{estimate:?}");
        assert!((estimate.high - 0.9433).abs() < 1e-3, "{estimate:?}");
        let all = wilson(5, 5).expect("trials");
        assert!(all.high <= 1.0 && all.low > 0.5, "{all:?}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn bootstrap_intervals_contain_the_mean_and_narrow_with_more_cases() {
        let few: Vec<f64> = [0.0, 1.0, 1.0, 0.5, 1.0].to_vec();
        let many: Vec<f64> = few.iter().cycle().take(200).copied().collect();
        let a = bootstrap_mean(&few, 1).expect("values");
        let b = bootstrap_mean(&many, 1).expect("values");
        assert!(a.low <= a.value && a.value <= a.high, "{a:?}");
        assert!((a.value - b.value).abs() < 1e-12);
        assert!(b.high - b.low < a.high - a.low, "{a:?} {b:?}");
        assert_eq!(bootstrap_mean(&few, 1), bootstrap_mean(&few, 1));
        assert_eq!(bootstrap_mean(&[], 1), None);
    }

    #[test]
    fn a_consistent_drop_is_a_significant_negative_difference() {
        let pairs: Vec<(f64, f64)> = (0..30)
            .map(|i| (1.0, if i % 5 == 0 { 1.0 } else { 0.5 }))
            .collect();
        let difference = paired_difference(&pairs, 7).expect("pairs");
        assert!(difference.high < 0.0, "{difference:?}");
        let same: Vec<(f64, f64)> = (0..30)
            .map(|i| (f64::from(i % 2), f64::from(i % 2)))
            .collect();
        let none = paired_difference(&same, 7).expect("pairs");
        assert!(none.low <= 0.0 && none.high >= 0.0, "{none:?}");
    }
}
