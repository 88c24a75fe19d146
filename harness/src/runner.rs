//! Runs the selected cases over plugins: one worker per plugin, reused
//! across cases and restarted after a crash or timeout; prerequisites
//! decide what is skipped. Emits reports; never prints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::cases::{CaseSettings, Outcome};
use crate::catalog::CaseId;
use crate::report::{
    CapturedOutput, CaseReport, Detail, Gate, Platform, PluginInfo, PluginReport, Report, Verdict,
    human_ms,
};
use crate::termination::Termination;
use crate::worker::{Exchange, SpawnError, Worker};

/// How a run is configured.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `plugcheck` binary to re-execute as the worker.
    pub worker_exe: PathBuf,
    /// Cases to run, in suite order.
    pub cases: Vec<CaseId>,
    pub timeout: Duration,
    pub settings: CaseSettings,
    pub deny_warnings: bool,
    /// Plugins checked at the same time.
    pub jobs: usize,
}

/// Runs every plugin, `jobs` at a time, calling `on_done` as each finishes
/// (from worker threads, in completion order). Reports keep input order.
pub fn run_all(
    plugins: &[PathBuf],
    options: &RunOptions,
    on_done: &(dyn Fn(usize, &PluginReport) + Sync),
) -> Result<Report, SpawnError> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<PluginReport, SpawnError>>>> =
        Mutex::new(plugins.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.clamp(1, plugins.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(plugin) = plugins.get(index) else {
                        break;
                    };
                    let result = run_plugin(plugin, options);
                    if let Ok(report) = &result {
                        on_done(index, report);
                    }
                    results.lock().expect("no panics while holding")[index] = Some(result);
                }
            });
        }
    });
    let reports = results
        .into_inner()
        .expect("no panics while holding")
        .into_iter()
        .map(|result| result.expect("every plugin was run"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Report {
        tool: format!("plugcheck {}", env!("CARGO_PKG_VERSION")),
        platform: Platform::current(),
        timeout_ms: options.timeout.as_millis() as u64,
        plugins: reports,
    })
}

/// Runs the selected cases over one plugin.
pub fn run_plugin(path: &Path, options: &RunOptions) -> Result<PluginReport, SpawnError> {
    let started = Instant::now();
    let mut verdicts: HashMap<CaseId, (Verdict, String)> = HashMap::new();
    let mut cases = Vec::new();
    let mut info: Option<PluginInfo> = None;
    let mut worker: Option<Worker> = None;
    let mut workers_started = 0;
    for &case in &options.cases {
        let case_started = Instant::now();
        if let Some(skip) = blocked_by(case, &verdicts) {
            verdicts.insert(case, (skip.verdict, skip.reason.clone()));
            cases.push(case_report(
                case,
                skip,
                CapturedOutput::default(),
                case_started,
            ));
            continue;
        }
        if case.needs_fresh_process() && worker.as_ref().is_some_and(Worker::has_loaded) {
            worker.take().expect("checked").finish();
        }
        let active = match &mut worker {
            Some(active) => active,
            None => {
                workers_started += 1;
                worker.insert(Worker::spawn(&options.worker_exe, path)?)
            }
        };
        let (outcome, output) = match active.run(case, options.settings, options.timeout) {
            Exchange::Done { result, output } => {
                if result.plugin.is_some() {
                    info = result.plugin;
                }
                (result.outcome, output)
            }
            Exchange::Crashed {
                termination,
                output,
            } => {
                worker = None;
                (crashed(case, termination), output)
            }
            Exchange::TimedOut { output } => {
                worker = None;
                (timed_out(case, options.timeout), output)
            }
            Exchange::Broken { problem, output } => {
                worker = None;
                let outcome = Outcome {
                    verdict: Verdict::Crashed,
                    reason: format!(
                        "the worker's answer was unreadable ({problem}); the plugin may have written to the harness's channel"
                    ),
                    detail: Detail::default(),
                };
                (outcome, output)
            }
        };
        verdicts.insert(case, (outcome.verdict, outcome.reason.clone()));
        cases.push(case_report(case, outcome, output, case_started));
    }
    if let Some(worker) = worker {
        worker.finish();
    }
    let gate = Gate::tally(&cases, options.deny_warnings);
    Ok(PluginReport {
        path: path.to_owned(),
        plugin: info,
        cases,
        gate,
        workers_started,
        duration_us: started.elapsed().as_micros() as u64,
    })
}

/// A skip outcome when one of the case's prerequisites did not pass.
fn blocked_by(case: CaseId, verdicts: &HashMap<CaseId, (Verdict, String)>) -> Option<Outcome> {
    case.prerequisites().iter().find_map(|prerequisite| {
        let (verdict, _) = verdicts.get(prerequisite)?;
        (!verdict.satisfies_prerequisite()).then(|| {
            Outcome::skipped(format!("prerequisite `{prerequisite}` {verdict}"))
                .with_detail(|detail| detail.prerequisite = Some(*prerequisite))
        })
    })
}

fn crashed(case: CaseId, termination: Termination) -> Outcome {
    Outcome {
        verdict: Verdict::Crashed,
        reason: format!(
            "the worker {} during `{case}`; the harness carried on in a new worker",
            termination.describe()
        ),
        detail: Detail {
            termination: Some(termination),
            ..Detail::default()
        },
    }
}

fn timed_out(case: CaseId, timeout: Duration) -> Outcome {
    let after_ms = timeout.as_millis() as u64;
    Outcome {
        verdict: Verdict::TimedOut,
        reason: format!(
            "`{case}` did not finish within {}; the worker and its process tree were killed",
            human_ms(after_ms)
        ),
        detail: Detail {
            termination: Some(Termination::TimedOut { after_ms }),
            ..Detail::default()
        },
    }
}

fn case_report(
    case: CaseId,
    outcome: Outcome,
    output: CapturedOutput,
    started: Instant,
) -> CaseReport {
    CaseReport {
        id: case,
        family: case.family(),
        verdict: outcome.verdict,
        reason: outcome.reason,
        detail: outcome.detail,
        output,
        duration_us: started.elapsed().as_micros() as u64,
    }
}
