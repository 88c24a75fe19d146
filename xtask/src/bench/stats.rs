//! What every bench line shares: its percentiles, how it prints a time,
//! and the suite a whole-suite line without the crash family runs.

use std::time::Duration;

/// Every family before the crash family: the suite the crash family's cost
/// is measured against.
pub const FAMILIES_BEFORE_CRASH: &str = "load,lookup,version,lifecycle,state,hygiene,reload";

/// The `p`th percentile of `samples` (sorted in place).
pub fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

/// `1.23 ms`.
pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}
