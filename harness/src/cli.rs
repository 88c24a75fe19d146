//! The `plugcheck` command line: `check` (the release gate), `list`, and the
//! hidden modes the harness re-executes itself in.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::cases::CaseSettings;
use crate::catalog::CaseId;
use crate::runner::{self, RunOptions};
use crate::worker::{self, WorkerArgs};
use crate::{os, table};

/// Exit codes of `plugcheck check`.
pub mod exit {
    /// Every plugin passed the gate.
    pub const PASSED: u8 = 0;
    /// At least one plugin failed the gate.
    pub const GATE_FAILED: u8 = 1;
    /// Bad usage, or the harness itself failed.
    pub const ERROR: u8 = 2;
}

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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the conformance suite over plugins; exits 1 when one breaks the contract.
    Check(CheckArgs),
    /// List the cases with their families and descriptions.
    List,
    #[command(name = "__worker", hide = true)]
    Worker(WorkerArgs),
    /// Open a plugin, look up its entry and call it: the cheapest process
    /// that touches a plugin, the floor `cargo xtask bench` measures against.
    #[command(name = "__probe", hide = true)]
    Probe { plugin: PathBuf },
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Plugin libraries to check (.so on Linux, .dll on Windows).
    #[arg(required = true, value_name = "PLUGIN")]
    plugins: Vec<PathBuf>,
    /// Run only these cases: ids or family names, comma-separated or repeated.
    #[arg(long, value_delimiter = ',', value_name = "CASE|FAMILY")]
    filter: Vec<String>,
    /// Also write the full report as JSON to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Time one case may take before its worker is killed (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// `load-time` warns when the first load plus init take longer.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    load_time_bound: Duration,
    /// Load/init/shutdown/close cycles `repeat-load` runs.
    #[arg(long, default_value_t = CaseSettings::default().repeat_cycles)]
    repeat_cycles: u32,
    /// Plugins checked at the same time [default: number of CPUs].
    #[arg(long)]
    jobs: Option<usize>,
    /// Count warnings as gate failures.
    #[arg(long)]
    deny_warnings: bool,
}

/// Runs the command line; prints an error once, here.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check(args),
        Command::List => list(),
        Command::Worker(args) => worker::serve(args).map(|()| exit::PASSED),
        Command::Probe { plugin } => probe(plugin),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}

fn check(args: CheckArgs) -> anyhow::Result<u8> {
    let cases = select_cases(&args.filter)?;
    let plugins = args
        .plugins
        .iter()
        .map(|plugin| {
            std::path::absolute(plugin)
                .with_context(|| format!("cannot make `{}` an absolute path", plugin.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let options = RunOptions {
        worker_exe: std::env::current_exe()
            .context("cannot find the plugcheck binary to re-execute")?,
        cases,
        timeout: args.timeout,
        settings: CaseSettings {
            load_time_bound_ms: args.load_time_bound.as_millis() as u64,
            repeat_cycles: args.repeat_cycles,
            grace_ms: CaseSettings::grace_for(args.timeout),
        },
        deny_warnings: args.deny_warnings,
        jobs: args.jobs.unwrap_or_else(|| match plugins.len() {
            1 => 1,
            _ => std::thread::available_parallelism().map_or(1, usize::from),
        }),
    };
    // Orphans a plugin leaves behind come to us, so they can be killed.
    os::become_subreaper();
    // Workers live in process groups of their own, which Ctrl-C does not
    // reach: on an interrupt, kill them, then leave.
    ctrlc::set_handler(|| {
        worker::kill_all();
        eprintln!("plugcheck: interrupted; every worker and its processes were killed");
        std::process::exit(130);
    })
    .context("cannot install the interrupt handler")?;
    say(&table::header(
        &format!("plugcheck {}", env!("CARGO_PKG_VERSION")),
        std::env::consts::OS,
        std::env::consts::ARCH,
        args.timeout.as_millis() as u64,
    ));
    let printer = InOrder::default();
    let report = runner::run_all(&plugins, &options, &|index, plugin| {
        printer.ready(index, table::plugin(plugin));
    })?;
    say(&table::summary(&report));
    if let Some(path) = &args.json {
        report.write_json(path)?;
        say(&format!("report written to {}\n", path.display()));
    }
    worker::wait_for_teardown();
    Ok(if report.gate_passed() {
        exit::PASSED
    } else {
        exit::GATE_FAILED
    })
}

/// Writes to stdout. A closed pipe (`plugcheck check … | head`) must not
/// turn a verdict into a panic, so write errors are ignored.
fn say(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Prints plugin tables in input order as they complete.
#[derive(Default)]
struct InOrder {
    state: Mutex<(usize, BTreeMap<usize, String>)>,
}

impl InOrder {
    fn ready(&self, index: usize, text: String) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (next, waiting) = &mut *state;
        waiting.insert(index, text);
        while let Some(text) = waiting.remove(next) {
            say(&text);
            *next += 1;
        }
    }
}

/// The cases `--filter` selects, in suite order.
fn select_cases(filter: &[String]) -> anyhow::Result<Vec<CaseId>> {
    if filter.is_empty() {
        return Ok(CaseId::ALL.to_vec());
    }
    for wanted in filter {
        let known = CaseId::ALL
            .iter()
            .any(|case| case.id() == wanted || case.family().to_string() == *wanted);
        if !known {
            bail!("unknown case or family `{wanted}` in --filter: `plugcheck list` shows them");
        }
    }
    Ok(CaseId::ALL
        .iter()
        .copied()
        .filter(|case| {
            filter
                .iter()
                .any(|wanted| case.id() == wanted || case.family().to_string() == *wanted)
        })
        .collect())
}

fn list() -> anyhow::Result<u8> {
    for case in CaseId::ALL {
        println!(
            "{:<16} {:<10} {}",
            case.id(),
            case.family(),
            case.description()
        );
    }
    Ok(exit::PASSED)
}

fn probe(plugin: PathBuf) -> anyhow::Result<u8> {
    // SAFETY: the probe is a throwaway process whose whole job is to load
    // the plugin.
    let library = unsafe { os::open_library(&plugin) }
        .map_err(|failure| anyhow::anyhow!("{}", failure.error.message))?;
    // SAFETY: the ABI's entry signature; the probe is only run on plugins.
    let entry =
        unsafe { library.get::<crate::loader::EntryFn>(plugcheck_abi::ENTRY_SYMBOL.as_bytes()) }
            .context("no plugcheck_entry")?;
    // SAFETY: as above.
    let descriptor = unsafe { entry() };
    Ok(if descriptor.is_null() {
        exit::GATE_FAILED
    } else {
        exit::PASSED
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_ids_and_families_in_suite_order() {
        let picked = select_cases(&["unload".into(), "load".into()]).unwrap();
        assert_eq!(picked, vec![CaseId::Load, CaseId::Unload]);
        let lookup = select_cases(&["lookup".into()]).unwrap();
        assert_eq!(lookup, vec![CaseId::LookupEntry, CaseId::LookupMethods]);
        let error = select_cases(&["nope".into()]).unwrap_err().to_string();
        assert!(
            error.contains("`nope`") && error.contains("plugcheck list"),
            "{error}"
        );
    }
}
