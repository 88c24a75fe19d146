//! `cargo xtask …`: the project's automation, in Rust. `main` parses flags,
//! roots one `Shell` at the workspace and hands it to one subcommand; each
//! subcommand lives in its own file.

mod bench;
mod ci;
mod conformance;
mod doctor;
mod fixtures;
mod merge;
mod platform;
mod test;
mod toolchain;
mod wine;
mod wsl;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use xshell::Shell;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "plugcheck's build, conformance and CI tasks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build every plugin and fixture of the manifest into target/plugcheck/<platform>/artifacts.
    Fixtures(fixtures::Args),
    /// Build, run the suite over every plugin and fixture, check intended verdicts and snapshots.
    Conformance(conformance::Args),
    /// What CI runs: fmt, clippy -D warnings, tests, conformance (never writes snapshots).
    Ci,
    /// Measure the harness against a floor measured in the same run.
    Bench(bench::Args),
    /// For each platform leg: what is present, what is missing, how to install it.
    Doctor,
    /// Combine the legs' JSON reports into one platform × case table.
    MergeReports(merge::Args),
    /// The tests: the workspace's on the host, the harness's unit tests under Wine for Windows.
    Test(test::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match cli.command {
        Command::Fixtures(args) => fixtures::run(&sh, &args).map(|_| ()),
        Command::Conformance(args) => conformance::run(&sh, &args),
        Command::Ci => ci::run(&sh),
        Command::Bench(args) => bench::run(&sh, &args),
        Command::Doctor => doctor::run(&sh),
        Command::MergeReports(args) => merge::run(&args),
        Command::Test(args) => test::run(&sh, &args),
    }
}

/// Where builds and reports go: `$CARGO_TARGET_DIR` when set (the Linux
/// leg in WSL2 builds on the Linux filesystem), else `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => project_root().join(dir),
        None => project_root().join("target"),
    }
}

/// The workspace root (xtask's parent directory).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}
