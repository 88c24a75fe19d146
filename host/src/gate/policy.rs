//! The gate's rules, as `plugcheck.toml` gives them and a report keeps
//! them: the verdicts that break the gate (`deny-warnings`,
//! `deny-skipped`), the waivers that accept a verdict, and how each waiver
//! fared. Judging a report by them is `judge.rs`'s job; reading them from
//! a file is `file.rs`'s.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::report::verdict::Verdict;

/// The gate's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// A warning fails the gate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deny_warnings: bool,
    /// A case skipped because it does not apply to the plugin fails the
    /// gate (one skipped behind a prerequisite always does: it was not
    /// verified).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deny_skipped: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waivers: Vec<Waiver>,
    /// The gate file the waivers came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// One accepted deviation from `pass`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiver {
    /// A case id or a family name.
    pub case: String,
    /// Only for the plugin of this file name (without extension) or
    /// descriptor name; every plugin when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    pub accept: Verdict,
    pub reason: String,
    /// A plugin version (semver) from which on, or a date (YYYY-MM-DD,
    /// UTC) after which, the waiver no longer applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Its line in the gate file.
    #[serde(default)]
    pub line: u32,
}

/// How a case stands with the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Passage {
    /// Its verdict does not break the gate.
    Clean,
    /// Its verdict would, but a waiver accepts it.
    Waived,
    Blocked,
}

/// How one waiver fared over a whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaiverUse {
    #[serde(flatten)]
    pub waiver: Waiver,
    pub state: UseState,
    /// Cases it accepted.
    pub applied: u32,
    /// Why it no longer applies, where it met its verdict too late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<String>,
}

/// What became of a waiver in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UseState {
    /// It accepted at least one case.
    Applied,
    /// It met its verdict, but its `until` had passed.
    Expired,
    /// Its cases ran and none got the verdict it accepts: remove it.
    Stale,
    /// None of its cases ran (filtered out, or no such plugin here).
    NotRun,
}

impl Policy {
    pub fn is_default(&self) -> bool {
        *self == Policy::default()
    }

    /// Whether a case's verdict alone breaks the gate; `behind_prerequisite`
    /// when the case was skipped because a prerequisite did not give what
    /// it needs.
    pub fn breaks(&self, verdict: Verdict, behind_prerequisite: bool) -> bool {
        match verdict {
            // Nothing was verified, or nothing can be trusted: a release
            // gate must not pass on it.
            Verdict::Fail
            | Verdict::Crashed
            | Verdict::TimedOut
            | Verdict::Unsupported
            | Verdict::Flaky => true,
            Verdict::Warning => self.deny_warnings,
            // A case skipped behind a prerequisite was not verified. Where
            // the prerequisite's verdict breaks the gate this changes
            // nothing; where a waiver accepts that verdict, the cases
            // behind it must be waived by name too, or one waiver would
            // silently accept everything it kept from running.
            Verdict::Skipped if behind_prerequisite => true,
            // A case that does not apply to the plugin (no state, no
            // upgrade build): only a gate that asks for every case minds.
            Verdict::Skipped => self.deny_skipped,
            Verdict::Pass => false,
        }
    }
}

/// When a waiver stops applying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Until {
    Version(semver::Version),
    /// The last day it applies.
    Date(NaiveDate),
}

impl Until {
    pub(crate) fn parse(text: &str) -> Result<Until, String> {
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(Until::Date(date));
        }
        semver::Version::parse(text.strip_prefix('v').unwrap_or(text))
            .map(Until::Version)
            .map_err(|_| {
                format!(
                    "`{}` is neither a date (YYYY-MM-DD) nor a plugin version (like 2.0.0)",
                    crate::text::one_line(text)
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn until_reads_dates_and_versions_and_names_what_it_cannot() {
        assert_eq!(
            Until::parse("2027-03-01"),
            Ok(Until::Date(day("2027-03-01")))
        );
        assert!(matches!(Until::parse("v2.0.0"), Ok(Until::Version(_))));
        let error = Until::parse("soon").unwrap_err();
        assert!(
            error.contains("`soon`") && error.contains("YYYY-MM-DD"),
            "{error}"
        );
        assert!(Until::parse("2027-13-01").is_err());
    }
}
