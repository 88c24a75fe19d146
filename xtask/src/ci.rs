//! `cargo xtask ci`: exactly what CI runs, so a developer can run it too.
//! It first installs what the checks need (`needs.rs`: apt packages as root
//! or through passwordless sudo, Python checkers with pip), or stops at once
//! with the one command to run. Snapshots are compared, never written.

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::needs;
use crate::platform::Selection;
use crate::{conformance, test};

pub fn run(sh: &Shell) -> anyhow::Result<()> {
    let _ci = sh.push_env("CI", "true");
    let _insta = sh.push_env("INSTA_UPDATE", "no");
    step("provision", || needs::provision(sh))?;
    step("fmt", || Ok(cmd!(sh, "cargo fmt --all -- --check").run()?))?;
    step("clippy", || {
        Ok(cmd!(
            sh,
            "cargo clippy --quiet --workspace --all-targets -- -D warnings"
        )
        .run()?)
    })?;
    step("workflows", || lint_workflows(sh))?;
    step("tests", || {
        test::run(
            sh,
            &test::Args {
                platform: Selection::All,
            },
        )
    })?;
    step("conformance", || {
        conformance::run(
            sh,
            &conformance::Args {
                update: false,
                require_all: true,
                platform: Selection::All,
                wsl_distro: None,
            },
        )
    })?;
    eprintln!("\nci: all steps passed");
    Ok(())
}

/// actionlint, with shellcheck on every `run:` block, then zizmor.
/// actionlint skips shellcheck without a word when it cannot run it, which
/// is how an unquoted `$ARGS` once passed here and would have failed on a
/// runner: so it must first find the mistake in a script made to have one.
fn lint_workflows(sh: &Shell) -> anyhow::Result<()> {
    let shellcheck = needs::find_on_path("shellcheck").context(needs::SHELLCHECK.missing())?;
    let canary_dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let canary = canary_dir.path().join("canary.yml");
    std::fs::write(&canary, SHELLCHECK_CANARY)?;
    let caught = cmd!(sh, "actionlint -shellcheck {shellcheck} {canary}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err();
    if !caught {
        bail!(
            "actionlint did not run `{}` on the workflows' scripts (it passed a script with an unquoted variable): check that `{0} --version` works",
            shellcheck.display()
        );
    }
    let workflows: Vec<std::path::PathBuf> = std::fs::read_dir(".github/workflows")?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    cmd!(sh, "actionlint -shellcheck {shellcheck} {workflows...}").run()?;
    cmd!(sh, "zizmor --offline .github/workflows").run()?;
    Ok(())
}

/// A workflow whose only fault is one shellcheck reports (SC2086).
const SHELLCHECK_CANARY: &str = r#"name: canary
on: push
permissions: {}
jobs:
  canary:
    runs-on: ubuntu-latest
    steps:
      - run: echo $UNQUOTED
        env:
          UNQUOTED: a b
"#;

fn step(name: &str, body: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    eprintln!("\n== ci: {name}");
    body().map_err(|error| error.context(format!("ci step `{name}` failed")))
}
