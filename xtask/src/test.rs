//! `cargo xtask test`: the workspace's tests on the host, and the harness's
//! own unit tests built for Windows and run under Wine, so Windows-only
//! code (Job Objects, NTSTATUS names, toolhelp) is tested, not only
//! compiled.

use std::ffi::OsString;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::conformance::Runner;
use crate::platform::{Platform, Selection};
use crate::toolchain::RustBuild;
use crate::wine;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Which legs to test.
    #[arg(long, value_enum, default_value_t)]
    pub platform: Selection,
}

/// Unit tests that run on the foreign leg: the harness (with the OS seam)
/// and the ABI as libraries, and the xtask (whose Windows-host code, the
/// WSL bridge, is tested there). Integration tests drive host tools (cc,
/// the fixtures), so they stay on the host.
const FOREIGN_TESTED: [(&str, &str); 3] = [
    ("plugcheck", "--lib"),
    ("plugcheck-abi", "--lib"),
    ("xtask", "--bins"),
];

pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    for platform in args.platform.platforms() {
        if platform == Platform::host() {
            cmd!(sh, "cargo test --quiet --workspace").run()?;
            continue;
        }
        let root = crate::project_root();
        let rust = RustBuild::for_platform(sh, platform)?;
        eprintln!("{platform} unit tests: built by {}", rust.description);
        let mut executables = Vec::new();
        for (package, targets) in FOREIGN_TESTED {
            executables.extend(rust.test_executables(sh, &[package.to_owned()], targets)?);
        }
        let runner = Runner::for_platform(sh, platform)?;
        for executable in executables {
            let dir = executable
                .parent()
                .context("a test executable has a directory")?;
            if platform == Platform::Windows && !dir.join("bcryptprimitives.dll").exists() {
                wine::install_compat_dll(sh, &root, dir)?;
            }
            eprintln!("$ {} (under {platform})", executable.display());
            let status = runner
                .command(&executable, vec![OsString::from("--quiet")])
                .unchecked()
                .run()?
                .status;
            if !status.success() {
                bail!(
                    "{platform} unit tests in `{}` failed ({status})",
                    executable.display()
                );
            }
        }
    }
    Ok(())
}
