//! `plugcheck check --platform OTHER`: a plugin judged by the other
//! platform's harness from this host, through the bridges the xtask uses
//! too — the Windows harness under Wine from Linux (in a prefix plugcheck
//! manages: created once, with the DLL Wine 8.0 lacks), the Linux harness
//! inside WSL2 from Windows. The other harness prints and writes the
//! report itself; its report names the platform and what ran it (`windows
//! x86_64 under Wine 8.0`).
//!
//! It knows nothing of `check`'s arguments: `check` hands it a
//! [`Forwarded`] check (the command line, its paths still this host's, and
//! the bridge's own options), and it maps the paths for the other side and
//! runs it there. So the dependency goes one way, `check` → `foreign`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::shared::absolute;
use crate::bridge::windows_harness::{self, Surroundings};
use crate::bridge::wine::{self, Wine};
use crate::bridge::wsl::{Wsl, to_wsl_path};
use crate::bridge::{Missing, find_on_path};
use crate::os::Platform;

/// A check for the other platform's harness, as `check` hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Forwarded {
    /// `check` and its arguments; paths as given here, mapped on the way.
    pub argv: Vec<Arg>,
    /// The plugins among them, checked here before the bridge starts.
    pub plugins: Vec<PathBuf>,
    /// `--harness`: the other platform's plugcheck.
    pub harness: Option<PathBuf>,
    /// `--wsl-distro`.
    pub wsl_distro: Option<String>,
}

/// One argument of a forwarded command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Arg {
    /// Passed as it is.
    Text(OsString),
    /// A path of this host, which the other side names its own way.
    Path(PathBuf),
    /// `PREFIX` then a path: `upgrade=PATH`.
    Prefixed(String, PathBuf),
}

impl Forwarded {
    /// The command line with every path mapped by `map`, which is made
    /// absolute first; the first path `map` cannot name is the error.
    pub(super) fn argv(
        &self,
        map: impl Fn(&Path) -> anyhow::Result<OsString>,
    ) -> anyhow::Result<Vec<OsString>> {
        self.argv
            .iter()
            .map(|arg| {
                Ok(match arg {
                    Arg::Text(text) => text.clone(),
                    Arg::Path(path) => map(&absolute(path)?)?,
                    Arg::Prefixed(prefix, path) => {
                        let mut text = OsString::from(prefix);
                        text.push(map(&absolute(path)?)?);
                        text
                    }
                })
            })
            .collect()
    }
}

/// Runs `check` on `platform`'s harness through its bridge; the other
/// harness's exit code.
pub(super) fn run(platform: Platform, check: &Forwarded) -> anyhow::Result<u8> {
    match platform {
        Platform::Windows => on_windows(check),
        Platform::Linux => on_linux(check),
    }
}

/// From Linux: the Windows harness under Wine.
fn on_windows(check: &Forwarded) -> anyhow::Result<u8> {
    let harness = match &check.harness {
        Some(path) => existing(path)?,
        None => windows_harness()?,
    };
    check_plugins_exist(check)?;
    let wine = Wine::find(Wine::default_prefix()?)?;
    wine.prepare()
        .context("cannot prepare plugcheck's Wine prefix")?;
    let argv = check.argv(|path| Ok(wine::windows_path(path)))?;
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
fn on_linux(check: &Forwarded) -> anyhow::Result<u8> {
    check_plugins_exist(check)?;
    let wsl = Wsl::find()?;
    let distro = wsl.choose(check.wsl_distro.as_deref())?;
    let plugcheck = match &check.harness {
        Some(path) => path.display().to_string(),
        None => wsl.find_program(&distro.name, "plugcheck")?.ok_or_else(|| Missing {
            what: format!("plugcheck inside the WSL distribution `{}`", distro.name),
            remedy: "install it there from a plugcheck checkout: `cargo install --locked --path harness` (or pass --harness PATH)".into(),
        })?,
    };
    // Every path mapped before anything runs: an unmappable one is an
    // error, not a guess.
    let argv = check.argv(|path| Ok(to_wsl_path(&path.display().to_string())?.into()))?;
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
    absolute(&found)
}

fn existing(path: &Path) -> anyhow::Result<PathBuf> {
    if !path.is_file() {
        bail!("--harness `{}` is not a file", path.display());
    }
    absolute(path)
}

/// A missing plugin is said here, not as a Windows path under Wine.
fn check_plugins_exist(check: &Forwarded) -> anyhow::Result<()> {
    for plugin in &check.plugins {
        if std::fs::symlink_metadata(plugin).is_err() {
            bail!("`{}` does not exist", plugin.display());
        }
    }
    Ok(())
}

/// The other harness's exit code is this one's: 0 passed, 1 gate failed,
/// 2 could not run.
fn exit_code(status: std::process::ExitStatus) -> anyhow::Result<u8> {
    match status.code() {
        Some(code @ 0..=2) => Ok(code as u8),
        _ => bail!("the other platform's harness ended abnormally ({status})"),
    }
}
