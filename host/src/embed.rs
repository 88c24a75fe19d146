//! The harness's isolated worker for an application that embeds it
//! (`plugcheck-host`'s worker mode): the same worker process, channel,
//! crash decoding and process-tree kill the suite judges plugins with,
//! serving one plugin's calls for as long as the application wants.
//!
//! What differs from a `check`: no worker scope. The application owns its
//! Ctrl-C and its other children: no interrupt handler is installed, and
//! the orphan sweep never kills a child of the application
//! (`os::embedded_in_application`). [`serve_if_worker`] makes the
//! application a subreaper for its workers' sake (see there). A worker
//! dies with the application however it dies (`PR_SET_PDEATHSIG`; on
//! Windows its Job Object closes with the last handle), and its process
//! group (Job Object) is killed with it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::call::CallOptions;
use crate::inspect::kind::{self, PluginKind};
use crate::postmortem::symbolize;
use crate::report::LogLine;
use crate::worker::choice::{self, Choice};
use crate::worker::{CallAnswer, CallContextWire, Exchange, Launched, SpawnError, Worker};

pub use crate::worker::limits::INLINE_CALL_INPUT_BYTES;

/// Call first thing in `main`, before any thread starts. Serves as a
/// worker when this process was started as one (`PROGRAM __worker …`),
/// and exits. Otherwise prepares the worker starts as `plugcheck` does its
/// own, and returns: on Linux it forks a spare worker and a zygote while
/// this process has one thread, and every worker then starts from them in
/// a PID namespace of its own, whose init ends — and with it everything
/// the plugin started — when this application ends, however it ends
/// (SIGKILL too). So this application becomes a child subreaper (its
/// workers are re-parented to it) and is no longer dumpable (no core
/// files, no ptrace by the same user: what a plugin in a worker could
/// otherwise do to it). Without this call, or with threads already
/// running, workers start as programs outside any namespace: a worker
/// still dies with the application, but a child a plugin started in a
/// process group of its own can outlive a SIGKILLed application. Where
/// the kernel refuses the namespaces (a seccomp profile, a sysctl), the
/// zygote forks workers without one, with the same consequence. As a
/// subreaper, the application also inherits the orphans of the processes
/// it starts itself: they are its to reap (`waitpid`), as its children
/// are; plugcheck never kills or reaps a process of the application's.
pub fn serve_if_worker() {
    let mut args = std::env::args_os();
    if args.nth(1).is_none_or(|word| word != "__worker") {
        crate::os::embedded_in_application();
        crate::os::prepare_worker_starts(crate::worker::forked_worker, true);
        return;
    }
    std::process::exit(i32::from(crate::worker::main_worker()));
}

/// Which program a worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerProgram {
    /// The application's own binary, which calls [`serve_if_worker`]
    /// first thing in `main`.
    ThisBinary,
    /// A `plugcheck` binary (`plugcheck __worker` is the worker).
    Plugcheck(PathBuf),
}

impl WorkerProgram {
    /// The program that serves `plugin`: the Rust worker for a C-ABI
    /// plugin, the Go worker (built once with the Go toolchain, cached)
    /// for a Go-native one.
    pub fn for_plugin(&self, plugin: &Path) -> Result<PathBuf, String> {
        let rust_worker = match self {
            WorkerProgram::ThisBinary => std::env::current_exe().map_err(|error| {
                format!("cannot find this program's binary to start a worker with: {error}")
            })?,
            WorkerProgram::Plugcheck(path) => path.clone(),
        };
        match choice::for_plugin(plugin, &rust_worker) {
            Choice::Worker(program) => Ok(program.exe),
            Choice::Refused(outcome) => Err(outcome.reason),
        }
    }
}

/// Whether `plugin` is a Go-native plugin (`-buildmode=plugin`), which
/// loads only into a Go program: served by the Go worker, never in the
/// application's own process.
pub fn is_go_native(plugin: &Path) -> bool {
    matches!(kind::of(plugin), PluginKind::GoNative(_))
}

/// How one call to a worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerCall {
    /// The method returned `status` (0: success) with `output`.
    Returned {
        status: i32,
        output: Vec<u8>,
        /// A Go-native method's error message.
        error: Option<String>,
    },
    /// Its output was longer than a worker hands back.
    OutputTooLarge { len: u64 },
    /// The plugin registers no such method; (some of) the ones it does.
    NoSuchMethod { registered: Vec<String> },
    /// A Go-native method panicked; the Go worker recovered it.
    Panicked { panic: String },
    /// The method handed back an output buffer the ABI does not allow.
    BrokenBuffer { status: i32, problem: String },
    /// The plugin did not load or init (or the input was refused).
    NotReady { reason: String },
    /// The worker died in the call: how, and where in the plugin.
    Crashed { how: String },
    /// The call overran its deadline; the worker and its tree were killed.
    TimedOut,
    /// The caller cancelled the call; the worker and its tree were killed.
    Cancelled,
    /// The worker misbehaved on its channel (the plugin wrote into it, or
    /// replaced the process); it was killed.
    Misbehaved { problem: String },
    /// A state message to a plugin that keeps no state.
    Stateless,
    /// The plugin's name and version, as it gave them (the answer to
    /// [`IsolatedPlugin::describe`]; escape them to print them).
    Described { name: String, version: String },
}

impl WorkerCall {
    /// Whether the worker is gone after this call: the next call needs a
    /// new one.
    pub fn worker_lost(&self) -> bool {
        matches!(
            self,
            WorkerCall::Crashed { .. }
                | WorkerCall::TimedOut
                | WorkerCall::Cancelled
                | WorkerCall::Misbehaved { .. }
        )
    }
}

/// A call's answer and what the plugin logged while it ran.
#[derive(Debug, Clone)]
pub struct Called {
    pub ended: WorkerCall,
    /// The plugin's log lines of this call (bounded by the worker).
    pub logs: Vec<LogLine>,
    /// Lines past the bound, counted.
    pub unkept_logs: u64,
}

/// Why a worker could not start.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StartError(String);

/// One worker process serving one plugin: calls one at a time, to the
/// same instance, until it dies or is stopped.
pub struct IsolatedPlugin {
    worker: Option<Worker>,
    plugin: PathBuf,
    pid: u32,
    /// Whether its methods can see a cancellation (ABI 1.1, as its
    /// `describe` said): a cancelled call then gets a moment to end
    /// before the worker is killed; otherwise it is killed at once.
    sees_cancellation: bool,
    /// Whether the plugin makes instances (its `describe` said): only then
    /// does a call by key make one.
    makes_instances: bool,
    /// Whether a call went to an instance by key: their state is this
    /// worker's alone (only the first instance's is saved).
    keyed: bool,
}

impl std::fmt::Debug for IsolatedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolatedPlugin")
            .field("plugin", &self.plugin)
            .field("pid", &self.pid)
            .finish()
    }
}

impl IsolatedPlugin {
    /// Starts `program` (from [`WorkerProgram::for_plugin`]) as a worker
    /// for `plugin` and waits for its hello; the plugin loads and inits at
    /// the first call.
    pub fn start(program: &Path, plugin: &Path) -> Result<IsolatedPlugin, StartError> {
        crate::os::embedded_in_application();
        let worker = launch(program, plugin)
            .and_then(Launched::connect)
            .map_err(|error| StartError(format!("{error}")))?;
        let pid = worker.pid();
        Ok(IsolatedPlugin {
            worker: Some(worker),
            plugin: plugin.to_owned(),
            pid,
            sees_cancellation: false,
            makes_instances: false,
            keyed: false,
        })
    }

    /// The process the worker is (or, in a PID namespace, its supervisor).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether calls went to instances by key here: their state lives in
    /// this worker only (a checkpoint saves the first instance's), so
    /// stopping it loses them.
    pub fn holds_keyed_instances(&self) -> bool {
        self.keyed
    }

    /// Calls `method` with `input` (at most [`INLINE_CALL_INPUT_BYTES`]),
    /// waiting at most `deadline`: past it the worker's whole tree is
    /// killed and the call is [`WorkerCall::TimedOut`].
    pub fn call(&mut self, method: &str, input: &[u8], deadline: Duration) -> Called {
        self.call_with(method, input, deadline, &CallOptions::default())
    }

    /// As [`IsolatedPlugin::call`], on the instance of `options`'s key and
    /// in its trace context (an ABI 1.1 method sees them, and the
    /// deadline).
    pub fn call_with(
        &mut self,
        method: &str,
        input: &[u8],
        deadline: Duration,
        options: &CallOptions,
    ) -> Called {
        self.call_in(method, input, deadline, options, false)
    }

    /// A call with its context, `cancellable` when its caller may cancel it.
    fn call_in(
        &mut self,
        method: &str,
        input: &[u8],
        deadline: Duration,
        options: &CallOptions,
        cancellable: bool,
    ) -> Called {
        let context = CallContextWire {
            cancellable,
            deadline_ms: None,
            traceparent: options
                .trace
                .as_deref()
                .and_then(crate::observe::traceparent_of)
                .map(|trace| trace.as_str().to_owned()),
            instance: options.instance.clone(),
        };
        let called = self.exchange(input, |worker| {
            worker.call_bytes(method, input, context, deadline)
        });
        // An instance made by key, in a plugin that makes them (as its
        // describe said): state this worker alone holds. A plugin without
        // instances served the key from its first, which checkpoints save.
        if options.instance.is_some()
            && self.makes_instances
            && matches!(called.ended, WorkerCall::Returned { .. })
        {
            self.keyed = true;
        }
        called
    }

    /// As [`IsolatedPlugin::call`], ending early when `cancel` is set
    /// (looked at every 10 ms); see [`IsolatedPlugin::call_cancellable_with`].
    pub fn call_cancellable(
        &mut self,
        method: &str,
        input: &[u8],
        deadline: Duration,
        cancel: &crate::call::Cancel,
    ) -> Called {
        self.call_cancellable_with(method, input, deadline, &CallOptions::default(), cancel)
    }

    /// As [`IsolatedPlugin::call_with`], cancellable when `cancel` is set
    /// (looked at every 10 ms): the worker is told, and a method of ABI 1.1
    /// sees its flag set; a call that has not ended half a second later
    /// (at once, for a plugin whose methods cannot see it) has the
    /// worker's tree killed, as at a deadline, and is
    /// [`WorkerCall::Cancelled`].
    pub fn call_cancellable_with(
        &mut self,
        method: &str,
        input: &[u8],
        deadline: Duration,
        options: &CallOptions,
        cancel: &crate::call::Cancel,
    ) -> Called {
        let grace = match self.sees_cancellation {
            true => crate::cases::CANCEL_SOON,
            false => Duration::ZERO,
        };
        if let Some(worker) = self.worker.as_mut() {
            worker.watch_cancel(Some((cancel.flag().clone(), grace)));
        }
        // Cancellable only where a cancel will be sent: else the worker
        // would read on a thread of its own for nothing.
        let cancellable = self.sees_cancellation;
        let mut called = self.call_in(method, input, deadline, options, cancellable);
        if let Some(worker) = self.worker.as_mut() {
            worker.watch_cancel(None);
        }
        if called.ended == WorkerCall::TimedOut && cancel.is_cancelled() {
            called.ended = WorkerCall::Cancelled;
        }
        called
    }

    /// Has the plugin hand over its state (`save_state`), waiting at most
    /// `deadline`: [`WorkerCall::Returned`] with the state as the output
    /// (status 0: saved), or [`WorkerCall::Stateless`].
    pub fn save_state(&mut self, deadline: Duration) -> Called {
        self.exchange(&[], |worker| worker.save_state(deadline))
    }

    /// Has the plugin take `state` (`restore_state`), which an earlier
    /// instance saved: [`WorkerCall::Returned`] with its status, or
    /// [`WorkerCall::Stateless`].
    pub fn restore_state(&mut self, state: &[u8], deadline: Duration) -> Called {
        self.exchange(state, |worker| worker.restore_state(state, deadline))
    }

    /// Asks which plugin this worker serves, once it has loaded and
    /// initialised it, waiting at most `deadline`:
    /// [`WorkerCall::Described`] with its name and version.
    pub fn describe(&mut self, deadline: Duration) -> Called {
        let mut abi = None;
        let mut makes_instances = false;
        let called = self.exchange(&[], |worker| {
            let result = worker.describe(deadline);
            if let Ok(CallAnswer::Described {
                abi: said,
                makes_instances: makes,
                ..
            }) = &result.ended
            {
                abi = said.clone();
                makes_instances = *makes;
            }
            result
        });
        self.makes_instances = makes_instances;
        // From ABI 1.1 on, a method can see its call cancelled: such a
        // call gets a moment to end before its worker is killed.
        self.sees_cancellation = abi
            .as_deref()
            .and_then(|abi| abi.split_once('.'))
            .is_some_and(|(major, minor)| {
                major == "1" && minor.parse::<u16>().is_ok_and(|minor| minor >= 1)
            });
        called
    }

    /// One message and its answer; `sent` is the bytes it carries, bounded.
    fn exchange(
        &mut self,
        sent: &[u8],
        message: impl FnOnce(&mut Worker) -> crate::worker::CallResult,
    ) -> Called {
        let not_ready = |reason: String| Called {
            ended: WorkerCall::NotReady { reason },
            logs: Vec::new(),
            unkept_logs: 0,
        };
        let Some(worker) = self.worker.as_mut() else {
            return not_ready("the worker is gone: start another".into());
        };
        if sent.len() > INLINE_CALL_INPUT_BYTES {
            return not_ready(format!(
                "{} bytes are more than a worker takes ({} MiB)",
                sent.len(),
                INLINE_CALL_INPUT_BYTES >> 20
            ));
        }
        let called = message(worker);
        let ended = match called.ended {
            Ok(answer) => {
                let ended = answered(answer);
                // An answer no worker gives: the worker is not trusted
                // with another call, as `Misbehaved` says.
                if ended.worker_lost()
                    && let Some(worker) = self.worker.take()
                {
                    worker.stop();
                }
                ended
            }
            Err(exchange) => self.lost(*exchange),
        };
        Called {
            ended,
            logs: called.logs,
            unkept_logs: called.unkept_logs,
        }
    }

    /// The worker died, hung or misbehaved: it is killed and reaped now,
    /// with its tree, and the call says how it ended.
    fn lost(&mut self, exchange: Exchange) -> WorkerCall {
        if let Some(worker) = self.worker.take() {
            worker.stop();
        }
        match exchange {
            Exchange::Crashed {
                termination,
                stack,
                forbidden,
                ..
            } => {
                let mut how = termination.describe();
                let frames = stack
                    .map(|raw| symbolize::symbolize(&raw, &self.plugin))
                    .unwrap_or_default();
                if let Some(frame) = crate::report::plugin_frame(&frames) {
                    how.push_str(&format!(" at {}", frame.describe()));
                }
                if let Some(forbidden) = &forbidden {
                    how.push_str(&format!(
                        " ({})",
                        crate::postmortem::death::forbidden_act(forbidden)
                    ));
                }
                WorkerCall::Crashed { how: escaped(&how) }
            }
            Exchange::TimedOut { .. } => WorkerCall::TimedOut,
            Exchange::ChannelAbused { problem } => WorkerCall::Misbehaved {
                problem: escaped(&problem),
            },
            Exchange::Replaced { image } => WorkerCall::Misbehaved {
                problem: format!(
                    "the plugin replaced the worker with `{}` (exec)",
                    escaped(&image)
                ),
            },
            Exchange::Done { .. } => WorkerCall::Misbehaved {
                problem: "a case's answer came to a call".into(),
            },
        }
    }

    /// Stops the worker: its whole tree is killed and reaped before this
    /// returns, so the plugin's file is free (Windows) and nothing of it
    /// runs on.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop();
        }
    }
}

impl Drop for IsolatedPlugin {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// A launch for the spawner thread: the program, the plugin, and where
/// the launched worker goes.
type LaunchRequest = (
    PathBuf,
    PathBuf,
    std::sync::mpsc::Sender<Result<Launched, SpawnError>>,
);

/// Launches a worker from one thread that lives as long as the process.
/// A worker dies with the thread that started it (`PR_SET_PDEATHSIG`
/// follows the parent *thread*), and an application's calls come from
/// threads that end: the first call of a thread pool's worker would leave
/// a worker that dies when that thread does, in the middle of another
/// thread's call.
fn launch(program: &Path, plugin: &Path) -> Result<Launched, SpawnError> {
    use std::sync::mpsc::{Sender, channel};
    use std::sync::{Mutex, OnceLock};
    static SPAWNER: OnceLock<Mutex<Sender<LaunchRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = channel::<LaunchRequest>();
        let _ = std::thread::Builder::new()
            .name("plugcheck-spawner".into())
            .spawn(move || {
                for (program, plugin, reply) in incoming {
                    // A panic must not end the one thread every start
                    // goes through.
                    let launched =
                        std::panic::catch_unwind(|| Worker::launch(&program, &plugin, &[]))
                            .unwrap_or_else(|_| {
                                Err(SpawnError::Start {
                                    exe: program.clone(),
                                    source: std::io::Error::other("starting the worker panicked"),
                                })
                            });
                    let _ = reply.send(launched);
                }
            });
        Mutex::new(requests)
    });
    let (reply, answer) = channel();
    let sent = spawner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((program.to_owned(), plugin.to_owned(), reply));
    let gone = || SpawnError::Start {
        exe: program.to_owned(),
        source: std::io::Error::other("the thread that starts workers is gone"),
    };
    sent.map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

// An answer's output is read back with the bound on inline bytes: a
// larger output bound would make every output over the smaller one a
// misbehaving worker's.
const _: () = assert!(crate::worker::MAX_CALL_OUTPUT <= INLINE_CALL_INPUT_BYTES);

/// A worker's answer as the application sees it.
fn answered(answer: CallAnswer) -> WorkerCall {
    match answer {
        CallAnswer::Returned {
            status,
            output,
            output_len,
            error,
        } => {
            let Some(bytes) = crate::worker::unhex(&output) else {
                return WorkerCall::Misbehaved {
                    problem: "its answer's output was not hex of at most 1 MiB".into(),
                };
            };
            // The worker hands back the first MiB of a longer output, and
            // its length; any other disagreement is not a worker's answer.
            if bytes.len() as u64 != output_len {
                return match bytes.len() == crate::worker::MAX_CALL_OUTPUT
                    && output_len > crate::worker::MAX_CALL_OUTPUT as u64
                {
                    true => WorkerCall::OutputTooLarge { len: output_len },
                    false => WorkerCall::Misbehaved {
                        problem: format!(
                            "its answer carried {} byte(s) of output and said it had {output_len}",
                            bytes.len()
                        ),
                    },
                };
            }
            WorkerCall::Returned {
                status,
                output: bytes,
                error: error.map(|error| escaped(&error)),
            }
        }
        CallAnswer::Panicked { panic } => WorkerCall::Panicked {
            panic: escaped(&panic),
        },
        CallAnswer::BrokenBuffer { status, problem } => WorkerCall::BrokenBuffer {
            status,
            problem: escaped(&problem),
        },
        CallAnswer::NoSuchMethod { registered } => WorkerCall::NoSuchMethod {
            registered: registered
                .iter()
                .take(20)
                .map(|name| escaped(name))
                .collect(),
        },
        CallAnswer::NotReady { reason } => WorkerCall::NotReady {
            reason: escaped(&reason),
        },
        CallAnswer::Stateless {} => WorkerCall::Stateless,
        CallAnswer::Described { name, version, .. } => WorkerCall::Described { name, version },
    }
}

/// A plugin's text (it came over a channel the plugin can write to), on
/// one line with its control characters escaped.
fn escaped(text: &str) -> String {
    crate::text::one_line(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn returned(output: &[u8], output_len: u64) -> CallAnswer {
        CallAnswer::Returned {
            status: 0,
            output: output.iter().map(|byte| format!("{byte:02x}")).collect(),
            output_len,
            error: None,
        }
    }

    #[test]
    fn an_output_over_the_bound_is_too_large_and_a_length_that_lies_is_misbehaviour() {
        let whole = vec![7u8; crate::worker::MAX_CALL_OUTPUT];
        assert_eq!(
            answered(returned(&whole, crate::worker::MAX_CALL_OUTPUT as u64)),
            WorkerCall::Returned {
                status: 0,
                output: whole.clone(),
                error: None
            }
        );
        assert_eq!(
            answered(returned(&whole, 3 << 20)),
            WorkerCall::OutputTooLarge { len: 3 << 20 }
        );
        // Short of the bound, or longer than said: not what a worker sends.
        for (output, said) in [(&b"abc"[..], 4), (&b"abcd"[..], 3)] {
            match answered(returned(output, said)) {
                WorkerCall::Misbehaved { problem } => {
                    assert!(
                        problem.contains(&format!("said it had {said}")),
                        "{problem}"
                    );
                }
                other => panic!("{output:?} said to be {said} bytes: {other:?}"),
            }
        }
    }
}
