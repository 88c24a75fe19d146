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
use crate::report::CapturedOutput;
use crate::termination::Termination;

/// How long a new worker gets to connect back.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the parent waits for a case's output markers after its result.
const OUTPUT_WAIT: Duration = Duration::from_secs(2);
/// How long the output of a dead worker may take to drain.
const DRAIN_WAIT: Duration = Duration::from_millis(500);
/// How long a worker told to quit gets before it is killed.
const QUIT_GRACE: Duration = Duration::from_secs(2);

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

/// How one case went, as the parent saw it.
#[derive(Debug)]
pub enum Exchange {
    Done {
        result: CaseResult,
        output: CapturedOutput,
    },
    Crashed {
        termination: Termination,
        output: CapturedOutput,
    },
    TimedOut {
        output: CapturedOutput,
    },
    /// The worker answered with something unreadable.
    Broken {
        problem: String,
        output: CapturedOutput,
    },
}

/// The worker process and its tree. Dropping it kills the tree and reaps
/// every orphan, so no early return can leave a process behind.
struct Process {
    child: Child,
    tree: os::WorkerTree,
    /// Set once the worker is known dead and reaped.
    reaped: bool,
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
        self.tree.kill();
        let live = live_workers();
        let mut keep = live.clone().unwrap_or_default();
        if self.reaped {
            keep.remove(&self.child.id());
        }
        os::reap_orphans(&keep);
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
        let deadline = Instant::now() + QUIT_GRACE;
        loop {
            if let Some(termination) = self.exited() {
                self.kill_tree();
                return termination;
            }
            if Instant::now() >= deadline {
                self.kill();
                return Termination::Exited { code: -1 };
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        forget_worker(self.child.id());
        os::reap_orphans(&live_workers().clone().unwrap_or_default());
    }
}

/// A running worker serving one plugin.
pub struct Worker {
    process: Process,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    stdout: Capture,
    stderr: Capture,
    seq: u64,
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
        };
        let stream = accept(&listener, &token, &mut process, &mut stderr)?;
        Ok(Worker {
            process,
            writer: stream.try_clone().map_err(SpawnError::Socket)?,
            reader: BufReader::new(stream),
            stdout,
            stderr,
            seq: 0,
            has_loaded: false,
        })
    }

    /// Whether the worker has loaded the plugin.
    pub fn has_loaded(&self) -> bool {
        self.has_loaded
    }

    /// Runs one case, waiting at most `timeout` for its result.
    pub fn run(&mut self, case: CaseId, settings: CaseSettings, timeout: Duration) -> Exchange {
        self.seq += 1;
        let seq = self.seq;
        let sent = protocol::send(
            &mut self.writer,
            &ToWorker::Run {
                seq,
                case,
                settings,
            },
        );
        if sent.is_err() {
            return self.crashed();
        }
        if let Err(error) = self.reader.get_ref().set_read_timeout(Some(timeout)) {
            return self.broken(format!("cannot set the case timeout: {error}"));
        }
        match protocol::receive::<FromWorker>(&mut self.reader) {
            Ok(Some(FromWorker::Done {
                seq: done,
                result,
                has_loaded,
            })) if done == seq => {
                self.has_loaded = has_loaded;
                let output = merge(
                    self.stdout.case_output(seq, OUTPUT_WAIT),
                    self.stderr.case_output(seq, OUTPUT_WAIT),
                );
                Exchange::Done { result, output }
            }
            Ok(Some(other)) => self.broken(format!("unexpected message {other:?}")),
            Ok(None) => self.crashed(),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.process.kill();
                let output = self.drained();
                Exchange::TimedOut { output }
            }
            Err(error) if error.kind() == ErrorKind::InvalidData => {
                self.broken(format!("unreadable message: {error}"))
            }
            // A reset connection: the worker died mid-answer.
            Err(_) => self.crashed(),
        }
    }

    /// Asks the worker to exit, then makes sure its whole tree is gone.
    pub fn finish(mut self) {
        if protocol::send(&mut self.writer, &ToWorker::Quit).is_ok() {
            let deadline = Instant::now() + QUIT_GRACE;
            while Instant::now() < deadline && self.process.exited().is_none() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // Dropping the process kills what is left of the tree.
    }

    fn crashed(&mut self) -> Exchange {
        let termination = self.process.wait_for_exit();
        let output = self.drained();
        Exchange::Crashed {
            termination,
            output,
        }
    }

    fn broken(&mut self, problem: String) -> Exchange {
        self.process.kill();
        let output = self.drained();
        Exchange::Broken { problem, output }
    }

    fn drained(&mut self) -> CapturedOutput {
        merge(self.stdout.rest(DRAIN_WAIT), self.stderr.rest(DRAIN_WAIT))
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
        std::thread::sleep(Duration::from_micros(250));
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
