//! The Linux leg from a Windows host: the whole leg runs inside WSL2 —
//! `wsl.exe -d DISTRO --cd DIR --exec CARGO xtask conformance --platform
//! linux` — with its target directory on the Linux filesystem (cargo on
//! `/mnt/c` rebuilds every time and trips over locks), and its report read
//! back through the `\\wsl.localhost` share. The WSL bridge itself is the
//! harness's (`plugcheck::bridge::wsl`), which `plugcheck check --platform
//! linux` uses too.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use plugcheck::bridge::wsl::{Wsl, to_windows_path, to_wsl_path};

/// Where the leg's cargo builds inside the distro (the Linux filesystem).
pub const LINUX_TARGET_DIR: &str = "/var/tmp/plugcheck-target";

/// Runs the Linux leg inside WSL2 from `project` (a Windows path), and
/// returns the Windows path of its report.
pub fn run_linux_leg(
    project: &Path,
    distro: Option<&str>,
    conformance_args: &[OsString],
) -> anyhow::Result<PathBuf> {
    let wsl = Wsl::find()?;
    let dir = to_wsl_path(&project.display().to_string())?;
    let (distro, report) = linux_leg(&wsl, &dir, distro, conformance_args)?;
    Ok(PathBuf::from(to_windows_path(&report, &distro)))
}

/// The Linux leg's target directory as this host reads it: the
/// `\\wsl.localhost` share of WSL's default distribution on Windows,
/// itself on Linux.
pub fn linux_target_dir_here() -> anyhow::Result<PathBuf> {
    if crate::platform::Platform::host() == crate::platform::Platform::Linux {
        return Ok(crate::paths::target_dir());
    }
    let wsl = Wsl::find()?;
    let distro = wsl.choose(None)?;
    Ok(PathBuf::from(to_windows_path(
        LINUX_TARGET_DIR,
        &distro.name,
    )))
}

/// Runs `cargo xtask conformance --platform linux ARGS…` in `dir` (a path
/// inside the distro); returns the distro's name and the Linux path of the
/// report. What the leg lacks is a `Missing`; a leg that ran and failed
/// is an error of its own, which fails the run.
fn linux_leg(
    wsl: &Wsl,
    dir: &str,
    distro: Option<&str>,
    conformance_args: &[OsString],
) -> anyhow::Result<(String, String)> {
    let distro = wsl.choose(distro)?;
    let cargo = wsl.find_cargo(&distro.name)?;
    eprintln!(
        "linux leg in WSL2 `{}` at {dir}, cargo {cargo}",
        distro.name
    );
    let mut args: Vec<OsString> = vec![
        "xtask".into(),
        "conformance".into(),
        "--platform".into(),
        "linux".into(),
    ];
    args.extend(conformance_args.iter().cloned());
    let names = crossing_variables();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let status = wsl
        .command(&distro.name, dir, &cargo, &args, &names)
        .env("CARGO_TARGET_DIR", LINUX_TARGET_DIR)
        .status()
        .context("cannot run wsl.exe")?;
    if !status.success() {
        bail!("the Linux leg in WSL2 failed ({status}); see its output above");
    }
    let report = format!("{LINUX_TARGET_DIR}/plugcheck/linux/report.json");
    Ok((distro.name, report))
}

/// The variables the Linux leg needs from the Windows side: CI settings,
/// insta's, logging, and every `PLUGCHECK_*`.
pub fn crossing_variables() -> Vec<String> {
    let mut names: Vec<String> = [
        "CI",
        "INSTA_UPDATE",
        "INSTA_FORCE_PASS",
        "RUST_LOG",
        "RUST_BACKTRACE",
        "CARGO_TARGET_DIR",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    names.extend(
        std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .filter(|name| name.starts_with("PLUGCHECK_")),
    );
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use plugcheck::bridge::Missing;
    #[cfg(unix)]
    use plugcheck_test_support::wsl::distro_program;

    #[cfg(unix)]
    #[test]
    fn a_linux_leg_that_fails_in_wsl_is_a_failure_not_a_missing_tool() {
        let dir = tempfile::tempdir().unwrap();
        let wsl =
            plugcheck::bridge::wsl::Wsl::at(plugcheck_test_support::wsl::stand_in(dir.path()));
        let called = dir.path().join("cargo-args");
        distro_program(
            dir.path(),
            "cargo",
            &format!(
                "echo \"$*|$CARGO_TARGET_DIR\" > '{}'; exit 1",
                called.display()
            ),
        );
        let project = tempfile::tempdir().unwrap();
        let error = linux_leg(
            &wsl,
            &project.path().display().to_string(),
            None,
            &["--require-all".into()],
        )
        .unwrap_err();
        assert!(!Missing::in_chain(&error), "{error:#}");
        assert!(
            error.to_string().contains("the Linux leg in WSL2 failed"),
            "{error:#}"
        );
        assert_eq!(
            std::fs::read_to_string(&called).unwrap().trim(),
            format!("xtask conformance --platform linux --require-all|{LINUX_TARGET_DIR}")
        );
    }

    #[cfg(unix)]
    #[test]
    fn what_wsl_lacks_is_a_missing_prerequisite() {
        let dir = tempfile::tempdir().unwrap();
        let wsl =
            plugcheck::bridge::wsl::Wsl::at(plugcheck_test_support::wsl::stand_in(dir.path()));
        for (distro, words) in [
            ("Arch", "the WSL distribution `Arch`"),
            ("Legacy", "WSL 2 for the distribution `Legacy`"),
        ] {
            let error = linux_leg(&wsl, "/", Some(distro), &[]).unwrap_err();
            assert!(Missing::in_chain(&error), "{error:#}");
            assert!(error.to_string().contains(words), "{error:#}");
        }
    }

    #[test]
    fn wslenv_carries_ci_settings_and_plugchecks_own() {
        let names = crossing_variables();
        assert!(names.iter().any(|name| name == "INSTA_UPDATE"), "{names:?}");
    }
}
