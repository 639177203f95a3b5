//! Summaries of timing samples and how numbers are shown: medians, ratios, milliseconds.

/// Median, min and max of a set of samples (milliseconds, or any unit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

/// `None` for no samples; the median of an even count is the mean of the middle two.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some(Summary {
        median,
        min: sorted[0],
        max: sorted[n - 1],
        n,
    })
}

/// `a / b`, or `None` when `b` is not a positive number.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

/// Milliseconds with three significant digits or so: `2.31 ms`, `27.4 ms`, `412 ms`.
pub fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else if value < 100.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

/// A signed difference in milliseconds: `+1.20 ms`, `-0.35 ms`.
pub fn delta_ms(value: f64) -> String {
    let sign = if value < 0.0 { '-' } else { '+' };
    format!("{sign}{}", ms(value.abs()))
}

/// `1.62x`, `0.08x`.
pub fn times(value: f64) -> String {
    format!("{value:.2}x")
}

/// KiB as MiB with one decimal: `3.3 MiB`.
pub fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        let odd = summarize(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(
            odd,
            Summary {
                median: 3.0,
                min: 1.0,
                max: 5.0,
                n: 3
            }
        );
        assert_eq!(summarize(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(summarize(&[7.0]).unwrap().median, 7.0);
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn ratios_need_a_positive_reference() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 2.0), None);
    }

    #[test]
    fn numbers_are_shown_with_sensible_precision() {
        assert_eq!(ms(2.3149), "2.31 ms");
        assert_eq!(ms(27.44), "27.4 ms");
        assert_eq!(ms(412.4), "412 ms");
        assert_eq!(delta_ms(1.2), "+1.20 ms");
        assert_eq!(delta_ms(-0.351), "-0.35 ms");
        assert_eq!(times(1.624), "1.62x");
        assert_eq!(mib(3379.2), "3.3 MiB");
    }
}
