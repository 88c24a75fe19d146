//! `state-roundtrip`: what hot reload relies on.
//!
//! Round-tripping a fresh instance's state proves nothing: a
//! `restore_state` that ignores its input reproduces the initial state by
//! accident. So the case first drives the plugin's own methods until its
//! saved state differs from a fresh instance's, then carries that state
//! into a new instance. Where no method changes the state, it can only
//! carry the initial one, and says so as a warning rather than a pass.

use super::{Concluded, Outcome};
use crate::called::{self, Called};
use crate::session::{Answer, Session, status_text};

/// Calls per method while looking for one that changes the state.
const CALLS_PER_METHOD: usize = 2;

/// Saves a changed state from one instance, restores it into a fresh one
/// (as a hot reload would) and saves again: the bytes must survive
/// unchanged, and must not be what a fresh instance saves anyway.
pub fn state_roundtrip(session: &mut Session) -> Concluded {
    let Some(initial) = saved(session)? else {
        return Ok(Outcome::skipped(
            "stateless plugin: save_state and restore_state are NULL",
        ));
    };
    let initial = initial?;
    let changed_by = drive_until_changed(session, &initial)?;
    let carried = saved(session)?.expect("still stateful")?;
    session.shutdown();
    session.init()?;
    let restored = session
        .restore_state(&carried)?
        .expect("a stateful plugin has restore_state");
    if Called::of(restored.status) == Called::Panicked {
        let on = format!(" given the {} bytes save_state produced", carried.len());
        return Ok(called::panicked("`restore_state`", &on, restored.logged));
    }
    if restored.status != 0 {
        return Ok(Outcome::fail(format!(
            "restore_state refused the {} bytes save_state produced: it returned {}",
            carried.len(),
            restored.refusal()
        ))
        .with_detail(|detail| detail.status = Some(restored.status)));
    }
    let again = match saved(session)?.expect("still stateful") {
        Ok(bytes) => bytes,
        Err(failure) => return Ok(failure),
    };
    let bytes = carried.len();
    if again != carried {
        let lost = match &changed_by {
            Some(_) if again == initial => {
                ": the new instance saved a fresh instance's state, so restore_state did not take in what it was given"
            }
            _ => "",
        };
        let change = if again.len() == bytes {
            format!("{bytes} bytes went in, other bytes came out")
        } else {
            format!("{bytes} bytes went in, {} came out", again.len())
        };
        return Ok(Outcome::fail(format!(
            "state changed across save → restore into a new instance → save ({change}){lost}"
        )));
    }
    let outcome = match changed_by {
        Some(method) => Outcome::pass(format!(
            "{bytes} bytes of state, changed by calling `{method}`, carried into a new instance unchanged"
        )),
        None => Outcome::warning(format!(
            "only the initial state could be carried ({bytes} bytes): no method changed what save_state returns, so a restore_state that ignores its input would pass too"
        )),
    };
    Ok(outcome.with_detail(|detail| detail.state_bytes = Some(bytes as u64)))
}

/// `save_state`'s bytes; `Err` with the failed outcome when it fails,
/// `None` for a stateless plugin.
fn saved(session: &mut Session) -> Result<Option<Result<Vec<u8>, Outcome>>, Outcome> {
    let saved = session.save_state()?;
    Ok(
        saved.map(|Answer { status, output }| match Called::of(status) {
            Called::Answered => Ok(output),
            Called::Panicked => Err(called::panicked("`save_state`", "", taken_logs(session))),
            Called::Refused => Err(Outcome::fail(format!(
                "save_state returned {}",
                status_text(status)
            ))),
        }),
    )
}

/// Calls each registered method (with empty input) until the saved state
/// differs from `initial`; the method that changed it, if any did.
fn drive_until_changed(session: &mut Session, initial: &[u8]) -> Result<Option<String>, Outcome> {
    let methods: Vec<String> = session
        .host()
        .map(|host| host.with_registry(|r| r.method_names()))
        .unwrap_or_default();
    for method in methods {
        for _ in 0..CALLS_PER_METHOD {
            let answer = session.call(&method, &[])?;
            if answer.is_some_and(|answer| Called::of(answer.status) == Called::Panicked) {
                let on = " on empty input (called to change the state)";
                let call = format!("`{method}`");
                return Err(called::panicked(&call, on, taken_logs(session)));
            }
            match saved(session)?.expect("still stateful") {
                Ok(now) if now != initial => return Ok(Some(method)),
                Ok(_) => {}
                Err(failure) => return Err(failure),
            }
        }
    }
    Ok(None)
}

/// The lines the plugin logged since they were last taken: a panic's
/// message is the last of them.
fn taken_logs(session: &Session) -> Vec<crate::report::LogLine> {
    session
        .host()
        .map(|host| host.take_logs())
        .unwrap_or_default()
}
