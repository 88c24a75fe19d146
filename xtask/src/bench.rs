//! `cargo xtask bench`: what plugcheck costs, as ratios against a floor
//! measured in the same run on the same machine.
//!
//! - floor: the cheapest process that touches a plugin — `plugcheck
//!   __probe`, which opens it, looks up `plugcheck_entry` and calls it;
//! - suite: `plugcheck check` over one good plugin, whole process, minus
//!   the time the cases themselves worked (measured inside the worker).
//!   The target is overhead ≤ 3 floor spawns: one worker reused by every
//!   case, not a process per case;
//! - all fixtures: suite wall time, with the deliberate hang timeouts shown
//!   apart.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use plugcheck::report::{Report, Verdict};
use xshell::Shell;

use crate::conformance;
use crate::fixtures::{self, HOST_PLATFORM};

/// The overhead target of the foundation issue, in floor spawns.
const SUITE_TARGET: f64 = 3.0;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Runs of each measurement (floor and suite alternate).
    #[arg(long, default_value_t = 40)]
    pub runs: usize,
}

pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    let artifacts = fixtures::run(
        sh,
        &fixtures::Args {
            release: true,
            require_all: false,
        },
    )?;
    let echo = artifacts
        .built
        .iter()
        .find(|built| built.name == "echo")
        .context("the echo plugin was not built")?;
    let plugcheck = &artifacts.plugcheck;
    let scratch = scratch_dir()?;

    // Floor and suite runs alternate, so drift in the machine's load
    // (2 shared cores) hits both alike.
    let floor_once = || -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = Command::new(plugcheck)
            .arg("__probe")
            .arg(&echo.path)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!(
                "the floor probe failed on `{}`: {status}",
                echo.path.display()
            );
        }
        Ok(started.elapsed())
    };
    let suite_once = |json: Option<&Path>| -> anyhow::Result<Duration> {
        let mut command = Command::new(plugcheck);
        command.arg("check").arg(&echo.path).stdout(Stdio::null());
        if let Some(json) = json {
            command.arg("--json").arg(json);
        }
        let started = Instant::now();
        let status = command.status()?;
        let wall = started.elapsed();
        if !status.success() {
            bail!("`plugcheck check` failed on the echo plugin: {status}");
        }
        Ok(wall)
    };
    // Each suite run writes its JSON report, which says how long the cases
    // themselves worked (measured inside the worker): that run's overhead
    // is its wall time minus that work.
    let json = scratch.path().join("suite.json");
    floor_once()?;
    suite_once(Some(&json))?;
    let (mut floor, mut suite, mut work, mut overhead) = (vec![], vec![], vec![], vec![]);
    let mut cases = 0;
    let mut workers = 0;
    for _ in 0..args.runs.max(1) {
        floor.push(floor_once()?);
        let wall = suite_once(Some(&json))?;
        let report = Report::read_json(&json)?;
        let plugin = &report.plugins[0];
        cases = plugin.cases.len();
        workers = plugin.workers_started;
        let worked =
            Duration::from_micros(plugin.cases.iter().filter_map(|case| case.work_us).sum());
        suite.push(wall);
        work.push(worked);
        overhead.push(wall.saturating_sub(worked));
    }
    // The same suite without the report, to show what writing it costs.
    let mut without_json = (0..args.runs.max(1))
        .map(|_| suite_once(None))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let floor = Timing::of(&mut floor);
    let suite = Timing::of(&mut suite);
    let work = Timing::of(&mut work).median;
    let overhead = Timing::of(&mut overhead).median;
    let without_json = Timing::of(&mut without_json).median;
    let ratio = overhead.as_secs_f64() / floor.median.as_secs_f64();

    let report_path = scratch.path().join("all.json");
    let started = Instant::now();
    let all = conformance::run_suite(&artifacts, &report_path)?;
    let all_wall = started.elapsed();
    let hang_wait: u64 = all
        .plugins
        .iter()
        .flat_map(|plugin| &plugin.cases)
        .filter(|case| case.verdict == Verdict::TimedOut)
        .map(|case| case.duration_us)
        .sum();
    let hang_wait = Duration::from_micros(hang_wait);
    let processes: u32 = all
        .plugins
        .iter()
        .map(|plugin| plugin.workers_started)
        .sum();

    println!(
        "\nplugcheck bench · {HOST_PLATFORM} · release build · {} CPUs",
        cpus()
    );
    println!(
        "floor   spawn + open + plugcheck_entry ({} runs): median {}, p90 {}",
        args.runs,
        ms(floor.median),
        ms(floor.p90)
    );
    println!(
        "suite   `plugcheck check --json` over echo, {cases} cases, {workers} worker ({} runs): wall median {}, p90 {}; case work {}; overhead (wall − work, per run) {}",
        args.runs,
        ms(suite.median),
        ms(suite.p90),
        ms(work),
        ms(overhead)
    );
    println!(
        "        overhead = {ratio:.2}× floor (target ≤ {SUITE_TARGET}×: {}); per case {} beyond the two process starts",
        if ratio <= SUITE_TARGET {
            "met"
        } else {
            "NOT MET"
        },
        ms(overhead
            .saturating_sub(floor.median * 2)
            .checked_div(cases.max(1) as u32)
            .unwrap_or_default())
    );
    println!(
        "        the same without --json (no report written): wall median {}",
        ms(without_json)
    );
    println!(
        "all     {} plugins and fixtures: wall {}, of which {} waiting on deliberate hang timeouts ({} without); {processes} worker processes",
        all.plugins.len(),
        ms(all_wall),
        ms(hang_wait),
        ms(all_wall.saturating_sub(hang_wait))
    );
    if ratio > SUITE_TARGET {
        bail!("suite overhead {ratio:.2}× floor is over the {SUITE_TARGET}× target");
    }
    Ok(())
}

struct Timing {
    median: Duration,
    p90: Duration,
}

impl Timing {
    fn of(samples: &mut [Duration]) -> Timing {
        let median = median(samples);
        let p90 = samples[(samples.len() * 9 / 10).min(samples.len() - 1)];
        Timing { median, p90 }
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A scratch directory under target/, removed at the end.
fn scratch_dir() -> anyhow::Result<tempfile::TempDir> {
    let base = crate::project_root().join("target/plugcheck");
    std::fs::create_dir_all(&base)?;
    Ok(tempfile::Builder::new().prefix("bench-").tempdir_in(base)?)
}
