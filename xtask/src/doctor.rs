//! `cargo xtask doctor`: for each leg, what is present, what is missing,
//! and the exact command that installs it — read from the one list of
//! needs `cargo xtask ci` installs from (`needs.rs`).

use xshell::{Shell, cmd};

use crate::needs::{self, Use};
use crate::platform::Platform;
use crate::{probe, provision};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Install what is missing (as `cargo xtask ci` does): apt packages as
    /// root or through passwordless sudo, Python checkers with pip.
    #[arg(long)]
    pub install: bool,
}

pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    if args.install {
        provision::provision(sh)?;
    }
    let mut missing = 0;
    let cargo = cmd!(sh, "cargo --version")
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_else(|_| "MISSING (rustup, or apt-get install rustc-web cargo-web)".into());
    println!("  {:<8} {:<58} {cargo}", "ok", "cargo");
    let groups = [
        ("linux leg", Use::Leg(Platform::Linux)),
        (
            "windows leg (under Wine on a Linux host)",
            Use::Leg(Platform::Windows),
        ),
        ("checks of `cargo xtask ci`", Use::Checks),
    ];
    for (title, usage) in groups {
        println!("{title}");
        for need in needs::ALL.iter().filter(|need| need.usage == usage) {
            if probe::present(need, sh) {
                println!("  {:<8} {}", "ok", need.what);
            } else {
                missing += 1;
                println!(
                    "  {:<8} {:<58} {}",
                    "MISSING",
                    need.what,
                    need.install_hint()
                );
            }
        }
    }
    if missing == 0 {
        println!("\nevery leg can run here: cargo xtask conformance --platform all");
    } else {
        println!(
            "\n{missing} tool(s) missing: `cargo xtask ci` installs them; `cargo xtask conformance` skips the fixtures that need them and says so"
        );
    }
    Ok(())
}
