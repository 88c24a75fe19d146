//! A case's verdict: the closed list of what a case can conclude, shared by
//! every report, view and gate.

use serde::{Deserialize, Serialize};

/// What a case concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    Crashed,
    TimedOut,
    Skipped,
    Warning,
    /// The platform cannot load this kind of plugin at all (a Go-native
    /// plugin on Windows): nothing was verified here.
    Unsupported,
    /// Runs of the same case (`--repeat`) disagreed: the case cannot be
    /// trusted either way.
    Flaky,
}

impl Verdict {
    /// Every verdict, in the order reports count them.
    pub const ALL: [Verdict; 8] = [
        Verdict::Pass,
        Verdict::Fail,
        Verdict::Crashed,
        Verdict::TimedOut,
        Verdict::Skipped,
        Verdict::Warning,
        Verdict::Unsupported,
        Verdict::Flaky,
    ];

    /// The verdict `as_str` names.
    pub fn from_name(name: &str) -> Option<Verdict> {
        Verdict::ALL
            .into_iter()
            .find(|verdict| verdict.as_str() == name)
    }

    /// Whether a case depending on this one may run.
    pub fn satisfies_prerequisite(self) -> bool {
        // Not `Flaky`: it is only ever the sum of finished runs.
        matches!(self, Verdict::Pass | Verdict::Warning)
    }

    /// "failed", "crashed", "timed out": for reasons that cite a verdict.
    pub fn past_tense(self) -> &'static str {
        match self {
            Verdict::Pass => "passed",
            Verdict::Fail => "failed",
            Verdict::Crashed => "crashed",
            Verdict::TimedOut => "timed out",
            Verdict::Skipped => "was skipped",
            Verdict::Warning => "warned",
            Verdict::Unsupported => "is unsupported on this platform",
            Verdict::Flaky => "was flaky",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Crashed => "crashed",
            Verdict::TimedOut => "timed-out",
            Verdict::Skipped => "skipped",
            Verdict::Warning => "warning",
            Verdict::Unsupported => "unsupported",
            Verdict::Flaky => "flaky",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed list of verdicts, as `host/protocol/verdicts.json`
    /// writes it for both workers (the Go worker's `protocol_test.go`
    /// reads it too), in the order reports count them.
    #[test]
    fn the_verdicts_are_the_golden_ones() {
        let golden: Vec<String> =
            serde_json::from_str(include_str!("../../protocol/verdicts.json")).unwrap();
        let ours: Vec<String> = Verdict::ALL
            .iter()
            .map(|verdict| {
                serde_json::to_value(verdict)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            golden, ours,
            "host/protocol/verdicts.json and report::verdict::Verdict differ: change both, and the Go worker's protocol.go"
        );
    }
}
