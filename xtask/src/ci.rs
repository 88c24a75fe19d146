//! `cargo xtask ci`: exactly what CI runs, so a developer can run it too.
//! It first installs what the checks need (`needs.rs`: apt packages as root
//! or through passwordless sudo, Python checkers with pip), or stops at once
//! with the one command to run. The Windows leg's Rust and clippy run
//! beside the steps (`background.rs`); clippy's verdict is the last step.
//! Snapshots are compared, never written. The workflows are rehearsed
//! (`rehearse.rs`).

use xshell::{Shell, cmd};

use crate::background::{self, Job};
use crate::platform::{Platform, Selection};
use crate::provision;
use crate::{conformance, rehearse, soak, test, workflows};

pub fn run(sh: &Shell) -> anyhow::Result<()> {
    let _ci = sh.push_env("CI", "true");
    let _insta = sh.push_env("INSTA_UPDATE", "no");
    step("provision", || provision::provision(sh))?;
    // Beside the steps: the Windows leg's Rust, which the steps then find
    // built (or wait for), and clippy, whose verdict is the last step's.
    // A failing step stops both, so its failure is said at once.
    let mut windows = (Platform::host() == Platform::Linux)
        .then(|| Job::start(background::Kind::WindowsLeg, "the Windows leg's build"));
    let mut clippy = Job::start(background::Kind::Clippy, "clippy");
    let result = steps(sh);
    if result.is_err() {
        clippy.cancel();
        if let Some(windows) = &mut windows {
            windows.cancel();
        }
    }
    result?;
    step("clippy (run beside the steps)", || {
        print!("{}", clippy.finish()?);
        Ok(())
    })?;
    eprintln!("\nci: all steps passed");
    Ok(())
}

/// The steps after provisioning, in order; the first failure ends them.
fn steps(sh: &Shell) -> anyhow::Result<()> {
    step("fmt", || Ok(cmd!(sh, "cargo fmt --all -- --check").run()?))?;
    step("workflows", || workflows::lint(sh))?;
    // Provisioned with every tool: a test that skips itself here is a
    // failure, as a fixture that cannot be built is in conformance.
    let all = test::Args {
        platform: Selection::All,
        require_all: true,
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
    // The host's soak, short: after conformance, whose fixtures it calls.
    step("soak (10 s)", || soak::run(sh, &soak::Args { seconds: 10 }))?;
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
