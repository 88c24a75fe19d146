//! What made a leg's results: the host and how the leg ran there (natively,
//! under Wine, in WSL2), and the versions of the compilers that built its
//! fixtures. Recorded as each snapshot's `info`, so a snapshot that differs
//! on another runner says next to the difference which tools made it; and
//! insta compares contents, not `info`, so a newer tool that changes
//! nothing changes nothing.

use std::path::Path;

use xshell::{Shell, cmd};

use crate::platform::Platform;
use crate::runner::Runner;
use crate::toolchain::RustBuild;
use plugcheck::bridge::find_on_path;
use plugcheck::bridge::wine::MINGW_GCC;

/// One line, e.g. `linux leg natively on Debian GNU/Linux 12 (bookworm);
/// rustc 1.95.0 (…); cc (Debian 12.2.0-14) 12.2.0; go version go1.19.8`.
pub fn describe(sh: &Shell, platform: Platform, runner: &Runner, rust: &RustBuild) -> String {
    let ran = match runner {
        Runner::Wine(wine) => format!(
            "under {} on {}",
            first_line(sh, wine.wine64(), &["--version"]),
            host_system()
        ),
        Runner::Native => format!("natively on {}", host_system()),
    };
    let cc = match platform {
        Platform::Linux => "cc",
        Platform::Windows => MINGW_GCC,
    };
    let mut parts = vec![
        format!("{platform} leg {ran}"),
        first_line(sh, rust.rustc(), &["--version"]),
        first_line(sh, Path::new(cc), &["--version"]),
    ];
    if find_on_path("go").is_some() {
        parts.push(first_line(sh, Path::new("go"), &["version"]));
    }
    parts.join("; ")
}

/// The host's system, as /etc/os-release names it (and WSL2 when the Linux
/// kernel is Microsoft's); on Windows, just Windows.
fn host_system() -> String {
    if Platform::host() == Platform::Windows {
        return "Windows".into();
    }
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let name = release
        .lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))
        .map(|name| name.trim_matches('"').to_owned())
        .unwrap_or_else(|| "Linux".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    if kernel.to_ascii_lowercase().contains("microsoft") {
        format!("{name} in WSL2")
    } else {
        name
    }
}

/// The first line `program ARGS` prints, or that it could not be asked.
fn first_line(sh: &Shell, program: &Path, args: &[&str]) -> String {
    let name = program.display().to_string();
    cmd!(sh, "{program} {args...}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .and_then(|out| out.lines().next().map(str::to_owned))
        .unwrap_or_else(|| format!("{name}: no version"))
}
