//! `init`, `lookup-methods`, `selftest`, `shutdown`.

use std::time::{Duration, Instant};

use crate::os;
use crate::outcome::{CaseSettings, Concluded, Outcome};
use crate::plugin::called::Called;
use crate::plugin::session::{Session, last_log_hint, status_text};

/// A name no plugin registers, to check lookups fail cleanly.
const UNKNOWN_METHOD: &str = "plugcheck-no-such-method";

/// Method names a report lists at most (a plugin may register thousands).
use crate::worker::limits::METHODS_LISTED as LISTED_METHODS;

pub(super) fn init(session: &mut Session) -> Concluded {
    session.init()?;
    let host = session.host().expect("initialised above");
    let (count, methods, rejected, refused) = host.with_registry(|registry| {
        (
            registry.methods.len(),
            // The report lists the first names; the count says how many.
            registry
                .method_names()
                .into_iter()
                .take(LISTED_METHODS)
                .collect::<Vec<_>>(),
            registry.rejected.clone(),
            registry.rejected.len() + registry.dropped_rejections,
        )
    });
    if refused > 0 {
        return Ok(Outcome::fail(format!(
            "init returned 0 although the host refused {refused} registration(s): {}{}; check register_method's return value",
            rejected.join("; "),
            if refused > rejected.len() { "; …" } else { "" }
        ))
        .with_detail(|detail| {
            detail.methods = methods;
            detail.rejected_registrations = rejected;
        }));
    }
    Ok(
        Outcome::pass(format!("init returned 0 and registered {count} method(s)"))
            .with_detail(|detail| detail.methods = methods),
    )
}

pub(super) fn lookup_methods(session: &mut Session) -> Concluded {
    session.init()?;
    let host = session.host().expect("initialised above");
    let methods: Vec<String> = host.with_registry(|r| r.method_names());
    let missing: Vec<&String> = methods
        .iter()
        .filter(|name| host.lookup(name).is_none())
        .collect();
    if !missing.is_empty() {
        return Ok(Outcome::fail(format!(
            "registered method(s) not found by name: {missing:?}"
        )));
    }
    if session.call(UNKNOWN_METHOD, &[])?.is_some() {
        return Ok(Outcome::fail(format!(
            "looking up `{UNKNOWN_METHOD}` found a method: lookups must match names exactly"
        )));
    }
    if methods.is_empty() {
        return Ok(Outcome::warning(
            "init registered no methods: the host has nothing to call",
        ));
    }
    let found = methods.len();
    Ok(Outcome::pass(format!(
        "{found} method(s) found by name; an unknown name is reported as not found"
    ))
    .with_detail(|detail| {
        detail.methods = methods.into_iter().take(LISTED_METHODS).collect();
    }))
}

pub(super) fn selftest(session: &mut Session) -> Concluded {
    let Some(answer) = session.call("selftest", &[])? else {
        return Ok(Outcome::skipped(
            "the plugin registers no `selftest` method",
        ));
    };
    if answer.status == 0 {
        return Ok(Outcome::pass("selftest returned 0"));
    }
    let logs = session
        .host()
        .map(|host| host.take_logs())
        .unwrap_or_default();
    if Called::of(answer.status) == Called::Panicked {
        return Ok(crate::plugin::called::panicked("`selftest`", "", logs));
    }
    Ok(Outcome::fail(format!(
        "selftest returned {}{}",
        status_text(answer.status),
        last_log_hint(&logs)
    ))
    .with_detail(|detail| {
        detail.status = Some(answer.status);
        detail.status_name = plugcheck_abi::status::name(answer.status).map(str::to_owned);
        detail.logs = logs;
    }))
}

pub(super) fn shutdown(session: &mut Session, settings: &CaseSettings) -> Concluded {
    session.init()?;
    session.shutdown();
    let baseline_threads = session.baseline_threads;
    let deadline = Instant::now() + Duration::from_millis(settings.grace_ms);
    let (threads, processes) = loop {
        let threads = os::thread_count();
        let processes = os::running_child_processes();
        if (threads <= baseline_threads && processes.is_empty()) || Instant::now() >= deadline {
            break (threads, processes);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let leaked_threads = threads.saturating_sub(baseline_threads);
    let mut problems = Vec::new();
    let mut remedies = Vec::new();
    if leaked_threads > 0 {
        // Earlier cases of this worker ran init/shutdown too (state and
        // reload cases start new instances): say so, or one thread per
        // init reads as two.
        let inits = session.inits() as u64;
        let cycles = if inits > 1 {
            format!(
                ", from the {inits} init/shutdown cycles this worker ran ({} per init)",
                human_ratio(leaked_threads, inits)
            )
        } else {
            String::new()
        };
        problems.push(format!(
            "{leaked_threads} thread(s) the plugin started still run{cycles}"
        ));
        remedies.push("stop and join threads");
    }
    if !processes.is_empty() {
        let names: Vec<String> = processes.iter().map(|p| format!("`{}`", p.name)).collect();
        problems.push(format!(
            "{} child process(es) still run ({})",
            processes.len(),
            names.join(", ")
        ));
        remedies.push("kill or wait for child processes");
    }
    if problems.is_empty() {
        return Ok(Outcome::pass(
            "after shutdown no plugin thread or child process is left",
        ));
    }
    // A Go runtime starts threads no plugin code can stop: say so, and let
    // the unload case show the library staying resident, rather than
    // failing the plugin for its language.
    let go_runtime = session
        .loaded()
        .is_some_and(|loaded| loaded.sniffed().go_runtime);
    if go_runtime && processes.is_empty() {
        return Ok(Outcome::warning(
            "threads of the Go runtime keep running after shutdown: a Go runtime cannot be stopped, so the library can never be unloaded",
        )
        .with_detail(|detail| detail.leaked_threads = Some(leaked_threads)));
    }
    Ok(Outcome::fail(format!(
        "{} after shutdown: {} in shutdown",
        problems.join(" and "),
        remedies.join(" and ")
    ))
    .with_detail(|detail| {
        detail.leaked_threads = (leaked_threads > 0).then_some(leaked_threads);
        detail.leaked_processes = processes;
    }))
}

/// `a / b` as a person says it: `1`, `1.5`.
fn human_ratio(a: u64, b: u64) -> String {
    if a.is_multiple_of(b) {
        (a / b).to_string()
    } else {
        format!("{:.1}", a as f64 / b as f64)
    }
}
