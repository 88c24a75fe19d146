//! The parent side of a worker: spawn it in its own process tree, send it
//! cases, wait with a timeout, decode how it died, and make sure nothing it
//! started outlives it.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::capture::{Capture, Segment};
use super::protocol::{
    self, CallAnswer, CallContextWire, FromWorker, LineReader, RawStack, ReceiveError, ToWorker,
};
use super::trail::CallTrail;
use super::workspace::Workspace;
use crate::catalog::CaseId;
use crate::os;
use crate::os::{ChannelStream, Termination};
use crate::outcome::{CaseResult, CaseSettings};
use crate::plan::Ledger;
use crate::report::{CapturedOutput, LogLine};
use crate::run::timeline;

/// How long a new worker gets to connect back.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a worker that has not connected yet is checked for being dead.
const WORKER_LOOK: Duration = Duration::from_millis(10);
/// How often a wait with a caller's cancellation looks at it.
const CANCEL_LOOK: Duration = Duration::from_millis(10);

/// How long the parent waits for a case's output markers after its result.
const OUTPUT_WAIT: Duration = Duration::from_secs(2);
/// How long the output of a dead worker may take to drain.
const DRAIN_WAIT: Duration = Duration::from_millis(500);
/// How long a worker that hung up gets to finish exiting before it is
/// killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Pids of the workers alive in this process. Every other child of ours is
/// an orphan a plugin left behind (re-parented to us, the subreaper). Spawns
/// happen under this lock, so a new worker is never mistaken for one.
static LIVE_WORKERS: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

fn live_workers() -> MutexGuard<'static, Option<HashSet<u32>>> {
    LIVE_WORKERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why a worker could not be started: a harness problem, not a verdict.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(
        "cannot open the worker's channel: {0}; check the limit on open files (`ulimit -n`), and on Windows that the loopback interface is up"
    )]
    Socket(std::io::Error),
    #[error(
        "cannot set up the capture of the worker's output: {0}; check that the temporary directory is writable"
    )]
    Output(std::io::Error),
    #[error(
        "cannot create the worker's working directory: {0}; check that the temporary directory is writable"
    )]
    Directory(std::io::Error),
    #[error("cannot start the worker `{}`: {source}", exe.display())]
    Start {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("the worker did not connect back within {}s ({detail})", CONNECT_TIMEOUT.as_secs())]
    NoConnection { detail: String },
    #[error(
        "the worker program speaks worker protocol {got}, this plugcheck speaks {}: run workers with the program of the same plugcheck release (0: one from before the protocol said its version)",
        protocol::PROTOCOL_VERSION
    )]
    Protocol { got: u32 },
}

/// How one case went, as the parent saw it. What the plugin printed comes
/// separately, from [`Worker::finish`] or [`Worker::remains`], so waiting
/// for output never slows the next case down.
#[derive(Debug)]
pub enum Exchange {
    Done {
        result: CaseResult,
        work_us: u64,
        /// The worker did not run the case (see `FromWorker::Done`).
        not_run: bool,
        /// The fuzz calls it announced in the case, the last one the one
        /// a broken output buffer came from.
        calls: CallTrail,
    },
    /// The worker died; it is gone, take its output with [`Worker::remains`].
    Crashed {
        termination: Termination,
        /// The fuzz calls it announced in the case: the last one is the
        /// one it died in.
        calls: CallTrail,
        /// What its crash handler said of the crashing thread.
        stack: Option<RawStack>,
        /// The call its seccomp filter trapped, which it died of: what the
        /// plugin tried to do to the harness.
        forbidden: Option<Forbidden>,
    },
    /// The worker was killed; take its output with [`Worker::remains`].
    TimedOut {
        /// The fuzz calls it announced in the case: the last one did not
        /// return.
        calls: CallTrail,
    },
    /// Something else than the worker's answer came over the channel (the
    /// plugin wrote into it: a flood, a trickle of garbage, a forged line);
    /// the worker was killed.
    ChannelAbused { problem: String },
    /// The channel closed while the worker process kept running another
    /// program: the plugin replaced the worker (`exec`). It was killed.
    Replaced { image: String },
}

/// A call the worker's filter refused and named as it died (see
/// `FromWorker::Forbidden`): it came over a channel the plugin can write
/// to, so it only ever describes the plugin's own worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    /// `kill(1, SIGSTOP)`, as the worker names it.
    pub call: String,
    /// The worker's parent as the worker named it.
    pub parent: i64,
}

/// What a message read while waiting for an answer is.
enum Heard<T> {
    Answer(T),
    /// Progress within the answer's work (a fuzz call announced).
    Progress,
    OutOfTurn(Box<FromWorker>),
}

/// Log lines of one call the parent keeps at most: the worker bounds what
/// it forwards, but the channel could carry forged ones.
const MAX_CALL_LOGS: usize = 200;

/// One `plugcheck call` as the parent saw it: what the plugin logged while
/// the method ran (as it logged it, so lines logged before a crash are
/// kept), and how the call ended.
#[derive(Debug)]
pub struct CallResult {
    pub logs: Vec<LogLine>,
    /// Lines past [`MAX_CALL_LOGS`], counted.
    pub unkept_logs: u64,
    /// The answer, or the `Exchange` saying how the worker died, hung or
    /// misbehaved (its output is then taken with [`Worker::finish`]).
    pub ended: Result<CallAnswer, Box<Exchange>>,
}

/// The worker process and its tree. Dropping it kills the tree and reaps
/// every orphan, so no early return can leave a process behind.
struct Process {
    child: os::WorkerProcess,
    /// Set when the worker is reaped: its output readers may stop there.
    output_ended: Arc<AtomicBool>,
    /// The program the worker was started as.
    exe: PathBuf,
    tree: os::WorkerTree,
    /// Set once the worker is known dead and reaped.
    reaped: bool,
    /// Set once the tree was killed after the worker was reaped: nothing of
    /// it can be left.
    tree_gone: bool,
    /// The worker's working directory, emptied once the tree is killed
    /// (fields drop after `Drop::drop`).
    _directory: Workspace,
}

/// How a worker that hung up ended.
enum Ending {
    Exited(Termination),
    /// Still running after the grace period, now as `image`.
    StillRunning {
        image: Option<String>,
    },
}

impl Process {
    /// Kills the worker's tree, reaps the worker, then kills and reaps every
    /// process that escaped the tree (a new session or process group) and
    /// was re-parented to us. Escapees reach us only once the worker is
    /// gone, so this order matters: reaping before the worker's death
    /// finds nothing, and nothing later looks again.
    fn kill(&mut self) {
        if self.tree_gone {
            return;
        }
        self.tree.kill();
        self.reap();
        // Held while reaping: a worker spawned meanwhile (under this lock)
        // must not be taken for an orphan.
        let live = live_workers();
        let mut keep = live.clone().unwrap_or_default();
        keep.remove(&self.child.id());
        os::reap_orphans(&keep);
        drop(live);
        self.tree_gone = true;
    }

    /// Kills the worker's tree and reaps the worker, and leaves the
    /// processes that escaped it to the caller's own look for orphans,
    /// which must follow ([`end_teardown`]).
    fn reap_leaving_escapees(&mut self) {
        if !self.tree_gone && !self.reaped {
            self.tree.kill();
            self.reap();
        }
        self.tree_gone = true;
        forget_worker(self.child.id());
    }

    /// Kills and reaps the worker process itself, once: the end of its
    /// output.
    fn reap(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
            self.output_ended.store(true, Ordering::SeqCst);
        }
    }

    /// Sends the kill to the worker's tree without waiting for it: the
    /// dying starts, [`Process::kill`] waits for it and reaps.
    fn signal_kill(&mut self) {
        if !self.reaped {
            self.tree.kill();
            let _ = self.child.kill();
        }
    }

    /// The worker's exit status, if it has exited.
    fn exited(&mut self) -> Option<Termination> {
        let status = self.child.try_wait().ok().flatten()?;
        self.reaped = true;
        self.output_ended.store(true, Ordering::SeqCst);
        Some(os::decode_exit(status))
    }

    /// The worker hung up: its exit status says why. It may still be
    /// exiting, so it gets a moment before it is killed; one still running
    /// then is asked what program it runs now.
    fn wait_for_exit(&mut self) -> Ending {
        let deadline = Instant::now() + EXIT_GRACE;
        // Exiting takes microseconds to a few milliseconds: back off from
        // short naps rather than oversleep the common case.
        let mut nap = Duration::from_micros(20);
        // What the OS reports is already canonical; our side is made so
        // once, not on every look.
        let program = std::fs::canonicalize(&self.exe).unwrap_or_else(|_| self.exe.clone());
        loop {
            if let Some(termination) = self.exited() {
                self.kill();
                return Ending::Exited(termination);
            }
            // Another program in our worker's place: no need to wait.
            let replaced = self
                .child
                .program_id()
                .and_then(os::process_image)
                .filter(|image| !same_program(image, &program))
                .map(|image| image.display().to_string());
            if replaced.is_some() || Instant::now() >= deadline {
                self.kill();
                return Ending::StillRunning { image: replaced };
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(1));
        }
    }
}

/// Whether `image` (what the OS says a process runs, a canonical path) is
/// `program` (canonical too); a rebuilt binary shows as `path (deleted)`.
fn same_program(image: &Path, program: &Path) -> bool {
    let text = image.to_string_lossy();
    Path::new(text.strip_suffix(" (deleted)").unwrap_or(&text)) == program
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        forget_worker(self.child.id());
    }
}

/// A worker started and booting, not yet heard from.
pub struct Launched {
    process: Process,
    channel: os::PendingChannel,
    token: String,
    stdout: Capture,
    stderr: Capture,
}

impl Launched {
    /// Waits for the worker's hello: then it is ready for cases.
    pub(crate) fn connect(self) -> Result<Worker, SpawnError> {
        let Launched {
            mut process,
            mut channel,
            token,
            stdout,
            mut stderr,
        } = self;
        let (writer, reader) = connect(&mut channel, &token, &mut process, &mut stderr)?;
        timeline::mark("parent:worker-connected");
        Ok(Worker {
            process,
            cancel: None,
            writer,
            reader,
            stdout,
            stderr,
            seq: 0,
            answered: 0,
            died: false,
            has_loaded: false,
        })
    }
}

/// A running worker serving one plugin.
pub struct Worker {
    process: Process,
    /// A caller's cancellation, looked at while waiting (see
    /// [`Worker::watch_cancel`]).
    /// With the grace a cancelled call gets to end on its own.
    cancel: Option<(Arc<AtomicU32>, Duration)>,
    reader: LineReader<ChannelStream>,
    writer: ChannelStream,
    stdout: Capture,
    stderr: Capture,
    /// Cases sent so far.
    seq: u64,
    /// Cases asked for by `next` so far; output is split by case up to here.
    answered: u64,
    /// The worker died (or was killed) during the last case asked for.
    died: bool,
    has_loaded: bool,
}

impl Worker {
    /// Starts `exe __worker` for `plugin`, without waiting for it: it
    /// boots while the caller goes on, until [`Launched::connect`].
    /// `environment`: variables the worker (and so the plugin) gets on top
    /// of plugcheck's own. The worker runs in an empty directory of its
    /// own (a [`Workspace`]), emptied once the worker and everything it
    /// started are gone — or by the interrupt that killed them.
    pub(crate) fn launch(
        exe: &Path,
        plugin: &Path,
        environment: &[(&str, String)],
    ) -> Result<Launched, SpawnError> {
        // What the last plugin's worker left goes before the next starts.
        wait_for_teardown();
        let directory = Workspace::take("plugcheck-worker-").map_err(SpawnError::Directory)?;
        let mut channel = os::PendingChannel::open().map_err(SpawnError::Socket)?;
        let token = new_token();
        // Set once the worker is reaped: the end of its output.
        let output_ended = Arc::new(AtomicBool::new(false));
        let stdout = os::worker_output(&output_ended).map_err(SpawnError::Output)?;
        let stderr = os::worker_output(&output_ended).map_err(SpawnError::Output)?;
        let mut args: Vec<std::ffi::OsString> = vec!["__worker".into()];
        args.extend(channel.worker_args());
        args.extend(["--token".into(), token.clone().into(), "--plugin".into()]);
        args.push(plugin.as_os_str().to_owned());
        // A forked worker's assignment: its channel is the end it is
        // handed, not on its command line.
        let assignment = serde_json::to_vec(&super::child::WorkerArgs {
            connect: None,
            channel_fd: None,
            token: token.clone(),
            plugin: plugin.to_owned(),
        })
        .map_err(|error| SpawnError::Socket(error.into()))?;
        let launch = os::WorkerLaunch {
            exe,
            args,
            assignment,
            channel: channel.take_worker_end(),
            environment,
            cwd: directory.path(),
            stdout: stdout.child,
            stderr: stderr.child,
        };
        let start_error = |source| SpawnError::Start {
            exe: exe.to_owned(),
            source,
        };
        // The worker's output ends go with the launch: only the worker
        // holds them once it has started.
        let mut child = {
            let mut live = live_workers();
            timeline::mark("parent:worker-requested");
            let child = os::start_worker(launch).map_err(start_error)?;
            timeline::mark("parent:worker-started");
            live.get_or_insert_with(HashSet::new).insert(child.id());
            if !child.holds_its_descendants() {
                os::expect_orphans();
            }
            child
        };
        let tree = match os::WorkerTree::attach(&child) {
            Ok(tree) => tree,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                forget_worker(child.id());
                return Err(start_error(error));
            }
        };
        let stdout = Capture::new(stdout.reader, token.clone());
        let stderr = Capture::new(stderr.reader, token.clone());
        let process = Process {
            child,
            output_ended,
            exe: exe.to_owned(),
            tree,
            reaped: false,
            tree_gone: false,
            _directory: directory,
        };
        Ok(Launched {
            process,
            channel,
            token,
            stdout,
            stderr,
        })
    }

    /// Starts `exe __worker` for `plugin` (see [`Worker::launch`]) and
    /// waits for it to say hello.
    pub fn spawn(
        exe: &Path,
        plugin: &Path,
        environment: &[(&str, String)],
    ) -> Result<Worker, SpawnError> {
        Worker::launch(exe, plugin, environment)?.connect()
    }

    /// The worker's process (or its namespace's supervisor).
    pub(crate) fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Whether the worker has loaded the plugin.
    pub(crate) fn has_loaded(&self) -> bool {
        self.has_loaded
    }

    /// Sends a batch of cases; collect their results with [`Worker::next`].
    /// Returns the sequence number of the first.
    pub(crate) fn start(
        &mut self,
        cases: &[CaseId],
        ledger: &Ledger,
        settings: &CaseSettings,
    ) -> u64 {
        timeline::mark("parent:batch-sent");
        let first_seq = self.seq + 1;
        self.seq += cases.len() as u64;
        // A worker that cannot take the batch has died: the next read says
        // how.
        let _ = protocol::send(
            &mut self.writer,
            &ToWorker::Run {
                first_seq,
                cases: cases.to_vec(),
                ledger: ledger.clone(),
                settings: settings.clone(),
            },
        );
        self.start_capture();
        first_seq
    }

    /// Starts reading the worker's output, once it has work: the readers'
    /// threads start while it runs its first case, not before it can.
    fn start_capture(&mut self) {
        self.stdout.start();
        self.stderr.start();
    }

    /// The next result of the batch, waiting at most `timeout` for it: a
    /// deadline fixed now, which nothing the plugin writes extends.
    pub(crate) fn next(&mut self, case: CaseId, timeout: Duration) -> Exchange {
        self.answered += 1;
        let seq = self.answered;
        if seq == self.seq {
            // The batch's last case: its output is split soon after, so
            // it is read as it comes rather than in batches, and is there
            // when the answer is.
            self.stdout.read_eagerly();
            self.stderr.read_eagerly();
        }
        let answer = self.wait_for(timeout, |message, calls| match message {
            FromWorker::Calling {
                seq: calling,
                method,
                input,
            } if calling == seq => {
                calls.push(&method, input);
                Heard::Progress
            }
            FromWorker::Done {
                seq: done,
                case: done_case,
                result,
                work_us,
                has_loaded,
                not_run,
            } if done == seq && done_case == case => {
                Heard::Answer((result, work_us, has_loaded, not_run))
            }
            other => Heard::OutOfTurn(Box::new(other)),
        });
        match answer {
            Ok(((result, work_us, has_loaded, not_run), calls)) => {
                self.has_loaded = has_loaded;
                Exchange::Done {
                    result,
                    work_us,
                    not_run,
                    calls,
                }
            }
            Err(ended) => *ended,
        }
    }

    /// Has the worker call one method of the plugin with the bytes of the
    /// file `input` (`plugcheck call`), waiting at most `timeout`. Calls
    /// made one after another go to the same plugin instance. A worker
    /// that died, hung or misbehaved comes back as the `Exchange` saying
    /// so; its output is then taken with [`Worker::finish`] as after a case.
    pub fn call(&mut self, method: &str, input: Option<&Path>, timeout: Duration) -> CallResult {
        let context = CallContextWire::default();
        self.call_with(method, input.map(Path::to_owned), None, context, timeout)
    }

    /// As [`Worker::call`], with the input's bytes in the message (an
    /// embedding host's call, its input in memory): at most
    /// [`super::limits::INLINE_CALL_INPUT_BYTES`], which the caller checks.
    /// What an ABI 1.1 method is told of its call goes in `context` (the
    /// deadline in it is `timeout`'s).
    pub(crate) fn call_bytes(
        &mut self,
        method: &str,
        input: &[u8],
        mut context: CallContextWire,
        timeout: Duration,
    ) -> CallResult {
        let told = crate::plugin::call_context::deadline_told(timeout);
        context.deadline_ms = Some(u64::try_from(told.as_millis()).unwrap_or(u64::MAX));
        self.call_with(
            method,
            None,
            Some(super::child::hex(input)),
            context,
            timeout,
        )
    }

    /// Has the worker hand over the plugin's state (an embedding host's
    /// reload or checkpoint), as a call's output.
    pub(crate) fn save_state(&mut self, timeout: Duration) -> CallResult {
        self.exchange(|seq| ToWorker::SaveState { seq }, timeout)
    }

    /// Has the worker's plugin take `state`, which an earlier instance
    /// saved (at most [`super::limits::INLINE_CALL_INPUT_BYTES`]).
    pub(crate) fn restore_state(&mut self, state: &[u8], timeout: Duration) -> CallResult {
        let state_hex = super::child::hex(state);
        self.exchange(|seq| ToWorker::RestoreState { seq, state_hex }, timeout)
    }

    /// Has the waits for answers look at `cancel`'s flag too, every
    /// [`CANCEL_LOOK`]: once it is set, with a grace, the worker is told
    /// (`cancel`: an ABI 1.1 method sees its flag set) and given the grace
    /// to answer; past that, or at once without a grace, the wait ends as
    /// at its deadline (the worker's tree killed, `TimedOut`), which the
    /// caller tells apart by the flag. `None`: waits look only at their
    /// deadline.
    pub(crate) fn watch_cancel(&mut self, cancel: Option<(Arc<AtomicU32>, Duration)>) {
        self.cancel = cancel;
    }

    /// Asks the worker which plugin it serves (`described`, once loaded and
    /// initialised).
    pub(crate) fn describe(&mut self, timeout: Duration) -> CallResult {
        self.exchange(|seq| ToWorker::Describe { seq }, timeout)
    }

    fn call_with(
        &mut self,
        method: &str,
        input: Option<PathBuf>,
        input_hex: Option<String>,
        context: CallContextWire,
        timeout: Duration,
    ) -> CallResult {
        let method = method.to_owned();
        self.exchange(
            |seq| ToWorker::Call {
                seq,
                method,
                input,
                input_hex,
                context,
            },
            timeout,
        )
    }

    /// Sends the message `message` makes of the next sequence number and
    /// waits at most `timeout` for its `called`, keeping the log lines
    /// that come meanwhile.
    fn exchange(&mut self, message: impl FnOnce(u64) -> ToWorker, timeout: Duration) -> CallResult {
        self.seq += 1;
        self.answered += 1;
        let seq = self.answered;
        // A worker that cannot take the call has died: the read says how.
        let _ = protocol::send(&mut self.writer, &message(seq));
        self.start_capture();
        let mut logs = Vec::new();
        let mut unkept_logs = 0;
        let ended = self
            .wait_for(timeout, |message, _| match message {
                FromWorker::Called { seq: done, answer } if done == seq => Heard::Answer(answer),
                // A line of this call, or a late one of an earlier call's
                // thread: logged while this call ran, either way.
                FromWorker::Logged { seq: logged, line } if logged <= seq => {
                    match logs.len() < MAX_CALL_LOGS {
                        true => logs.push(line),
                        false => unkept_logs += 1,
                    }
                    Heard::Progress
                }
                other => Heard::OutOfTurn(Box::new(other)),
            })
            .map(|(answer, _)| answer);
        CallResult {
            logs,
            unkept_logs,
            ended,
        }
    }

    /// Reads messages until `hear` takes one as the answer, or the worker
    /// dies, hangs past `timeout` or sends what is not its turn. The
    /// crashing thread's stack, which a dying worker sends unasked, is kept
    /// for the death it explains.
    fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut hear: impl FnMut(FromWorker, &mut CallTrail) -> Heard<T>,
    ) -> Result<(T, CallTrail), Box<Exchange>> {
        let mut deadline = Instant::now() + timeout;
        let mut calls = CallTrail::default();
        let mut stack = None;
        let mut forbidden = None;
        let mut told_cancelled = false;
        loop {
            // With a cancellation to look at, in slices (a partial line
            // waits in the reader for the next one).
            let until = match &self.cancel {
                Some(_) => deadline.min(Instant::now() + CANCEL_LOOK),
                None => deadline,
            };
            let ended = match self.reader.receive::<FromWorker>(Some(until)) {
                Ok(Some(FromWorker::Stack(raw))) if stack.is_none() => {
                    stack = Some(raw);
                    continue;
                }
                Ok(Some(FromWorker::Forbidden { call, parent })) if forbidden.is_none() => {
                    forbidden = Some(Forbidden { call, parent });
                    continue;
                }
                Ok(Some(message)) => match hear(message, &mut calls) {
                    Heard::Answer(answer) => return Ok((answer, calls)),
                    Heard::Progress => continue,
                    Heard::OutOfTurn(other) => {
                        self.abused(format!("a message out of turn: {}", short_debug(&other)))
                    }
                },
                Ok(None) => self.hung_up(calls, stack, forbidden),
                Err(ReceiveError::Deadline) => {
                    let cancelled = self
                        .cancel
                        .as_ref()
                        .is_some_and(|(cancel, _)| cancel.load(Ordering::SeqCst) != 0);
                    let now = Instant::now();
                    let grace = self
                        .cancel
                        .as_ref()
                        .map_or(Duration::ZERO, |(_, grace)| *grace);
                    if cancelled && !told_cancelled && now < deadline && !grace.is_zero() {
                        // The call's own end, if it ends soon; else the
                        // kill, as before.
                        told_cancelled = true;
                        let _ = protocol::send(
                            &mut self.writer,
                            &ToWorker::Cancel { seq: self.answered },
                        );
                        deadline = deadline.min(now + grace);
                        continue;
                    }
                    if (!cancelled || told_cancelled) && now < deadline {
                        continue;
                    }
                    self.died = true;
                    self.process.kill();
                    Exchange::TimedOut { calls }
                }
                Err(error @ (ReceiveError::TooLong { .. } | ReceiveError::Invalid(_))) => {
                    self.abused(error.to_string())
                }
                // A reset connection: the worker died mid-answer.
                Err(ReceiveError::Io(_)) => self.hung_up(calls, stack, forbidden),
            };
            return Err(Box::new(ended));
        }
    }

    /// Ends the worker, kills its whole tree, and returns how many cases it
    /// answered with what the plugin printed during each (one share more
    /// after a death: the output of the case it died in). A worker that
    /// finished its cases is killed too, not asked to exit: it has nothing
    /// left to do, and the plugin's exit-time code has no case to judge it.
    ///
    /// A dead worker's tree is cleaned up here, since its last output only
    /// ends with it; a live one is sent its kill now (on Windows it is hung
    /// up on, and ends its read and exits) and waited for later
    /// — by the next worker's start, or the scope's end (see
    /// [`wait_for_teardown`]) — while the report is made.
    pub fn finish(mut self) -> (usize, Vec<CapturedOutput>) {
        let answered = self.answered as usize - usize::from(self.died);
        if !self.died && os::KILL_FINISHED_WORKER_AT_ONCE {
            // Dying takes the worker a while (its memory is unmapped):
            // it starts now, while its output is split and the report is
            // written, rather than when it is waited for.
            self.process.signal_kill();
        }
        let mut outputs = self.outputs(answered as u64);
        if self.died {
            self.process.kill();
            outputs.push(merge(
                self.stdout.rest(DRAIN_WAIT),
                self.stderr.rest(DRAIN_WAIT),
            ));
        } else {
            finished().push(self.process);
        }
        (answered, outputs)
    }

    /// Ends the worker now, its whole tree killed and reaped before this
    /// returns, its output left unread: an embedding host's worker, whose
    /// calls write no case-end markers to split the output at (waiting for
    /// them, as [`Worker::finish`] does, would take its wait per call).
    pub(crate) fn stop(mut self) {
        self.process.kill();
    }

    /// Splits the captured streams at the markers of the first `answered`
    /// cases, which were written before their answers: nothing to wait for
    /// unless a pipe is slow.
    fn outputs(&mut self, answered: u64) -> Vec<CapturedOutput> {
        (1..=answered)
            .map(|seq| {
                merge(
                    self.stdout.case_output(seq, OUTPUT_WAIT),
                    self.stderr.case_output(seq, OUTPUT_WAIT),
                )
            })
            .collect()
    }

    /// The channel ended: the worker died, or something replaced it.
    fn hung_up(
        &mut self,
        calls: CallTrail,
        stack: Option<RawStack>,
        forbidden: Option<Forbidden>,
    ) -> Exchange {
        self.died = true;
        match self.process.wait_for_exit() {
            Ending::Exited(termination) => Exchange::Crashed {
                termination,
                calls,
                stack,
                forbidden,
            },
            Ending::StillRunning { image: Some(image) } => Exchange::Replaced { image },
            Ending::StillRunning { image: None } => Exchange::ChannelAbused {
                problem: "the worker closed its channel but kept running".into(),
            },
        }
    }

    fn abused(&mut self, problem: String) -> Exchange {
        self.died = true;
        self.process.kill();
        Exchange::ChannelAbused { problem }
    }
}

/// A message for a reason: its debug form, cut short (it came over a
/// channel the plugin can write to).
fn short_debug(message: &FromWorker) -> String {
    let text = format!("{message:?}");
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Waits for the worker's hello on its channel, with its token.
fn connect(
    channel: &mut os::PendingChannel,
    token: &str,
    process: &mut Process,
    stderr: &mut Capture,
) -> Result<(ChannelStream, LineReader<ChannelStream>), SpawnError> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        // Wake on the channel itself; look at the worker now and then, in
        // case it died before its hello.
        if let Some(stream) = channel.next(WORKER_LOOK).map_err(SpawnError::Socket)? {
            let mut reader = LineReader::new(stream.try_clone().map_err(SpawnError::Socket)?);
            match reader.receive::<FromWorker>(Some(deadline)) {
                Ok(Some(FromWorker::Hello {
                    token: got,
                    protocol,
                    ..
                })) if got == token => {
                    return match protocol == protocol::PROTOCOL_VERSION {
                        true => Ok((stream, reader)),
                        false => Err(SpawnError::Protocol { got: protocol }),
                    };
                }
                // Not our worker's hello (a stranger's connection, where
                // the channel is a listener): keep waiting.
                _ => {}
            }
        }
        if let Some(termination) = process.exited() {
            let stderr = stderr.rest(DRAIN_WAIT);
            return Err(SpawnError::NoConnection {
                detail: format!(
                    "it {} before connecting; stderr: {}",
                    termination.describe(),
                    String::from_utf8_lossy(&stderr.bytes).trim()
                ),
            });
        }
        if Instant::now() >= deadline {
            return Err(SpawnError::NoConnection {
                detail: "it is still running".into(),
            });
        }
    }
}

/// Finished workers, sent their kill (where the OS kills them at once)
/// and waited for later: by the next worker's start, so what a plugin left
/// does not outlive its run into the next plugin's, or by the scope's end.
/// No thread per worker: a run of one plugin waits once, at its end.
static FINISHED: Mutex<Vec<Process>> = Mutex::new(Vec::new());

fn finished() -> MutexGuard<'static, Vec<Process>> {
    FINISHED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Kills every live worker's tree and reaps what is left: for an
/// interrupted run (Ctrl-C), where no `Worker` gets to clean up and the
/// process exits right after.
///
/// The worker lock stays held until that exit: no new worker can start,
/// and no thread can turn the killed workers into verdicts ("crashed") and
/// finish the run with a report and exit status of its own first.
pub(super) fn kill_all() {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    let live = live_workers();
    for &pid in live.iter().flatten() {
        os::kill_worker_group(pid);
    }
    os::reap_orphans(&HashSet::new());
    std::mem::forget(live);
}

/// Set once `kill_all` has run: every verdict from then on is about a
/// worker we killed, not about the plugin.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the run was interrupted (`kill_all`): its results must not be
/// reported.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Kills and reaps every orphan that came to this process (a subreaper)
/// and is not a live worker: what plugins left when the last worker was
/// gone. Call it after [`wait_for_teardown`], before exiting.
pub(super) fn reap_leftovers() {
    let live = live_workers();
    os::reap_orphans(&live.clone().unwrap_or_default());
}

/// Waits until every finished worker's process tree is killed and reaped,
/// and whatever escaped it too. Call it before relying on those processes
/// being gone.
pub fn wait_for_teardown() {
    let finished = std::mem::take(&mut *finished());
    // Each drop kills what is left of the tree, reaps the worker, then
    // the processes that escaped it.
    drop(finished);
}

/// At the end of a scope: reaps every finished worker, then looks for
/// what escaped them once, with [`reap_leftovers`] (not once per worker).
pub(super) fn end_teardown() {
    let mut finished = std::mem::take(&mut *finished());
    for process in &mut finished {
        process.reap_leaving_escapees();
    }
    reap_leftovers();
    // Only now, with what escaped them gone too: their directories are
    // emptied and given back as they drop.
    drop(finished);
}

/// Runs a helper program of the harness's own (`go build` of the Go
/// worker, never a plugin) to its end, with its output captured. While it
/// runs it counts as a live worker: this process is a subreaper that kills
/// every child it does not know as one, whenever a worker's tree is torn
/// down on another thread.
pub fn run_helper(command: &mut Command) -> std::io::Result<std::process::Output> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = {
        let mut live = live_workers();
        let child = command.spawn()?;
        live.get_or_insert_with(HashSet::new).insert(child.id());
        os::expect_orphans();
        child
    };
    let pid = child.id();
    let output = child.wait_with_output();
    forget_worker(pid);
    output
}

fn forget_worker(pid: u32) {
    if let Some(live) = live_workers().as_mut() {
        live.remove(&pid);
    }
}

fn merge(stdout: Segment, stderr: Segment) -> CapturedOutput {
    CapturedOutput {
        stdout: String::from_utf8_lossy(&stdout.bytes).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.bytes).into_owned(),
        truncated_bytes: stdout.dropped + stderr.dropped,
    }
}

/// A per-worker secret, so a connection is known to come from our worker.
fn new_token() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    let high = hasher.finish();
    hasher.write_u64(high);
    format!("{high:016x}{:016x}", hasher.finish())
}
