//! How a worker process ended, in platform-neutral terms. The OS seam turns
//! an exit status into one of these; reports from any platform deserialize
//! into the same type, so a Linux host can read a Windows report.

use serde::{Deserialize, Serialize};

/// The end of a worker process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Termination {
    /// The process exited with a code (on Windows, one that is not an
    /// NTSTATUS error).
    Exited { code: i64 },
    /// Killed by a Unix signal.
    Signaled {
        /// `SIGSEGV`, `SIGABRT`, …
        signal: String,
        number: i32,
        core_dumped: bool,
    },
    /// Ended by a Windows exception or fail-fast, reported as an NTSTATUS.
    NtStatus {
        /// e.g. `0xC0000005`.
        code: String,
        /// e.g. `STATUS_ACCESS_VIOLATION`, when known.
        name: Option<String>,
    },
    /// Killed by the harness after the case's time ran out.
    TimedOut { after_ms: u64 },
}

impl Termination {
    /// One phrase for tables and reasons, to follow "the worker": "was
    /// killed by SIGSEGV (invalid memory access)".
    pub fn describe(&self) -> String {
        match self {
            Termination::Exited { code } => format!("exited with code {code}"),
            Termination::Signaled {
                signal,
                core_dumped,
                ..
            } => {
                let meaning = signal_meaning(signal)
                    .map(|meaning| format!(" ({meaning})"))
                    .unwrap_or_default();
                let core = if *core_dumped { ", core dumped" } else { "" };
                format!("was killed by {signal}{meaning}{core}")
            }
            Termination::NtStatus { code, name } => match name {
                Some(name) => format!("ended with {name} ({code})"),
                None => format!("ended with NTSTATUS {code}"),
            },
            Termination::TimedOut { after_ms } => {
                format!(
                    "was killed after {} (timeout)",
                    crate::text::human_ms(*after_ms)
                )
            }
        }
    }
}

/// What the signals a crashing plugin usually raises mean. Here, not in
/// the Linux module: a Linux report read on a Windows host (merged legs)
/// must still name the cause.
fn signal_meaning(signal: &str) -> Option<&'static str> {
    Some(match signal {
        "SIGSEGV" => "invalid memory access",
        "SIGBUS" => "misaligned or unmapped memory",
        "SIGABRT" => "abort",
        "SIGILL" => "illegal instruction",
        "SIGFPE" => "arithmetic error",
        "SIGTRAP" => "trap or breakpoint",
        "SIGKILL" => "killed",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_name_the_cause() {
        let segv = Termination::Signaled {
            signal: "SIGSEGV".into(),
            number: 11,
            core_dumped: false,
        };
        assert_eq!(
            segv.describe(),
            "was killed by SIGSEGV (invalid memory access)"
        );
        let av = Termination::NtStatus {
            code: "0xC0000005".into(),
            name: Some("STATUS_ACCESS_VIOLATION".into()),
        };
        assert_eq!(
            av.describe(),
            "ended with STATUS_ACCESS_VIOLATION (0xC0000005)"
        );
        assert_eq!(
            Termination::TimedOut { after_ms: 1500 }.describe(),
            "was killed after 1.5 s (timeout)"
        );
    }

    #[test]
    fn serializes_with_a_kind_tag() {
        let json = serde_json::to_value(Termination::Exited { code: 3 }).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "exited", "code": 3}));
    }
}
