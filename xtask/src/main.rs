//! `cargo xtask …`: the project's automation, in Rust. `main` parses flags,
//! roots one `Shell` at the workspace and hands it to one subcommand; each
//! subcommand lives in its own file. Glue only: what a report means
//! (merging, comparing legs) is the harness library's.
//!
//! Processes: `xshell::cmd!` for a single command whose output is read
//! whole or inherited (builds, tests, probes); `duct` only where a
//! command's output is streamed or piped, or its environment is built up
//! from parts (a leg's `plugcheck` under Wine). Tools on PATH are found by
//! one helper, the harness bridge's `find_on_path`.

mod background;
mod bench;
mod ci;
mod clippy;
mod compare;
mod conformance;
mod doctor;
mod fixtures;
mod go_plugin;
mod leg_plan;
mod made_with;
mod merge;
mod mutants;
mod needs;
mod paths;
mod platform;
mod prebuild;
mod probe;
mod provision;
mod rehearse;
mod runner;
mod soak;
mod test;
mod test_failures;
mod toolchain;
mod wine;
mod workflows;
mod wsl;

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
    /// Concurrent callers over three plugins of one embedded host for a set time; calls lost must be 0.
    Soak(soak::Args),
    /// For each platform leg: what is present, what is missing, how to install it.
    Doctor(doctor::Args),
    /// Combine the legs' JSON reports into one platform × case table.
    MergeReports(merge::Args),
    /// The tests: the workspace's on the host, the harness's unit tests under Wine for Windows.
    Test(test::Args),
    /// The workflows rehearsed here as GitHub's runners run them (docs/ci.md).
    Rehearse(rehearse::Args),
    /// cargo-mutants over the modules that decide verdicts and gates, fixture tests included; fails on a survivor.
    Mutants(mutants::Args),
    /// A job CI runs beside its steps, started by CI only (`background.rs`).
    #[command(hide = true)]
    Background {
        #[arg(value_enum)]
        kind: background::Kind,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", describe_error(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(paths::project_root());
    match cli.command {
        Command::Fixtures(args) => fixtures::run(&sh, &args).map(|_| ()),
        Command::Conformance(args) => conformance::run(&sh, &args),
        Command::Ci => ci::run(&sh),
        Command::Bench(args) => bench::run(&sh, &args),
        Command::Soak(args) => soak::run(&sh, &args),
        Command::Doctor(args) => doctor::run(&sh, &args),
        Command::MergeReports(args) => merge::run(&args),
        Command::Test(args) => test::run(&sh, &args),
        Command::Mutants(args) => mutants::run(&sh, &args),
        Command::Rehearse(args) => rehearse::run(&sh, &args),
        Command::Background { kind } => background::serve(kind),
    }
}

/// An error and its causes, one line each: what failed first, then why.
/// A cause that says nothing new (empty, or already part of the line
/// above, as an I/O error quoted by its context) is left out, so no section
/// is ever empty.
fn describe_error(error: &anyhow::Error) -> String {
    let mut lines: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || lines.iter().any(|line| line.contains(text)) {
            continue;
        }
        lines.push(text.to_owned());
    }
    if lines.is_empty() {
        lines.push("failed without saying why (a bug in the xtask)".into());
    }
    let mut described = format!("error: {}", lines[0]);
    for line in &lines[1..] {
        described.push_str("\n  because: ");
        described.push_str(line);
    }
    described
}

#[cfg(test)]
mod tests {
    use super::describe_error;

    #[test]
    fn errors_print_every_cause_once_and_no_empty_section() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = anyhow::Error::new(io)
            .context("cannot read `x.json`: no such file")
            .context("merging the reports failed");
        assert_eq!(
            describe_error(&error),
            "error: merging the reports failed\n  because: cannot read `x.json`: no such file"
        );
        let silent = anyhow::Error::msg("").context("the linux leg cannot run");
        assert_eq!(describe_error(&silent), "error: the linux leg cannot run");
        assert!(describe_error(&anyhow::Error::msg("")).contains("without saying why"));
    }
}
