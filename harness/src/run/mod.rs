//! Runs the selected cases over plugins: one worker per plugin, reused
//! across cases and restarted after a crash or timeout; prerequisites
//! decide what is skipped. Emits reports; never prints.
//!
//! Beside it, what makes one run of several: `repeat` folds `--repeat`
//! runs into one report, `partition` cuts `--partition K/N` slices, and
//! `shard` merges the slices' reports back into one run.

pub mod partition;
pub mod repeat;
pub mod shard;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::catalog::CaseId;
use crate::gate::judge;
use crate::gate::policy::Policy;
use crate::outcome::{CaseSettings, Outcome};
use crate::plan::Ledger;
use crate::report::event::{Event, Reporters, WorkerStart};
use crate::report::provenance::Provenance;
use crate::report::verdict::Verdict;
use crate::report::{CapturedOutput, CaseReport, Platform, PluginInfo, PluginReport, Report};
use crate::worker::choice::{self, Choice};
use crate::worker::{Exchange, SpawnError, Worker};
use crate::{postmortem::death, postmortem::saved_input};

/// How a run is configured.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `plugcheck` binary to re-execute as the worker.
    pub worker_exe: PathBuf,
    /// Cases to run, in suite order.
    pub cases: Vec<CaseId>,
    pub timeout: Duration,
    pub settings: CaseSettings,
    /// What passes the gate.
    pub policy: Policy,
    /// Runs of each plugin's cases, each in fresh workers (`--repeat`):
    /// runs that disagree make a case flaky.
    pub repeat: u32,
    /// Plugins checked at the same time.
    pub jobs: usize,
    /// Where inputs that crash or hang a method are saved (none: they are
    /// not, and the report says so).
    pub inputs_dir: Option<PathBuf>,
    /// How the run was made, recorded in its report (none for a run no
    /// report of is kept, like a reload's pre-flight).
    pub provenance: Option<Provenance>,
}

/// Runs every plugin, `jobs` at a time, calling `on_done` as each finishes
/// (from the runner threads, in completion order). Reports keep input
/// order.
pub fn run_all(
    plugins: &[PathBuf],
    options: &RunOptions,
    reporters: &Reporters,
) -> Result<Report, SpawnError> {
    let platform = Platform::current();
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
pub fn run_plugin(path: &Path, options: &RunOptions) -> Result<PluginReport, SpawnError> {
    run_plugin_reporting(
        PluginRun {
            index: 0,
            attempt: None,
        },
        path,
        options,
        &|_| {},
    )
}

/// Which plugin of the run, and which of its repeated runs (none outside
/// `--repeat`).
#[derive(Debug, Clone, Copy)]
struct PluginRun {
    index: usize,
    attempt: Option<u32>,
}

/// The plugin's cases `options.repeat` times, each run in fresh workers,
/// as one judged report.
fn run_plugin_repeated(
    index: usize,
    path: &Path,
    options: &RunOptions,
    emit: &(dyn Fn(&Event<'_>) + Sync),
) -> Result<PluginReport, SpawnError> {
    let run = |attempt| run_plugin_reporting(PluginRun { index, attempt }, path, options, emit);
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

/// [`run_plugin`], saying what happens as `index`'s events.
fn run_plugin_reporting(
    run: PluginRun,
    path: &Path,
    options: &RunOptions,
    emit: &(dyn Fn(&Event<'_>) + Sync),
) -> Result<PluginReport, SpawnError> {
    let index = run.index;
    emit(&Event::PluginStarted { index, path });
    let started = Instant::now();
    let program = match choice::for_plugin(path, &options.worker_exe) {
        Choice::Worker(program) => program,
        Choice::Refused(outcome) => {
            return Ok(refused(index, path, outcome, options, started, emit));
        }
    };
    // Kept until the plugin is done: the file the Go worker reads.
    let series = fuzz_series(&program, options);
    let mut settings = options.settings.clone();
    settings.fuzz_series = series.as_ref().map(|file| file.path().to_owned());
    let mut why_next_worker = WorkerStart::First;
    let mut ledger = Ledger::default();
    let mut cases: Vec<CaseReport> = Vec::new();
    let mut info: Option<PluginInfo> = None;
    let mut worker: Option<Worker> = None;
    // Per answer of the current worker, in order: the report it belongs to
    // (none for a case the worker did not run), for its share of the
    // output.
    let mut slots: Vec<Option<usize>> = Vec::new();
    let mut workers_started = 0;
    let mut queue: VecDeque<CaseId> = options.cases.iter().copied().collect();
    while let Some(&first) = queue.front() {
        let case_started = Instant::now();
        // Cases the verdicts so far already rule out need no worker.
        if let Some(skip) = ledger.blocked(first) {
            queue.pop_front();
            ledger.record(first, &skip);
            emit(&Event::CaseFinished {
                index,
                case: first,
                verdict: skip.verdict,
            });
            cases.push(case_report(first, skip, case_started, None));
            continue;
        }
        if first.needs_fresh_process() && worker.as_ref().is_some_and(Worker::has_loaded) {
            finish(worker.take().expect("checked"), &mut cases, &mut slots);
            why_next_worker = WorkerStart::FreshProcess { case: first };
        }
        let batch_len = batch_len(queue.make_contiguous(), program.applies_ledger, &ledger);
        let batch: Vec<CaseId> = queue.drain(..batch_len).collect();
        let active = match &mut worker {
            Some(active) => active,
            None => {
                workers_started += 1;
                emit(&Event::WorkerStarted {
                    index,
                    why: why_next_worker,
                });
                worker.insert(spawn_worker(
                    &program.exe,
                    path,
                    run.attempt,
                    options.settings.scratch.as_deref(),
                )?)
            }
        };
        active.start(&batch, &ledger, &settings);
        let mut case_started = case_started;
        let mut rest = batch.iter().copied();
        while let Some(case) = rest.next() {
            let active = worker.as_mut().expect("alive while its batch runs");
            emit(&Event::CaseStarted { index, case });
            let outcome = match active.next(case, options.timeout) {
                Exchange::Done { not_run: true, .. } => {
                    // The worker stopped its batch after a failure: the
                    // ledger skips what depends on it; the rest goes back
                    // to the queue, in order, once the batch is drained.
                    slots.push(None);
                    let Some(skip) = ledger.blocked(case) else {
                        let unrun: Vec<CaseId> = std::iter::once(case).chain(rest).collect();
                        drain(
                            &mut worker,
                            &unrun[1..],
                            options.timeout,
                            &mut cases,
                            &mut slots,
                        );
                        for &case in unrun.iter().rev() {
                            queue.push_front(case);
                        }
                        break;
                    };
                    ledger.record(case, &skip);
                    emit(&Event::CaseFinished {
                        index,
                        case,
                        verdict: skip.verdict,
                    });
                    cases.push(case_report(case, skip, case_started, None));
                    case_started = Instant::now();
                    continue;
                }
                Exchange::Done {
                    result,
                    work_us,
                    calls,
                    ..
                } => {
                    if result.plugin.is_some() {
                        info = result.plugin;
                    }
                    let mut outcome = result.outcome;
                    saved_input::keep_reported(
                        &mut outcome,
                        &calls,
                        path,
                        options.inputs_dir.as_deref(),
                        options.settings.seed,
                        options.timeout,
                    );
                    ledger.record(case, &outcome);
                    emit(&Event::CaseFinished {
                        index,
                        case,
                        verdict: outcome.verdict,
                    });
                    slots.push(Some(cases.len()));
                    cases.push(case_report(case, outcome, case_started, Some(work_us)));
                    case_started = Instant::now();
                    continue;
                }
                ended => {
                    // The worker is gone: its output is complete, and this
                    // case's share of it may explain the end.
                    let output =
                        finish(worker.take().expect("ran the case"), &mut cases, &mut slots);
                    let circumstances = death::Circumstances {
                        case,
                        plugin: path,
                        timeout: options.timeout,
                        settings: &options.settings,
                        inputs_dir: options.inputs_dir.as_deref(),
                    };
                    let mut outcome = death::outcome(ended, &output, &circumstances);
                    outcome.output = output;
                    outcome
                }
            };
            // The rest of the batch goes to a new worker.
            for case in rest.rev() {
                queue.push_front(case);
            }
            ledger.record(case, &outcome);
            emit(&Event::CaseFinished {
                index,
                case,
                verdict: outcome.verdict,
            });
            why_next_worker = WorkerStart::Replacing {
                after: case,
                verdict: outcome.verdict,
            };
            cases.push(case_report(case, outcome, case_started, None));
            break;
        }
    }
    if let Some(worker) = worker {
        finish(worker, &mut cases, &mut slots);
    }
    death::explain_once(&mut cases, death::ALLOCATOR_ABORT);
    let tally = judge::tally(&cases, &Policy::default());
    Ok(PluginReport {
        path: path.to_owned(),
        plugin: info,
        cases,
        tally,
        workers_started,
        duration_us: started.elapsed().as_micros() as u64,
        worker: program.described,
    })
}

/// The report of a plugin no worker can judge here: its first case says
/// why, the others are skipped behind it.
fn refused(
    index: usize,
    path: &Path,
    outcome: Outcome,
    options: &RunOptions,
    started: Instant,
    emit: &(dyn Fn(&Event<'_>) + Sync),
) -> PluginReport {
    let mut cases = Vec::new();
    // A failure the parent diagnosed from the file (a forged Go plugin)
    // skips the cases behind it as a worker's failure would: same reasons.
    let mut ledger = (outcome.verdict == Verdict::Fail).then(Ledger::default);
    let mut refusal = Some(outcome);
    let first = options.cases.first().copied();
    for &case in &options.cases {
        let behind = ledger.as_ref().and_then(|ledger| ledger.blocked(case));
        let outcome = refusal.take().or(behind).unwrap_or_else(|| {
            let first = first.expect("a case came first");
            Outcome::skipped(format!(
                "`{first}` {}: see there",
                cases
                    .first()
                    .map_or(Verdict::Fail, |report: &CaseReport| report.verdict)
                    .past_tense()
            ))
            .with_detail(|detail| detail.prerequisite = Some(first))
        });
        if let Some(ledger) = &mut ledger {
            ledger.record(case, &outcome);
        }
        emit(&Event::CaseFinished {
            index,
            case,
            verdict: outcome.verdict,
        });
        cases.push(case_report(case, outcome, Instant::now(), None));
    }
    let tally = judge::tally(&cases, &Policy::default());
    PluginReport {
        path: path.to_owned(),
        plugin: None,
        cases,
        tally,
        workers_started: 0,
        duration_us: started.elapsed().as_micros() as u64,
        worker: None,
    }
}

/// The fuzz inputs as a file in the run's scratch directory, for a worker
/// that reads them rather than making them (the Go worker), when a case
/// that uses them is to run (`fuzz-methods`; `state-roundtrip` drives the
/// state with them). None when it cannot be written: the worker then says
/// it got no inputs.
fn fuzz_series(
    program: &choice::WorkerProgram,
    options: &RunOptions,
) -> Option<tempfile::NamedTempFile> {
    let uses_series = [CaseId::FuzzMethods, CaseId::StateRoundtrip];
    let wanted =
        program.reads_fuzz_series && options.cases.iter().any(|case| uses_series.contains(case));
    let scratch = options.settings.scratch.as_deref().filter(|_| wanted)?;
    let mut file = tempfile::Builder::new()
        .prefix("fuzz-series-")
        .tempfile_in(scratch)
        .ok()?;
    let settings = &options.settings;
    crate::fuzz::write_series(file.as_file_mut(), settings.seed, settings.fuzz_inputs).ok()?;
    Some(file)
}

/// How many of `cases` (the queue) go in the next batch: up to the next
/// case that needs a fresh process; for a worker that does not apply the
/// ledger itself (the Go worker), also up to the first case the ledger
/// already skips. Such a worker stops its batch after a failure and
/// answers the rest as not run; the parent then decides what is skipped
/// and sends the rest again.
fn batch_len(cases: &[CaseId], worker_applies_ledger: bool, ledger: &Ledger) -> usize {
    let mut len = 1;
    while let Some(&case) = cases.get(len) {
        let decided_here = !worker_applies_ledger && ledger.blocked(case).is_some();
        if case.needs_fresh_process() || decided_here {
            break;
        }
        len += 1;
    }
    len
}

/// Starts a worker, trying again a little later when process creation
/// itself fails: Wine now and then refuses a CreateProcess right after a
/// Job Object was terminated (ERROR_INTERNAL_ERROR, 1359). A start that
/// keeps failing is the harness's error, reported as such.
fn spawn_worker(
    exe: &Path,
    plugin: &Path,
    attempt: Option<u32>,
    scratch: Option<&Path>,
) -> Result<Worker, SpawnError> {
    let environment: Vec<(&str, String)> = attempt
        .map(|attempt| (crate::run::repeat::ATTEMPT_VARIABLE, attempt.to_string()))
        .into_iter()
        .collect();
    let mut delay = Duration::from_millis(20);
    for _ in 0..3 {
        match Worker::spawn(exe, plugin, &environment, scratch) {
            Err(SpawnError::Start { .. }) => std::thread::sleep(delay),
            other => return other,
        }
        delay *= 5;
    }
    Worker::spawn(exe, plugin, &environment, scratch)
}

/// Ends a worker (its whole tree killed) and gives each case it answered
/// its share of the worker's output (`slots`: per answer, the report it
/// belongs to). A worker that died mid-case has one share more: it is
/// returned, for that case.
fn finish(
    worker: Worker,
    cases: &mut [CaseReport],
    slots: &mut Vec<Option<usize>>,
) -> CapturedOutput {
    let (_, outputs) = worker.finish();
    let mut outputs = outputs.into_iter();
    for slot in slots.drain(..) {
        let output = outputs.next().unwrap_or_default();
        if let Some(report) = slot.and_then(|slot| cases.get_mut(slot)) {
            report.output = output;
        }
    }
    outputs.next().unwrap_or_default()
}

/// Reads the answers to `unrun`, the cases of a batch a worker stopped
/// before (each comes back as not run), so the next batch starts on a
/// clean channel. A worker that ends instead is finished — the cases it
/// did answer keep their output; that of the case it ended in belongs to
/// no report — and the cases go to a new one.
fn drain(
    worker: &mut Option<Worker>,
    unrun: &[CaseId],
    timeout: Duration,
    cases: &mut [CaseReport],
    slots: &mut Vec<Option<usize>>,
) {
    for &case in unrun {
        let Some(active) = worker.as_mut() else {
            return;
        };
        match active.next(case, timeout) {
            Exchange::Done { .. } => slots.push(None),
            _ => {
                finish(worker.take().expect("checked"), cases, slots);
                return;
            }
        }
    }
}

fn case_report(
    case: CaseId,
    outcome: Outcome,
    started: Instant,
    work_us: Option<u64>,
) -> CaseReport {
    CaseReport {
        id: case,
        family: case.family(),
        verdict: outcome.verdict,
        reason: outcome.reason,
        detail: *outcome.detail,
        output: outcome.output,
        duration_us: started.elapsed().as_micros() as u64,
        work_us,
        waiver: None,
        attempts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::batch_len;
    use crate::catalog::CaseId;
    use crate::outcome::Outcome;
    use crate::plan::Ledger;

    #[test]
    fn batches_run_up_to_the_next_case_that_needs_a_fresh_process() {
        let all = CaseId::ALL;
        let ledger = Ledger::default();
        for applies_ledger in [true, false] {
            assert_eq!(
                batch_len(all, applies_ledger, &ledger),
                all.len(),
                "one batch"
            );
            let again = [CaseId::Init, CaseId::Load, CaseId::Selftest];
            assert_eq!(
                batch_len(&again, applies_ledger, &ledger),
                1,
                "load needs its own worker"
            );
        }
    }

    #[test]
    fn a_case_the_ledger_already_skips_starts_a_batch_of_its_own() {
        let mut ledger = Ledger::default();
        ledger.record(CaseId::Shutdown, &Outcome::fail("a goroutine left"));
        let rest = [CaseId::LoadTime, CaseId::RepeatLoad, CaseId::ReloadCycles];
        assert_eq!(
            batch_len(&rest, false, &ledger),
            1,
            "repeat-load is the parent's to skip"
        );
        assert_eq!(
            batch_len(&rest, true, &ledger),
            3,
            "the Rust worker skips it itself"
        );
    }
}

/// The pre-flight plugcheck hands the reload engine: the new build is
/// loaded and initialised in an isolated worker (this binary), and the
/// first failing step, or a crash, is the answer. Costs one process start
/// per reload; the worker is gone (and reaped) when it answers.
#[derive(Debug, Clone)]
pub struct IsolatedPreflight {
    pub worker_exe: PathBuf,
    /// Time the pre-flight may take.
    pub timeout: Duration,
    /// Where the pre-flight worker's directory is made (the watch's
    /// scratch, which an interrupt removes); the system's temporary
    /// directory when none.
    pub scratch: Option<PathBuf>,
}

impl crate::reload::Preflight for IsolatedPreflight {
    fn check(&self, build: &Path) -> Result<(), Outcome> {
        let upto = CaseId::ALL
            .iter()
            .position(|case| *case == CaseId::Init)
            .expect("init is a case");
        let options = RunOptions {
            worker_exe: self.worker_exe.clone(),
            cases: CaseId::ALL[..=upto].to_vec(),
            timeout: self.timeout,
            settings: CaseSettings {
                scratch: self.scratch.clone(),
                ..CaseSettings::default()
            },
            policy: Policy::default(),
            repeat: 1,
            jobs: 1,
            inputs_dir: None,
            provenance: None,
        };
        let report = run_plugin(build, &options).map_err(|error| {
            Outcome::fail(format!("the pre-flight worker did not start: {error}"))
        })?;
        crate::worker::wait_for_teardown();
        match report.cases.into_iter().find(|case| {
            !case.verdict.satisfies_prerequisite()
                && case.verdict != crate::report::verdict::Verdict::Skipped
        }) {
            None => Ok(()),
            Some(case) => Err(Outcome::as_reported(
                case.verdict,
                format!(
                    "`{}` {}: {}",
                    case.id,
                    case.verdict.past_tense(),
                    case.reason
                ),
                case.detail,
                case.output,
            )),
        }
    }
}
