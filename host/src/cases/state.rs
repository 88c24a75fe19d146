//! `state-roundtrip`: what hot reload relies on.
//!
//! Round-tripping a fresh instance's state proves nothing: a
//! `restore_state` that ignores its input reproduces the initial state by
//! accident. So the case first drives the plugin's own methods until its
//! saved state differs from a fresh instance's, then carries that state
//! into a new instance. It tries each method with empty input first, then
//! with inputs of the fuzz series (a `put` may refuse empty input); an
//! error answer is allowed there (a `get` of a missing key), a panic is
//! not. Where no method changes the state, it can only carry the initial
//! one, and says so as a warning rather than a pass.

use crate::fuzz;
use crate::outcome::CaseSettings;
use crate::outcome::{Concluded, Outcome};
use crate::plugin::called::{self, Called};
use crate::plugin::session::{Answer, Session, status_text};

/// Calls per method with empty input while looking for one that changes
/// the state.
const CALLS_PER_METHOD: usize = 2;

/// Inputs of the fuzz series (from #1: #0 is the empty one) each method
/// gets once empty input changed nothing, at most...
const VARIED_ROUNDS: u32 = 8;

/// ...and in all, shared out so that every method gets at least one.
const VARIED_CALLS: usize = 512;

/// Saves a changed state from one instance, restores it into a fresh one
/// (as a hot reload would) and saves again: the bytes must survive
/// unchanged, and must not be what a fresh instance saves anyway.
pub(super) fn state_roundtrip(session: &mut Session, settings: &CaseSettings) -> Concluded {
    let Some(initial) = saved(session)? else {
        return Ok(Outcome::skipped(
            "stateless plugin: save_state and restore_state are NULL (in ABI 1.1, save_instance and restore_instance)",
        ));
    };
    let initial = initial?;
    let driven = drive_until_changed(session, &initial, settings.seed)?;
    let changed_by = driven.changed_by;
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
        Some(call) => Outcome::pass(format!(
            "{bytes} bytes of state, changed by calling {call}, carried into a new instance unchanged"
        )),
        None => Outcome::warning(format!(
            "only the initial state could be carried ({bytes} bytes): no method changed what save_state returns ({}), so a restore_state that ignores its input would pass too",
            driven.tried
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

/// What driving the state found.
struct Driven {
    /// The method that changed the state, with the input that did.
    changed_by: Option<String>,
    /// What was tried, in words, for a verdict that found no change.
    tried: String,
}

/// Calls each registered method until the saved state differs from
/// `initial`: twice with empty input, then with the fuzz series of
/// `seed`, round by round over every method.
fn drive_until_changed(
    session: &mut Session,
    initial: &[u8],
    seed: u64,
) -> Result<Driven, Outcome> {
    let methods: Vec<String> = session
        .host()
        .map(|host| host.with_registry(|r| r.callable_method_names()))
        .unwrap_or_default();
    for method in &methods {
        for _ in 0..CALLS_PER_METHOD {
            if drive(session, method, &[], " on empty input", initial)? {
                return Ok(Driven {
                    changed_by: Some(format!("`{method}`")),
                    tried: String::new(),
                });
            }
        }
    }
    let rounds = varied_rounds(methods.len());
    for index in 1..=rounds {
        let input = fuzz::input(seed, index);
        let what = fuzz::describe(seed, index);
        let on = format!(
            " on fuzz input #{index} ({what}; seed {})",
            fuzz::seed_text(seed)
        );
        for method in &methods {
            if drive(session, method, &input, &on, initial)? {
                return Ok(Driven {
                    changed_by: Some(format!("`{method}`{on}")),
                    tried: String::new(),
                });
            }
        }
    }
    Ok(Driven {
        changed_by: None,
        tried: format!(
            "each of {} method(s) called twice with empty input, then with {rounds} input(s) of the fuzz series",
            methods.len()
        ),
    })
}

/// How many inputs of the fuzz series each of `methods` methods gets:
/// `VARIED_ROUNDS`, fewer when that many would pass `VARIED_CALLS` calls
/// in all, and never none (a plugin with more methods than calls still
/// has every method called once).
fn varied_rounds(methods: usize) -> u32 {
    (VARIED_CALLS / methods.max(1)).clamp(1, VARIED_ROUNDS as usize) as u32
}

/// Calls `method` once; whether the saved state now differs from
/// `initial`. An error answer is allowed (a `get` of a key never put);
/// a panic fails, naming the call.
fn drive(
    session: &mut Session,
    method: &str,
    input: &[u8],
    on: &str,
    initial: &[u8],
) -> Result<bool, Outcome> {
    let answer = session.call(method, input)?;
    if answer.is_some_and(|answer| Called::of(answer.status) == Called::Panicked) {
        let on = format!("{on} (called to change the state)");
        return Err(called::panicked(
            &format!("`{method}`"),
            &on,
            taken_logs(session),
        ));
    }
    match saved(session)?.expect("still stateful") {
        Ok(now) => Ok(now != initial),
        Err(failure) => Err(failure),
    }
}

/// The lines the plugin logged since they were last taken: a panic's
/// message is the last of them.
fn taken_logs(session: &Session) -> Vec<crate::report::LogLine> {
    session
        .host()
        .map(|host| host.take_logs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_rounds_share_the_call_budget_and_never_skip_a_method() {
        assert_eq!(varied_rounds(0), VARIED_ROUNDS);
        assert_eq!(varied_rounds(3), VARIED_ROUNDS);
        assert_eq!(varied_rounds(64), VARIED_ROUNDS);
        // 512 calls over 100 methods: five rounds, not eight (800 calls).
        assert_eq!(varied_rounds(100), 5);
        assert_eq!(varied_rounds(512), 1);
        // More methods than calls: each still gets one input.
        assert_eq!(varied_rounds(10_001), 1);
    }
}
