//! What the status a plugin function returned says about the call: it
//! answered, it refused (an error status, which a method may return for
//! input it does not take), or it panicked. `PLUGCHECK_ERR_PANIC` is the
//! status only a caught panic returns: a defect, never an answer. Every
//! case that calls into a plugin asks here, so a panic fails the case
//! wherever it happens and names the call that panicked.

use plugcheck_abi::status;

use crate::outcome::Outcome;
use crate::plugin::session::{last_log_hint, status_text};
use crate::report::LogLine;

/// How a call into the plugin ended, by its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Called {
    /// Status 0.
    Answered,
    /// Any other error status: the plugin's answer.
    Refused,
    /// [`status::PANIC`]: the plugin panicked, and its boundary caught it.
    Panicked,
}

impl Called {
    pub(crate) fn of(code: i32) -> Called {
        match code {
            status::OK => Called::Answered,
            status::PANIC => Called::Panicked,
            _ => Called::Refused,
        }
    }
}

/// The words for a call that panicked: "`put` panicked ON: it returned -3
/// (PANIC), the status of a caught panic; it logged "panicked: …"". `call`
/// names the call (a method, `save_state`, …), `on` says with what (" on
/// fuzz input #2 (…)", or nothing); `logged` are the lines the plugin
/// logged while it ran, the panic's message last.
pub(crate) fn panic_reason(call: &str, on: &str, logged: &[LogLine]) -> String {
    format!(
        "{call} panicked{on}: it returned {}, the status of a caught panic{}; a panic is a defect, not an answer: return an error status for input you refuse",
        status_text(status::PANIC),
        last_log_hint(logged)
    )
}

/// A failed outcome for a call that panicked, with its status and the
/// lines it logged in the detail.
pub(crate) fn panicked(call: &str, on: &str, logged: Vec<LogLine>) -> Outcome {
    Outcome::fail(panic_reason(call, on, &logged)).with_detail(|detail| {
        detail.status = Some(status::PANIC);
        detail.status_name = status::name(status::PANIC).map(str::to_owned);
        detail.logs = logged;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_panic_status_is_a_panic() {
        assert_eq!(Called::of(0), Called::Answered);
        assert_eq!(Called::of(status::PANIC), Called::Panicked);
        assert_eq!(Called::of(status::FAILED), Called::Refused);
        assert_eq!(Called::of(status::INVALID_ARGUMENT), Called::Refused);
        assert_eq!(Called::of(42), Called::Refused);
    }

    #[test]
    fn a_panic_reason_names_the_call_and_its_message() {
        let logged = vec![LogLine {
            level: 1,
            message: "panicked: invalid utf-8".into(),
            trace_id: None,
            untagged_in_call: false,
        }];
        let reason = panic_reason("`parse`", "", &logged);
        assert!(
            reason.starts_with("`parse` panicked: it returned -3 (PANIC)"),
            "{reason}"
        );
        assert!(reason.contains("\"panicked: invalid utf-8\""), "{reason}");
    }
}
