//! `fuzz-methods`: the case that goes looking for a crash.
//!
//! Every registered method is called with the same seeded series of inputs
//! (see [`crate::fuzz`]), round-robin: input `i` to every method before
//! input `i + 1`, so when time runs short every method has had the first
//! inputs. A plugin with many methods shares a bound of calls among them
//! ([`inputs_per_method`]); the reason says how many inputs each got.
//!
//! An error status is an answer (a method may refuse input); a panic
//! status is a defect, and so is a broken output buffer, both decided
//! here. A crash or a hang ends the worker, so the parent decides those; it
//! knows which call it was because each call is announced before it is
//! made, and keeps the calls before it, since init, for the replay.

use std::time::{Duration, Instant};

use crate::fuzz::{self, SeriesDigest};
use crate::outcome::{CaseSettings, Concluded, Outcome};
use crate::plugin::called::{self, Called};
use crate::plugin::session::Session;
use crate::report::{Fuzz, FuzzInput};

/// Methods that get the whole series: beyond them the calls of
/// `SHARED_BY` methods × the series are shared among all (at least one
/// input each): a plugin may register thousands of methods, and the case
/// has one timeout for all. The bound is what fuzzing 64 methods always
/// cost, so sharing it makes no plugin slower to judge (each call is a
/// message to the parent, which dominates a cheap method's cost). The Go
/// worker keeps the same bound (`sharedBy` in its fuzz.go).
pub(super) const SHARED_BY: u64 = 64;

/// Log lines of the plugin a fuzz case keeps: a plugin that logs each
/// refused input would fill the report with hundreds; the rest are
/// counted.
const KEPT_LOGS: usize = 8;

/// Method names a reason lists at most (the rest are counted).
const LISTED_METHODS: usize = 5;

/// Told of each call before it is made: `(method, input index)`.
pub(super) type Announce<'a> = dyn FnMut(&str, u32) + 'a;

/// Inputs each of `methods` methods gets out of a series of `inputs`: all
/// of them for up to [`SHARED_BY`] methods, else the calls of that many
/// shared evenly, but at least the first input (nor more than the series
/// has).
pub(super) fn inputs_per_method(methods: usize, inputs: u32) -> u32 {
    let shared = SHARED_BY * u64::from(inputs) / (methods.max(1) as u64);
    let shared = u32::try_from(shared).unwrap_or(u32::MAX);
    shared.max(1).min(inputs)
}

pub(super) fn fuzz_methods(
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
    let methods = host.with_registry(|registry| registry.callable_method_names());
    if methods.is_empty() {
        return Ok(Outcome::skipped(
            "the plugin registers no method: there is nothing to call",
        ));
    }
    let seed = settings.seed;
    let per_method = inputs_per_method(methods.len(), settings.fuzz_inputs);
    let mut fuzz = Fuzz {
        seed: fuzz::seed_text(seed),
        inputs: per_method,
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
    // Inputs every method got, and how many methods got one more when the
    // budget ran out in the middle of a round.
    let mut rounds = 0;
    let mut cut_at = None;
    'rounds: for index in 0..per_method {
        let input = fuzz::input(seed, index);
        for (at, method) in methods.iter().enumerate() {
            if started.elapsed() > budget {
                cut_at = Some(at);
                break 'rounds;
            }
            announce(method, index);
            let answer = session.call_untrusted(method, &input)?;
            let logged = session
                .host()
                .map(|host| host.take_logs())
                .unwrap_or_default();
            let found = |what: String| FuzzInput {
                method: method.clone(),
                index,
                size: input.len() as u64,
                what,
                saved: None,
                replay: None,
                replay_calls: None,
                left_out: None,
            };
            match answer {
                // Registered but not found: `lookup-methods` reports that.
                None => {}
                Some(Ok(answer)) => match Called::of(answer.status) {
                    Called::Answered => {}
                    Called::Refused => fuzz.refused += 1,
                    Called::Panicked => {
                        let what = fuzz::describe(seed, index);
                        let on = format!(" on fuzz input #{index} ({what}; seed {})", fuzz.seed);
                        fuzz.input = Some(found(what));
                        let mut outcome = called::panicked(&format!("`{method}`"), &on, logged);
                        keep(&mut outcome.detail.logs, logs);
                        return Ok(outcome.with_detail(|detail| detail.fuzz = Some(fuzz)));
                    }
                },
                Some(Err(broken)) => {
                    let what = fuzz::describe(seed, index);
                    let reason = format!(
                        "`{method}` handed back a broken output buffer for fuzz input #{index} ({what}; seed {}): {}; return {{NULL, 0}} or a buffer `free_buf` frees",
                        fuzz.seed, broken.problem
                    );
                    fuzz.input = Some(found(what));
                    keep(&mut logs, logged);
                    return Ok(Outcome::fail(reason).with_detail(|detail| {
                        detail.status = Some(broken.status);
                        detail.fuzz = Some(fuzz);
                        detail.logs = logs;
                    }));
                }
            }
            for line in logged {
                keep_line(&mut logs, &mut fuzz.unkept_logs, line);
            }
        }
        digest.add(&input);
        rounds = index + 1;
    }
    fuzz.digest = Some(digest.hex());
    fuzz.inputs = rounds;
    let outcome = judge(&methods, rounds, cut_at, per_method, settings, &fuzz);
    Ok(outcome.with_detail(|detail| {
        detail.fuzz = Some(fuzz);
        detail.logs = logs;
    }))
}

/// Keeps `line` if fewer than `KEPT_LOGS` are kept, else counts it in
/// `unkept`: a chatty plugin cannot grow the report.
fn keep_line(
    kept: &mut Vec<crate::report::LogLine>,
    unkept: &mut u64,
    line: crate::report::LogLine,
) {
    if kept.len() < KEPT_LOGS {
        kept.push(line);
    } else {
        *unkept += 1;
    }
}

/// Keeps the lines of the call that failed first (they hold its words),
/// then as many of the earlier ones as still fit.
fn keep(kept: &mut Vec<crate::report::LogLine>, earlier: Vec<crate::report::LogLine>) {
    let room = KEPT_LOGS.saturating_sub(kept.len());
    let mut earlier: Vec<_> = earlier.into_iter().take(room).collect();
    earlier.append(kept);
    *kept = earlier;
}

/// The verdict of a series that found nothing: a pass when every method
/// got every input it was given out; a warning when the time budget ran
/// out after every method was called at least once; a failure naming the
/// methods never called when it ran out before: a method never called was
/// not verified, and a gate must not pass on it.
fn judge(
    methods: &[String],
    rounds: u32,
    cut_at: Option<usize>,
    per_method: u32,
    settings: &CaseSettings,
    fuzz: &Fuzz,
) -> Outcome {
    let count = methods.len();
    let each = match per_method < settings.fuzz_inputs {
        true => format!(
            "each of {count} method(s) got the first {rounds} of {} input(s) (more than {SHARED_BY} methods share the calls of {SHARED_BY})",
            settings.fuzz_inputs
        ),
        false => format!("each of {count} method(s) got {rounds} input(s)"),
    };
    let got = match cut_at {
        Some(at) if at > 0 => format!(
            "the first {at} method(s) in name order got {} input(s), the other {} got {rounds}",
            rounds + 1,
            count - at
        ),
        _ => each,
    };
    let refused = match fuzz.refused {
        0 => "every call returned 0".to_owned(),
        refused => format!("{refused} call(s) returned an error status, which is allowed"),
    };
    let found_nothing = format!(
        "{got} (seed {}): none crashed, hung, panicked or handed back a broken buffer; {refused}",
        fuzz.seed
    );
    let Some(at) = cut_at else {
        return Outcome::pass(found_nothing);
    };
    let budget = crate::text::human_ms(settings.fuzz_budget_ms);
    if rounds == 0 {
        let never = &methods[at..];
        let listed: Vec<String> = never
            .iter()
            .take(LISTED_METHODS)
            .map(|name| format!("`{name}`"))
            .collect();
        let more = match never.len().saturating_sub(LISTED_METHODS) {
            0 => String::new(),
            more => format!(" and {more} more"),
        };
        return Outcome::fail(format!(
            "{} of {count} method(s) were never called: the time budget ({budget}, half the case timeout) ran out first; {found_nothing}; not called: {}{more}; raise --timeout to call them all",
            never.len(),
            listed.join(", ")
        ));
    }
    Outcome::warning(format!(
        "{found_nothing}; stopped after {rounds} of {per_method} inputs per method, when the time budget ({budget}, half the case timeout) ran out: raise --timeout to feed them all"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found_nothing() -> Fuzz {
        Fuzz {
            seed: "0x1".into(),
            inputs: 0,
            methods: None,
            digest: None,
            refused: 0,
            unkept_logs: 0,
            input: None,
        }
    }

    fn names(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("m{i:02}")).collect()
    }

    #[test]
    fn a_failing_call_keeps_its_own_lines_and_the_earlier_ones_that_fit() {
        let line = |n: i32| crate::report::LogLine {
            level: n,
            message: format!("line {n}"),
            trace_id: None,
            untagged_in_call: false,
        };
        let mut kept = vec![line(100)];
        keep(&mut kept, (0..20).map(line).collect());
        assert_eq!(kept.len(), KEPT_LOGS);
        assert_eq!(kept[0], line(0));
        assert_eq!(
            kept[KEPT_LOGS - 1],
            line(100),
            "the failing call's own line stays"
        );
    }

    #[test]
    fn a_series_shared_out_or_cut_at_a_round_says_so() {
        let settings = CaseSettings::default();
        let shared = judge(&names(3), 4, None, 4, &settings, &found_nothing());
        assert!(
            shared.reason.contains("got the first 4 of"),
            "{}",
            shared.reason
        );
        let whole = judge(
            &names(3),
            4,
            None,
            settings.fuzz_inputs,
            &settings,
            &found_nothing(),
        );
        assert!(
            whole.reason.contains("each of 3 method(s) got 4 input(s)"),
            "{}",
            whole.reason
        );
        // Cut at a round's first method: every method got the same count.
        let at_round = judge(
            &names(3),
            2,
            Some(0),
            settings.fuzz_inputs,
            &settings,
            &found_nothing(),
        );
        assert!(
            at_round
                .reason
                .contains("each of 3 method(s) got 2 input(s)"),
            "{}",
            at_round.reason
        );
        let mid_round = judge(
            &names(3),
            2,
            Some(1),
            settings.fuzz_inputs,
            &settings,
            &found_nothing(),
        );
        assert!(
            mid_round
                .reason
                .contains("the first 1 method(s) in name order got 3 input(s), the other 2 got 2"),
            "{}",
            mid_round.reason
        );
    }

    #[test]
    fn a_series_keeps_the_first_log_lines_and_counts_the_rest() {
        let line = |n: i32| crate::report::LogLine {
            level: n,
            message: format!("line {n}"),
            trace_id: None,
            untagged_in_call: false,
        };
        let (mut kept, mut unkept) = (Vec::new(), 0);
        for n in 0..(KEPT_LOGS as i32 + 3) {
            keep_line(&mut kept, &mut unkept, line(n));
        }
        assert_eq!(kept.len(), KEPT_LOGS);
        assert_eq!(kept[0], line(0));
        assert_eq!(unkept, 3);
    }

    /// Out of time before every method was called: a failure (a method
    /// never called was not verified), and the methods left out are named.
    #[test]
    fn methods_never_called_fail_the_case_by_name() {
        let settings = CaseSettings::default();
        let outcome = judge(&names(9), 0, Some(2), 256, &settings, &found_nothing());
        assert_eq!(outcome.verdict, crate::report::verdict::Verdict::Fail);
        assert!(
            outcome
                .reason
                .starts_with("7 of 9 method(s) were never called")
                && outcome
                    .reason
                    .contains("not called: `m02`, `m03`, `m04`, `m05`, `m06` and 2 more"),
            "{}",
            outcome.reason
        );
    }

    #[test]
    fn a_round_cut_short_says_who_got_one_more() {
        let settings = CaseSettings::default();
        let outcome = judge(&names(5), 3, Some(2), 256, &settings, &found_nothing());
        assert_eq!(outcome.verdict, crate::report::verdict::Verdict::Warning);
        assert!(
            outcome
                .reason
                .contains("the first 2 method(s) in name order got 4 input(s), the other 3 got 3")
                && outcome
                    .reason
                    .contains("stopped after 3 of 256 inputs per method"),
            "{}",
            outcome.reason
        );
        let all = judge(&names(5), 256, None, 256, &settings, &found_nothing());
        assert_eq!(
            all.verdict,
            crate::report::verdict::Verdict::Pass,
            "{}",
            all.reason
        );
        assert!(
            all.reason
                .starts_with("each of 5 method(s) got 256 input(s)"),
            "{}",
            all.reason
        );
    }

    #[test]
    fn few_methods_get_the_whole_series() {
        assert_eq!(inputs_per_method(1, 256), 256);
        assert_eq!(inputs_per_method(64, 256), 256);
        assert_eq!(inputs_per_method(64, 10), 10);
    }

    #[test]
    fn many_methods_share_the_bound_but_all_get_an_input() {
        assert_eq!(inputs_per_method(65, 256), 252);
        assert_eq!(inputs_per_method(1000, 256), 16);
        assert_eq!(inputs_per_method(10_001, 256), 1);
        assert_eq!(inputs_per_method(100_000, 256), 1);
        assert_eq!(inputs_per_method(10_001, 3), 1);
        assert!(65 * u64::from(inputs_per_method(65, 256)) <= SHARED_BY * 256);
        assert_eq!(inputs_per_method(3, 100_000), 100_000);
    }
}
