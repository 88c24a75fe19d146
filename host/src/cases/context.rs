//! ABI 1.1's call context, seen from the plugin: `trace-in-logs` (the
//! lines a method logs during its call carry the call's trace id),
//! `deadline-visible` and `cancel-honoured` (the wait probe,
//! `selftest.wait`, returns soon after its deadline or its cancellation).
//!
//! The wait probe is the one method whose behaviour the contract fixes
//! for this purpose: it waits until its call is cancelled or its deadline
//! passes. A plugin that does not register it is not judged on deadlines
//! and cancellation (a skip that says how to be); one that registers it
//! and ignores either fails. One that ignores both hangs, and the parent
//! kills the worker at the case timeout, as for any hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use plugcheck_abi::status;

use crate::catalog::CaseId;
use crate::fuzz;
use crate::outcome::{CaseSettings, Concluded, Outcome};
use crate::plugin::call_context::{self, CallSettings, TraceParent, WAIT_PROBE};
use crate::plugin::host::Registered;
use crate::plugin::session::{Answer, InstanceId, Session, status_text};
use crate::report::LogLine;
use crate::text::clip;

/// How soon after its deadline or cancellation the probe must return.
/// Far above a polling loop's step or a scheduler's delay on a loaded
/// machine; far below "it waited for something else".
pub(crate) const SOON: Duration = Duration::from_millis(500);

/// `deadline-visible`'s deadline, and how long after it the case cancels
/// the call (so a probe that ignores the deadline still returns). The
/// window it passes in, [`DEADLINE`, `DEADLINE` + [`SOON`]], is apart from
/// `cancel-honoured`'s, so a probe that sleeps a fixed time and reads
/// neither cannot pass both.
const DEADLINE: Duration = Duration::from_millis(1000);
const CANCEL_AFTER_DEADLINE: Duration = Duration::from_millis(1000);

/// `cancel-honoured`'s cancellation, and the deadline behind it (so a
/// probe that ignores the flag still returns).
const CANCEL_AT: Duration = Duration::from_millis(100);
const DEADLINE_AFTER_CANCEL: Duration = Duration::from_millis(1500);

/// The least time a case that waits on the probe is given, whatever the
/// run's timeout: its own span (up to the cancellation that ends an
/// ignored deadline, or the deadline that ends an ignored cancellation)
/// and twice [`SOON`] for the probe to answer and the answer to come. A
/// shorter `--timeout` would report a probe that honours both as hung.
pub(crate) fn case_timeout(case: CaseId, timeout: Duration) -> Duration {
    let span = match case {
        CaseId::DeadlineVisible => DEADLINE + CANCEL_AFTER_DEADLINE,
        CaseId::CancelHonoured => CANCEL_AT + DEADLINE_AFTER_CANCEL,
        _ => return timeout,
    };
    timeout.max(span + 2 * SOON)
}

/// Methods `trace-in-logs` calls, and inputs of the fuzz series each gets.
const TRACED_METHODS: usize = 32;
const TRACED_INPUTS: u32 = 4;

/// Problems a reason lists at most (the rest are counted).
const LISTED: usize = 3;

/// Log lines the case keeps in its detail (a plugin may log on every call).
const KEPT_LOGS: usize = 4;

pub(super) fn trace_in_logs(session: &mut Session, settings: &CaseSettings) -> Concluded {
    let methods = methods_of_1_1(session)?;
    if methods.is_empty() {
        return Ok(Outcome::skipped(
            "no method is registered through ABI 1.1's register_method_1_1: a 1.0 method gets no call context, so no trace id to log",
        ));
    }
    let stale_before = call_context::stale_logs();
    let mut tagged = 0usize;
    let mut problems = Vec::new();
    let mut kept = Vec::new();
    let mut calls = 0u64;
    for (m, method) in methods.iter().take(TRACED_METHODS).enumerate() {
        for index in 0..TRACED_INPUTS {
            calls += 1;
            let trace = numbered_trace(settings.seed, m, index);
            let host = session.host().expect("initialised by methods_of_1_1");
            // Emptied before each call, so every line of the call is kept
            // (up to the bound), and counted past it.
            host.take_logs();
            let untagged_before = host.with_registry(|registry| registry.untagged_in_call);
            let call = CallSettings {
                traceparent: Some(trace.clone()),
                ..CallSettings::default()
            };
            let input = fuzz::input(settings.seed, index);
            session.call_with(InstanceId::FIRST, method, &input, &call)?;
            let host = session.host().expect("still initialised");
            let lines = host.take_logs();
            let untagged =
                host.with_registry(|registry| registry.untagged_in_call) - untagged_before;
            let untagged_seen = lines.iter().filter(|line| line.untagged_in_call).count() as u64;
            if untagged > untagged_seen {
                problems.push(format!(
                    "`{}` on fuzz input #{index} logged {} more line(s) through the host table, past the lines kept, without its call's trace id",
                    clip(method, 60),
                    untagged - untagged_seen
                ));
            }
            for line in lines {
                let on = || {
                    format!(
                        "`{}` on fuzz input #{index} ({})",
                        clip(method, 60),
                        fuzz::describe(settings.seed, index)
                    )
                };
                match &line.trace_id {
                    Some(id) if id == trace.trace_id() => tagged += 1,
                    Some(other) => problems.push(format!(
                        "{} logged \"{}\" tagged with trace {other}, not its call's {}",
                        on(),
                        clip(&line.message, 80),
                        trace.trace_id()
                    )),
                    None if line.untagged_in_call => problems.push(format!(
                        "{} logged \"{}\" through the host table, without its call's trace id: log through the call's `log`",
                        on(),
                        clip(&line.message, 80)
                    )),
                    // Another thread's line, of no call.
                    None => continue,
                }
                if kept.len() < KEPT_LOGS {
                    kept.push(line);
                }
            }
        }
    }
    let stale = call_context::stale_logs() - stale_before;
    if stale > 0 {
        problems.push(format!(
            "{stale} line(s) came through the context of a call that had already returned: a call's context is valid only while its method runs"
        ));
    }
    // The case's own lines are in `kept`; the rest are not reported.
    if let Some(host) = session.host() {
        host.take_logs();
    }
    let outcome = if !problems.is_empty() {
        let count = problems.len();
        let listed: Vec<String> = problems.into_iter().take(LISTED).collect();
        let more = if count > LISTED {
            format!("; and {} more", count - LISTED)
        } else {
            String::new()
        };
        Outcome::fail(format!(
            "{count} line(s) logged during a call without the call's trace id: {}{more}",
            listed.join("; ")
        ))
    } else if tagged == 0 {
        Outcome::skipped(format!(
            "no method logged anything during its {calls} call(s), so there was no trace id to carry"
        ))
    } else {
        let of_methods = match methods.len() > TRACED_METHODS {
            true => format!(
                " (the first {TRACED_METHODS} of {} methods in name order)",
                methods.len()
            ),
            false => String::new(),
        };
        Outcome::pass(format!(
            "{tagged} line(s) logged during {calls} call(s), each tagged with its call's trace id{of_methods}"
        ))
    };
    Ok(outcome.with_detail(|detail| detail.logs = kept))
}

/// A trace context made from the case's seed and the call's place in the
/// series, so a run's trace ids are the same on every run (and in
/// snapshots).
fn numbered_trace(seed: u64, method: usize, input: u32) -> TraceParent {
    let call = ((method as u64) << 32) | u64::from(input);
    let text = format!(
        "00-{seed:016x}{:016x}-{:016x}-01",
        call ^ 0x5ca1_ab1e,
        call | 1
    );
    TraceParent::parse(&text).expect("the case makes well-formed trace contexts")
}

/// The methods (but the wait probe) the plugin registered through 1.1.
fn methods_of_1_1(session: &mut Session) -> Result<Vec<String>, Outcome> {
    session.init()?;
    let host = session.host().expect("initialised above");
    let names = host.with_registry(|registry| registry.callable_method_names());
    Ok(names
        .into_iter()
        .filter(|name| matches!(host.lookup(name), Some(Registered::V1_1(_))))
        .collect())
}

pub(super) fn deadline_visible(session: &mut Session) -> Concluded {
    if let Some(skip) = without_probe(session)? {
        return Ok(skip);
    }
    let waited = wait_on_probe(session, Some(DEADLINE), DEADLINE + CANCEL_AFTER_DEADLINE)?;
    let Waited { answer, took, .. } = waited;
    if let Some(failure) = panicked(&answer) {
        return Ok(failure);
    }
    let deadline_ms = DEADLINE.as_millis();
    let outcome = if took < DEADLINE {
        Outcome::fail(format!(
            "`{WAIT_PROBE}` returned {} before its deadline of {deadline_ms} ms: it must wait until its call is cancelled or its deadline passes",
            status_text(answer.status)
        ))
    } else if took >= DEADLINE + CANCEL_AFTER_DEADLINE {
        Outcome::fail(format!(
            "`{WAIT_PROBE}` did not see its deadline of {deadline_ms} ms: it returned only when the call was cancelled {} ms after it; read the call's `deadline_ns` on its `now_ns` clock",
            CANCEL_AFTER_DEADLINE.as_millis()
        ))
    } else if took > DEADLINE + SOON {
        Outcome::fail(format!(
            "`{WAIT_PROBE}` returned more than {} ms after its deadline of {deadline_ms} ms (and before the call was cancelled)",
            SOON.as_millis()
        ))
    } else {
        Outcome::pass(format!(
            "`{WAIT_PROBE}` returned {} within {} ms of its deadline of {deadline_ms} ms: the deadline is visible to the method",
            status_text(answer.status),
            SOON.as_millis()
        ))
    };
    Ok(outcome.with_detail(|detail| detail.status = Some(answer.status)))
}

pub(super) fn cancel_honoured(session: &mut Session) -> Concluded {
    if let Some(skip) = without_probe(session)? {
        return Ok(skip);
    }
    let Waited {
        answer,
        took,
        cancelled_at,
    } = wait_on_probe(session, Some(CANCEL_AT + DEADLINE_AFTER_CANCEL), CANCEL_AT)?;
    if let Some(failure) = panicked(&answer) {
        return Ok(failure);
    }
    let cancel_ms = CANCEL_AT.as_millis();
    // From when the flag was really set: its thread may wake late on a
    // loaded machine.
    let flagged = cancelled_at.unwrap_or(CANCEL_AT);
    let outcome = if cancelled_at.is_none() || took < flagged {
        Outcome::fail(format!(
            "`{WAIT_PROBE}` returned {} before its call was cancelled at {cancel_ms} ms: it must wait until its call is cancelled or its deadline passes",
            status_text(answer.status)
        ))
    } else if took >= CANCEL_AT + DEADLINE_AFTER_CANCEL {
        Outcome::fail(format!(
            "`{WAIT_PROBE}` ignored its cancellation at {cancel_ms} ms: it returned only at its deadline, {} ms later; read the call's `cancelled` flag while it waits",
            DEADLINE_AFTER_CANCEL.as_millis()
        ))
    } else if took > flagged + SOON {
        Outcome::fail(format!(
            "`{WAIT_PROBE}` returned more than {} ms after its call was cancelled (and before its deadline)",
            SOON.as_millis()
        ))
    } else {
        Outcome::pass(format!(
            "`{WAIT_PROBE}` returned {} within {} ms of its call's cancellation",
            status_text(answer.status),
            SOON.as_millis()
        ))
    };
    Ok(outcome.with_detail(|detail| detail.status = Some(answer.status)))
}

/// A skip (or failure) when the plugin has no wait probe to judge.
fn without_probe(session: &mut Session) -> Result<Option<Outcome>, Outcome> {
    if !session.speaks_1_1()? {
        return Ok(Some(Outcome::skipped(
            "the plugin is of ABI 1.0: its methods get no call context, so no deadline or cancellation to see",
        )));
    }
    Ok(match session.registered(WAIT_PROBE)? {
        Some(Registered::V1_1(_)) => None,
        Some(Registered::V1_0(_)) => Some(Outcome::fail(format!(
            "`{WAIT_PROBE}` is registered through 1.0's register_method, so it gets no call context and cannot see a deadline or a cancellation: register it through register_method_1_1"
        ))),
        None => Some(Outcome::skipped(format!(
            "the plugin registers no `{WAIT_PROBE}` (ABI 1.1: a method that returns once its call is cancelled or its deadline passes), so its deadlines and cancellation cannot be observed"
        ))),
    })
}

/// What the wait probe answered, how long its call took, and when (after
/// the call began) its flag was set, if it was.
struct Waited {
    answer: Answer,
    took: Duration,
    cancelled_at: Option<Duration>,
}

/// Calls the wait probe with a deadline `deadline` from now and cancels
/// the call `cancel_at` from now (unless it returned before).
fn wait_on_probe(
    session: &mut Session,
    deadline: Option<Duration>,
    cancel_at: Duration,
) -> Result<Waited, Outcome> {
    let flag = Arc::new(AtomicU32::new(0));
    let (returned, wait) = mpsc::channel::<()>();
    let setter = Arc::clone(&flag);
    let started = Instant::now();
    let canceller = std::thread::spawn(move || {
        // Woken early (or cut off) when the call returns first.
        match wait.recv_timeout(cancel_at) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                setter.store(1, Ordering::Release);
                Some(started.elapsed())
            }
            _ => None,
        }
    });
    let call = CallSettings {
        deadline: deadline.map(|after| started + after),
        traceparent: None,
        cancel: Some(flag),
    };
    let answer = session.call_with(InstanceId::FIRST, WAIT_PROBE, &[], &call);
    let took = started.elapsed();
    drop(returned);
    let cancelled_at = canceller.join().ok().flatten();
    let answer = answer?.expect("the probe was found registered");
    Ok(Waited {
        answer,
        took,
        cancelled_at,
    })
}

/// The failure of a probe that panicked.
fn panicked(answer: &Answer) -> Option<Outcome> {
    (answer.status == status::PANIC).then(|| {
        crate::plugin::called::panicked(&format!("`{WAIT_PROBE}`"), "", Vec::<LogLine>::new())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_case_gets_its_own_span_and_the_rest_the_runs_timeout() {
        let short = Duration::from_millis(500);
        assert_eq!(
            case_timeout(CaseId::DeadlineVisible, short),
            Duration::from_millis(3000)
        );
        assert_eq!(
            case_timeout(CaseId::CancelHonoured, short),
            Duration::from_millis(2600)
        );
        assert_eq!(case_timeout(CaseId::FuzzMethods, short), short);
        let long = Duration::from_secs(10);
        assert_eq!(case_timeout(CaseId::DeadlineVisible, long), long);
    }
}
