//! The host an application embeds: its plugins by name, from a
//! [`HostConfig`] (a file or code), each served in the mode its
//! configuration and its reports allow, loaded at its first call, unloaded
//! when idle or when a bound on loaded plugins evicts the least recently
//! called one, and reloaded when its watched build changes.
//!
//! A plugin configured in process whose reports saw it crash, hang or
//! behave flakily (or a Go-native one) is served in a worker instead, and
//! the host says so once, as a `tracing` warning.
//!
//! **Threading.** `Host` is `Send + Sync`; share it (`Arc<Host>`) between
//! threads. Each mode's contract holds per plugin: see
//! [`crate::in_process`] and [`crate::isolated`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use crate::embed::WorkerProgram;
use crate::reload::watch::{self, Stopper, Wake, Watcher};
use crate::text::one_line;

use crate::admission::{Evidence, Isolation, Rules, admit};
use crate::call::{Answered, CallError, CallOptions, Cancel};
use crate::config::{ConfigError, HostConfig, Mode, PluginConfig};
use crate::identity::Identity;
use crate::in_process::InProcess;
use crate::isolated::{Isolated, OpenError, Settings};
use crate::observe;
use crate::supervision::Breakers;

/// Why a host cannot open, or a plugin cannot reload.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read the report `{}`: {source}; write it with `plugcheck check --json`", path.display())]
    Report {
        path: PathBuf,
        source: crate::report::ReportReadError,
    },
    #[error("plugin `{}`: {source}", one_line(plugin))]
    Open { plugin: String, source: OpenError },
    #[error(
        "plugin `{}` is configured to run in process, which runs its code in this process: open the host with `Host::open_trusting`, or configure it as `mode = \"worker\"`",
        one_line(plugin)
    )]
    NotTrusted { plugin: String },
    #[error(
        "plugin `{}`: the new build was not loaded, the old one serves on: {cause}",
        one_line(plugin)
    )]
    Reload {
        plugin: String,
        cause: Box<ReloadCause>,
    },
    #[error("no plugin is named `{}`", one_line(.0))]
    NoSuchPlugin(String),
    #[error("plugin `{}`: cannot watch `{}`: {reason}; check that its directory exists (or leave `watch` out and reload it yourself)", one_line(plugin), build.display())]
    Watch {
        plugin: String,
        build: PathBuf,
        reason: String,
    },
}

/// Why a reload did not happen, as the plugin's mode says it: to match on
/// (a refusal by admission is `Worker(OpenError::Refused(..))` or
/// `InProcess(InProcessError { refusal: Some(..), .. })`).
#[derive(Debug, thiserror::Error)]
pub enum ReloadCause {
    #[error(transparent)]
    Worker(OpenError),
    #[error(transparent)]
    InProcess(crate::in_process::InProcessError),
}

/// An application's plugins.
pub struct Host {
    entries: BTreeMap<String, Arc<Entry>>,
    max_loaded: Option<usize>,
    watches: Vec<Stopper>,
    janitor_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Host")
            .field("plugins", &self.entries.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

// An application shares one between threads.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Host>();
};

/// One plugin, as it is served.
struct Entry {
    config: PluginConfig,
    served: Served,
    last_call: Mutex<Instant>,
}

enum Served {
    Worker(Isolated),
    InProcess(Box<Trusted>),
}

/// An in-process plugin, loaded at its first call.
struct Trusted {
    build: PathBuf,
    /// At least 1 (the configuration is checked).
    max_in_flight: usize,
    rules: Rules,
    evidence: Evidence,
    /// The loaded plugin, and whether its admission lets it be unloaded
    /// (read once, at its load: asking it would wait for its calls).
    slot: RwLock<Option<(Arc<InProcess>, bool)>>,
    per_method: bool,
    /// Loads one at a time.
    loading: Mutex<()>,
    in_flight: AtomicUsize,
    breakers: Mutex<Breakers>,
    /// The plugin's name as its first load gave it: a later load (after an
    /// idle unload or an eviction) must be a build of the same plugin.
    identity: Identity,
}

impl Host {
    /// Opens every plugin of `config` in a worker process: a plugin
    /// configured in process is refused ([`HostError::NotTrusted`]).
    /// Builds are admitted now; no worker starts before a call.
    pub fn open(config: HostConfig) -> Result<Host, HostError> {
        if let Some(plugin) = config.plugins.iter().find(|p| p.mode == Mode::InProcess) {
            return Err(HostError::NotTrusted {
                plugin: plugin.name.clone(),
            });
        }
        // SAFETY: no plugin runs in this process: every one is a worker's.
        unsafe { Host::open_trusting(config) }
    }

    /// Opens every plugin of `config`, those configured in process too
    /// (unless their reports send them to a worker).
    ///
    /// # Safety
    ///
    /// A plugin served in process runs its code in this process from its
    /// first call on, whatever it does: configure only plugins the
    /// application trusts as `in-process`.
    pub unsafe fn open_trusting(config: HostConfig) -> Result<Host, HostError> {
        config.check("the host's configuration")?;
        let mut evidence = Evidence::default();
        for report in &config.reports {
            evidence.read(report).map_err(|source| HostError::Report {
                path: report.clone(),
                source,
            })?;
        }
        let program = match &config.worker_program {
            Some(path) => WorkerProgram::Plugcheck(path.clone()),
            None => WorkerProgram::ThisBinary,
        };
        let mut entries = BTreeMap::new();
        for plugin in &config.plugins {
            let served = serve(plugin, &evidence, &program)?;
            entries.insert(
                plugin.name.clone(),
                Arc::new(Entry {
                    config: plugin.clone(),
                    served,
                    last_call: Mutex::new(Instant::now()),
                }),
            );
        }
        let mut host = Host {
            entries,
            max_loaded: config.max_loaded,
            watches: Vec::new(),
            janitor_stop: Arc::new(AtomicBool::new(false)),
        };
        for entry in host.entries.values() {
            if entry.config.watch {
                host.watches.push(watch_build(entry)?);
            }
        }
        host.start_janitor();
        Ok(host)
    }

    /// The plugins' names.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// Calls `plugin`'s `method` with `input`, within the plugin's
    /// configured deadline.
    pub fn call(&self, plugin: &str, method: &str, input: &[u8]) -> Result<Answered, CallError> {
        self.call_traced(plugin, method, input, &observe::new_trace_id())
    }

    /// As [`Host::call`], with the caller's trace id on the call's span and
    /// on the plugin's log lines.
    pub fn call_traced(
        &self,
        plugin: &str,
        method: &str,
        input: &[u8],
        trace_id: &str,
    ) -> Result<Answered, CallError> {
        let options = CallOptions::traced(trace_id);
        self.call_with(plugin, method, input, &options, None)
    }

    /// As [`Host::call_traced`], cancellable by its caller (see
    /// [`Cancel`]: in a worker the call ends at once and its worker is
    /// killed; in process a call not yet made is not made, one running
    /// runs to its end).
    pub fn call_cancellable(
        &self,
        plugin: &str,
        method: &str,
        input: &[u8],
        trace_id: &str,
        cancel: &Cancel,
    ) -> Result<Answered, CallError> {
        let options = CallOptions::traced(trace_id);
        self.call_with(plugin, method, input, &options, Some(cancel))
    }

    /// The call every other form makes: `plugin`'s `method` on the
    /// instance of `options`'s key (one per tenant, say), in the caller's
    /// trace context, within the plugin's configured deadline, cancellable
    /// when `cancel` is given. An ABI 1.1 plugin sees all of it: the
    /// deadline, the cancellation flag, the trace id its log lines then
    /// carry, and an instance of its own per key.
    pub fn call_with(
        &self,
        plugin: &str,
        method: &str,
        input: &[u8],
        options: &CallOptions,
        cancel: Option<&Cancel>,
    ) -> Result<Answered, CallError> {
        let entry = self.entry(plugin).map_err(|_| CallError::NoSuchPlugin {
            name: plugin.to_owned(),
            known: self.names(),
        })?;
        let was_loaded = entry.is_loaded();
        *lock(&entry.last_call) = Instant::now();
        let deadline = entry.config.deadline;
        if cancel.is_some_and(Cancel::is_cancelled) && matches!(entry.served, Served::InProcess(_))
        {
            // Not made: nothing is loaded or admitted for it.
            return Err(CallError::Cancelled {
                method: method.to_owned(),
            });
        }
        let result = match &entry.served {
            Served::Worker(isolated) => {
                isolated.call_with(method, input, deadline, options, cancel)
            }
            Served::InProcess(trusted) => {
                trusted.call(&entry.config.name, method, input, deadline, options, cancel)
            }
        };
        if !was_loaded && entry.is_loaded() {
            self.evict_past_bound(plugin);
        }
        result
    }

    /// Reloads `plugin` from its build as it is on disk now (see each
    /// mode's `reload`); the old version serves on when the new one fails.
    pub fn reload(&self, plugin: &str) -> Result<(), HostError> {
        self.entry(plugin)?.reload()
    }

    /// Whether `plugin` is loaded now (a worker runs, or the library is
    /// loaded in process).
    pub fn is_loaded(&self, plugin: &str) -> bool {
        self.entry(plugin).is_ok_and(|entry| entry.is_loaded())
    }

    /// The worker-mode plugin `plugin`, for its stats and breaker state.
    pub fn worker(&self, plugin: &str) -> Option<&Isolated> {
        match &self.entries.get(plugin)?.served {
            Served::Worker(isolated) => Some(isolated),
            Served::InProcess(_) => None,
        }
    }

    fn entry(&self, plugin: &str) -> Result<&Arc<Entry>, HostError> {
        self.entries
            .get(plugin)
            .ok_or_else(|| HostError::NoSuchPlugin(plugin.to_owned()))
    }

    /// Past `max_loaded`, unloads the least recently called plugins that
    /// may be unloaded and have no call in flight, never `keep` (just
    /// loaded). Waits for no other plugin's call: the caller's answer is
    /// ready.
    fn evict_past_bound(&self, keep: &str) {
        let Some(max) = self.max_loaded else { return };
        let mut candidates: Vec<(&String, &Arc<Entry>)> = self
            .entries
            .iter()
            .filter(|(name, entry)| name.as_str() != keep && entry.may_unload())
            .collect();
        candidates.sort_by_key(|(_, entry)| *lock(&entry.last_call));
        let mut loaded = self
            .entries
            .values()
            .filter(|entry| entry.is_loaded())
            .count();
        for (name, entry) in candidates {
            if loaded <= max {
                return;
            }
            if entry.try_unload() {
                tracing::info!(plugin = %one_line(name), "unloaded: the least recently called past max_loaded");
                loaded -= 1;
            }
        }
    }

    /// Unloads idle in-process plugins (workers watch their own idleness).
    fn start_janitor(&self) {
        let watched: Vec<(Weak<Entry>, Duration)> = self
            .entries
            .values()
            .filter(|entry| matches!(entry.served, Served::InProcess(_)))
            .filter_map(|entry| Some((Arc::downgrade(entry), entry.config.idle_unload?)))
            .collect();
        let Some(shortest) = watched.iter().map(|(_, idle)| *idle).min() else {
            return;
        };
        let look = (shortest / 4).max(Duration::from_millis(10));
        let stop = Arc::clone(&self.janitor_stop);
        let _ = std::thread::Builder::new()
            .name("plugcheck-host-idle".into())
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(look);
                    for (entry, idle) in &watched {
                        if let Some(entry) = entry.upgrade()
                            && entry.may_unload()
                            && lock(&entry.last_call).elapsed() >= *idle
                        {
                            entry.try_unload();
                        }
                    }
                }
            });
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.janitor_stop.store(true, Ordering::SeqCst);
        for watch in &self.watches {
            watch.stop();
        }
    }
}

/// How `plugin` is served: in a worker, or in process when configured so
/// and its reports allow it.
fn serve(
    plugin: &PluginConfig,
    evidence: &Evidence,
    program: &WorkerProgram,
) -> Result<Served, HostError> {
    let open_error = |source| HostError::Open {
        plugin: plugin.name.clone(),
        source,
    };
    let mut rules = Rules {
        pin: plugin.pin.clone(),
        require_passing_report: plugin.require_passing_report,
        isolation: match plugin.mode {
            Mode::InProcess => Isolation::InProcess,
            Mode::Worker => Isolation::Worker,
        },
    };
    if plugin.mode == Mode::InProcess {
        let admitted = admit(&plugin.build, &rules, evidence)
            .map_err(|refused| open_error(OpenError::Refused(refused)))?;
        if admitted.isolation == Isolation::InProcess && !crate::embed::is_go_native(&plugin.build)
        {
            return Ok(Served::InProcess(Box::new(Trusted {
                build: plugin.build.clone(),
                max_in_flight: plugin.max_in_flight,
                rules,
                evidence: evidence.clone(),
                slot: RwLock::new(None),
                per_method: plugin.breaker.per_method,
                loading: Mutex::new(()),
                in_flight: AtomicUsize::new(0),
                breakers: Mutex::new(Breakers::new(plugin.breaker.clone())),
                identity: Identity::default(),
            })));
        }
        tracing::warn!(
            plugin = %one_line(&plugin.name),
            "configured in process, served in a worker: {}",
            one_line(admitted.isolated_by.as_deref().unwrap_or("a Go-native plugin loads only into a Go program"))
        );
        rules.isolation = Isolation::Worker;
    }
    let settings = Settings {
        name: Some(plugin.name.clone()),
        program: program.clone(),
        restart: plugin.restart.clone(),
        breaker: plugin.breaker.clone(),
        max_in_flight: plugin.max_in_flight,
        idle_unload: plugin.idle_unload,
        start_deadline: Settings::new(program.clone()).start_deadline,
        checkpoint: plugin.checkpoint,
    };
    Isolated::open(&plugin.build, rules, evidence.clone(), settings)
        .map(Served::Worker)
        .map_err(open_error)
}

/// Reloads `entry` each time its build changes on disk.
fn watch_build(entry: &Arc<Entry>) -> Result<Stopper, HostError> {
    let build = entry.config.build.clone();
    let watcher =
        Watcher::new(&build, watch::DEFAULT_DEBOUNCE, watch::Mode::Events).map_err(|error| {
            HostError::Watch {
                plugin: entry.config.name.clone(),
                build: build.clone(),
                reason: error.to_string(),
            }
        })?;
    let stopper = watcher.stopper();
    let entry = Arc::downgrade(entry);
    let _ = std::thread::Builder::new()
        .name("plugcheck-host-watch".into())
        .spawn(move || {
            while let Wake::Changed { .. } = watcher.next() {
                let Some(entry) = entry.upgrade() else { return };
                if let Err(error) = entry.reload() {
                    tracing::warn!("{error}");
                }
            }
        });
    Ok(stopper)
}

impl Entry {
    /// Whether it is loaded now; waits for no call.
    fn is_loaded(&self) -> bool {
        match &self.served {
            Served::Worker(isolated) => isolated.is_loaded(),
            Served::InProcess(trusted) => read(&trusted.slot).is_some(),
        }
    }

    /// Whether it is loaded and may be unloaded: a worker always (its
    /// process ends); in process only a build whose unloading its reports
    /// verified.
    fn may_unload(&self) -> bool {
        match &self.served {
            Served::Worker(isolated) => isolated.is_loaded(),
            Served::InProcess(trusted) => read(&trusted.slot)
                .as_ref()
                .is_some_and(|(_, may_unload)| *may_unload),
        }
    }

    /// Unloads it unless a call is in flight (a worker) or the slot is
    /// being loaded (in process); whether it did. An in-process library
    /// closes when the last call holding it is done.
    fn try_unload(&self) -> bool {
        match &self.served {
            Served::Worker(isolated) => isolated.try_unload(),
            Served::InProcess(trusted) => match trusted.slot.try_write() {
                // Instances made by key would be lost (or a call runs, which
                // may make one): kept loaded, without waiting for the call.
                Ok(slot)
                    if slot
                        .as_ref()
                        .is_some_and(|(plugin, _)| plugin.unload_would_lose_state()) =>
                {
                    false
                }
                Ok(mut slot) => slot.take().is_some(),
                Err(_) => false,
            },
        }
    }

    fn reload(&self) -> Result<(), HostError> {
        let reload_error = |cause: ReloadCause| HostError::Reload {
            plugin: self.config.name.clone(),
            cause: Box::new(cause),
        };
        match &self.served {
            Served::Worker(isolated) => isolated
                .reload()
                .map_err(|error| reload_error(ReloadCause::Worker(error))),
            Served::InProcess(trusted) => {
                let Some((plugin, _)) = read(&trusted.slot).clone() else {
                    // Not loaded: its next load reads the new build.
                    return Ok(());
                };
                // SAFETY: `Host::open_trusting`'s caller vouched for this
                // plugin's builds running in this process.
                let reloaded = unsafe { plugin.reload() };
                observe::reloaded(&self.config.name, reloaded.is_ok());
                reloaded
                    .map(drop)
                    .map_err(|error| reload_error(ReloadCause::InProcess(error)))
            }
        }
    }
}

impl Trusted {
    fn call(
        &self,
        name: &str,
        method: &str,
        input: &[u8],
        deadline: Duration,
        options: &CallOptions,
        cancel: Option<&Cancel>,
    ) -> Result<Answered, CallError> {
        let (trace_id, options) = observe::traced(options);
        let span = tracing::info_span!(
            "plugin_call",
            plugin = %one_line(name),
            instance = 0,
            method = %one_line(method),
            trace_id = %one_line(&trace_id),
            key = %one_line(options.instance.as_deref().unwrap_or("")),
        );
        let _entered = span.enter();
        let started = Instant::now();
        let result = self.call_in_span(name, method, input, deadline, &options, cancel);
        observe::call_ended(name, &result, started.elapsed());
        result
    }

    fn call_in_span(
        &self,
        name: &str,
        method: &str,
        input: &[u8],
        deadline: Duration,
        options: &CallOptions,
        cancel: Option<&Cancel>,
    ) -> Result<Answered, CallError> {
        let limit = self.max_in_flight;
        let before = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _slot = Leave(&self.in_flight);
        if before >= limit {
            return Err(CallError::Busy { limit });
        }
        let plugin = self.loaded()?;
        let probing = {
            let mut breakers = lock(&self.breakers);
            let before = breakers.state(method);
            breakers
                .admit(method, Instant::now())
                .map_err(|turned| CallError::BreakerOpen {
                    scope: match self.per_method {
                        true => format!("{name}/{method}"),
                        false => name.to_owned(),
                    },
                    retry_in: turned.retry_in,
                })?;
            let probing = breakers.state(method);
            if probing != before {
                observe::breaker(name, probing);
            }
            probing
        };
        let result = plugin.call_with(method, input, Some(deadline), options, cancel);
        let mut breakers = lock(&self.breakers);
        if let Err(CallError::Cancelled { .. }) = result {
            // The caller's doing: neither a fault nor a probe's answer.
            breakers.cancel_probe(method, Instant::now());
            let now = breakers.state(method);
            if now != probing {
                observe::breaker(name, now);
            }
            return result;
        }
        let fault = result.as_ref().is_err_and(CallError::is_plugin_fault);
        let after = breakers.record(method, fault, Instant::now());
        drop(breakers);
        if after != probing {
            observe::breaker(name, after);
        }
        result
    }

    /// The loaded plugin, loading it now if it is not.
    fn loaded(&self) -> Result<Arc<InProcess>, CallError> {
        if let Some((plugin, _)) = read(&self.slot).clone() {
            return Ok(plugin);
        }
        let _loading = lock(&self.loading);
        if let Some((plugin, _)) = read(&self.slot).clone() {
            return Ok(plugin);
        }
        // SAFETY: `Host::open_trusting`'s caller vouched for this plugin
        // running in this process.
        let opened = unsafe {
            InProcess::open(&self.build, self.rules.clone(), self.evidence.clone(), None)
        };
        let plugin = Arc::new(opened.map_err(|error| CallError::NotServing(error.to_string()))?);
        self.identity
            .check(&plugin.info().name)
            .map_err(CallError::NotServing)?;
        let may_unload = plugin.admitted().may_unload;
        *write(&self.slot) = Some((Arc::clone(&plugin), may_unload));
        Ok(plugin)
    }
}

/// A place among the calls in flight, given back when dropped.
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
