//! The checks of `.github/workflows`: actionlint (with shellcheck on every
//! `run:` block), zizmor, and the workflows' contract with the rest of the
//! project, which neither linter can know. Each rule of the contract is a
//! mistake a review once predicted would fail on GitHub's runners:
//!
//! - a cache of `target/` that keeps `target/plugcheck`, so a job that
//!   fails early uploads the previous run's reports as its own;
//! - the Linux leg run on another system than the one the `@linux`
//!   snapshots were made on (their `made_with`), outside a matching
//!   `debian:CODENAME` container;
//! - a Windows job that builds the leg for the host's default target, or
//!   without both MinGW-w64 compilers on PATH, or that may skip;
//! - a WSL2 distribution without a package the Linux leg needs;
//! - a job that runs cargo without installing the pinned toolchain;
//! - a reusable workflow whose artifact names collide when called twice;
//! - a `plugcheck merge` job that is skipped when a shard job failed (a
//!   skipped job reads as passed, where merge would name the missing
//!   shard), or whose exit status is ignored: the sharded gate is merge's.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};
use yaml_rust2::YamlLoader;

use crate::needs;

mod read;
mod rules;

use read::{WORKFLOWS, steps_using, workflow_files};
pub use rules::SECOND_GO_MARK;

/// actionlint, with shellcheck on every `run:` block, then zizmor, then the
/// contract. actionlint skips shellcheck without a word when it cannot run
/// it, which is how an unquoted `$ARGS` once passed here and would have
/// failed on a runner: so it must first find the mistake in a script made
/// to have one.
pub fn lint(sh: &Shell) -> anyhow::Result<()> {
    let shellcheck =
        plugcheck::bridge::find_on_path("shellcheck").context(needs::SHELLCHECK.missing())?;
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
    let files = workflow_files(&crate::paths::project_root())?;
    cmd!(sh, "actionlint -shellcheck {shellcheck} {files...}").run()?;
    cmd!(sh, "zizmor --offline {WORKFLOWS}").run()?;
    check_contract(&crate::paths::project_root())
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

/// What the rules compare the workflows with.
struct Project {
    /// Debian codenames the `@linux` snapshots were made on.
    snapshot_codenames: BTreeSet<String>,
    /// Debian packages the Linux leg needs (inside WSL2 too).
    linux_leg_packages: Vec<&'static str>,
}

impl Project {
    fn read(root: &Path) -> anyhow::Result<Project> {
        let dir = root.join(plugcheck_fixtures::SNAPSHOT_DIR);
        let mut snapshot_codenames = BTreeSet::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if !path.to_string_lossy().ends_with("@linux.snap") {
                continue;
            }
            let text = std::fs::read_to_string(&path)?;
            if let Some(codename) = text
                .lines()
                .find_map(|line| line.trim().strip_prefix("made_with: "))
                .and_then(debian_codename)
            {
                snapshot_codenames.insert(codename);
            }
        }
        let linux_leg_packages = needs::apt_packages(&needs::LINUX_LEG).collect();
        Ok(Project {
            snapshot_codenames,
            linux_leg_packages,
        })
    }
}

/// `linux leg natively on Debian GNU/Linux 12 (bookworm); …` → `bookworm`.
fn debian_codename(made_with: &str) -> Option<String> {
    let system = made_with.split(';').next()?;
    let debian = &system[system.find("Debian")?..];
    let codename = debian.split_once('(')?.1.split_once(')')?.0;
    Some(codename.to_owned())
}

/// Every workflow against the contract; all problems at once.
pub fn check_contract(root: &Path) -> anyhow::Result<()> {
    let project = Project::read(root)?;
    let mut problems = Vec::new();
    for file in workflow_files(root)? {
        let text = std::fs::read_to_string(&file)?;
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        problems.extend(
            contract_problems(&text, &project)
                .with_context(|| format!("cannot read `{}` as YAML", file.display()))?
                .into_iter()
                .map(|problem| format!("{name}: {problem}")),
        );
    }
    problems.extend(rules::repository_problems(root));
    if !problems.is_empty() {
        bail!(
            "the workflows break their contract with the project (xtask/src/workflows.rs):\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

fn contract_problems(text: &str, project: &Project) -> anyhow::Result<Vec<String>> {
    let docs = YamlLoader::load_from_str(text)?;
    let Some(workflow) = docs.first() else {
        return Ok(vec!["is empty".into()]);
    };
    let reusable = !workflow["on"]["workflow_call"].is_badvalue();
    let mut problems = rules::workflow_problems(workflow);
    let Some(jobs) = workflow["jobs"].as_hash() else {
        return Ok(vec!["has no jobs".into()]);
    };
    for (id, job) in jobs {
        let id = id.as_str().unwrap_or("?");
        let steps = job["steps"].as_vec().map(Vec::as_slice).unwrap_or_default();
        let scripts: String = steps
            .iter()
            .filter_map(|step| step["run"].as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let mut problem = |text: String| problems.push(format!("job `{id}` {text}"));

        for cache in steps_using(steps, "actions/cache@") {
            let paths: Vec<&str> = cache["with"]["path"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .map(str::trim)
                .collect();
            if paths.contains(&"target") && !paths.contains(&"!target/plugcheck") {
                problem(
                    "caches target/ with the reports in it: add `!target/plugcheck` to the cache's path".into(),
                );
            }
        }

        let runs_cargo = scripts.contains("cargo ") || scripts.contains(".ci/run");
        if runs_cargo
            && !scripts.contains("rustup toolchain install")
            && !scripts.contains(".ci/run")
        {
            problem(
                "runs cargo without `rustup toolchain install`: the runner's Rust is not the one rust-toolchain.toml pins".into(),
            );
        }

        let runs_leg = scripts.contains("cargo xtask conformance")
            || scripts.contains("cargo xtask ci")
            || scripts.contains(".ci/run");
        let on_windows = job["runs-on"]
            .as_str()
            .is_some_and(|runner| runner.contains("windows"));
        if runs_leg && !on_windows {
            let image = job["container"]
                .as_str()
                .or_else(|| job["container"]["image"].as_str())
                .unwrap_or_default();
            // `debian:bookworm@sha256:…`: a digest pins the same system.
            let image = image.split('@').next().unwrap_or_default();
            let matching = image
                .strip_prefix("debian:")
                .is_some_and(|codename| project.snapshot_codenames.contains(codename));
            if !matching {
                problem(format!(
                    "runs the Linux leg outside a container of the system the @linux snapshots were made on: use `container: debian:{}`",
                    project
                        .snapshot_codenames
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("` or `debian:")
                ));
            }
        }
        if runs_leg && on_windows {
            for (needed, why) in [
                (
                    "rustup target add x86_64-pc-windows-gnu",
                    "the Windows leg is the gnu target",
                ),
                ("mingw64", "MinGW-w64's x86_64 gcc links the Windows leg"),
                ("mingw32", "MinGW-w64's i686 gcc builds wrong-architecture"),
                ("--require-all", "a leg that cannot run must fail the job"),
            ] {
                if !scripts.contains(needed) {
                    problem(format!("lacks `{needed}` ({why})"));
                }
            }
        }
        for wsl in steps_using(steps, "Vampire/setup-wsl@") {
            let listed: Vec<&str> = wsl["with"]["additional-packages"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            // The second Go release is installed by a step of its own,
            // which asks the distribution which versioned Go it has.
            let second_go = scripts.contains(rules::SECOND_GO_MARK);
            let missing: Vec<&str> = project
                .linux_leg_packages
                .iter()
                .copied()
                .filter(|package| !listed.contains(package))
                .filter(|package| {
                    !(second_go && needs::GO_OTHER_RELEASE_PACKAGES.contains(package))
                })
                .collect();
            if !missing.is_empty() {
                problem(format!(
                    "sets up WSL2 without packages the Linux leg needs: {}",
                    missing.join(" ")
                ));
            }
        }
        if scripts.contains("plugcheck merge") {
            let condition = job["if"].as_str().unwrap_or_default();
            if !(condition.contains("!cancelled()") || condition.contains("always()")) {
                problem(
                    "runs `plugcheck merge` only when every shard job passed: a shard job that fails skips the gate, and a skipped job reads as passed; run it with `if: ${{ !cancelled() }}` (merge names the shard that did not report)".into(),
                );
            }
            let merging = steps.iter().filter(|step| {
                step["run"]
                    .as_str()
                    .is_some_and(|run| run.contains("plugcheck merge"))
            });
            for step in merging {
                let ignored_line = step["run"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .any(|line| {
                        line.contains("plugcheck merge")
                            && (line.contains("|| true") || line.contains("|| :"))
                    });
                if step["continue-on-error"].as_bool() == Some(true) || ignored_line {
                    problem(
                        "ignores `plugcheck merge`'s exit status: it is the gate (1 a plugin failed, 2 the shards are not one run's)".into(),
                    );
                }
            }
        }
        if reusable {
            for upload in steps_using(steps, "actions/upload-artifact@") {
                let name = upload["with"]["name"].as_str().unwrap_or_default();
                if !name.contains("inputs.artifact-suffix") {
                    problem(format!(
                        "uploads `{name}`, which collides when a caller uses this workflow twice in one run: append `${{{{ inputs.artifact-suffix }}}}`"
                    ));
                }
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> Project {
        Project {
            snapshot_codenames: ["bookworm".to_owned()].into(),
            linux_leg_packages: vec!["gcc", "golang-go"],
        }
    }

    fn problems(text: &str) -> Vec<String> {
        contract_problems(text, &project()).unwrap()
    }

    const GOOD_LINUX: &str = r#"
on: push
jobs:
  linux:
    runs-on: ubuntu-24.04
    container: debian:bookworm
    steps:
      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8
      - run: git config --global --add safe.directory "$GITHUB_WORKSPACE"
      - uses: actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae
        with:
          path: |
            target
            !target/plugcheck
          key: k-${{ github.sha }}
          restore-keys: k-
      - run: bash .ci/run
"#;

    // Unix only: the contract asks `git check-attr` ([gitattributes]), and
    // the Windows leg runs these tests under Wine, where there is no git.
    #[cfg(unix)]
    #[test]
    fn the_projects_own_workflows_keep_the_contract() {
        check_contract(&crate::paths::project_root()).unwrap();
    }

    #[test]
    fn the_snapshots_say_which_debian_made_them() {
        assert_eq!(
            debian_codename(
                "linux leg natively on Debian GNU/Linux 12 (bookworm); rustc 1.95.0 (x)"
            ),
            Some("bookworm".into())
        );
        assert_eq!(
            debian_codename("linux leg natively on Ubuntu 24.04.1 LTS; go"),
            None
        );
    }

    #[test]
    fn a_good_linux_job_passes_and_each_mistake_is_named() {
        assert_eq!(problems(GOOD_LINUX), Vec::<String>::new());
        let cached_reports = problems(&GOOD_LINUX.replace("            !target/plugcheck\n", ""));
        assert!(
            cached_reports[0].contains("!target/plugcheck"),
            "{cached_reports:?}"
        );
        let other_system = problems(&GOOD_LINUX.replace("debian:bookworm", "ubuntu:24.04"));
        assert!(
            other_system[0].contains("debian:bookworm"),
            "{other_system:?}"
        );
        let no_container = problems(&GOOD_LINUX.replace("    container: debian:bookworm\n", ""));
        assert_eq!(no_container.len(), 1, "{no_container:?}");
        let digest = "debian:bookworm@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let pinned = problems(&GOOD_LINUX.replace("debian:bookworm", digest));
        assert_eq!(
            pinned,
            Vec::<String>::new(),
            "a digest pins the same system"
        );
        let unpinned = problems(&GOOD_LINUX.replace("bash .ci/run", "cargo xtask conformance"));
        assert!(
            unpinned
                .iter()
                .any(|p| p.contains("rustup toolchain install")),
            "{unpinned:?}"
        );
    }

    const GOOD_WINDOWS: &str = r#"
on: push
jobs:
  windows:
    runs-on: windows-2025
    env:
      MSYS_NO_PATHCONV: "1"
    steps:
      - uses: actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae
        with:
          path: |
            target
            !target/plugcheck
          key: w-${{ github.sha }}
          restore-keys: w-
      - run: |
          cygpath -w /c/mingw32/bin >> "$GITHUB_PATH"
          cygpath -w /c/mingw64/bin >> "$GITHUB_PATH"
      - run: |
          rustup toolchain install
          rustup target add x86_64-pc-windows-gnu
      - uses: Vampire/setup-wsl@d1da7f2c0322a5ee4f24975344f67fc0f5baf364
        with:
          additional-packages: gcc golang-go
      - uses: actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae
        with:
          path: wsl-cache
          key: wsl-${{ github.sha }}
          restore-keys: wsl-
      - run: cargo xtask conformance --platform linux --require-all
      - if: ${{ !cancelled() }}
        run: cargo xtask conformance --platform windows --require-all
      - uses: actions/upload-artifact@b7c566a772e6b6bfb58ed0dc250532a479d7789f
        with:
          name: reports-linux
          path: target/plugcheck/linux/report.json
      - uses: actions/upload-artifact@b7c566a772e6b6bfb58ed0dc250532a479d7789f
        with:
          name: reports-windows
          path: target/plugcheck/windows/report.json
"#;

    #[test]
    fn a_good_windows_job_passes_and_each_mistake_is_named() {
        assert_eq!(problems(GOOD_WINDOWS), Vec::<String>::new());
        for (mistake, named) in [
            ("rustup target add x86_64-pc-windows-gnu", "gnu target"),
            ("/c/mingw32/bin", "wrong-architecture"),
            (" --require-all", "--require-all"),
            (" golang-go", "golang-go"),
            ("--platform windows", "windows-legs-apart"),
        ] {
            let found = problems(&GOOD_WINDOWS.replace(mistake, ""));
            assert!(
                found.iter().any(|p| p.contains(named)),
                "removing `{mistake}` must be named: {found:?}"
            );
        }
    }

    #[test]
    fn a_merge_job_runs_after_a_failed_shard_and_its_status_is_the_gate() {
        let gate = r#"
on: push
jobs:
  merge:
    needs: [check]
    if: ${{ !cancelled() }}
    runs-on: ubuntu-24.04
    steps:
      - name: plugcheck merge
        run: |
          bin/plugcheck merge shards/shard-*.json --json plugcheck.json
"#;
        assert_eq!(problems(gate), Vec::<String>::new());
        let skipped = problems(&gate.replace("    if: ${{ !cancelled() }}\n", ""));
        assert!(skipped[0].contains("!cancelled()"), "{skipped:?}");
        let ignored = problems(&gate.replace("plugcheck.json", "plugcheck.json || true"));
        assert!(ignored[0].contains("exit status"), "{ignored:?}");
        let continued = problems(&gate.replace(
            "      - name: plugcheck merge\n",
            "      - name: plugcheck merge\n        continue-on-error: true\n",
        ));
        assert!(
            continued.iter().any(|p| p.contains("exit status")),
            "{continued:?}"
        );
    }

    #[test]
    fn a_reusable_workflows_artifacts_take_the_callers_suffix() {
        let gate = r#"
on:
  workflow_call:
    inputs: {}
jobs:
  gate:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/upload-artifact@b7c566a772e6b6bfb58ed0dc250532a479d7789f
        with:
          name: plugcheck-gate-${{ matrix.leg }}${{ inputs.artifact-suffix }}
"#;
        assert_eq!(problems(gate), Vec::<String>::new());
        let colliding = problems(&gate.replace("${{ inputs.artifact-suffix }}", ""));
        assert!(colliding[0].contains("artifact-suffix"), "{colliding:?}");
    }
}
