//! Runs the selected cases over plugins: one worker per plugin, reused
//! across cases and restarted after a crash or timeout; prerequisites
//! decide what is skipped. Emits reports; never prints.
//!
//! Beside it, what makes one run of several: `repeat` folds `--repeat`
//! runs into one report, `partition` cuts `--partition K/N` slices, and
//! `shard` merges the slices' reports back into one run.

pub mod head_start;
pub mod options;
pub mod partition;
mod plugin;
pub(crate) mod repeat;
pub mod shard;
pub mod timeline;

use options::RunOptions;
use plugin::{Attempt, Emit};

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::gate::judge;
use crate::gate::policy::Policy;
use crate::report::event::{Event, Reporters};
use crate::report::{Machine, PluginReport, Report};
use crate::worker::SpawnError;

/// Runs every plugin, `jobs` at a time, telling `reporters` as each finishes
/// (from the runner threads, in completion order). Reports keep input
/// order.
pub fn run_all(
    plugins: &[PathBuf],
    options: &RunOptions,
    reporters: &Reporters,
) -> Result<Report, SpawnError> {
    let platform = Machine::current();
    reporters.emit(&Event::RunStarted {
        plugins: plugins.len(),
        cases: options.cases.len(),
        platform: &platform,
        timeout_ms: options.timeout.as_millis() as u64,
    });
    let emit = |event: &Event<'_>| reporters.emit(event);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<PluginReport, SpawnError>>>> =
        Mutex::new(plugins.iter().map(|_| None).collect());
    let work = || {
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(plugin) = plugins.get(index) else {
                break;
            };
            let result = run_plugin_repeated(index, plugin, options, &emit);
            if let Ok(report) = &result {
                emit(&Event::PluginFinished { index, report });
            }
            results.lock().expect("no panics while holding")[index] = Some(result);
        }
    };
    let jobs = options.jobs.clamp(1, plugins.len().max(1));
    if jobs == 1 {
        work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(work);
            }
        });
    }
    let reports = results
        .into_inner()
        .expect("no panics while holding")
        .into_iter()
        .map(|result| result.expect("every plugin was run"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut report = Report {
        tool: format!("plugcheck {}", env!("CARGO_PKG_VERSION")),
        platform,
        timeout_ms: options.timeout.as_millis() as u64,
        plugins: reports,
        toolchain_probes: Vec::new(),
        policy: Policy::default(),
        waivers: Vec::new(),
        provenance: options.provenance.clone(),
    };
    judge::judge(&options.policy, &mut report, judge::today());
    // An interrupted run's results are not verdicts: nothing reports them.
    if !crate::worker::interrupted() {
        reporters.emit(&Event::RunFinished { report: &report });
    }
    Ok(report)
}

/// Runs the selected cases over one plugin: one batch per worker, a new
/// worker (and batch) only after a crash or timeout, or for a case that
/// must see the plugin's first load.
pub(crate) fn run_plugin(path: &Path, options: &RunOptions) -> Result<PluginReport, SpawnError> {
    plugin::run_cases(
        Attempt {
            index: 0,
            attempt: None,
        },
        path,
        options,
        &|_| {},
    )
}

/// The plugin's cases `options.repeat` times, each run in fresh workers,
/// as one judged report.
fn run_plugin_repeated(
    index: usize,
    path: &Path,
    options: &RunOptions,
    emit: Emit<'_>,
) -> Result<PluginReport, SpawnError> {
    let run = |attempt| plugin::run_cases(Attempt { index, attempt }, path, options, emit);
    let mut report = if options.repeat <= 1 {
        run(None)?
    } else {
        let runs = (1..=options.repeat)
            .map(|attempt| run(Some(attempt)))
            .collect::<Result<Vec<_>, _>>()?;
        crate::run::repeat::combine(runs).expect("at least two runs")
    };
    judge::judge_plugin(&options.policy, &mut report, judge::today());
    Ok(report)
}
