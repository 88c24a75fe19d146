//! `cargo xtask ci`: exactly what CI runs, so a developer can run it too.
//! It first installs what the checks need (`needs.rs`: apt packages as root
//! or through passwordless sudo, Python checkers with pip), or stops at once
//! with the one command to run. Clippy lints each workspace crate as it is
//! built (`clippy.rs`). Snapshots are compared, never written. Last, the
//! workflows are rehearsed (`rehearse.rs`).

use xshell::{Shell, cmd};

use crate::needs;
use crate::platform::Selection;
use crate::{clippy, conformance, prebuild, rehearse, test, workflows};

pub fn run(sh: &Shell) -> anyhow::Result<()> {
    // For every build of the run (cargo's children read them, whoever
    // starts cargo); the Windows leg's other rustc goes without them.
    let lints = clippy::environment()?;
    for (name, value) in &lints {
        // SAFETY: no other thread runs yet (the background build, started
        // below, is a process that inherits them).
        unsafe { std::env::set_var(name, value) };
    }
    let _ci = sh.push_env("CI", "true");
    let _insta = sh.push_env("INSTA_UPDATE", "no");
    step("provision", || needs::provision(sh))?;
    // Overlaps the steps below; they build the same and wait for it. A
    // failing step stops it, so the failure is said at once.
    let mut windows = prebuild::windows_leg();
    let result = steps(sh, &lints);
    if result.is_err() {
        windows.cancel();
    }
    result?;
    eprintln!("\nci: all steps passed");
    Ok(())
}

/// The steps after provisioning, in order; the first failure ends them.
fn steps(sh: &Shell, lints: &[(&'static str, std::ffi::OsString)]) -> anyhow::Result<()> {
    step("fmt", || Ok(cmd!(sh, "cargo fmt --all -- --check").run()?))?;
    step("clippy, with the tests' build", || {
        clippy::prove_it_bites(lints)?;
        Ok(cmd!(sh, "cargo test --quiet --workspace --no-run").run()?)
    })?;
    step("workflows", || workflows::lint(sh))?;
    let all = test::Args {
        platform: Selection::All,
    };
    step("tests", || test::run_part(sh, &all, test::Part::Host))?;
    step("conformance", || {
        conformance::run(
            sh,
            &conformance::Args {
                update: false,
                require_all: true,
                platform: Selection::All,
                wsl_distro: None,
                for_windows_host: false,
            },
        )
    })?;
    // The workflows rehearsed as the runner runs them (after `workflows`,
    // which lints them, and after conformance, whose builds the gates are
    // rehearsed with).
    step("rehearse", || rehearse::run(sh, &rehearse::Args::default()))?;
    step("the README under Wine, and the foreign unit tests", || {
        test::run_part(sh, &all, test::Part::Foreign)
    })?;
    Ok(())
}

/// Runs one step and says how long it took: where CI's wall time goes.
fn step(name: &str, body: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    eprintln!("\n== ci: {name}");
    let started = std::time::Instant::now();
    let result = body().map_err(|error| error.context(format!("ci step `{name}` failed")));
    eprintln!(
        "== ci: {name} took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    result
}
