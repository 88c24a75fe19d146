//! A plugin served in the application's own process, with hot reload: the
//! harness's reload engine (`crate::reload`, the code `plugcheck watch`
//! and the reload cases run), with admission standing at its door.
//!
//! Every version, the first and each reload, is admitted by the bytes the
//! engine is about to load — its shadow copy, not the build path, so a
//! rebuild between the decision and the load cannot slip in unadmitted —
//! and a version whose `unload` was never verified is shut down but never
//! closed. A new build that is refused, fails to start or refuses the old
//! version's state is rolled back: the old version keeps serving, with its
//! state.
//!
//! **Threading.** `InProcess` is `Send + Sync`. Calls are serialized: one
//! call into the plugin at a time (the C ABI does not promise that methods
//! may run concurrently); a reload waits for the call in flight, and calls
//! wait for the switch.
//!
//! **What in-process cannot do.** A crash in the plugin (a bad pointer, an
//! abort) takes the application with it, and a method that hangs cannot be
//! stopped: a deadline is only *reported* ([`CallError::Overran`]), after
//! the call returned. A build whose reports show a crash, a hang or a flaky
//! case is therefore refused here; it runs isolated in a worker.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use crate::outcome::Outcome;
use crate::reload::{Preflight, ReloadEngine, ReloadFailure, ReloadOptions, Reloaded, Stage};
use crate::report::{PluginInfo, ReportReadError};
use plugcheck_abi::status;

use crate::admission::{Admitted, Evidence, Isolation, Refused, Rules, admit};
pub use crate::call::{Answered, CallError};
use crate::call::{CallOptions, Cancel, MAX_NAMED_METHODS};
use crate::plugin::call_context::{CallSettings, deadline_told};

/// A plugin served in this process.
pub struct InProcess {
    engine: ReloadEngine,
    door: Arc<Door>,
    /// One reload at a time from its door to its answer: the door keeps
    /// the last refusal for the reload that asked, and a second reload
    /// (the application's and a watch's) must not take it.
    reloading: Mutex<()>,
}

/// A version that was not served: the first one (`open`), or a new build
/// (`reload`, after which the old version serves on). Said as the reload
/// engine says it; [`InProcessError::refusal`] says, for a build admission
/// turned away, why — to match on, where the words are for people.
#[derive(Debug, thiserror::Error)]
#[error("{failure}")]
pub struct InProcessError {
    /// The engine's account: at which step, and what serves now.
    pub failure: ReloadFailure,
    /// Set when admission turned the build away (the step is then
    /// `pre-flight`); `None` when it was admitted and failed later.
    pub refusal: Option<Refusal>,
}

/// Why admission turned a build away from this process.
#[derive(Debug)]
pub enum Refusal {
    /// Not admitted at all (no passing report, a failed gate, another pin,
    /// a file that cannot be a plugin). Paths name the build, not the
    /// shadow copy that was read.
    NotAdmitted(Refused),
    /// Admitted only for a worker process (its reports saw a crash, a hang
    /// or a flaky case, or its rules ask for one): serve it isolated.
    WorkerOnly { reason: String },
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("InProcess")
            .field("serving", &self.engine.live_path())
            .finish_non_exhaustive()
    }
}

// An application shares one between threads.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<InProcess>();
};

impl InProcess {
    /// Admits the build at `build` by `rules` and `evidence`, and loads it:
    /// copied to a shadow (in `scratch`, or the system's temporary
    /// directory), admitted by the copy's bytes, loaded, handshaken,
    /// initialised. A build admitted only for a worker process is refused
    /// here, with why.
    ///
    /// # Safety
    ///
    /// The build's code runs in this process from its load on (its
    /// constructors first): whatever it does, this process does. Admission
    /// checks what its reports saw, not what it can do; only a plugin the
    /// application trusts belongs here.
    pub unsafe fn open(
        build: &Path,
        rules: Rules,
        evidence: Evidence,
        scratch: Option<PathBuf>,
    ) -> Result<InProcess, InProcessError> {
        let door = Arc::new(Door {
            rules,
            evidence: RwLock::new(evidence),
            admitted: Mutex::default(),
            refusal: Mutex::default(),
        });
        let options = ReloadOptions {
            scratch,
            preflight: Some(door.clone()),
        };
        match ReloadEngine::open(build, options) {
            Ok(engine) => Ok(InProcess {
                engine,
                door,
                reloading: Mutex::default(),
            }),
            Err(failure) => Err(door.explain(failure, build)),
        }
    }

    /// What serves now.
    pub fn info(&self) -> PluginInfo {
        self.engine.info()
    }

    /// The admission of the version that serves now.
    pub fn admitted(&self) -> Admitted {
        let live = self.engine.live_path();
        self.door
            .admitted()
            .get(&live)
            .cloned()
            .expect("every version served was admitted at the door")
    }

    /// The methods the serving version registered.
    pub fn methods(&self) -> Vec<String> {
        self.engine.methods()
    }

    /// Calls `method` with `input`. With a `deadline`, an answer later than
    /// it comes back as [`CallError::Overran`], answer included. The time
    /// counted starts when the call is made, so it includes waiting for a
    /// call of another thread or a reload's switch: what the caller
    /// waited.
    pub fn call(
        &self,
        method: &str,
        input: &[u8],
        deadline: Option<Duration>,
    ) -> Result<Answered, CallError> {
        self.call_with(method, input, deadline, &CallOptions::default(), None)
    }

    /// As [`InProcess::call`], on the instance of `options`'s key and in
    /// its trace context (see [`CallOptions`]); an ABI 1.1 method sees the
    /// deadline and `cancel`'s flag too. A method that returns `CANCELLED`
    /// once its call was cancelled makes [`CallError::Cancelled`]; one
    /// cancelled before it starts is not made.
    pub fn call_with(
        &self,
        method: &str,
        input: &[u8],
        deadline: Option<Duration>,
        options: &CallOptions,
        cancel: Option<&Cancel>,
    ) -> Result<Answered, CallError> {
        let cancelled = || CallError::Cancelled {
            method: method.to_owned(),
        };
        if cancel.is_some_and(Cancel::is_cancelled) {
            return Err(cancelled());
        }
        let started = Instant::now();
        let settings = CallSettings {
            deadline: deadline.map(|deadline| started + deadline_told(deadline)),
            traceparent: options
                .trace
                .as_deref()
                .and_then(crate::observe::traceparent_of),
            cancel: cancel.map(|cancel| Arc::clone(cancel.flag())),
        };
        let (answer, logs) =
            self.engine
                .call_logged_with(method, input, options.instance.as_deref(), &settings);
        crate::observe::plugin_logs(&logs.lines, logs.dropped);
        let answer = answer.map_err(|outcome: Outcome| CallError::NotServing(outcome.reason))?;
        let took = started.elapsed();
        let Some(answer) = answer else {
            let mut known = self.methods();
            known.truncate(MAX_NAMED_METHODS);
            return Err(CallError::NoSuchMethod {
                plugin: self.info().name,
                method: method.to_owned(),
                known,
            });
        };
        match answer.status {
            status::OK => {}
            status::CANCELLED if cancel.is_some_and(Cancel::is_cancelled) => {
                return Err(cancelled());
            }
            status::PANIC => {
                return Err(CallError::Panicked {
                    method: method.to_owned(),
                    panic: None,
                });
            }
            code => {
                return Err(CallError::Refused {
                    method: method.to_owned(),
                    status: code,
                    message: None,
                });
            }
        }
        match deadline {
            Some(deadline) if took > deadline => Err(CallError::Overran {
                method: method.to_owned(),
                took,
                deadline,
                output: answer.output,
            }),
            _ => Ok(Answered {
                output: answer.output,
                took,
            }),
        }
    }

    /// Whether unloading now could lose state: calls went to instances by
    /// key ([`CallOptions::instance`]), whose state lives in this process
    /// only, or a call runs. Never waits for that call.
    pub(crate) fn unload_would_lose_state(&self) -> bool {
        self.engine.keyed_or_busy()
    }

    /// Replaces the serving version with the build as it is on disk now:
    /// admitted by its bytes, loaded beside the old one, handed the old
    /// one's state, switched to once the call in flight is done. Any
    /// failure leaves the old version serving, with its state, and says
    /// at which step the new build failed.
    ///
    /// # Safety
    ///
    /// As for [`InProcess::open`]: the new build's code runs in this
    /// process.
    pub unsafe fn reload(&self) -> Result<Reloaded, InProcessError> {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let reloaded = self
            .engine
            .reload()
            .map_err(|failure| self.door.explain(failure, self.engine.original()))?;
        crate::observe::plugin_logs(&reloaded.old_logs.lines, reloaded.old_logs.dropped);
        Ok(reloaded)
    }

    /// Takes another report's judgements, for builds to come: a rebuilt
    /// plugin is admitted only by a report of its own bytes.
    pub fn add_evidence(&self, report: &Path) -> Result<usize, ReportReadError> {
        self.door
            .evidence
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .read(report)
    }
}

/// Admission at the reload engine's door: each version's shadow copy is
/// admitted before it is loaded, and remembered for whether it may be
/// closed.
#[derive(Debug)]
struct Door {
    rules: Rules,
    /// Grows as reports of new builds come ([`InProcess::add_evidence`]).
    evidence: RwLock<Evidence>,
    /// By shadow copy, every version admitted so far.
    admitted: Mutex<HashMap<PathBuf, Admitted>>,
    /// Why the last version checked was turned away, until `explain`
    /// takes it (the engine opens and reloads one version at a time).
    refusal: Mutex<Option<(PathBuf, Refusal)>>,
}

impl Door {
    fn admitted(&self) -> MutexGuard<'_, HashMap<PathBuf, Admitted>> {
        self.admitted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The engine's failure, with the refusal behind it when it failed at
    /// the door. The refusal names `build`, where admission read its
    /// shadow copy.
    fn explain(&self, failure: ReloadFailure, build: &Path) -> InProcessError {
        let taken = self
            .refusal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let refusal = match taken {
            Some((shadow, refusal)) if failure.stage == Stage::Preflight => Some(match refusal {
                Refusal::NotAdmitted(refused) => {
                    Refusal::NotAdmitted(refused.naming(&shadow, build))
                }
                worker_only => worker_only,
            }),
            _ => None,
        };
        InProcessError { failure, refusal }
    }

    fn refuse(&self, shadow: &Path, refusal: Refusal) {
        *self
            .refusal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((shadow.to_owned(), refusal));
    }
}

impl Preflight for Door {
    fn check(&self, build: &Path) -> Result<(), Outcome> {
        let evidence = self
            .evidence
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let admitted = match admit(build, &self.rules, &evidence) {
            Ok(admitted) => admitted,
            Err(refused) => {
                let said = Outcome::fail(format!("not admitted: {refused}"));
                self.refuse(build, Refusal::NotAdmitted(refused));
                return Err(said);
            }
        };
        if admitted.isolation == Isolation::Worker {
            let reason = admitted
                .isolated_by
                .as_deref()
                .unwrap_or("its rules ask for a worker process")
                .to_owned();
            // Unescaped, so the engine can name the build where this names
            // its shadow; the engine's messages escape what they print.
            let said = Outcome::fail(format!(
                "`{}` is not admitted in process: {reason}; serve it in a worker process",
                build.display()
            ));
            self.refuse(build, Refusal::WorkerOnly { reason });
            return Err(said);
        }
        self.admitted().insert(build.to_owned(), admitted);
        Ok(())
    }

    /// Asked once per version, as it goes: its admission goes with it.
    fn may_close(&self, build: &Path) -> bool {
        self.admitted()
            .remove(build)
            .is_some_and(|admitted| admitted.may_unload)
    }
}
