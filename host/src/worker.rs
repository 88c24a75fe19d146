//! A plugin served in a worker process of its own — the harness's worker
//! (`plugcheck::embed`), with its channel, crash decoding and process-tree
//! kill — under supervision: a crash or an overrun costs the call it
//! happened in, the worker is killed with everything it started, and a new
//! one starts for a later call once the backoff's pause is over; after too
//! many deaths in a row the plugin is quarantined. A circuit breaker turns
//! calls away from a plugin (or a method) that keeps failing, and a bound
//! on calls in flight (a bulkhead) turns away the ones over it.
//!
//! **Lazy and idle.** Nothing starts at [`Isolated::open`]: the worker
//! starts at the first call (and is asked its `selftest`, when it
//! registers one, before that call goes: a worker that is not ready is a
//! failed start). With [`Settings::idle_unload`], a worker that served no
//! call for that long is stopped (a process that ends unloads everything,
//! whatever the plugin's `unload` case said), and the next call starts
//! another.
//!
//! **Threading.** `Isolated` is `Send + Sync`. A worker takes one call at
//! a time: calls from several threads queue for it, in no promised order,
//! at most [`Settings::max_in_flight`] of them (waiting or running);
//! the deadline counts from when the worker takes the call.
//!
//! **Builds.** Each version is copied to a shadow file first and admitted
//! by the copy's bytes, which are what the worker loads: a rebuild between
//! the decision and the load cannot slip in, and on Windows the build
//! stays free to overwrite. [`Isolated::reload`] starts the new build's
//! worker beside the old one, switches when the call in flight is done,
//! and keeps the old one serving if the new one is refused or fails to
//! start (blue/green). The worker protocol carries no plugin state yet:
//! the new version starts from its `init`, as a restarted worker does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use plugcheck::embed::{IsolatedPlugin, WorkerCall, WorkerProgram};
use plugcheck::reload::ShadowDir;
use plugcheck::report::LogLine;
use plugcheck::text::one_line;

use crate::admission::{Admitted, Evidence, Refused, Rules, admit};
use crate::call::{Answered, CallError, MAX_NAMED_METHODS};
use crate::observe::{self, short_version};
use crate::supervision::{Breaker, BreakerState, Breakers, Restart, Restarts};

/// How a worker-mode plugin is run and kept running.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which program the worker runs (the Go worker serves Go-native
    /// plugins whichever this is).
    pub program: WorkerProgram,
    pub restart: Restart,
    pub breaker: Breaker,
    /// Calls in flight at most, waiting for the worker or running in it.
    pub max_in_flight: usize,
    /// Stop a worker that served no call for this long.
    pub idle_unload: Option<Duration>,
    /// How long a new worker may take to load, init and answer its
    /// `selftest`.
    pub start_deadline: Duration,
}

impl Settings {
    /// Defaults around `program`: the restart and breaker defaults, 64
    /// calls in flight, no idle unload, 20 s to start.
    pub fn new(program: WorkerProgram) -> Settings {
        Settings {
            program,
            restart: Restart::default(),
            breaker: Breaker::default(),
            max_in_flight: 64,
            idle_unload: None,
            start_deadline: Duration::from_secs(20),
        }
    }
}

/// Why a plugin could not be opened or reloaded.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("cannot copy `{}` to its shadow `{}`: {source}; check that the temporary directory is writable", one_line(&build.display().to_string()), shadow.display())]
    Shadow {
        build: PathBuf,
        shadow: PathBuf,
        source: std::io::Error,
    },
    #[error("no worker can serve `{}`: {}", one_line(&build.display().to_string()), one_line(reason))]
    NoWorker { build: PathBuf, reason: String },
    /// A reload's new worker did not start or was not ready; the old
    /// version serves on.
    #[error("the new build `{}` did not start: {}; the old version serves on", one_line(&build.display().to_string()), one_line(reason))]
    NotStarted { build: PathBuf, reason: String },
}

/// What happened to a worker-mode plugin so far: what a soak prints and
/// metrics export.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub calls: u64,
    pub answers: u64,
    /// Errors by [`CallError::kind`].
    pub errors: BTreeMap<&'static str, u64>,
    /// Workers started, the first included.
    pub starts: u64,
    /// Each restart's pause before it, in order.
    pub restart_pauses: Vec<Duration>,
    /// Each change of a breaker's state, in order.
    pub breaker_changes: Vec<BreakerState>,
    pub reloads: u64,
    pub idle_stops: u64,
    /// Workers stopped by [`Isolated::unload`].
    pub unloads: u64,
}

/// A plugin served in a worker process.
pub struct Isolated {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Isolated {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Isolated")
            .field("build", &self.inner.build)
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// The build path the application gave: what a reload reads again.
    build: PathBuf,
    name: String,
    settings: Settings,
    rules: Rules,
    evidence: Mutex<Evidence>,
    shadows: ShadowDir,
    in_flight: AtomicUsize,
    serving: Mutex<Serving>,
}

/// The version that serves, its worker, and its supervision.
struct Serving {
    version: Version,
    worker: Option<IsolatedPlugin>,
    /// When the live worker started.
    started: Instant,
    last_call: Instant,
    restarts: Restarts,
    breakers: Breakers,
    stats: Stats,
    /// The pause the next start waited out, after a death.
    pause: Option<Duration>,
    /// What the plugin logged as its worker started (its `init`), for the
    /// span of the call that started it.
    start_logs: (Vec<LogLine>, u64),
}

/// One admitted build: its shadow copy, admission and worker program.
#[derive(Clone)]
struct Version {
    shadow: PathBuf,
    admitted: Admitted,
    program: PathBuf,
}

// An application shares one between threads.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Isolated>();
};

impl Isolated {
    /// Admits the build at `build` by `rules` and `evidence` (by the bytes
    /// of its shadow copy, which the worker will load), and picks its
    /// worker program. No worker starts until the first call.
    pub fn open(
        build: &Path,
        rules: Rules,
        evidence: Evidence,
        settings: Settings,
    ) -> Result<Isolated, OpenError> {
        let shadows = ShadowDir::new(None).map_err(|source| OpenError::Shadow {
            build: build.to_owned(),
            shadow: std::env::temp_dir(),
            source,
        })?;
        let version = prepare(build, &shadows, &rules, &evidence, &settings)?;
        let now = Instant::now();
        let inner = Arc::new(Inner {
            build: build.to_owned(),
            name: build.file_name().map_or_else(
                || build.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            serving: Mutex::new(Serving {
                version,
                worker: None,
                started: now,
                last_call: now,
                restarts: Restarts::new(settings.restart.clone()),
                breakers: Breakers::new(settings.breaker.clone()),
                stats: Stats::default(),
                pause: None,
                start_logs: Default::default(),
            }),
            settings,
            rules,
            evidence: Mutex::new(evidence),
            shadows,
            in_flight: AtomicUsize::new(0),
        });
        if let Some(idle) = inner.settings.idle_unload {
            spawn_idle_watch(Arc::downgrade(&inner), idle);
        }
        Ok(Isolated { inner })
    }

    /// The admission of the version that serves.
    pub fn admitted(&self) -> Admitted {
        self.inner.serving().version.admitted.clone()
    }

    /// Whether a worker is running now (lazy load, idle unload).
    pub fn is_loaded(&self) -> bool {
        self.inner.serving().worker.is_some()
    }

    /// The worker's process id, while one runs.
    pub fn worker_pid(&self) -> Option<u32> {
        self.inner
            .serving()
            .worker
            .as_ref()
            .map(IsolatedPlugin::pid)
    }

    /// What happened so far.
    pub fn stats(&self) -> Stats {
        self.inner.serving().stats.clone()
    }

    /// The state of the breaker `method`'s calls go through.
    pub fn breaker(&self, method: &str) -> BreakerState {
        self.inner.serving().breakers.state(method)
    }

    /// Calls `method` with `input`, the worker given `deadline` to answer:
    /// past it the worker's whole tree is killed and the call fails with
    /// [`CallError::TimedOut`]. Starts the worker if none runs (see the
    /// module's notes on restarts).
    pub fn call(
        &self,
        method: &str,
        input: &[u8],
        deadline: Duration,
    ) -> Result<Answered, CallError> {
        self.call_traced(method, input, deadline, &observe::new_trace_id())
    }

    /// As [`Isolated::call`], in a span carrying the caller's `trace_id`
    /// (see [`crate::observe`]), as are the plugin's log lines.
    pub fn call_traced(
        &self,
        method: &str,
        input: &[u8],
        deadline: Duration,
        trace_id: &str,
    ) -> Result<Answered, CallError> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "plugin_call",
            plugin = %self.inner.name,
            version = tracing::field::Empty,
            instance = tracing::field::Empty,
            method = %one_line(method),
            trace_id = %one_line(trace_id),
        );
        let _entered = span.enter();
        let limit = self.inner.settings.max_in_flight.max(1);
        let result = InFlight::take(&self.inner.in_flight, limit).and_then(|_slot| {
            let mut serving = self.inner.serving();
            span.record(
                "version",
                tracing::field::display(short_version(&serving.version.admitted.sha256)),
            );
            serving.stats.calls += 1;
            let result = self
                .inner
                .call_serving(&mut serving, method, input, deadline, &span);
            match &result {
                Ok(_) => serving.stats.answers += 1,
                Err(error) => *serving.stats.errors.entry(error.kind()).or_default() += 1,
            }
            serving.last_call = Instant::now();
            result
        });
        observe::call_ended(&self.inner.name, &result, started.elapsed());
        result
    }

    /// Replaces the serving version with the build as it is on disk now:
    /// admitted by its shadow's bytes, its worker started and ready beside
    /// the old one (which keeps taking calls meanwhile), then switched to
    /// once the call in flight is done. Any failure leaves the old version
    /// serving. A reload lifts a quarantine and closes the breakers: it is
    /// another build.
    pub fn reload(&self) -> Result<(), OpenError> {
        let version = {
            let evidence = self.inner.evidence();
            prepare(
                &self.inner.build,
                &self.inner.shadows,
                &self.inner.rules,
                &evidence,
                &self.inner.settings,
            )?
        };
        let worker = self.inner.start(&version).map_err(|reason| {
            observe::reloaded(&self.inner.name, false);
            OpenError::NotStarted {
                build: self.inner.build.clone(),
                reason,
            }
        })?;
        observe::reloaded(&self.inner.name, true);
        let (worker, (lines, unkept)) = worker;
        observe::plugin_logs(&lines, unkept);
        let old = {
            let mut serving = self.inner.serving();
            let old_shadow = std::mem::replace(&mut serving.version, version).shadow;
            let old = serving.worker.replace(worker);
            serving.started = Instant::now();
            serving.restarts.release();
            serving.breakers = Breakers::new(self.inner.settings.breaker.clone());
            serving.stats.reloads += 1;
            serving.stats.starts += 1;
            (old, old_shadow)
        };
        // Stopped outside the lock: calls go to the new worker meanwhile.
        drop(old.0);
        let _ = std::fs::remove_file(&old.1);
        Ok(())
    }

    /// Whether the worker died after every restart allowed in a row.
    pub fn is_quarantined(&self) -> bool {
        self.inner.serving().restarts.quarantined()
    }

    /// Lifts a quarantine: the next call starts a worker again.
    pub fn release(&self) {
        self.inner.serving().restarts.release();
    }

    /// Takes another report's judgements, for builds to come.
    pub fn add_evidence(&self, report: &Path) -> Result<usize, plugcheck::report::ReportReadError> {
        self.inner.evidence().read(report)
    }

    /// Stops the worker now, once the call in flight is done (a host's
    /// bound on loaded plugins): not a death, the next call starts another.
    pub fn unload(&self) {
        let mut serving = self.inner.serving();
        if serving.worker.take().is_some() {
            serving.stats.unloads += 1;
        }
    }

    /// Stops the worker now if it served no call for `idle`; whether it
    /// did. (With [`Settings::idle_unload`] a watch does this.)
    pub fn stop_if_idle(&self, idle: Duration) -> bool {
        self.inner.stop_if_idle(idle)
    }
}

impl Inner {
    fn serving(&self) -> MutexGuard<'_, Serving> {
        self.serving
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn evidence(&self) -> MutexGuard<'_, Evidence> {
        self.evidence
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn call_serving(
        &self,
        serving: &mut Serving,
        method: &str,
        input: &[u8],
        deadline: Duration,
        span: &tracing::Span,
    ) -> Result<Answered, CallError> {
        if serving.worker.is_none() {
            self.restart(serving)?;
        }
        span.record(
            "instance",
            serving.worker.as_ref().map_or(0, IsolatedPlugin::pid),
        );
        // Init's lines, logged at the start, now that the span names the
        // instance.
        let (lines, unkept) = std::mem::take(&mut serving.start_logs);
        observe::plugin_logs(&lines, unkept);
        let now = Instant::now();
        let before = serving.breakers.state(method);
        if let Err(turned) = serving.breakers.admit(method, now) {
            return Err(CallError::BreakerOpen {
                scope: match self.settings.breaker.per_method {
                    true => format!("{}/{method}", self.name),
                    false => self.name.clone(),
                },
                retry_in: turned.retry_in,
            });
        }
        // Half-open: this call is the probe.
        let probing = serving.breakers.state(method);
        if probing != before {
            serving.stats.breaker_changes.push(probing);
            observe::breaker(&self.name, probing);
        }
        let worker = serving.worker.as_mut().expect("started above");
        let started = Instant::now();
        let called = worker.call(method, input, deadline);
        let took = started.elapsed();
        observe::plugin_logs(&called.logs, called.unkept_logs);
        if called.ended.worker_lost() {
            serving.worker = None;
            let served = serving.started.elapsed();
            serving.pause = serving.restarts.died(served, Instant::now());
            serving.stats.restart_pauses.extend(serving.pause);
        }
        let result = self.judge(method, called.ended, deadline, took);
        let fault = result.as_ref().is_err_and(CallError::is_plugin_fault);
        let after = serving.breakers.record(method, fault, Instant::now());
        if after != probing {
            serving.stats.breaker_changes.push(after);
            observe::breaker(&self.name, after);
        }
        result
    }

    /// Starts a worker for the serving version, if the backoff allows it
    /// now; a failed start counts as a death.
    fn restart(&self, serving: &mut Serving) -> Result<(), CallError> {
        let restarts = serving.stats.starts.saturating_sub(1);
        match serving.restarts.may_start(Instant::now()) {
            Ok(()) => {}
            Err(None) => return Err(CallError::Quarantined { restarts }),
            Err(Some(retry_in)) => {
                return Err(CallError::Restarting { retry_in, restarts });
            }
        }
        match self.start(&serving.version) {
            Ok((worker, logs)) => {
                serving.start_logs = logs;
                if let Some(pause) = serving.pause.take() {
                    observe::restarted(&self.name, pause);
                }
                serving.worker = Some(worker);
                serving.started = Instant::now();
                serving.restarts.started();
                serving.stats.starts += 1;
                Ok(())
            }
            Err(reason) => {
                serving.pause = serving.restarts.died(Duration::ZERO, Instant::now());
                serving.stats.restart_pauses.extend(serving.pause);
                Err(CallError::NotServing(reason))
            }
        }
    }

    /// A worker for `version`, loaded, initialised and ready: its
    /// `selftest` (where it registers one) returned 0.
    /// Also what the plugin logged meanwhile.
    fn start(&self, version: &Version) -> Result<(IsolatedPlugin, (Vec<LogLine>, u64)), String> {
        let mut worker = IsolatedPlugin::start(&version.program, &version.shadow)
            .map_err(|error| error.to_string())?;
        let ready = worker.call("selftest", &[], self.settings.start_deadline);
        match ready.ended {
            WorkerCall::Returned { status: 0, .. } | WorkerCall::NoSuchMethod { .. } => {
                Ok((worker, (ready.logs, ready.unkept_logs)))
            }
            WorkerCall::NotReady { reason } => Err(reason),
            WorkerCall::TimedOut => Err(format!(
                "it did not load, init and answer `selftest` within {:?}",
                self.settings.start_deadline
            )),
            WorkerCall::Returned { status, error, .. } => Err(format!(
                "its `selftest` returned {status}{}",
                error.map(|e| format!(": {e}")).unwrap_or_default()
            )),
            WorkerCall::Crashed { how } => Err(format!("its worker died in `selftest`: {how}")),
            WorkerCall::Panicked { panic } => Err(format!("its `selftest` panicked: {panic}")),
            WorkerCall::BrokenBuffer { problem, .. } | WorkerCall::Misbehaved { problem } => {
                Err(format!("its `selftest` broke the contract: {problem}"))
            }
            WorkerCall::OutputTooLarge { len } => Err(format!(
                "its `selftest` answered {len} bytes, more than a worker hands back"
            )),
        }
    }

    /// A worker's answer as the call's result.
    fn judge(
        &self,
        method: &str,
        ended: WorkerCall,
        deadline: Duration,
        took: Duration,
    ) -> Result<Answered, CallError> {
        let method = method.to_owned();
        match ended {
            WorkerCall::Returned {
                status: 0,
                output,
                error: None,
            } => Ok(Answered { output, took }),
            WorkerCall::Returned { status, error, .. }
                if status == plugcheck_abi::status::PANIC =>
            {
                Err(CallError::Panicked {
                    method,
                    panic: error,
                })
            }
            WorkerCall::Returned { status, error, .. } => Err(CallError::Refused {
                method,
                status,
                message: error,
            }),
            WorkerCall::OutputTooLarge { len } => Err(CallError::Broken {
                method,
                problem: format!("its output of {len} bytes is more than a worker hands back"),
            }),
            WorkerCall::NoSuchMethod { mut registered } => {
                registered.truncate(MAX_NAMED_METHODS);
                Err(CallError::NoSuchMethod {
                    plugin: self.name.clone(),
                    method,
                    known: registered,
                })
            }
            WorkerCall::Panicked { panic } => Err(CallError::Panicked {
                method,
                panic: Some(panic),
            }),
            WorkerCall::BrokenBuffer { problem, .. } => Err(CallError::Broken { method, problem }),
            WorkerCall::Misbehaved { problem } => Err(CallError::Broken { method, problem }),
            WorkerCall::NotReady { reason } => Err(CallError::NotServing(reason)),
            WorkerCall::Crashed { how } => Err(CallError::Crashed { method, how }),
            WorkerCall::TimedOut => Err(CallError::TimedOut { method, deadline }),
        }
    }

    fn stop_if_idle(&self, idle: Duration) -> bool {
        // A call in flight holds the lock: it is not idle.
        let Ok(mut serving) = self.serving.try_lock() else {
            return false;
        };
        if serving.worker.is_none() || serving.last_call.elapsed() < idle {
            return false;
        }
        serving.worker.take();
        serving.stats.idle_stops += 1;
        true
    }
}

/// Stops the worker once idle for `idle`, looking four times per `idle`,
/// for as long as the plugin is open.
fn spawn_idle_watch(inner: Weak<Inner>, idle: Duration) {
    let look = (idle / 4).max(Duration::from_millis(10));
    let _ = std::thread::Builder::new()
        .name("plugcheck-host-idle".into())
        .spawn(move || {
            loop {
                std::thread::sleep(look);
                match inner.upgrade() {
                    Some(inner) => {
                        inner.stop_if_idle(idle);
                    }
                    None => return,
                }
            }
        });
}

/// A shadow copy of `build` under a name no other version had (the
/// reload engine's: a FIFO, a device or a file over the bound is refused
/// by name before anything is read), admitted by its bytes, with the
/// program its worker runs.
fn prepare(
    build: &Path,
    shadows: &ShadowDir,
    rules: &Rules,
    evidence: &Evidence,
    settings: &Settings,
) -> Result<Version, OpenError> {
    let (shadow, _) = shadows.copy(build).map_err(|source| OpenError::Shadow {
        build: build.to_owned(),
        shadow: shadows.path().to_owned(),
        source,
    })?;
    let admitted = admit(&shadow, rules, evidence)?;
    let program = settings
        .program
        .for_plugin(&shadow)
        .map_err(|reason| OpenError::NoWorker {
            build: build.to_owned(),
            reason,
        })?;
    Ok(Version {
        shadow,
        admitted,
        program,
    })
}

/// A place among the calls in flight, given back when dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn take(count: &'a AtomicUsize, limit: usize) -> Result<InFlight<'a>, CallError> {
        let before = count.fetch_add(1, Ordering::SeqCst);
        if before >= limit {
            count.fetch_sub(1, Ordering::SeqCst);
            return Err(CallError::Busy { limit });
        }
        Ok(InFlight(count))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
