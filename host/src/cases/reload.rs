//! The reload family: the reload engine driven the way a host drives it,
//! judged on what a plugin author needs from hot reload.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::hygiene::{growth_problems, growth_since};
use super::reload_build::OtherBuild;
use crate::os::ResourceUse;
use crate::outcome::{CaseSettings, Concluded, Outcome, ReloadRole};
use crate::plugin::called::Called;
use crate::plugin::session::Session;
use crate::reload::{OldVersion, ReloadEngine, ReloadFailure, ReloadOptions, Reloaded, Stage};
use crate::report::{Detail, Growth};

/// Reloads `reload-while-calling` makes while another thread calls.
const RELOADS_WHILE_CALLING: u32 = 20;

pub(super) fn same_version(session: &mut Session, settings: &CaseSettings) -> Concluded {
    let engine = open(session.path(), settings)?;
    let reloaded = reload(&engine)?;
    answers(&engine, "the reloaded copy")?;
    Ok(Outcome::pass(format!(
        "reloaded `{}` {} onto a fresh copy; {}",
        reloaded.to.name,
        reloaded.to.version,
        carried(&reloaded)
    ))
    .with_detail(|detail| describe(detail, &reloaded)))
}

pub(super) fn upgrade(session: &mut Session, settings: &CaseSettings) -> Concluded {
    let upgrade = match OtherBuild::of(settings, ReloadRole::Upgrade) {
        Ok(upgrade) => upgrade,
        Err(skipped) => return Ok(skipped),
    };
    upgrade.check_loadable_here()?;
    let build = Build::of(session.path(), settings)?;
    let engine = open(build.path(), settings)?;
    build.replace_with(upgrade.path)?;
    let reloaded =
        reload(&engine).map_err(|outcome| upgrade.in_its_terms(build.path(), outcome))?;
    if reloaded.to.version == reloaded.from.version {
        return Ok(Outcome::fail(format!(
            "the upgrade still says version {}: bump the plugin's version with each release",
            reloaded.to.version
        ))
        .with_detail(|detail| describe(detail, &reloaded)));
    }
    answers(&engine, "the upgrade")?;
    if reloaded.is_downgrade() {
        return Ok(Outcome::warning(format!(
            "`{}` {} → {} is a downgrade, not an upgrade: the older version was handed state a newer one saved; {}",
            reloaded.to.name,
            reloaded.from.version,
            reloaded.to.version,
            carried(&reloaded)
        ))
        .with_detail(|detail| describe(detail, &reloaded)));
    }
    Ok(Outcome::pass(format!(
        "upgraded `{}` {} → {}; {}; the new version answers",
        reloaded.to.name,
        reloaded.from.version,
        reloaded.to.version,
        carried(&reloaded)
    ))
    .with_detail(|detail| describe(detail, &reloaded)))
}

pub(super) fn broken_upgrade(session: &mut Session, settings: &CaseSettings) -> Concluded {
    let broken = match OtherBuild::of(settings, ReloadRole::Broken) {
        Ok(broken) => broken,
        Err(skipped) => return Ok(skipped),
    };
    rolled_back(session, settings, &broken, |_| None)
}

pub(super) fn abi_mismatch(session: &mut Session, settings: &CaseSettings) -> Concluded {
    let other_abi = match OtherBuild::of(settings, ReloadRole::AbiMismatch) {
        Ok(other_abi) => other_abi,
        Err(skipped) => return Ok(skipped),
    };
    rolled_back(session, settings, &other_abi, |failure| {
        (failure.stage != Stage::Handshake || failure.outcome.detail.plugin_abi.is_none()).then(
            || {
                format!(
                    "the upgrade was refused, but at {} rather than for its ABI version: {}",
                    failure.stage, failure.outcome.reason
                )
            },
        )
    })
}

pub(super) fn while_calling(session: &mut Session, settings: &CaseSettings) -> Concluded {
    let engine = open(session.path(), settings)?;
    if engine.call("selftest", &[]).map_err(failed_call)?.is_none() {
        return Ok(Outcome::skipped(
            "the plugin registers no `selftest` method to call during reloads",
        ));
    }
    let stop = AtomicBool::new(false);
    let calls = AtomicU64::new(0);
    let (reloads, failed_calls) = std::thread::scope(|scope| {
        let caller = scope.spawn(|| {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                calls.fetch_add(1, Ordering::Relaxed);
                match engine.call("selftest", &[]) {
                    Ok(Some(answer)) if answer.status == 0 => {}
                    Ok(Some(answer)) => failures.push(match Called::of(answer.status) {
                        Called::Panicked => {
                            crate::plugin::called::panic_reason("`selftest`", "", &[])
                        }
                        _ => format!("selftest returned {}", answer.status),
                    }),
                    Ok(None) => failures.push("`selftest` vanished".to_owned()),
                    Err(outcome) => failures.push(outcome.reason),
                }
            }
            failures
        });
        // The reloads start once the caller has begun its first call: a
        // caller not yet scheduled would otherwise see no reload at all,
        // and the case pass on no calls. From then on a call is running or
        // about to, and each reload waits for the one in progress.
        while calls.load(Ordering::Relaxed) == 0 && !caller.is_finished() {
            std::thread::yield_now();
        }
        let reloads: Vec<Result<Reloaded, ReloadFailure>> = (0..RELOADS_WHILE_CALLING)
            .map(|_| engine.reload())
            .collect();
        stop.store(true, Ordering::Relaxed);
        (
            reloads,
            caller
                .join()
                .unwrap_or_else(|_| vec!["the calling thread panicked".into()]),
        )
    });
    let calls = calls.into_inner();
    if let Some(Err(failure)) = reloads.iter().find(|reload| reload.is_err()) {
        return Ok(Outcome::fail(format!(
            "a reload failed while calls ran: {failure}"
        )));
    }
    if let Some(first) = failed_calls.first() {
        // How many calls ran depends on scheduling: the counts go in the
        // detail, the reason says whether any call succeeded.
        let which = match failed_calls.len() as u64 == calls {
            true => "every call",
            false => "some calls",
        };
        return Ok(Outcome::fail(format!(
            "{which} failed during {RELOADS_WHILE_CALLING} reloads; the first: {first}"
        ))
        .with_detail(|detail| {
            detail.reloads = Some(RELOADS_WHILE_CALLING);
            detail.calls = Some(calls);
        }));
    }
    Ok(Outcome::pass(format!(
        "{RELOADS_WHILE_CALLING} reloads while another thread called `selftest`: every call answered 0"
    ))
    .with_detail(|detail| {
        detail.reloads = Some(RELOADS_WHILE_CALLING);
        detail.calls = Some(calls);
    }))
}

pub(super) fn replace_while_loaded(session: &mut Session, settings: &CaseSettings) -> Concluded {
    let build = Build::of(session.path(), settings)?;
    let engine = open(build.path(), settings)?;
    let bytes = std::fs::read(session.path()).map_err(|error| {
        Outcome::fail(format!(
            "cannot read `{}`: {error}",
            session.path().display()
        ))
    })?;
    // What a build does on Windows, where writing a loaded DLL fails with
    // os error 32: overwrite the output in place…
    std::fs::write(build.path(), &bytes).map_err(|error| {
        Outcome::fail(format!(
            "the build output `{}` could not be overwritten while loaded: {error}",
            build.path().display()
        ))
    })?;
    reload(&engine)?;
    // …and what a linker does: delete it and write a new file.
    std::fs::remove_file(build.path())
        .and_then(|()| std::fs::write(build.path(), &bytes))
        .map_err(|error| {
            Outcome::fail(format!(
                "the build output `{}` could not be deleted and re-created while loaded: {error}",
                build.path().display()
            ))
        })?;
    let reloaded = reload(&engine)?;
    answers(&engine, "the reloaded copy")?;
    Ok(Outcome::pass(
        "the build output was overwritten, then deleted and re-created, while loaded; both reloads took",
    )
    .with_detail(|detail| describe(detail, &reloaded)))
}

pub(super) fn unload_verified(session: &mut Session, settings: &CaseSettings) -> Concluded {
    let engine = open(session.path(), settings)?;
    let reloaded = reload(&engine)?;
    let outcome = match &reloaded.old {
        OldVersion::Unloaded => Outcome::pass("after the reload the old version left the process"),
        OldVersion::Resident { hint } => Outcome::warning(format!(
            "after the reload the old version stays resident: {hint}; every reload adds a copy"
        ))
        .with_detail(|detail| detail.resident_hint = Some(hint.clone())),
    };
    Ok(outcome.with_detail(|detail| describe(detail, &reloaded)))
}

/// Reloads after which, when every one so far left the old version
/// resident, `reload-cycles` has its answer: the rest could only add
/// copies. A Go plugin's hundred reloads start a hundred Go runtimes.
const RESIDENT_LOOK: u32 = 5;

pub(super) fn cycles(session: &mut Session, settings: &CaseSettings) -> Concluded {
    let engine = open(session.path(), settings)?;
    // A warm-up reload settles what a first reload allocates once.
    let mut last = reload(&engine)?;
    let mut every_one_resident = matches!(last.old, OldVersion::Resident { .. });
    let before = ResourceUse::now();
    let planned = settings.reload_cycles;
    let mut done = 0;
    while done < planned {
        last = reload(&engine)?;
        done += 1;
        every_one_resident &= matches!(last.old, OldVersion::Resident { .. });
        if every_one_resident && done == RESIDENT_LOOK {
            break;
        }
    }
    let (growth, measured_problems) = growth_since(before, done, settings);
    if done < planned {
        // Each reload left a copy: the growth is per copy, so the planned
        // run's is this one's scaled up.
        let scale = |measured: i64| measured * i64::from(planned) / i64::from(done.max(1));
        let projected = Growth {
            cycles: planned,
            threads: scale(growth.threads),
            handles: scale(growth.handles),
            mapped_bytes: scale(growth.mapped_bytes),
        };
        let problems = growth_problems(&projected);
        let OldVersion::Resident { hint } = &last.old else {
            unreachable!("every reload left a resident copy");
        };
        let outcome = match problems.is_empty() {
            true => Outcome::pass(format!(
                "{planned} reloads stay within the bounds at the rate of the first {done}, each of which left a resident copy ({hint})"
            )),
            false => Outcome::warning(format!(
                "over {planned} reloads {}: every reload leaves a resident copy ({hint}); the first {done} each left one, so the case stopped there",
                problems.join(", ")
            )),
        };
        return Ok(outcome.with_detail(|detail| detail.growth = Some(growth)));
    }
    let outcome = match (&last.old, measured_problems.is_empty()) {
        (_, true) => Outcome::pass(format!(
            "{planned} reloads left threads, handles and mapped memory within bounds"
        )),
        // Growth a resident library explains is that residency, reported
        // as such (reload-unload-verified warns of it); growth from a
        // library that does unload is a leak.
        (OldVersion::Resident { hint }, false) => Outcome::warning(format!(
            "over {planned} reloads {}: every reload leaves a resident copy ({hint})",
            measured_problems.join(", ")
        )),
        (OldVersion::Unloaded, false) => Outcome::fail(format!(
            "over {planned} reloads {}: old versions are not released",
            measured_problems.join(", ")
        )),
    };
    Ok(outcome.with_detail(|detail| detail.growth = Some(growth)))
}

/// A copy of the plugin standing for the build output a developer
/// rebuilds: the engine loads shadows of it, the case rewrites it.
struct Build {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Build {
    fn of(plugin: &Path, settings: &CaseSettings) -> Result<Build, Outcome> {
        let dir = scratch_dir(settings)?;
        let path = dir.path().join(plugin.file_name().unwrap_or_default());
        std::fs::copy(plugin, &path).map_err(|error| {
            Outcome::fail(format!(
                "cannot copy `{}` to a build directory: {error}",
                plugin.display()
            ))
        })?;
        Ok(Build { _dir: dir, path })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Puts another build in place, as a rebuild would.
    fn replace_with(&self, other: &Path) -> Result<(), Outcome> {
        std::fs::copy(other, &self.path)
            .map(|_| ())
            .map_err(|error| {
                Outcome::fail(format!(
                    "cannot put `{}` in place of the build: {error}",
                    other.display()
                ))
            })
    }
}

fn scratch_dir(settings: &CaseSettings) -> Result<tempfile::TempDir, Outcome> {
    let builder = {
        let mut builder = tempfile::Builder::new();
        builder.prefix("plugcheck-build-");
        builder
    };
    match &settings.scratch {
        Some(scratch) => builder.tempdir_in(scratch),
        None => builder.tempdir(),
    }
    .map_err(|error| Outcome::fail(format!("cannot create a scratch directory: {error}")))
}

/// Opens `plugin` in a reload engine whose shadows live in the run's
/// scratch directory.
fn open(plugin: &Path, settings: &CaseSettings) -> Result<ReloadEngine, Outcome> {
    let options = ReloadOptions {
        scratch: settings.scratch.clone(),
        ..ReloadOptions::default()
    };
    ReloadEngine::open(plugin, options).map_err(|failure| Outcome {
        reason: failure.to_string(),
        ..*failure.outcome
    })
}

fn reload(engine: &ReloadEngine) -> Result<Reloaded, Outcome> {
    engine
        .reload()
        .map_err(|failure| rollback_outcome(&failure))
}

fn rollback_outcome(failure: &ReloadFailure) -> Outcome {
    Outcome {
        reason: failure.to_string(),
        detail: Box::new(Detail {
            failed_stage: Some(failure.stage.to_string()),
            ..(*failure.outcome.detail).clone()
        }),
        ..(*failure.outcome).clone()
    }
}

/// Reloads to `target`, which must be refused; then the old version must
/// still answer with the state it had. `wrong_refusal` may reject a refusal
/// for the wrong reason. A target this platform cannot load at all fails:
/// its refusal is no rollback of a broken build.
fn rolled_back(
    session: &mut Session,
    settings: &CaseSettings,
    target: &OtherBuild<'_>,
    wrong_refusal: impl Fn(&ReloadFailure) -> Option<String>,
) -> Concluded {
    target.check_loadable_here()?;
    let build = Build::of(session.path(), settings)?;
    let engine = open(build.path(), settings)?;
    let serving = engine.info();
    let state_before = state_of(&engine, "before the refused reload")?;
    build.replace_with(target.path)?;
    let failure = match engine.reload() {
        Ok(reloaded) => {
            return Ok(Outcome::fail(format!(
                "`{}` {} was switched to, but it should have been refused",
                reloaded.to.name, reloaded.to.version
            ))
            .with_detail(|detail| describe(detail, &reloaded)));
        }
        Err(failure) => failure,
    };
    if let Some(problem) = wrong_refusal(&failure) {
        return Ok(target.in_its_terms(build.path(), Outcome::fail(problem)));
    }
    if engine.info() != serving {
        return Ok(Outcome::fail(
            "after the refused reload another version serves",
        ));
    }
    answers(&engine, "the kept version")?;
    let state_after = state_of(&engine, "after the refused reload")?;
    if state_after != state_before {
        return Ok(Outcome::fail(
            "the kept version's state changed across the refused reload",
        ));
    }
    let state = match &state_before {
        Some(bytes) => format!(" with its {} bytes of state", bytes.len()),
        None => String::new(),
    };
    let mut outcome = rollback_outcome(&failure);
    outcome.verdict = crate::report::verdict::Verdict::Pass;
    outcome.reason = format!(
        "refused at {}: {}; `{}` {} kept serving{state}",
        failure.stage, failure.outcome.reason, serving.name, serving.version
    );
    Ok(target.in_its_terms(build.path(), outcome))
}

/// `selftest` of the live version must answer 0 (when it has one).
fn answers(engine: &ReloadEngine, what: &str) -> Result<(), Outcome> {
    match engine.call("selftest", &[]).map_err(failed_call)? {
        Some(answer) if Called::of(answer.status) == Called::Panicked => {
            Err(Outcome::fail(format!(
                "{what} fails its selftest: {}",
                crate::plugin::called::panic_reason("`selftest`", "", &[])
            )))
        }
        Some(answer) if answer.status != 0 => Err(Outcome::fail(format!(
            "{what} fails its selftest: it returned {}",
            crate::plugin::session::status_text(answer.status)
        ))),
        _ => Ok(()),
    }
}

/// What the live version's `save_state` returns (`None`: stateless); a
/// panic in it fails, rather than counting as its bytes.
fn state_of(engine: &ReloadEngine, when: &str) -> Result<Option<Vec<u8>>, Outcome> {
    match engine.save_state()? {
        Some(answer) if Called::of(answer.status) == Called::Panicked => {
            Err(Outcome::fail(crate::plugin::called::panic_reason(
                "`save_state` of the live version",
                &format!(" {when}"),
                &[],
            )))
        }
        answer => Ok(answer.map(|answer| answer.output)),
    }
}

fn failed_call(outcome: Outcome) -> Outcome {
    Outcome {
        reason: format!("calling the live version failed: {}", outcome.reason),
        ..outcome
    }
}

fn carried(reloaded: &Reloaded) -> String {
    match reloaded.state_bytes {
        Some(bytes) => format!("{bytes} bytes of state carried"),
        None => "stateless: no state to carry".to_owned(),
    }
}

fn describe(detail: &mut Detail, reloaded: &Reloaded) {
    detail.reloaded_from = Some(reloaded.from.version.clone());
    detail.reloaded_to = Some(reloaded.to.version.clone());
    detail.state_bytes = reloaded.state_bytes.map(|bytes| bytes as u64);
    detail.reload_ms = Some(reloaded.took.as_secs_f64() * 1e3);
}
