//! A plugin served in a worker process of its own — the harness's worker
//! (`crate::embed`), with its channel, crash decoding and process-tree
//! kill — under supervision: a crash or an overrun fails the call it
//! happened in, the worker is killed with everything it started, and a new
//! one starts for a later call once the backoff's pause is over (calls
//! during the pause fail at once with [`CallError::Restarting`]); after
//! too many deaths in a row the plugin is quarantined. A circuit breaker
//! turns calls away from a plugin (or a method) that keeps failing, and a
//! bound on calls in flight (a bulkhead) turns away the ones over it.
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
//! at most [`Settings::max_in_flight`] of them (waiting or running). The
//! deadline counts from when the worker takes the call; a call that finds
//! no worker waits for one to start (at most [`Settings::start_deadline`]
//! and the 20 s a worker gets to connect), and so do the calls queued
//! behind it.
//!
//! **Builds.** Each version is copied to a shadow file first and admitted
//! by the copy's bytes, which are what the worker loads: a rebuild between
//! the decision and the load cannot slip in, and on Windows the build
//! stays free to overwrite. [`Isolated::reload`] starts the new build's
//! worker beside the old one, switches when the call in flight is done,
//! and keeps the old one serving if the new one is refused or fails to
//! start (blue/green).
//!
//! **State** (at most 1 MiB, what a worker's message carries). At the
//! switch the old worker's `save_state` feeds the new one's
//! `restore_state`; a refusal rolls the reload back, the old version
//! keeping its state, and a stateless new version drops it (as the
//! in-process engine does). A worker stopped on purpose (idle, evicted,
//! unloaded) saves its state as it goes, and the next worker starts from
//! it; a reload meanwhile starts the new version to take it. Without
//! [`Settings::checkpoint`] that saved state is spent by the next worker:
//! a worker that dies restarts from `init`, never from a state older than
//! what it answered since. With it, the state is saved after calls, and a
//! worker that dies restarts from the last one saved. A state a new worker
//! refuses at a restart is dropped, with a warning, rather than failing
//! every start. Saves and restores wait at most
//! [`Settings::start_deadline`], under the plugin's lock: calls queue
//! behind them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};
use std::time::{Duration, Instant};

use crate::embed::{IsolatedPlugin, WorkerCall, WorkerProgram};
use crate::reload::ShadowDir;
use crate::report::LogLine;
use crate::text::one_line;

use crate::admission::{Admitted, Evidence, Refused, Rules, admit};
use crate::call::{Answered, CallError, CallOptions, Cancel, MAX_NAMED_METHODS};
use crate::identity::Identity;
use crate::observe::{self, short_version};
use crate::supervision::{Breaker, BreakerState, Breakers, Restart, Restarts, within_bound};

/// How a worker-mode plugin is run and kept running.
#[derive(Debug, Clone)]
pub struct Settings {
    /// What spans, metrics and errors call the plugin (a host's name for
    /// it); none: its build's file name.
    pub name: Option<String>,
    /// Which program the worker runs (the Go worker serves Go-native
    /// plugins whichever this is).
    pub program: WorkerProgram,
    pub restart: Restart,
    pub breaker: Breaker,
    /// Calls in flight at most, waiting for the worker or running in it.
    pub max_in_flight: usize,
    /// Stop a worker that served no call for this long.
    pub idle_unload: Option<Duration>,
    /// How long a new worker may take to load, init, answer its
    /// `selftest` and say which plugin it serves (`describe`); also how
    /// long a state may take to save or restore.
    pub start_deadline: Duration,
    /// Save the plugin's state (`save_state`) after a call answered when
    /// this long has passed since the last save (zero: after every call):
    /// a worker that dies restarts from it. Stopping a worker (idle,
    /// evicted, unloaded) saves it too, checkpoint or not.
    pub checkpoint: Option<Duration>,
}

impl Settings {
    /// Defaults around `program`: the restart and breaker defaults, 64
    /// calls in flight, no idle unload, 20 s to start.
    pub fn new(program: WorkerProgram) -> Settings {
        Settings {
            name: None,
            program,
            restart: Restart::default(),
            breaker: Breaker::default(),
            max_in_flight: 64,
            idle_unload: None,
            start_deadline: Duration::from_secs(20),
            checkpoint: None,
        }
    }

    /// What no settings can mean: no call in flight, no time to start, an
    /// idle time of 0, a restart or breaker policy that cannot work.
    pub fn check(&self) -> Result<(), String> {
        self.restart.check()?;
        self.breaker.check()?;
        within_bound("start_deadline", self.start_deadline)?;
        if self.max_in_flight == 0 {
            return Err("`max_in_flight` is 0: no call could ever run".into());
        }
        if self.start_deadline.is_zero() {
            return Err("`start_deadline` is 0: no worker could ever start".into());
        }
        if let Some(every) = self.checkpoint {
            within_bound("checkpoint", every)?;
        }
        if let Some(idle) = self.idle_unload {
            within_bound("idle_unload", idle)?;
            if idle.is_zero() {
                return Err(
                    "`idle_unload` is 0: every call would unload it; leave it out to keep it loaded"
                        .into(),
                );
            }
        }
        Ok(())
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
    /// A reload's new worker did not take the old one's state, or the
    /// old one could not save it; the old version serves on, with it.
    #[error("the new build `{}` was not switched to: {}; the old version serves on, with its state", one_line(&build.display().to_string()), one_line(reason))]
    StateNotCarried { build: PathBuf, reason: String },
    #[error("the worker settings cannot work: {0}")]
    Settings(String),
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
    /// The pause after each death that had one, in order (a death in a
    /// breaker's probe has none: the breaker spaces those): the last
    /// [`Stats::KEPT`]; `pauses` counts them all.
    pub restart_pauses: Vec<Duration>,
    pub pauses: u64,
    /// Each change of a breaker's state, in order: the last
    /// [`Stats::KEPT`]; `breaker_transitions` counts them all.
    pub breaker_changes: Vec<BreakerState>,
    pub breaker_transitions: u64,
    pub reloads: u64,
    pub idle_stops: u64,
    /// Workers stopped by [`Isolated::unload`].
    pub unloads: u64,
    /// Calls their callers cancelled while they ran: ended by the plugin
    /// (ABI 1.1), or by killing the worker.
    pub cancelled: u64,
    /// States saved, and restored into a new or restarted worker.
    pub states_saved: u64,
    pub states_restored: u64,
}

impl Stats {
    /// Pauses and breaker changes kept, the most recent: a host serves
    /// for months, and its stats must not grow with it.
    pub const KEPT: usize = 256;

    fn paused(&mut self, pause: Option<Duration>) {
        if let Some(pause) = pause {
            self.pauses += 1;
            keep_last(&mut self.restart_pauses, pause);
        }
    }

    fn breaker_changed(&mut self, state: BreakerState) {
        self.breaker_transitions += 1;
        keep_last(&mut self.breaker_changes, state);
    }
}

/// Appends `item`, dropping the oldest past [`Stats::KEPT`].
fn keep_last<T>(list: &mut Vec<T>, item: T) {
    if list.len() == Stats::KEPT {
        list.remove(0);
    }
    list.push(item);
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

/// Fields drop in this order: the worker (in `serving`) before the
/// directory of the shadow it loaded, which Windows would not let go.
struct Inner {
    serving: Mutex<Serving>,
    shadows: ShadowDir,
    /// The build path the application gave: what a reload reads again.
    build: PathBuf,
    name: String,
    settings: Settings,
    rules: Rules,
    evidence: Mutex<Evidence>,
    in_flight: AtomicUsize,
    /// Whether a worker runs: read without waiting for a call in flight.
    loaded: AtomicBool,
    /// One reload at a time: the last one asked wins, not the slowest.
    reloading: Mutex<()>,
    /// The plugin's name as its first worker gave it: every later worker,
    /// a restart's or a reload's, must serve a plugin of that name.
    identity: Identity,
}

/// Whether the live worker holds instances by key (which no checkpoint
/// saves).
fn holds_keyed_instances(serving: &Serving) -> bool {
    serving
        .worker
        .as_ref()
        .is_some_and(IsolatedPlugin::holds_keyed_instances)
}

/// One call as the serving version takes it.
struct ServingCall<'a> {
    method: &'a str,
    input: &'a [u8],
    deadline: Duration,
    options: &'a CallOptions,
    cancel: Option<&'a Cancel>,
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
    /// The state last saved: what the next worker of this plugin starts
    /// from. Without [`Settings::checkpoint`] it carries only a planned
    /// stop or a hand-over to the next worker, and is spent by it: a
    /// worker that dies then restarts from `init`, not from an old state.
    checkpoint: Option<Vec<u8>>,
    saved_at: Instant,
    /// The serving version answered that it keeps no state: not asked
    /// again until a reload.
    stateless: bool,
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
        settings.check().map_err(OpenError::Settings)?;
        let shadows = ShadowDir::new(None).map_err(|source| OpenError::Shadow {
            build: build.to_owned(),
            shadow: std::env::temp_dir(),
            source,
        })?;
        let version = prepare(build, &shadows, &rules, &evidence, &settings)?;
        let now = Instant::now();
        let name = settings.name.clone().unwrap_or_else(|| {
            build.file_name().map_or_else(
                || build.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        });
        let inner = Arc::new(Inner {
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
                checkpoint: None,
                saved_at: now,
                stateless: false,
            }),
            shadows,
            build: build.to_owned(),
            name,
            identity: Identity::default(),
            settings,
            rules,
            evidence: Mutex::new(evidence),
            in_flight: AtomicUsize::new(0),
            loaded: AtomicBool::new(false),
            reloading: Mutex::new(()),
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

    /// Whether a worker is running now (lazy load, idle unload); never
    /// waits for a call in flight.
    pub fn is_loaded(&self) -> bool {
        self.inner.loaded.load(Ordering::SeqCst)
    }

    /// Calls in flight now, waiting for the worker or running in it (what
    /// the bulkhead bounds); read without waiting for any.
    pub fn calls_in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
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
        let options = CallOptions::traced(trace_id);
        self.call_with(method, input, deadline, &options, None)
    }

    /// As [`Isolated::call_traced`], cancellable by its caller while it
    /// waits or runs (see [`Cancel`]): the worker is killed, and the next
    /// call starts another without a restart's pause or a breaker fault.
    pub fn call_cancellable(
        &self,
        method: &str,
        input: &[u8],
        deadline: Duration,
        trace_id: &str,
        cancel: &Cancel,
    ) -> Result<Answered, CallError> {
        let options = CallOptions::traced(trace_id);
        self.call_with(method, input, deadline, &options, Some(cancel))
    }

    /// The call every other form makes: on the instance of `options`'s key,
    /// in its trace context (a fresh trace id when it gives none), and
    /// cancellable when `cancel` is given. An ABI 1.1 method sees the
    /// deadline, the flag and the trace context; its log lines come back
    /// tagged with the trace id.
    pub fn call_with(
        &self,
        method: &str,
        input: &[u8],
        deadline: Duration,
        options: &CallOptions,
        cancel: Option<&Cancel>,
    ) -> Result<Answered, CallError> {
        let (trace_id, options) = observe::traced(options);
        let started = Instant::now();
        let span = tracing::info_span!(
            "plugin_call",
            plugin = %one_line(&self.inner.name),
            version = tracing::field::Empty,
            instance = tracing::field::Empty,
            method = %one_line(method),
            trace_id = %one_line(&trace_id),
            key = %one_line(options.instance.as_deref().unwrap_or("")),
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
            // Cancelled while it waited for the worker: not made.
            let result = match cancel.is_some_and(Cancel::is_cancelled) {
                true => Err(CallError::Cancelled {
                    method: method.to_owned(),
                }),
                false => {
                    let call = ServingCall {
                        method,
                        input,
                        deadline,
                        options: &options,
                        cancel,
                    };
                    self.inner.call_serving(&mut serving, call, &span)
                }
            };
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
    /// admitted by its shadow's bytes, and — when a worker runs — its own
    /// worker started and ready beside the old one (which keeps taking
    /// calls meanwhile), then switched to once the call in flight is done.
    /// Not loaded, the plugin stays so: the new version loads at the next
    /// call. Any failure leaves the old version serving. A reload lifts a
    /// quarantine and closes the breakers: it is another build.
    pub fn reload(&self) -> Result<(), OpenError> {
        let _one_at_a_time = lock(&self.inner.reloading);
        let result = self.inner.reload();
        observe::reloaded(&self.inner.name, result.is_ok());
        result
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
    pub fn add_evidence(&self, report: &Path) -> Result<usize, crate::report::ReportReadError> {
        lock(&self.inner.evidence).read(report)
    }

    /// Stops the worker now, once the call in flight is done: not a
    /// death, the next call starts another, from the state saved as it
    /// stopped (a state that could not be saved is lost, and said so).
    pub fn unload(&self) {
        let mut serving = self.inner.serving();
        self.inner.stop_worker(&mut serving, true);
    }

    /// Stops the worker now unless a call is in flight or its state could
    /// not be saved (a host's bound on loaded plugins: it waits for no
    /// call, only for the state's save); whether it did.
    pub fn try_unload(&self) -> bool {
        match self.inner.try_serving() {
            Some(mut serving) => self.inner.stop_worker(&mut serving, false),
            None => false,
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
        lock(&self.serving)
    }

    /// The serving state unless a call holds it.
    fn try_serving(&self) -> Option<MutexGuard<'_, Serving>> {
        match self.serving.try_lock() {
            Ok(serving) => Some(serving),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Stops the live worker, not as a death, its state saved first for
    /// the next one; whether one ran. Unless `anyway`, a worker whose state
    /// could not be saved keeps running: stopping it would lose the state.
    fn stop_worker(&self, serving: &mut Serving, anyway: bool) -> bool {
        if !anyway && holds_keyed_instances(serving) {
            return false;
        }
        if !self.checkpoint(serving) && !anyway {
            return false;
        }
        let stopped = serving.worker.take().is_some();
        self.loaded.store(false, Ordering::SeqCst);
        if stopped {
            serving.stats.unloads += 1;
        }
        stopped
    }

    fn call_serving(
        &self,
        serving: &mut Serving,
        call: ServingCall<'_>,
        span: &tracing::Span,
    ) -> Result<Answered, CallError> {
        let ServingCall {
            method,
            input,
            deadline,
            options,
            cancel,
        } = call;
        // A restart's pause first (no worker, nothing to probe), then the
        // breaker: an open one turns the call away before any worker is
        // started for it.
        if serving.worker.is_none() {
            self.may_restart(serving)?;
        }
        let before = serving.breakers.state(method);
        if let Err(turned) = serving.breakers.admit(method, Instant::now()) {
            return Err(CallError::BreakerOpen {
                scope: match self.settings.breaker.per_method {
                    true => format!("{}/{method}", self.name),
                    false => self.name.clone(),
                },
                retry_in: turned.retry_in,
            });
        }
        let probing = serving.breakers.state(method);
        if probing != before {
            serving.stats.breaker_changed(probing);
            observe::breaker(&self.name, probing);
        }
        if serving.worker.is_none()
            && let Err(error) = self.restart(serving)
        {
            // No call was made: a probe is still owed.
            serving.breakers.cancel_probe(method, Instant::now());
            let now_state = serving.breakers.state(method);
            if now_state != probing {
                serving.stats.breaker_changed(now_state);
                observe::breaker(&self.name, now_state);
            }
            return Err(error);
        }
        span.record(
            "instance",
            serving.worker.as_ref().map_or(0, IsolatedPlugin::pid),
        );
        // Init's lines, logged at the start, now that the span names the
        // instance.
        let (lines, unkept) = std::mem::take(&mut serving.start_logs);
        observe::plugin_logs(&lines, unkept);
        let is_probe = serving.breakers.probing(method) && self.settings.breaker.per_method;
        let worker = serving.worker.as_mut().expect("started above");
        let started = Instant::now();
        let called = match cancel {
            Some(cancel) => worker.call_cancellable_with(method, input, deadline, options, cancel),
            None => worker.call_with(method, input, deadline, options),
        };
        let took = started.elapsed();
        observe::plugin_logs(&called.logs, called.unkept_logs);
        let ended_cancelled = matches!(
            called.ended,
            WorkerCall::Returned {
                status: plugcheck_abi::status::CANCELLED,
                ..
            }
        ) && cancel.is_some_and(Cancel::is_cancelled);
        if ended_cancelled {
            // An ABI 1.1 method saw the flag and stopped: the worker lives
            // on, and the call is the caller's doing, as below.
            serving.stats.cancelled += 1;
            serving.breakers.cancel_probe(method, Instant::now());
            return Err(CallError::Cancelled {
                method: method.to_owned(),
            });
        }
        if called.ended == WorkerCall::Cancelled {
            // The caller's doing, not the plugin's: the worker is gone,
            // but no death is counted, and a probe is still owed.
            serving.worker = None;
            self.loaded.store(false, Ordering::SeqCst);
            serving.stats.cancelled += 1;
            serving.breakers.cancel_probe(method, Instant::now());
            return Err(CallError::Cancelled {
                method: method.to_owned(),
            });
        }
        if called.ended.worker_lost() {
            self.lose_worker(serving, is_probe);
        }
        let result = self.judge(method, called.ended, deadline, took);
        if result.is_ok()
            && self
                .settings
                .checkpoint
                .is_some_and(|every| serving.saved_at.elapsed() >= every)
        {
            self.checkpoint(serving);
        }
        let fault = result.as_ref().is_err_and(CallError::is_plugin_fault);
        let after = serving.breakers.record(method, fault, Instant::now());
        if after != probing {
            serving.stats.breaker_changed(after);
            observe::breaker(&self.name, after);
        }
        result
    }

    /// The worker died (or hung, or misbehaved): gone, and a death for
    /// the restart ladder — unless it died in a per-method breaker's probe.
    fn lose_worker(&self, serving: &mut Serving, is_probe: bool) {
        serving.worker = None;
        self.loaded.store(false, Ordering::SeqCst);
        if is_probe {
            serving.restarts.died_probing();
        } else {
            let served = serving.started.elapsed();
            serving.pause = serving.restarts.died(served, Instant::now());
            serving.stats.paused(serving.pause);
        }
    }

    /// Saves the live worker's state as the checkpoint, if the plugin
    /// keeps one; whether nothing was lost (a failure is said, and the
    /// older checkpoint kept).
    fn checkpoint(&self, serving: &mut Serving) -> bool {
        match self.save(serving) {
            Ok(_) => true,
            Err(why) => {
                tracing::warn!(plugin = %one_line(&self.name), "the state was not saved: it {why}");
                false
            }
        }
    }

    /// The live worker's state, saved as the checkpoint: whether the
    /// plugin keeps one (none without a live worker), or how saving went
    /// wrong (after "it"). A worker that dies saving is gone.
    fn save(&self, serving: &mut Serving) -> Result<bool, String> {
        if serving.stateless {
            return Ok(false);
        }
        let Some(worker) = serving.worker.as_mut() else {
            return Ok(false);
        };
        let saved = worker.save_state(self.settings.start_deadline);
        observe::plugin_logs(&saved.logs, saved.unkept_logs);
        serving.saved_at = Instant::now();
        match saved.ended {
            WorkerCall::Returned {
                status: 0,
                output,
                error: None,
            } => {
                serving.checkpoint = Some(output);
                serving.stats.states_saved += 1;
                Ok(true)
            }
            WorkerCall::Stateless => {
                serving.stateless = true;
                serving.checkpoint = None;
                Ok(false)
            }
            ended => {
                if ended.worker_lost() {
                    self.lose_worker(serving, false);
                }
                Err(describe(&ended))
            }
        }
    }

    /// Whether a worker may start now: not quarantined, the restart's
    /// pause over.
    fn may_restart(&self, serving: &Serving) -> Result<(), CallError> {
        let restarts = serving.restarts.in_a_row();
        match serving.restarts.may_start(Instant::now()) {
            Ok(()) => Ok(()),
            Err(None) => Err(CallError::Quarantined { restarts }),
            Err(Some(retry_in)) => Err(CallError::Restarting { retry_in, restarts }),
        }
    }

    /// Starts a worker for the serving version (the backoff allowed it:
    /// [`Inner::may_restart`]), from the last state saved; a failed start
    /// counts as a death.
    fn restart(&self, serving: &mut Serving) -> Result<(), CallError> {
        let started = self.start(&serving.version).map(|(mut worker, logs)| {
            // Without checkpoints, a saved state carries one planned stop
            // or hand-over and is spent by the next worker.
            let state = match self.settings.checkpoint {
                Some(_) => serving.checkpoint.clone(),
                None => serving.checkpoint.take(),
            };
            if let Some(state) = state {
                match restore(&mut worker, &state, self.settings.start_deadline) {
                    Ok(()) => serving.stats.states_restored += 1,
                    // Refused now, refused on every start: the plugin
                    // starts fresh rather than never.
                    Err(reason) => {
                        serving.checkpoint = None;
                        tracing::warn!(plugin = %one_line(&self.name), "the new worker did not take the state the last one saved ({reason}); it starts from init");
                    }
                }
            }
            (worker, logs)
        });
        match started {
            Ok((worker, logs)) => {
                if let Some(pause) = serving.pause.take() {
                    observe::restarted(&self.name, pause);
                }
                serving.start_logs = logs;
                serving.worker = Some(worker);
                self.loaded.store(true, Ordering::SeqCst);
                serving.started = Instant::now();
                serving.restarts.started();
                serving.stats.starts += 1;
                Ok(())
            }
            Err(reason) => {
                serving.pause = serving.restarts.died(Duration::ZERO, Instant::now());
                serving.stats.paused(serving.pause);
                Err(CallError::NotServing(reason))
            }
        }
    }

    /// A worker for `version`, loaded, initialised and ready: its
    /// `selftest` (where it registers one) returned 0, and it serves the
    /// plugin of the name the first worker served. Also what the plugin
    /// logged meanwhile; a start that failed says its last lines.
    fn start(&self, version: &Version) -> Result<(IsolatedPlugin, (Vec<LogLine>, u64)), String> {
        let started = Instant::now();
        let mut worker = IsolatedPlugin::start(&version.program, &version.shadow)
            .map_err(|error| error.to_string())?;
        let ready = worker.call("selftest", &[], self.settings.start_deadline);
        let failed = match ready.ended {
            WorkerCall::Returned { status: 0, .. } | WorkerCall::NoSuchMethod { .. } => {
                // What is left of the start's deadline: one deadline for
                // the whole start, as `Settings::start_deadline` says.
                let left = self
                    .settings
                    .start_deadline
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(1));
                self.same_plugin(&mut worker, left)?;
                return Ok((worker, (ready.logs, ready.unkept_logs)));
            }
            WorkerCall::NotReady { reason } => reason,
            WorkerCall::TimedOut => format!(
                "it did not load, init and answer `selftest` within {:?}",
                self.settings.start_deadline
            ),
            ended => format!("its `selftest` {}", describe(&ended)),
        };
        Err(match ready.logs.last() {
            Some(line) => format!("{failed}; it logged last: {}", one_line(&line.message)),
            None => failed,
        })
    }

    /// Whether `worker` serves the plugin this one always served (the
    /// first worker's answer names it).
    fn same_plugin(&self, worker: &mut IsolatedPlugin, deadline: Duration) -> Result<(), String> {
        let name = match worker.describe(deadline).ended {
            WorkerCall::Described { name, .. } => name,
            ended => {
                return Err(format!(
                    "asked which plugin it is, it {} (a worker program of an older plugcheck does not know the question: run workers with this host's own)",
                    describe(&ended)
                ));
            }
        };
        self.identity.check(&name)
    }

    /// See [`Isolated::reload`].
    fn reload(&self) -> Result<(), OpenError> {
        let version = prepare(
            &self.build,
            &self.shadows,
            &self.rules,
            &lock(&self.evidence),
            &self.settings,
        )?;
        // A worker runs, or a state waits for the next one: the new
        // version starts now, to take it (or be rolled back).
        let takes_over = self.loaded.load(Ordering::SeqCst) || self.serving().checkpoint.is_some();
        let worker = match takes_over {
            true => match self.start(&version) {
                Ok((worker, (lines, unkept))) => {
                    observe::plugin_logs(&lines, unkept);
                    Some(worker)
                }
                Err(reason) => {
                    let _ = std::fs::remove_file(&version.shadow);
                    return Err(OpenError::NotStarted {
                        build: self.build.clone(),
                        reason,
                    });
                }
            },
            false => None,
        };
        let mut worker = worker;
        let (old_worker, old_shadow) = {
            let mut serving = self.serving();
            // The call in flight is done: the state is handed over now.
            if let Some(new) = worker.as_mut()
                && let Err(reason) = self.hand_over(&mut serving, new)
            {
                drop(serving);
                drop(worker);
                let _ = std::fs::remove_file(&version.shadow);
                return Err(OpenError::StateNotCarried {
                    build: self.build.clone(),
                    reason,
                });
            }
            if worker.is_none() {
                // A call started a worker meanwhile: its state goes to the
                // next one.
                self.checkpoint(&mut serving);
            }
            let old_shadow = std::mem::replace(&mut serving.version, version).shadow;
            serving.stateless = false;
            self.loaded.store(worker.is_some(), Ordering::SeqCst);
            let started = worker.is_some();
            let old_worker = std::mem::replace(&mut serving.worker, worker);
            let now = Instant::now();
            serving.started = now;
            serving.last_call = now;
            serving.pause = None;
            serving.restarts.release();
            serving.breakers = Breakers::new(self.settings.breaker.clone());
            serving.stats.reloads += 1;
            serving.stats.starts += u64::from(started);
            (old_worker, old_shadow)
        };
        // Stopped outside the lock: calls go to the new worker meanwhile.
        drop(old_worker);
        let _ = std::fs::remove_file(&old_shadow);
        Ok(())
    }

    /// The serving worker's state, saved now, restored into `new` (or,
    /// with no worker serving, the last state saved); the reason when the
    /// old one could not save it or the new one did not take it.
    fn hand_over(&self, serving: &mut Serving, new: &mut IsolatedPlugin) -> Result<(), String> {
        let deadline = self.settings.start_deadline;
        let serving_live = serving.worker.is_some();
        match self.save(serving) {
            Ok(false) if serving_live => return Ok(()), // stateless
            Ok(_) => {}
            // The old worker died saving: the new one takes the last
            // state saved, as after any death.
            Err(why) if serving.worker.is_none() => {
                tracing::warn!(plugin = %one_line(&self.name), "the old version died saving its state ({why}); the new one takes the last state saved");
            }
            Err(why) => {
                return Err(format!(
                    "the old version could not save its state: it {why}"
                ));
            }
        }
        let Some(state) = serving.checkpoint.clone() else {
            return Ok(());
        };
        match restore(new, &state, deadline) {
            Ok(()) => serving.stats.states_restored += 1,
            // A stateless new version drops the state, as the in-process
            // engine does.
            Err(RestoreRefusal::Stateless) => {
                tracing::warn!(plugin = %one_line(&self.name), "the new version keeps no state: the {} bytes saved are dropped", state.len());
                serving.checkpoint = None;
                return Ok(());
            }
            Err(RestoreRefusal::Refused(reason)) => {
                return Err(format!("it did not take the old version's state: {reason}"));
            }
        }
        if self.settings.checkpoint.is_none() {
            // Handed over, and spent (see `Serving::checkpoint`).
            serving.checkpoint = None;
        }
        Ok(())
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
            WorkerCall::OutputTooLarge { len } => Err(CallError::TooLarge { method, len }),
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
            WorkerCall::Stateless => Err(CallError::Broken {
                method,
                problem: "the worker answered a call with `stateless`".into(),
            }),
            WorkerCall::Described { .. } => Err(CallError::Broken {
                method,
                problem: "the worker answered a call with `described`".into(),
            }),
            WorkerCall::Cancelled => Err(CallError::Cancelled { method }),
        }
    }

    fn stop_if_idle(&self, idle: Duration) -> bool {
        // A call in flight holds the lock: it is not idle.
        let Some(mut serving) = self.try_serving() else {
            return false;
        };
        if serving.worker.is_none() || serving.last_call.elapsed() < idle {
            return false;
        }
        // A state that cannot be saved would be lost: keep the worker.
        // So would the instances by key, whose state is not saved.
        if holds_keyed_instances(&serving) || !self.checkpoint(&mut serving) {
            return false;
        }
        serving.worker.take();
        self.loaded.store(false, Ordering::SeqCst);
        serving.stats.idle_stops += 1;
        true
    }
}

/// Why a state was not restored.
enum RestoreRefusal {
    /// The plugin keeps no state.
    Stateless,
    /// Its `restore_state` refused it, or the worker failed: how.
    Refused(String),
}

impl std::fmt::Display for RestoreRefusal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreRefusal::Stateless => formatter.write_str("it keeps no state"),
            RestoreRefusal::Refused(reason) => formatter.write_str(reason),
        }
    }
}

/// `state` restored into `worker`: Ok when `restore_state` returned 0.
fn restore(
    worker: &mut IsolatedPlugin,
    state: &[u8],
    deadline: Duration,
) -> Result<(), RestoreRefusal> {
    let restored = worker.restore_state(state, deadline);
    observe::plugin_logs(&restored.logs, restored.unkept_logs);
    match restored.ended {
        WorkerCall::Returned {
            status: 0,
            error: None,
            ..
        } => Ok(()),
        WorkerCall::Stateless => Err(RestoreRefusal::Stateless),
        ended => Err(RestoreRefusal::Refused(format!("it {}", describe(&ended)))),
    }
}

/// How a worker's answer went wrong, after "it".
fn describe(ended: &WorkerCall) -> String {
    match ended {
        WorkerCall::Returned { status, .. } if *status == plugcheck_abi::status::PANIC => {
            "panicked (caught at its boundary)".into()
        }
        WorkerCall::Returned { status, error, .. } => format!(
            "returned {status}{}",
            error
                .as_deref()
                .map(|e| format!(": {}", one_line(e)))
                .unwrap_or_default()
        ),
        WorkerCall::OutputTooLarge { len } => {
            format!("answered {len} bytes, more than a worker hands back")
        }
        WorkerCall::NoSuchMethod { .. } => "has no such method".into(),
        WorkerCall::Panicked { panic } => format!("panicked: {}", one_line(panic)),
        WorkerCall::BrokenBuffer { problem, .. } | WorkerCall::Misbehaved { problem } => {
            format!("broke the contract: {}", one_line(problem))
        }
        WorkerCall::NotReady { reason } => format!("could not be asked: {}", one_line(reason)),
        WorkerCall::Crashed { how } => format!("died: {}", one_line(how)),
        WorkerCall::TimedOut => "did not answer in time; its worker was killed".into(),
        WorkerCall::Stateless => "keeps no state".into(),
        WorkerCall::Described { name, .. } => format!(
            "answered as the plugin `{}`",
            crate::text::clip(&one_line(name), 200)
        ),
        WorkerCall::Cancelled => "was cancelled; its worker was killed".into(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
/// program its worker runs. A copy that is not admitted is removed.
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
    let admitted = admit(&shadow, rules, evidence)
        .map_err(|refused| OpenError::Refused(refused.naming(&shadow, build)))
        .and_then(|admitted| {
            let program =
                settings
                    .program
                    .for_plugin(&shadow)
                    .map_err(|reason| OpenError::NoWorker {
                        build: build.to_owned(),
                        reason,
                    })?;
            Ok((admitted, program))
        });
    match admitted {
        Ok((admitted, program)) => Ok(Version {
            shadow,
            admitted,
            program,
        }),
        Err(error) => {
            let _ = std::fs::remove_file(&shadow);
            Err(error)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_keep_the_last_pauses_and_transitions_and_count_them_all() {
        let mut stats = Stats::default();
        for n in 0..Stats::KEPT as u64 + 44 {
            stats.paused(Some(Duration::from_millis(n)));
            stats.breaker_changed(BreakerState::Open);
        }
        stats.paused(None);
        assert_eq!(stats.pauses, Stats::KEPT as u64 + 44);
        assert_eq!(stats.restart_pauses.len(), Stats::KEPT);
        assert_eq!(stats.restart_pauses[0], Duration::from_millis(44));
        assert_eq!(stats.breaker_transitions, Stats::KEPT as u64 + 44);
        assert_eq!(stats.breaker_changes.len(), Stats::KEPT);
    }
}
