//! `fuzz-methods`: the case that goes looking for a crash.
//!
//! Every registered method is called with the same seeded series of inputs
//! (see [`crate::fuzz`]). An error status is an answer (a method may refuse
//! input); a broken output buffer is a fail, decided here. A crash or a
//! hang ends the worker, so the parent decides those; it knows which call
//! it was because each call is announced before it is made, and keeps the
//! calls before it, since init, for the replay.

use std::time::{Duration, Instant};

use super::{CaseSettings, Concluded, Outcome};
use crate::fuzz::{self, SeriesDigest};
use crate::report::{Fuzz, FuzzInput};
use crate::session::Session;

/// Methods fuzzed at most: a plugin may register thousands, and the case
/// has one timeout for all of them.
pub const MAX_FUZZED_METHODS: usize = 64;

/// Log lines of the plugin a fuzz case keeps: a plugin that logs each
/// refused input would fill the report with hundreds; the rest are
/// counted.
const KEPT_LOGS: usize = 8;

/// Told of each call before it is made: `(method, input index)`.
pub type Announce<'a> = dyn FnMut(&str, u32) + 'a;

pub fn fuzz_methods(
    session: &mut Session,
    settings: &CaseSettings,
    announce: &mut Announce<'_>,
) -> Concluded {
    // A fresh instance, so the calls announced from here on are every call
    // it gets since init: a finding's replay is exactly that sequence. (In
    // a whole suite `shutdown` has ended the earlier instance already.)
    if session.host().is_some() {
        session.shutdown();
    }
    session.init()?;
    let host = session.host().expect("initialised above");
    let (registered, methods) = host.with_registry(|registry| {
        let names: Vec<String> = registry
            .method_names()
            .into_iter()
            .take(MAX_FUZZED_METHODS)
            .collect();
        (registry.methods.len(), names)
    });
    if methods.is_empty() {
        return Ok(Outcome::skipped(
            "the plugin registers no method: there is nothing to call",
        ));
    }
    let seed = settings.seed;
    let mut fuzz = Fuzz {
        seed: fuzz::seed_text(seed),
        inputs: settings.fuzz_inputs,
        methods: Some(methods.len() as u32),
        digest: None,
        refused: 0,
        unkept_logs: 0,
        input: None,
    };
    let mut digest = SeriesDigest::default();
    let mut logs = Vec::new();
    let started = Instant::now();
    let budget = Duration::from_millis(settings.fuzz_budget_ms);
    let mut fed = 0;
    for index in 0..settings.fuzz_inputs {
        if started.elapsed() > budget {
            break;
        }
        fed = index + 1;
        let input = fuzz::input(seed, index);
        digest.add(&input);
        for method in &methods {
            announce(method, index);
            let answer = session.call_untrusted(method, &input)?;
            let logged = session
                .host()
                .map(|host| host.take_logs())
                .unwrap_or_default();
            for line in logged {
                match logs.len() < KEPT_LOGS {
                    true => logs.push(line),
                    false => fuzz.unkept_logs += 1,
                }
            }
            match answer {
                // Registered but not found: `lookup-methods` reports that.
                None => {}
                Some(Ok(answer)) => fuzz.refused += u64::from(answer.status != 0),
                Some(Err(broken)) => {
                    let what = fuzz::describe(seed, index);
                    let reason = format!(
                        "`{method}` handed back a broken output buffer for fuzz input #{index} ({what}; seed {}): {}; return {{NULL, 0}} or a buffer `free_buf` frees",
                        fuzz.seed, broken.problem
                    );
                    fuzz.input = Some(FuzzInput {
                        method: method.clone(),
                        index,
                        size: input.len() as u64,
                        what,
                        saved: None,
                        replay: None,
                        replay_calls: None,
                        left_out: None,
                    });
                    return Ok(Outcome::fail(reason).with_detail(|detail| {
                        detail.status = Some(broken.status);
                        detail.fuzz = Some(fuzz);
                        detail.logs = logs;
                    }));
                }
            }
        }
    }
    fuzz.digest = Some(digest.hex());
    fuzz.inputs = fed;
    let unfuzzed = match registered - methods.len() {
        0 => String::new(),
        more => format!(" ({more} more method(s) not fuzzed: at most {MAX_FUZZED_METHODS})"),
    };
    let refused = match fuzz.refused {
        0 => "every call returned 0".to_owned(),
        refused => format!("{refused} call(s) returned an error status, which is allowed"),
    };
    let found_nothing = format!(
        "{} method(s) × {fed} inputs (seed {}): none crashed, hung or handed back a broken buffer; {refused}{unfuzzed}",
        methods.len(),
        fuzz.seed
    );
    let outcome = if fed < settings.fuzz_inputs {
        Outcome::warning(format!(
            "{found_nothing}; stopped after {fed} of {} inputs, when the time budget ({}, half the case timeout) ran out: raise --timeout to feed them all",
            settings.fuzz_inputs,
            crate::text::human_ms(settings.fuzz_budget_ms)
        ))
    } else {
        Outcome::pass(found_nothing)
    };
    Ok(outcome.with_detail(|detail| {
        detail.fuzz = Some(fuzz);
        detail.logs = logs;
    }))
}
