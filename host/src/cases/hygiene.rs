//! `unload`, `load-time`, `repeat-load`: what a long-running host notices.

use std::time::{Duration, Instant};

use crate::os::ResourceUse;
use crate::outcome::{CaseSettings, Concluded, Outcome};
use crate::plugin::session::Session;
use crate::report::Growth;

/// Mapped memory `repeat-load` tolerates growing by in total (allocator
/// arenas settle in steps; a real leak grows with every cycle).
const MAPPED_GROWTH_BOUND: u64 = 8 << 20;

pub(super) fn unload(session: &mut Session) -> Concluded {
    // Unload after a real lifecycle: a plugin registers thread-local
    // destructors and the like in init, which is what keeps libraries
    // resident.
    if session.first_init.is_none() {
        session.init()?;
    }
    let hint = session.resident_hint();
    let Some(path) = session.close()? else {
        return Ok(Outcome::fail("the library was not loaded"));
    };
    if Session::is_resident(&path) {
        let hint = hint.unwrap_or_default();
        return Ok(Outcome::warning(format!(
            "the library stays resident after shutdown and close: {hint}"
        ))
        .with_detail(|detail| detail.resident_hint = Some(hint)));
    }
    Ok(Outcome::pass(
        "the library left the process after shutdown and close",
    ))
}

pub(super) fn load_time(session: &mut Session, settings: &CaseSettings) -> Concluded {
    // The first load and init of this process were timed when they
    // happened; only a worker that has not initialised yet runs them now.
    if session.first_init.is_none() {
        session.init()?;
    }
    let load = session.first_load.unwrap_or_default();
    let init = session.first_init.unwrap_or_default();
    let bound = Duration::from_millis(settings.load_time_bound_ms);
    let bound_text = crate::text::human_ms(settings.load_time_bound_ms);
    let outcome = if load + init > bound {
        Outcome::warning(format!(
            "first load and init took longer than the {bound_text} bound: move slow work out of init, or raise --load-time-bound"
        ))
    } else {
        Outcome::pass(format!(
            "first load and init finished within the {bound_text} bound"
        ))
    };
    Ok(outcome.with_detail(|detail| {
        detail.load_ms = Some(load.as_secs_f64() * 1e3);
        detail.init_ms = Some(init.as_secs_f64() * 1e3);
        detail.bound_ms = Some(settings.load_time_bound_ms);
    }))
}

pub(super) fn repeat_load(session: &mut Session, settings: &CaseSettings) -> Concluded {
    let cycles = settings.repeat_cycles;
    session.close()?;
    // One warm-up cycle: the first load settles loader caches, TLS blocks
    // and allocator arenas, which are not leaks.
    cycle(session)?;
    let before = ResourceUse::now();
    for _ in 0..cycles {
        cycle(session)?;
    }
    let (growth, problems) = growth_since(before, cycles, settings);
    let outcome = if problems.is_empty() {
        Outcome::pass(format!(
            "{cycles} load/init/shutdown/close cycles left threads, handles and mapped memory within bounds"
        ))
    } else {
        Outcome::fail(format!(
            "over {cycles} load/init/shutdown/close cycles {}: something is not released in shutdown or at unload",
            problems.join(", ")
        ))
    };
    Ok(outcome.with_detail(|detail| detail.growth = Some(growth)))
}

/// Resource growth since `before` (once exiting threads are gone), and
/// what of it breaks the bounds.
pub(super) fn growth_since(
    before: ResourceUse,
    cycles: u32,
    settings: &CaseSettings,
) -> (Growth, Vec<String>) {
    let after = settle(before, Duration::from_millis(settings.grace_ms));
    let growth = Growth {
        cycles,
        threads: after.threads as i64 - before.threads as i64,
        handles: after.handles as i64 - before.handles as i64,
        mapped_bytes: after.mapped_bytes as i64 - before.mapped_bytes as i64,
    };
    let problems = growth_problems(&growth);
    (growth, problems)
}

/// What in `growth` is over its bound, in words.
pub(super) fn growth_problems(growth: &Growth) -> Vec<String> {
    let mut problems = Vec::new();
    // The counts are in the detail: for a library that starts threads of
    // its own runtime, they vary from run to run.
    if growth.threads > 0 {
        problems.push("threads grew".to_owned());
    }
    if growth.handles > 0 {
        problems.push("open handles grew".to_owned());
    }
    if growth.mapped_bytes > MAPPED_GROWTH_BOUND as i64 {
        // The exact growth is in the detail: it varies with the build.
        problems.push(format!(
            "mapped memory grew beyond the {} MiB bound",
            MAPPED_GROWTH_BOUND >> 20
        ));
    }
    problems
}

fn cycle(session: &mut Session) -> Result<(), Outcome> {
    session.init()?;
    session.close()?;
    Ok(())
}

/// Resource use once exiting threads are gone (they leave asynchronously),
/// waiting at most `grace`.
fn settle(before: ResourceUse, grace: Duration) -> ResourceUse {
    let deadline = Instant::now() + grace;
    loop {
        let now = ResourceUse::now();
        if now.threads <= before.threads || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
