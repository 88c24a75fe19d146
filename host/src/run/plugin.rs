//! One plugin's run, read top to bottom: its cases go to a worker batch by
//! batch; a case the verdicts so far already rule out needs no worker; a
//! worker that crashes or hangs is replaced for the cases left, and a case
//! that must see the plugin's first load gets a fresh one. Every verdict is
//! recorded one way ([`PluginRun::record`]): the ledger, the event, the
//! report.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cases::case_timeout;
use crate::catalog::CaseId;
use crate::gate::judge;
use crate::gate::policy::Policy;
use crate::inspect::file::Fingerprint;
use crate::outcome::{CaseResult, CaseSettings, Outcome};
use crate::plan::Ledger;
use crate::postmortem::{death, saved_input};
use crate::report::event::{Event, WorkerStart};
use crate::report::verdict::Verdict;
use crate::report::{CapturedOutput, CaseReport, PluginInfo, PluginReport};
use crate::worker::choice::{self, Choice, WorkerProgram};
use crate::worker::{CallTrail, Exchange, SpawnError, Worker};

use super::options::RunOptions;
use super::timeline;

/// Where events go: the run's reporters, or nowhere.
pub(super) type Emit<'a> = &'a (dyn Fn(&Event<'_>) + Sync);

/// Which plugin of the run, and which of its repeated runs (none outside
/// `--repeat`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Attempt {
    pub index: usize,
    pub attempt: Option<u32>,
}

/// Runs the cases over the plugin at `path`: its report, not yet judged by
/// the gate (the caller judges the combined runs once).
pub(super) fn run_cases(
    which: Attempt,
    path: &Path,
    options: &RunOptions,
    emit: Emit<'_>,
) -> Result<PluginReport, SpawnError> {
    emit(&Event::PluginStarted {
        index: which.index,
        path,
    });
    let started = Instant::now();
    let chosen = match options.head_start.program_for(path) {
        Some(program) => Choice::Worker(program),
        None => choice::for_plugin(path, &options.worker_exe),
    };
    let program = match chosen {
        Choice::Worker(program) => program,
        Choice::Refused(outcome) => {
            return Ok(refused(which.index, path, outcome, options, started, emit));
        }
    };
    let mut run = PluginRun::new(which, path, options, emit, program);
    while let Some(&next) = run.queue.front() {
        match run.ledger.blocked(next) {
            Some(skip) => {
                run.queue.pop_front();
                run.record(next, skip, Instant::now(), None);
            }
            None => run.run_batch()?,
        }
    }
    Ok(run.into_report(started))
}

/// The state of one plugin's run between batches.
struct PluginRun<'a> {
    which: Attempt,
    path: &'a Path,
    options: &'a RunOptions,
    emit: Emit<'a>,
    program: WorkerProgram,
    /// The run's settings, with the fuzz series file for a worker that
    /// reads it.
    settings: CaseSettings,
    /// Kept until the plugin is done: the file the Go worker reads.
    _series: Option<tempfile::TempPath>,
    /// Cases still to run, in suite order.
    queue: VecDeque<CaseId>,
    ledger: Ledger,
    cases: Vec<CaseReport>,
    info: Option<PluginInfo>,
    worker: Option<Worker>,
    /// Per answer of the current worker, in order: the report it belongs
    /// to (none for a case the worker did not run), for its share of the
    /// output.
    slots: Vec<Option<usize>>,
    workers_started: u32,
    why_next_worker: WorkerStart,
    /// The build, hashed before any worker of the run loaded it (a head
    /// start's worker boots meanwhile, and loads nothing before its first
    /// batch): a plugin cannot rewrite the bytes its report names.
    build: std::cell::OnceCell<Option<Fingerprint>>,
}

impl<'a> PluginRun<'a> {
    fn new(
        which: Attempt,
        path: &'a Path,
        options: &'a RunOptions,
        emit: Emit<'a>,
        program: WorkerProgram,
    ) -> PluginRun<'a> {
        let series = fuzz_series(&program, options);
        let mut settings = options.settings.clone();
        settings.fuzz_series = series.as_ref().map(|path| path.to_path_buf());
        PluginRun {
            which,
            path,
            options,
            emit,
            program,
            settings,
            _series: series,
            queue: options.cases.iter().copied().collect(),
            ledger: Ledger::default(),
            cases: Vec::new(),
            info: None,
            worker: None,
            slots: Vec::new(),
            workers_started: 0,
            why_next_worker: WorkerStart::First,
            build: std::cell::OnceCell::new(),
        }
    }

    /// Runs the next batch on one worker and records each answer. A worker
    /// that stops its batch or dies ends it; what it did not run goes back
    /// to the queue, in order.
    fn run_batch(&mut self) -> Result<(), SpawnError> {
        let mut case_started = Instant::now();
        let first = *self.queue.front().expect("a case is queued");
        if first.needs_fresh_process() && self.worker.as_ref().is_some_and(Worker::has_loaded) {
            self.retire_worker();
            self.why_next_worker = WorkerStart::FreshProcess { case: first };
        }
        let len = batch_len(
            self.queue.make_contiguous(),
            self.program.applies_ledger,
            &self.ledger,
        );
        let batch: Vec<CaseId> = self.queue.drain(..len).collect();
        self.build
            .get_or_init(|| fingerprint(self.path, self.options));
        self.start_worker()?;
        let worker = self.worker.as_mut().expect("just started");
        worker.start(&batch, &self.ledger, &self.settings);
        for (at, &case) in batch.iter().enumerate() {
            let rest = &batch[at + 1..];
            (self.emit)(&Event::CaseStarted {
                index: self.which.index,
                case,
            });
            let exchange = self
                .worker
                .as_mut()
                .expect("alive while its batch runs")
                .next(case, case_timeout(case, self.options.timeout));
            match exchange {
                Exchange::Done { not_run: true, .. } => {
                    if !self.not_run(case, rest, case_started) {
                        return Ok(());
                    }
                }
                Exchange::Done {
                    result,
                    work_us,
                    calls,
                    ..
                } => self.answered(case, result, work_us, &calls, case_started),
                ended => {
                    self.worker_ended(case, ended, rest, case_started);
                    return Ok(());
                }
            }
            case_started = Instant::now();
        }
        Ok(())
    }

    /// The worker stopped its batch after a failure and did not run `case`:
    /// the ledger skips it if it depends on that failure (`true`: the batch
    /// goes on); otherwise the batch is drained and `case` and the rest go
    /// back to the queue (`false`).
    fn not_run(&mut self, case: CaseId, rest: &[CaseId], started: Instant) -> bool {
        self.slots.push(None);
        match self.ledger.blocked(case) {
            Some(skip) => {
                self.record(case, skip, started, None);
                true
            }
            None => {
                self.drain(rest);
                self.requeue(std::iter::once(case).chain(rest.iter().copied()));
                false
            }
        }
    }

    /// The worker answered `case`: the plugin's description if it sent
    /// one, the input a method crashed or hung on saved, the verdict
    /// recorded with its share of the output to come.
    fn answered(
        &mut self,
        case: CaseId,
        result: CaseResult,
        work_us: u64,
        calls: &CallTrail,
        started: Instant,
    ) {
        if result.plugin.is_some() {
            self.info = result.plugin;
        }
        let mut outcome = result.outcome;
        saved_input::keep_reported(
            &mut outcome,
            calls,
            self.path,
            self.options.inputs_dir.as_deref(),
            self.options.settings.seed,
            self.options.timeout,
        );
        let report = self.record(case, outcome, started, Some(work_us));
        self.slots.push(Some(report));
    }

    /// The worker died, hung or was hijacked in `case`: its output is
    /// complete, and this case's share of it may explain the end. The rest
    /// of the batch goes to a new worker, which says why it started.
    fn worker_ended(&mut self, case: CaseId, ended: Exchange, rest: &[CaseId], started: Instant) {
        let output = self.retire_worker();
        let circumstances = death::Circumstances {
            case,
            plugin: self.path,
            timeout: case_timeout(case, self.options.timeout),
            settings: &self.options.settings,
            inputs_dir: self.options.inputs_dir.as_deref(),
        };
        let mut outcome = death::outcome(ended, &output, &circumstances);
        outcome.output = output;
        self.requeue(rest.iter().copied());
        self.why_next_worker = WorkerStart::Replacing {
            after: case,
            verdict: outcome.verdict,
        };
        self.record(case, outcome, started, None);
    }

    /// Starts a worker (announced with why) when there is none.
    fn start_worker(&mut self) -> Result<(), SpawnError> {
        if self.worker.is_none() {
            self.workers_started += 1;
            (self.emit)(&Event::WorkerStarted {
                index: self.which.index,
                why: self.why_next_worker,
            });
            let started_ahead =
                self.options
                    .head_start
                    .take(self.path, &self.program.exe, self.which.attempt);
            let worker = match started_ahead {
                Some(worker) => worker?,
                None => spawn_worker(&self.program.exe, self.path, self.which.attempt)?,
            };
            self.worker = Some(worker);
        }
        Ok(())
    }

    /// A case's verdict, recorded: the ledger learns it, the reporters
    /// hear it, the report keeps it (at the returned index).
    fn record(
        &mut self,
        case: CaseId,
        outcome: Outcome,
        started: Instant,
        work_us: Option<u64>,
    ) -> usize {
        timeline::mark("parent:case-recorded");
        self.ledger.record(case, &outcome);
        (self.emit)(&Event::CaseFinished {
            index: self.which.index,
            case,
            verdict: outcome.verdict,
        });
        self.cases
            .push(case_report(case, outcome, started, work_us));
        self.cases.len() - 1
    }

    /// Puts `cases` back at the front of the queue, in their order.
    fn requeue(&mut self, cases: impl DoubleEndedIterator<Item = CaseId>) {
        for case in cases.rev() {
            self.queue.push_front(case);
        }
    }

    /// Reads the answers to `unrun`, the cases of a batch the worker
    /// stopped before (each comes back as not run), so the next batch
    /// starts on a clean channel. A worker that ends instead is retired —
    /// the cases it did answer keep their output; that of the case it ended
    /// in belongs to no report — and the cases go to a new one.
    fn drain(&mut self, unrun: &[CaseId]) {
        for &case in unrun {
            let Some(active) = self.worker.as_mut() else {
                return;
            };
            match active.next(case, case_timeout(case, self.options.timeout)) {
                Exchange::Done { .. } => self.slots.push(None),
                _ => {
                    self.retire_worker();
                    return;
                }
            }
        }
    }

    /// Ends the worker (its whole tree killed) and gives each case it
    /// answered its share of the worker's output. A worker that died
    /// mid-case has one share more: it is returned, for that case.
    fn retire_worker(&mut self) -> CapturedOutput {
        let Some(worker) = self.worker.take() else {
            return CapturedOutput::default();
        };
        let (_, outputs) = worker.finish();
        let mut outputs = outputs.into_iter();
        for slot in self.slots.drain(..) {
            let output = outputs.next().unwrap_or_default();
            if let Some(report) = slot.and_then(|slot| self.cases.get_mut(slot)) {
                report.output = output;
            }
        }
        outputs.next().unwrap_or_default()
    }

    fn into_report(mut self, started: Instant) -> PluginReport {
        self.retire_worker();
        death::explain_once(&mut self.cases, death::ALLOCATOR_ABORT);
        let tally = judge::tally(&self.cases, &Policy::default());
        // A file written or replaced during the run was perhaps loaded as
        // other bytes by a later worker (or reload): the report then names
        // no build.
        let sha256 = self
            .build
            .into_inner()
            .flatten()
            .filter(|build| build.still_at(self.path))
            .map(|build| build.sha256);
        PluginReport {
            path: self.path.to_owned(),
            plugin: self.info,
            cases: self.cases,
            tally,
            workers_started: self.workers_started,
            duration_us: started.elapsed().as_micros() as u64,
            worker: self.program.described,
            sha256,
        }
    }
}

/// The report of a plugin no worker can judge here: its first case says
/// why, the others are skipped behind it.
fn refused(
    index: usize,
    path: &Path,
    outcome: Outcome,
    options: &RunOptions,
    started: Instant,
    emit: Emit<'_>,
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
        sha256: fingerprint(path, options).map(|build| build.sha256),
    }
}

/// The plugin file's SHA-256 for its report (see [`PluginReport::sha256`]),
/// read through the same bounds as everything the parent reads of it,
/// where the run writes a report.
fn fingerprint(path: &Path, options: &RunOptions) -> Option<Fingerprint> {
    options.hash_builds.then(|| Fingerprint::of(path)).flatten()
}

/// The fuzz inputs as a file in the run's scratch directory, for a worker
/// that reads them rather than making them (the Go worker), when a case
/// that uses them is to run (`fuzz-methods`; `state-roundtrip` drives the
/// state with them). None when it cannot be had: the worker then says it
/// got no inputs.
fn fuzz_series(program: &WorkerProgram, options: &RunOptions) -> Option<tempfile::TempPath> {
    let uses_series = [CaseId::FuzzMethods, CaseId::StateRoundtrip];
    let wanted =
        program.reads_fuzz_series && options.cases.iter().any(|case| uses_series.contains(case));
    let scratch = options.settings.scratch.as_deref().filter(|_| wanted)?;
    let settings = &options.settings;
    crate::worker::go::fuzz_series(scratch, settings.seed, settings.fuzz_inputs)
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
fn spawn_worker(exe: &Path, plugin: &Path, attempt: Option<u32>) -> Result<Worker, SpawnError> {
    let environment: Vec<(&str, String)> = attempt
        .map(|attempt| (crate::run::repeat::ATTEMPT_VARIABLE, attempt.to_string()))
        .into_iter()
        .collect();
    let mut delay = Duration::from_millis(20);
    for _ in 0..3 {
        match Worker::spawn(exe, plugin, &environment) {
            Err(SpawnError::Start { .. }) => std::thread::sleep(delay),
            other => return other,
        }
        delay *= 5;
    }
    Worker::spawn(exe, plugin, &environment)
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
