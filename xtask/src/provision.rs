//! Installing what `cargo xtask ci` and `doctor --install` need: the
//! missing needs' Debian packages as root (or through passwordless `sudo`),
//! then Python packages.

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use std::collections::BTreeSet;

use plugcheck::bridge::find_on_path;

use crate::needs::{self, Install, Need};
use crate::probe;

/// Installs every missing need: Debian packages as root (or through
/// passwordless `sudo`), then Python packages. Stops at once, with the one
/// command to run, when it cannot install.
pub fn provision(sh: &Shell) -> anyhow::Result<()> {
    let missing: Vec<Need> = needs::ALL
        .into_iter()
        .filter(|need| !probe::present(need, sh))
        .collect();
    let apt: BTreeSet<&str> = needs::apt_packages(&missing).collect();
    let pip: BTreeSet<&str> = missing
        .iter()
        .filter_map(|need| match need.install {
            Install::Pip(package) => Some(package),
            Install::Apt(_) => None,
        })
        .collect();
    if missing.is_empty() {
        eprintln!("ci: every tool the checks need is installed");
        return Ok(());
    }
    for need in &missing {
        eprintln!("ci: missing {}", need.what);
    }
    if !apt.is_empty() {
        let packages: Vec<&str> = apt.into_iter().collect();
        let sudo = needs_sudo(sh, &packages)?;
        let apt_get = |args: Vec<&str>| {
            let command = if sudo {
                cmd!(sh, "sudo -n apt-get {args...}")
            } else {
                cmd!(sh, "apt-get {args...}")
            };
            command.env("DEBIAN_FRONTEND", "noninteractive")
        };
        eprintln!("ci: installing {}", packages.join(" "));
        apt_get(vec!["update", "-qq"])
            .run()
            .context("`apt-get update` failed")?;
        if enable_backports_for(sh, &packages)? {
            apt_get(vec!["update", "-qq"])
                .run()
                .context("`apt-get update` failed after enabling bookworm-backports")?;
        }
        let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
        install.extend(&packages);
        apt_get(install)
            .run()
            .with_context(|| format!("`apt-get install {}` failed", packages.join(" ")))?;
    }
    if !pip.is_empty() {
        let packages: Vec<&str> = pip.into_iter().collect();
        let listed = packages.join(" ");
        cmd!(sh, "python3 -m pip install --quiet {packages...}")
            .run()
            .with_context(|| format!("`python3 -m pip install {listed}` failed"))?;
    }
    let still: Vec<String> = missing
        .iter()
        .filter(|need| !probe::probe_now(need, sh))
        .map(|need| {
            format!(
                "{} (installed with `{}`)",
                need.what,
                need.install.command()
            )
        })
        .collect();
    if !still.is_empty() {
        bail!(
            "still missing after installing: {}; run `cargo xtask doctor` to see what is wrong",
            still.join("; ")
        );
    }
    Ok(())
}

/// Where Debian 12's own archive lacks one of `packages` (golang-1.21-go
/// is only in bookworm-backports), enables bookworm-backports; `true` when
/// it did, so the package lists need an update. Backports are pinned
/// below the release, so only packages found nowhere else come from there.
fn enable_backports_for(sh: &Shell, packages: &[&str]) -> anyhow::Result<bool> {
    const LIST: &str = "/etc/apt/sources.list.d/plugcheck-bookworm-backports.list";
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    if !os_release
        .lines()
        .any(|line| line == "VERSION_CODENAME=bookworm")
        || std::path::Path::new(LIST).exists()
    {
        return Ok(false);
    }
    let unavailable = packages.iter().any(|package| {
        cmd!(sh, "apt-cache policy {package}")
            .quiet()
            .ignore_stderr()
            .read()
            .map_or(true, |policy| {
                !policy.contains("Candidate:") || policy.contains("Candidate: (none)")
            })
    });
    if !unavailable {
        return Ok(false);
    }
    eprintln!("ci: enabling Debian's bookworm-backports ({LIST}) for what Debian 12 lacks");
    std::fs::write(
        LIST,
        "deb http://deb.debian.org/debian bookworm-backports main\n",
    )
    .with_context(|| format!("cannot write `{LIST}` (run as root)"))?;
    Ok(true)
}

/// `false` as root, `true` where sudo needs no password; otherwise the one
/// command a person must run first.
fn needs_sudo(sh: &Shell, packages: &[&str]) -> anyhow::Result<bool> {
    let uid = cmd!(sh, "id -u").quiet().read().unwrap_or_default();
    if uid.trim() == "0" {
        return Ok(false);
    }
    if find_on_path("sudo").is_some()
        && cmd!(sh, "sudo -n true")
            .quiet()
            .ignore_stderr()
            .run()
            .is_ok()
    {
        return Ok(true);
    }
    bail!(
        "the checks need Debian packages this user cannot install (not root, no passwordless sudo); run once:\n    sudo apt-get install -y {}\nthen `cargo xtask ci` again",
        packages.join(" ")
    )
}
