//! The parent side of a worker: spawn it in its own process tree, send it
//! cases, wait with a timeout, decode how it died, and make sure nothing it
//! started outlives it.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufReader, ErrorKind};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::capture::{Capture, Segment};
use super::protocol::{self, FromWorker, ToWorker};
use crate::cases::{CaseResult, CaseSettings};
use crate::catalog::CaseId;
use crate::os;
use crate::plan::Ledger;
use crate::report::CapturedOutput;
use crate::termination::Termination;

/// How long a new worker gets to connect back.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a worker that has not connected yet is checked for being dead.
const WORKER_LOOK: Duration = Duration::from_millis(10);
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
    #[error("cannot open a loopback socket for the worker: {0}")]
    Socket(std::io::Error),
    #[error("cannot start the worker `{}`: {source}", exe.display())]
    Start {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("the worker did not connect back within {}s ({detail})", CONNECT_TIMEOUT.as_secs())]
    NoConnection { detail: String },
}

/// How one case went, as the parent saw it. What the plugin printed comes
/// separately, from [`Worker::finish`] or [`Worker::remains`], so waiting
/// for output never slows the next case down.
#[derive(Debug)]
pub enum Exchange {
    Done {
        result: CaseResult,
        work_us: u64,
    },
    /// The worker died; it is gone, take its output with [`Worker::remains`].
    Crashed {
        termination: Termination,
    },
    /// The worker was killed; take its output with [`Worker::remains`].
    TimedOut,
    /// The worker answered with something unreadable and was killed.
    Broken {
        problem: String,
    },
}

/// The worker process and its tree. Dropping it kills the tree and reaps
/// every orphan, so no early return can leave a process behind.
struct Process {
    child: Child,
    tree: os::WorkerTree,
    /// Set once the worker is known dead and reaped.
    reaped: bool,
    /// Set once the tree was killed after the worker was reaped: nothing of
    /// it can be left.
    tree_gone: bool,
}

impl Process {
    /// Kills the worker's tree and reaps the worker.
    fn kill(&mut self) {
        self.kill_tree();
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }

    /// Kills the worker's process group (or Job Object), then every orphan
    /// that escaped it and was re-parented to us.
    fn kill_tree(&mut self) {
        if self.tree_gone {
            return;
        }
        self.tree.kill();
        let live = live_workers();
        let mut keep = live.clone().unwrap_or_default();
        if self.reaped {
            keep.remove(&self.child.id());
        }
        os::reap_orphans(&keep);
        self.tree_gone = self.reaped;
    }

    /// The worker's exit status, if it has exited.
    fn exited(&mut self) -> Option<Termination> {
        let status = self.child.try_wait().ok().flatten()?;
        self.reaped = true;
        Some(os::decode_exit(status))
    }

    /// The worker hung up: its exit status says why. It may still be
    /// exiting, so it gets a moment before it is killed.
    fn wait_for_exit(&mut self) -> Termination {
        let deadline = Instant::now() + EXIT_GRACE;
        // Exiting takes microseconds to a few milliseconds: back off from
        // short naps rather than oversleep the common case.
        let mut nap = Duration::from_micros(20);
        loop {
            if let Some(termination) = self.exited() {
                self.kill_tree();
                return termination;
            }
            if Instant::now() >= deadline {
                self.kill();
                return Termination::Exited { code: -1 };
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(1));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        forget_worker(self.child.id());
    }
}

/// A running worker serving one plugin.
pub struct Worker {
    process: Process,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
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
    /// Starts `exe __worker` for `plugin` and waits for it to connect.
    pub fn spawn(exe: &Path, plugin: &Path) -> Result<Worker, SpawnError> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(SpawnError::Socket)?;
        let address = listener.local_addr().map_err(SpawnError::Socket)?;
        listener.set_nonblocking(true).map_err(SpawnError::Socket)?;
        let token = new_token();
        let mut command = Command::new(exe);
        command
            .arg("__worker")
            .arg("--connect")
            .arg(address.to_string())
            .arg("--token")
            .arg(&token)
            .arg("--plugin")
            .arg(plugin)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        os::isolate_worker(&mut command);
        let start_error = |source| SpawnError::Start {
            exe: exe.to_owned(),
            source,
        };
        let mut child = {
            let mut live = live_workers();
            let child = command.spawn().map_err(start_error)?;
            live.get_or_insert_with(HashSet::new).insert(child.id());
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
        let stdout = Capture::start(child.stdout.take().expect("piped"), token.clone());
        let mut stderr = Capture::start(child.stderr.take().expect("piped"), token.clone());
        let mut process = Process {
            child,
            tree,
            reaped: false,
            tree_gone: false,
        };
        let stream = accept(&listener, &token, &mut process, &mut stderr)?;
        Ok(Worker {
            process,
            writer: stream.try_clone().map_err(SpawnError::Socket)?,
            reader: BufReader::new(stream),
            stdout,
            stderr,
            seq: 0,
            answered: 0,
            died: false,
            has_loaded: false,
        })
    }

    /// Whether the worker has loaded the plugin.
    pub fn has_loaded(&self) -> bool {
        self.has_loaded
    }

    /// Sends a batch of cases; collect their results with [`Worker::next`].
    /// Returns the sequence number of the first.
    pub fn start(&mut self, cases: &[CaseId], ledger: &Ledger, settings: &CaseSettings) -> u64 {
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
        first_seq
    }

    /// The next result of the batch, waiting at most `timeout` for it.
    pub fn next(&mut self, case: CaseId, timeout: Duration) -> Exchange {
        self.answered += 1;
        let seq = self.answered;
        if let Err(error) = self.reader.get_ref().set_read_timeout(Some(timeout)) {
            return self.broken(format!("cannot set the case timeout: {error}"));
        }
        match protocol::receive::<FromWorker>(&mut self.reader) {
            Ok(Some(FromWorker::Done {
                seq: done,
                case: done_case,
                result,
                work_us,
                has_loaded,
            })) if done == seq && done_case == case => {
                self.has_loaded = has_loaded;
                Exchange::Done { result, work_us }
            }
            Ok(Some(other)) => self.broken(format!("unexpected message {other:?}")),
            Ok(None) => self.crashed(),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.died = true;
                self.process.kill();
                Exchange::TimedOut
            }
            Err(error) if error.kind() == ErrorKind::InvalidData => {
                self.broken(format!("unreadable message: {error}"))
            }
            // A reset connection: the worker died mid-answer.
            Err(_) => self.crashed(),
        }
    }

    /// Ends the worker, kills its whole tree, and returns how many cases it
    /// answered with what the plugin printed during each (one share more
    /// after a death: the output of the case it died in). A worker that
    /// finished its cases is killed too, not asked to exit: it has nothing
    /// left to do, and the plugin's exit-time code has no case to judge it.
    ///
    /// A dead worker's tree is cleaned up here, since its last output only
    /// ends with it; a live one's is killed on a background thread (see
    /// [`wait_for_teardown`]), off the path to the report.
    pub fn finish(mut self) -> (usize, Vec<CapturedOutput>) {
        let answered = self.answered as usize - usize::from(self.died);
        let mut outputs = self.outputs(answered as u64);
        if self.died {
            self.process.kill();
            outputs.push(merge(
                self.stdout.rest(DRAIN_WAIT),
                self.stderr.rest(DRAIN_WAIT),
            ));
        } else {
            let process = self.process;
            let teardown = std::thread::Builder::new()
                .name("plugcheck-teardown".into())
                .spawn(move || drop(process));
            // Without a thread, the process is dropped (and killed) here.
            if let Ok(teardown) = teardown {
                teardowns().push(teardown);
            }
        }
        (answered, outputs)
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

    fn crashed(&mut self) -> Exchange {
        self.died = true;
        let termination = self.process.wait_for_exit();
        Exchange::Crashed { termination }
    }

    fn broken(&mut self, problem: String) -> Exchange {
        self.died = true;
        self.process.kill();
        Exchange::Broken { problem }
    }
}

/// Waits for the worker's connection and checks its token.
fn accept(
    listener: &TcpListener,
    token: &str,
    process: &mut Process,
    stderr: &mut Capture,
) -> Result<TcpStream, SpawnError> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(SpawnError::Socket)?;
                stream.set_nodelay(true).map_err(SpawnError::Socket)?;
                stream
                    .set_read_timeout(Some(CONNECT_TIMEOUT))
                    .map_err(SpawnError::Socket)?;
                let mut reader = BufReader::new(stream.try_clone().map_err(SpawnError::Socket)?);
                match protocol::receive::<FromWorker>(&mut reader) {
                    Ok(Some(FromWorker::Hello { token: got, .. })) if got == token => {
                        return Ok(stream);
                    }
                    // Not our worker's connection: ignore it, keep waiting.
                    _ => continue,
                }
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(error) => return Err(SpawnError::Socket(error)),
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
                detail: "it is still running; is the loopback interface up?".into(),
            });
        }
        // Wake on the connection itself; look at the worker now and then,
        // in case it died before connecting.
        os::wait_for_connection(listener, WORKER_LOOK);
    }
}

/// Teardowns of finished workers still running in the background.
static TEARDOWNS: Mutex<Vec<std::thread::JoinHandle<()>>> = Mutex::new(Vec::new());

fn teardowns() -> MutexGuard<'static, Vec<std::thread::JoinHandle<()>>> {
    TEARDOWNS
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
pub fn kill_all() {
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

/// Waits until every finished worker's process tree is killed and reaped.
/// Call it before exiting, or before relying on those processes being gone.
pub fn wait_for_teardown() {
    let pending: Vec<_> = teardowns().drain(..).collect();
    for teardown in pending {
        let _ = teardown.join();
    }
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
