//! The `plugcheck` command line: `check` (the release gate), `watch`,
//! `list`, and the hidden modes the harness re-executes itself in.

mod call;
mod check;
mod foreign;
mod init;
mod merge;
mod probe;
mod prompt;
mod shared;
mod watch;

use shared::{exit, say};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::catalog::CaseId;
use crate::worker::{self, WorkerArgs};

#[derive(Debug, Parser)]
#[command(
    name = "plugcheck",
    version,
    about = "Conformance harness for native plugins (shared libraries with the plugcheck C ABI)",
    after_help = "Exit codes of `check`: 0 every plugin passed the gate, 1 a plugin failed it, 2 usage or harness error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: GlobalArgs,
}

/// The options every subcommand takes, wherever they stand.
#[derive(Debug, clap::Args)]
struct GlobalArgs {
    /// Colour verdicts: `auto` on a terminal (NO_COLOR and CLICOLOR_FORCE
    /// are honoured), `always`, or `never`.
    #[arg(long, value_enum, global = true, default_value_t = ColorWhen::Auto)]
    color: ColorWhen,
}

/// `plugcheck check …`, the command line a gate runs, parsed without
/// building the parsers of the other eight subcommands: a fifth of the
/// time to the worker's request. What it does not take as a check (help, a
/// usage error) goes to [`Cli`], which says it as it always did.
#[derive(Debug, Parser)]
#[command(name = "plugcheck")]
struct CheckCli {
    #[command(subcommand)]
    command: CheckOnly,
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
enum CheckOnly {
    Check(Box<check::CheckArgs>),
}

impl CheckCli {
    /// The command line as [`Cli`] parses it, when it is a valid `check`.
    fn parse_check(argv: &[std::ffi::OsString]) -> Option<Cli> {
        if command_word(argv.iter().cloned()).is_none_or(|word| word != "check") {
            return None;
        }
        let CheckCli { command, global } = CheckCli::try_parse_from(argv).ok()?;
        let CheckOnly::Check(args) = command;
        Some(Cli {
            command: Command::Check(args),
            global,
        })
    }
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Sets it for every stream anstream writes.
    fn apply(self) {
        let choice = match self {
            ColorWhen::Auto => anstream::ColorChoice::Auto,
            ColorWhen::Always => anstream::ColorChoice::Always,
            ColorWhen::Never => anstream::ColorChoice::Never,
        };
        choice.write_global();
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the conformance suite over plugins; exits 1 when one breaks the contract.
    Check(Box<check::CheckArgs>),
    /// Call one method of a plugin with one input and show what came back:
    /// output (text or hex), status, or how the worker died and where.
    Call(call::CallArgs),
    /// Write a starter gate file (plugcheck.toml) for a plugin: its settings,
    /// and a waiver for every case it does not pass today, each waiting
    /// for its reason.
    Init(init::InitArgs),
    /// Merge the JSON reports of a partitioned run's shards into one report,
    /// one JUnit file and one gate; exits 1 when a plugin failed it.
    Merge(merge::MergeArgs),
    /// Serve a plugin and hot-reload it whenever its build changes.
    Watch(watch::WatchArgs),
    /// List the cases with their families and descriptions.
    List,
    #[command(name = "__worker", hide = true)]
    Worker(WorkerArgs),
    /// Open a plugin, look up its entry and call it: the cheapest process
    /// that touches a plugin, the floor `cargo xtask bench` measures against.
    #[command(name = "__probe", hide = true)]
    Probe { plugin: PathBuf },
    /// Reload latency against its floor, in this process, as JSON.
    #[command(name = "__bench-reload", hide = true)]
    BenchReload(probe::BenchReloadArgs),
}

/// Runs the command line; prints an error once, here.
pub fn main() -> ExitCode {
    // A worker started as a program comes through here too: it is not the
    // parent.
    if std::env::args_os()
        .nth(1)
        .is_none_or(|command| command != "__worker")
    {
        crate::run::timeline::mark("parent:main");
    }
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(workers) = starts_workers(argv.iter().cloned()) {
        // First, while this process has one thread and has touched the
        // least memory: the spare (and the zygote it forks) are copies of
        // it, and every page they share is copied on its next write.
        crate::os::prepare_worker_starts(worker::forked_worker, workers == Workers::Several);
        crate::run::timeline::mark("parent:helpers-forked");
    }
    let cli = CheckCli::parse_check(&argv).map_or_else(|| Cli::try_parse_from(&argv), Ok);
    let cli = cli.unwrap_or_else(|error| {
        // `--help`, `--version` or a usage error: clap exits at once, and
        // the helpers go first.
        crate::os::end_worker_starts();
        error.exit()
    });
    crate::run::timeline::mark("parent:parsed");
    cli.global.color.apply();
    let code = run(cli.command);
    crate::os::end_worker_starts();
    crate::run::timeline::mark("parent:exit");
    ExitCode::from(code)
}

/// How many workers a command may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workers {
    /// `call`: one, and after a crash none.
    One,
    /// `check`, `init`, `watch`: another after a crash or a hang, one per
    /// plugin, per repeat, per watched version.
    Several,
}

/// Whether the command line names a command that judges plugins in
/// workers, and how many, read before clap parses it (see `main`).
fn starts_workers(argv: impl IntoIterator<Item = std::ffi::OsString>) -> Option<Workers> {
    let word = command_word(argv)?;
    if word == "call" {
        Some(Workers::One)
    } else if ["check", "init", "watch"]
        .iter()
        .any(|command| word == *command)
    {
        Some(Workers::Several)
    } else {
        None
    }
}

/// The subcommand's name, read without clap: the first word that is
/// neither an option nor `--color`'s value; none when an option other
/// than `--color` comes first.
fn command_word(argv: impl IntoIterator<Item = std::ffi::OsString>) -> Option<std::ffi::OsString> {
    let mut words = argv.into_iter().skip(1);
    while let Some(word) = words.next() {
        if word == "--color" {
            words.next();
        } else if !word.as_encoded_bytes().starts_with(b"-") {
            return Some(word);
        } else if !word.as_encoded_bytes().starts_with(b"--color=") {
            return None;
        }
    }
    None
}

impl Command {
    /// Whether the command judges plugins in workers, and how many.
    #[cfg(test)]
    fn starts_workers(&self) -> Option<Workers> {
        match self {
            Command::Call(_) => Some(Workers::One),
            Command::Check(_) | Command::Init(_) | Command::Watch(_) => Some(Workers::Several),
            _ => None,
        }
    }
}

/// Runs one command to its exit code; prints an error once, here.
fn run(command: Command) -> u8 {
    let result = match command {
        Command::Check(args) => check::run(*args),
        Command::Call(args) => call::run(args),
        Command::Init(args) => init::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Watch(args) => watch::run(args),
        Command::List => list(),
        Command::Worker(args) => Ok(worker::serve_to_code(args)),
        Command::Probe { plugin } => probe::probe(&plugin),
        Command::BenchReload(args) => probe::bench_reload(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            exit::ERROR
        }
    }
}

fn list() -> anyhow::Result<u8> {
    say(&list_text());
    Ok(exit::PASSED)
}

/// The catalog as `plugcheck list` prints it: a header, then a row per
/// case. Ids and families are padded as text (`Display` of a family
/// ignores width, which ran the family into the description).
fn list_text() -> String {
    let row = |case: &str, family: &str, what: &str| format!("{case:<28} {family:<10} {what}\n");
    let mut text = row("CASE", "FAMILY", "WHAT IT CHECKS");
    for case in CaseId::ALL {
        text.push_str(&row(
            case.id(),
            &case.family().to_string(),
            case.description(),
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[test]
    fn the_early_look_at_the_command_line_agrees_with_clap() {
        for line in [
            "plugcheck check a.so",
            "plugcheck --color never check a.so",
            "plugcheck --color=always call a.so greet",
            "plugcheck init a.so",
            "plugcheck watch a.so",
            "plugcheck list",
            "plugcheck merge a.json b.json",
            "plugcheck --color never merge check.json",
            "plugcheck __worker --connect 127.0.0.1:1 --token t --plugin check",
            "plugcheck __probe check",
        ] {
            let argv: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
            let parsed = super::Cli::try_parse_from(&argv).expect(line);
            assert_eq!(
                super::starts_workers(argv),
                parsed.command.starts_workers(),
                "{line}"
            );
        }
        assert_eq!(
            super::starts_workers(["plugcheck", "--version"].map(Into::into)),
            None
        );
    }

    /// The check-only parser takes a valid `check` exactly as the whole
    /// command line's parser does, and leaves everything else to it: other
    /// commands, help, and usage errors (whose messages it would word
    /// differently).
    #[test]
    fn a_check_parses_alike_with_either_parser_and_the_rest_goes_to_the_whole_one() {
        let argv =
            |line: &str| -> Vec<std::ffi::OsString> { line.split(' ').map(Into::into).collect() };
        for line in [
            "plugcheck check a.so",
            "plugcheck --color never check a.so b.so",
            "plugcheck check --color=always --filter load,reload --json r.json a.so",
            "plugcheck check --timeout 2s --repeat 3 --seed 7 --reload-to upgrade=b.so a.so",
            "plugcheck check --partition 2/3 --no-config --jobs 2 --platform windows a.dll",
        ] {
            let fast = super::CheckCli::parse_check(&argv(line)).expect(line);
            let whole = super::Cli::try_parse_from(argv(line)).expect(line);
            assert_eq!(format!("{fast:?}"), format!("{whole:?}"), "{line}");
        }
        for line in [
            "plugcheck check",
            "plugcheck check --help",
            "plugcheck check --no-such-option a.so",
            "plugcheck check --timeout soon a.so",
            "plugcheck --help",
            "plugcheck init a.so",
            "plugcheck list",
        ] {
            assert!(
                super::CheckCli::parse_check(&argv(line)).is_none(),
                "{line}"
            );
        }
    }

    /// Each default a user can change is said alike by `check --help`,
    /// `init`'s starter file and the README's table: the value in force.
    #[test]
    fn the_documented_defaults_are_the_ones_in_force() {
        use clap::CommandFactory;
        let defaults = crate::outcome::CaseSettings::default();
        let bound = humantime::format_duration(std::time::Duration::from_millis(
            defaults.load_time_bound_ms,
        ))
        .to_string();
        let given = [
            ("timeout", crate::outcome::DEFAULT_TIMEOUT.to_owned(), false),
            ("load-time-bound", bound, true),
            ("repeat-cycles", defaults.repeat_cycles.to_string(), false),
            ("reload-cycles", defaults.reload_cycles.to_string(), false),
            ("fuzz-inputs", defaults.fuzz_inputs.to_string(), false),
        ];
        let mut cli = super::Cli::command();
        let check = cli.find_subcommand_mut("check").unwrap();
        let report = crate::report::test_report("linux", &[("/p/x.so", &[("load", "pass")])]);
        let starter = super::init::starter(&report, &report.plugins[0], None, &[]);
        let readme = include_str!("../../../README.md");
        for (flag, value, quoted_in_toml) in given {
            let arg = check
                .get_arguments()
                .find(|arg| arg.get_long() == Some(flag))
                .unwrap_or_else(|| panic!("--{flag}"));
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(help.contains(&format!("else {value}]")), "--{flag}: {help}");
            let row = format!("| `--{flag} {value}` |");
            assert!(readme.contains(&row), "README lacks {row}");
            let toml = if quoted_in_toml {
                format!("\"{value}\"")
            } else {
                value.clone()
            };
            if flag != "timeout" {
                let line = format!("# {flag} = {toml} ");
                assert!(
                    starter.contains(&line),
                    "starter lacks `{line}`:\n{starter}"
                );
            }
        }
    }

    #[test]
    fn the_list_has_a_header_and_keeps_its_columns_apart() {
        let text = super::list_text();
        let mut lines = text.lines();
        assert!(lines.next().unwrap().starts_with("CASE "));
        for line in lines {
            let family = line.get(29..39).unwrap_or_default();
            assert!(
                family.ends_with(' ') && !family.trim().is_empty(),
                "family column of `{line}`"
            );
        }
    }
}
