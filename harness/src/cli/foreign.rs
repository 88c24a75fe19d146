//! `plugcheck check --platform OTHER`: a plugin judged by the other
//! platform's harness from this host, through the bridges the xtask uses
//! too — the Windows harness under Wine from Linux (in a prefix plugcheck
//! manages: created once, with the DLL Wine 8.0 lacks), the Linux harness
//! inside WSL2 from Windows. The other harness prints and writes the
//! report itself; its report names the platform and what ran it (`windows
//! x86_64 under Wine 8.0`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::check::{CheckArgs, bridge_options, forwarded, plugins};
use crate::bridge::windows_harness::{self, Surroundings};
use crate::bridge::wine::{self, Wine};
use crate::bridge::wsl::{Wsl, to_wsl_path};
use crate::bridge::{Missing, find_on_path};

/// From Linux: the Windows harness under Wine.
pub fn on_windows(args: &CheckArgs) -> anyhow::Result<u8> {
    let (harness, _) = bridge_options(args);
    let harness = match harness {
        Some(path) => existing(path)?,
        None => windows_harness()?,
    };
    check_plugins_exist(args)?;
    let wine = Wine::find(Wine::default_prefix()?)?;
    wine.prepare()
        .context("cannot prepare plugcheck's Wine prefix")?;
    let argv = forwarded(args, &|path| wine::windows_path(&absolute(path)));
    eprintln!(
        "judging on windows: {} under {} (prefix {})",
        harness.display(),
        wine.wine64().display(),
        wine.prefix().display()
    );
    let status = wine
        .command(&harness, argv)
        .status()
        .with_context(|| format!("cannot run `{}`", wine.wine64().display()))?;
    exit_code(status)
}

/// From Windows: the Linux harness inside WSL2.
pub fn on_linux(args: &CheckArgs) -> anyhow::Result<u8> {
    let (harness, distro) = bridge_options(args);
    check_plugins_exist(args)?;
    let wsl = Wsl::find()?;
    let distro = wsl.choose(distro)?;
    let plugcheck = match harness {
        Some(path) => path.display().to_string(),
        None => wsl.find_program(&distro.name, "plugcheck")?.ok_or_else(|| Missing {
            what: format!("plugcheck inside the WSL distribution `{}`", distro.name),
            remedy: "install it there from a plugcheck checkout: `cargo install --locked --path harness` (or pass --harness PATH)".into(),
        })?,
    };
    let to_linux = |path: &Path| -> anyhow::Result<OsString> {
        Ok(to_wsl_path(&absolute(path).display().to_string())?.into())
    };
    // Map once up front, so an unmappable path is an error, not a guess.
    for path in plugins(args) {
        to_linux(path)?;
    }
    let argv = forwarded(args, &|path| {
        to_linux(path).unwrap_or_else(|_| path.as_os_str().to_owned())
    });
    let dir =
        to_wsl_path(&std::env::current_dir()?.display().to_string()).unwrap_or_else(|_| "/".into());
    eprintln!("judging on linux: {plugcheck} in WSL2 `{}`", distro.name);
    let status = wsl
        .command(
            &distro.name,
            &dir,
            &plugcheck,
            &argv,
            &["GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"],
        )
        .status()
        .context("cannot run wsl.exe")?;
    exit_code(status)
}

/// plugcheck.exe, found as `bridge::windows_harness` says; the error
/// names the Debian packages the Windows leg still lacks here.
fn windows_harness() -> anyhow::Result<PathBuf> {
    let mut missing_packages = Vec::new();
    if find_on_path(wine::MINGW_GCC).is_none() {
        missing_packages.push(wine::MINGW_PACKAGE);
    }
    if wine::wine64().is_none() {
        missing_packages.push(wine::WINE_PACKAGE);
    }
    let found = windows_harness::find(&Surroundings::of_this_process(), &missing_packages)?;
    Ok(absolute(&found))
}

fn existing(path: &Path) -> anyhow::Result<PathBuf> {
    if !path.is_file() {
        bail!("--harness `{}` is not a file", path.display());
    }
    Ok(absolute(path))
}

/// A missing plugin is said here, not as a Windows path under Wine.
fn check_plugins_exist(args: &CheckArgs) -> anyhow::Result<()> {
    for plugin in plugins(args) {
        if std::fs::symlink_metadata(plugin).is_err() {
            bail!("`{}` does not exist", plugin.display());
        }
    }
    Ok(())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The other harness's exit code is this one's: 0 passed, 1 gate failed,
/// 2 could not run.
fn exit_code(status: std::process::ExitStatus) -> anyhow::Result<u8> {
    match status.code() {
        Some(code @ 0..=2) => Ok(code as u8),
        _ => bail!("the other platform's harness ended abnormally ({status})"),
    }
}
