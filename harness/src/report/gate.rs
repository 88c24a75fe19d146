//! What the gate was, as a report keeps it: the verdicts that break it
//! (`deny-warnings`, `deny-skipped`), the gate file's waivers, and how each
//! waiver fared. Judging a report by it is the `policy` module's job.

use serde::{Deserialize, Serialize};

use super::CaseReport;
use super::verdict::Verdict;

/// The gate file's name, looked for beside the plugin.
pub const FILE_NAME: &str = "plugcheck.toml";

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
pub enum Passage {
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

    /// Whether the verdict alone breaks the gate.
    pub fn breaks(&self, case: &CaseReport) -> bool {
        match case.verdict {
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
            Verdict::Skipped if case.detail.prerequisite.is_some() => true,
            // A case that does not apply to the plugin (no state, no
            // upgrade build): only a gate that asks for every case minds.
            Verdict::Skipped => self.deny_skipped,
            Verdict::Pass => false,
        }
    }

    /// How a judged case stands with the gate.
    pub fn lets_through(&self, case: &CaseReport) -> Passage {
        let waived = case
            .waiver
            .as_ref()
            .is_some_and(|waiver| waiver.expired.is_none());
        match (self.breaks(case), waived) {
            (_, true) => Passage::Waived,
            (true, false) => Passage::Blocked,
            (false, false) => Passage::Clean,
        }
    }
}
