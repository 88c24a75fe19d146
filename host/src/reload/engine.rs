//! The reload engine: one live version of a plugin, replaced atomically.

use crate::plugin::called::{self, Called};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::shadow::{ShadowDir, content_hash};
use crate::inspect::sniff::Sniffed;
use crate::outcome::Outcome;
use crate::plugin::call_context::CallSettings;
use crate::plugin::session::{Answer, Session};
use crate::report::PluginInfo;
use crate::text::one_line;

/// How an engine loads new versions.
#[derive(Debug, Clone, Default)]
pub struct ReloadOptions {
    /// Where the engine's shadow directory goes (the system temporary
    /// directory when `None`).
    pub scratch: Option<PathBuf>,
    /// When set, each new version's shadow copy is put to it before it is
    /// loaded, and it says whether a version may be closed: a build that
    /// crashes in its constructor or `init` is rolled back instead of
    /// taking the host down (`watch`'s is an isolated worker,
    /// `reload::preflight::IsolatedPreflight`), or one not admitted by its
    /// bytes is refused (the host's admission).
    pub preflight: Option<Arc<dyn Preflight>>,
}

/// Tries a new build before the engine loads it into this process, and
/// says whether a version may be closed once it is done.
pub trait Preflight: std::fmt::Debug + Send + Sync {
    /// `Err` with the reason the build must not be loaded here. `build` is
    /// the shadow copy the engine will load: the bytes checked are the
    /// bytes loaded.
    fn check(&self, build: &Path) -> Result<(), Outcome>;

    /// Whether the version loaded from `build` (the shadow `check` was
    /// given) may be closed when it is retired, fails to start, or the
    /// engine ends. `false` shuts it down and leaves it loaded: closing a
    /// library whose unload was never verified (a thread-local destructor,
    /// a language runtime that cannot unload) may crash the process.
    fn may_close(&self, _build: &Path) -> bool {
        true
    }
}

/// The step of a reload that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Copying the new build to its shadow.
    Copy,
    /// The isolated pre-flight load and init.
    Preflight,
    Load,
    /// Entry, descriptor, ABI version, metadata.
    Handshake,
    Init,
    /// `restore_state` of the new version refused the old one's state.
    Restore,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Copy => "copy",
            Stage::Preflight => "pre-flight",
            Stage::Load => "load",
            Stage::Handshake => "handshake",
            Stage::Init => "init",
            Stage::Restore => "state handoff",
        })
    }
}

/// A plugin's log lines taken after a call ([`ReloadEngine::call_logged`]).
#[derive(Debug, Clone, Default)]
pub struct Logged {
    pub lines: Vec<crate::report::LogLine>,
    /// Lines past the store's bound, dropped since the last take.
    pub dropped: u64,
}

/// A reload that did not happen: the old version still serves.
#[derive(Debug, Clone)]
pub struct ReloadFailure {
    pub stage: Stage,
    /// The diagnosis, as the cases give it.
    pub outcome: Box<Outcome>,
    /// What still serves (nothing, when the first version failed).
    pub serving: Option<Box<PluginInfo>>,
}

/// Escaped as it is printed: the reason may quote the plugin's own words
/// (its last log line, a refusal), and the name and version are its own.
impl std::fmt::Display for ReloadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = one_line(&self.outcome.reason);
        match &self.serving {
            Some(serving) => write!(
                f,
                "the new version failed at {}: {reason}; still serving `{}` {}",
                self.stage,
                one_line(&serving.name),
                one_line(&serving.version)
            ),
            None => write!(f, "the plugin failed at {}: {reason}", self.stage),
        }
    }
}

impl std::error::Error for ReloadFailure {}

/// What became of the replaced version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldVersion {
    /// Shut down, closed, and gone from the process.
    Unloaded,
    /// Shut down and closed, but the loader kept it mapped; or shut down
    /// and left loaded, as the preflight asked ([`Preflight::may_close`]).
    Resident { hint: String },
}

/// A reload that happened.
#[derive(Debug, Clone)]
pub struct Reloaded {
    pub from: PluginInfo,
    pub to: PluginInfo,
    /// From the start of the reload until the new version served.
    pub took: Duration,
    /// Bytes of state handed over; `None` when either side is stateless.
    pub state_bytes: Option<usize>,
    pub old: OldVersion,
    /// What the old version logged since the last call taken with
    /// [`ReloadEngine::call_logged`], and how many lines its store dropped
    /// meanwhile: an embedding host says them, or they are lost with it.
    pub old_logs: Logged,
}

impl Reloaded {
    /// Whether the new version is lower than the old, where both are
    /// semantic versions (a plugin's own scheme is not guessed at).
    pub fn is_downgrade(&self) -> bool {
        match (
            semver::Version::parse(&self.from.version),
            semver::Version::parse(&self.to.version),
        ) {
            (Ok(from), Ok(to)) => to < from,
            _ => false,
        }
    }
}

/// The version that serves now.
struct Live {
    session: Session,
    /// The original's content hash when this version was copied.
    hash: u64,
}

/// Serves one plugin and replaces it with new builds on request.
pub struct ReloadEngine {
    original: PathBuf,
    options: ReloadOptions,
    /// Held for the length of each call, and by a reload only for the
    /// handoff: calls in flight finish first, new calls wait for the new
    /// version. parking_lot's fair unlocking keeps a busy caller from
    /// starving the reload.
    live: Mutex<Live>,
    /// One reload at a time.
    reloading: std::sync::Mutex<()>,
    // Declared last: dropped after `live`, so shadows outlive the library.
    shadows: ShadowDir,
}

impl ReloadEngine {
    /// Loads the first version of `original` (through a shadow copy).
    pub fn open(original: &Path, options: ReloadOptions) -> Result<ReloadEngine, ReloadFailure> {
        let shadows = ShadowDir::new(options.scratch.as_deref()).map_err(|error| {
            failure(
                Stage::Copy,
                Outcome::fail(format!("cannot create a shadow directory: {error}")),
                None,
            )
        })?;
        let first = ReloadEngine::prepare(original, &shadows, &options, None, None)?;
        Ok(ReloadEngine {
            original: original.to_owned(),
            options,
            live: Mutex::new(first),
            reloading: std::sync::Mutex::new(()),
            shadows,
        })
    }

    /// The shadow directory, for tests and diagnostics.
    pub fn shadow_dir(&self) -> &Path {
        self.shadows.path()
    }

    /// What serves now.
    pub fn info(&self) -> PluginInfo {
        self.live
            .lock()
            .session
            .info()
            .expect("a live version passed its handshake")
    }

    /// Calls a method of the live version; `Ok(None)` when it has no such
    /// method.
    pub fn call(&self, method: &str, input: &[u8]) -> Result<Option<Answer>, Outcome> {
        self.live.lock().session.call(method, input)
    }

    /// As [`ReloadEngine::call`], with the lines the plugin logged since
    /// the last of these calls (its `init`'s, a thread's between calls,
    /// this call's), taken from the live version's bounded store, and how
    /// many that store dropped meanwhile: what an embedding host turns
    /// into its own log events.
    pub fn call_logged(
        &self,
        method: &str,
        input: &[u8],
    ) -> (Result<Option<Answer>, Outcome>, Logged) {
        self.call_logged_with(method, input, None, &CallSettings::default())
    }

    /// [`Engine::call_logged`] on the instance of the caller's `key` (see
    /// [`Session::instance_by_key`]), in a call of `settings`. Instances by
    /// key are the live version's: a reload carries the first instance's
    /// state, and the new version makes the keyed ones afresh.
    pub(crate) fn call_logged_with(
        &self,
        method: &str,
        input: &[u8],
        key: Option<&str>,
        settings: &CallSettings,
    ) -> (Result<Option<Answer>, Outcome>, Logged) {
        let mut live = self.live.lock();
        let answer = live
            .session
            .instance_by_key(key)
            .and_then(|instance| live.session.call_with(instance, method, input, settings));
        let (lines, dropped) = live
            .session
            .host()
            .map(|host| host.take_logs_counted())
            .unwrap_or_default();
        (answer, Logged { lines, dropped })
    }

    /// Whether unloading now could lose state no handoff carries: the
    /// live version holds instances made by key, or a call holds it (and
    /// may be making one). Never waits for that call.
    pub(crate) fn keyed_or_busy(&self) -> bool {
        self.live
            .try_lock()
            .is_none_or(|live| live.session.holds_keyed_instances())
    }

    /// The build this engine reloads from (copied to a shadow each time).
    pub fn original(&self) -> &Path {
        &self.original
    }

    /// The file the serving version was loaded from: its shadow copy.
    pub fn live_path(&self) -> PathBuf {
        self.live.lock().session.path().to_owned()
    }

    /// The methods the live version registered.
    pub fn methods(&self) -> Vec<String> {
        self.live
            .lock()
            .session
            .host()
            .map(|host| host.with_registry(|registry| registry.method_names()))
            .unwrap_or_default()
    }

    /// The live version's state (`None`: stateless).
    pub fn save_state(&self) -> Result<Option<Answer>, Outcome> {
        self.live.lock().session.save_state()
    }

    /// Whether the original's content differs from the live version's.
    pub fn changed_on_disk(&self) -> std::io::Result<bool> {
        let hash = content_hash(&self.original)?;
        Ok(hash != self.live.lock().hash)
    }

    /// Replaces the live version with the original as it is on disk now.
    pub fn reload(&self) -> Result<Reloaded, ReloadFailure> {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let started = Instant::now();
        let serving = self.info();
        // What the serving version's bytes were found to be: a build that
        // has not changed is not parsed again (reload-cycles reloads one
        // build a hundred times).
        let known = {
            let live = self.live.lock();
            let sniffed = live.session.loaded().map(|loaded| loaded.sniffed().clone());
            sniffed.map(|sniffed| (live.hash, sniffed))
        };
        let mut next = ReloadEngine::prepare(
            &self.original,
            &self.shadows,
            &self.options,
            Some(&serving),
            known,
        )?;
        let mut live = self.live.lock();
        let state_bytes = match handoff(&mut live.session, &mut next.session) {
            Ok(bytes) => bytes,
            Err(outcome) => {
                drop(live);
                retire(next.session, &self.options);
                return Err(failure(Stage::Restore, outcome, Some(serving)));
            }
        };
        let old = std::mem::replace(&mut *live, next);
        let to = live.session.info().expect("checked in prepare");
        drop(live);
        let took = started.elapsed();
        let (lines, dropped) = old
            .session
            .host()
            .map(|host| host.take_logs_counted())
            .unwrap_or_default();
        Ok(Reloaded {
            from: serving,
            to,
            took,
            state_bytes,
            old: retire(old.session, &self.options),
            old_logs: Logged { lines, dropped },
        })
    }

    /// Copies, (pre-flights,) loads and initialises a version of `original`.
    fn prepare(
        original: &Path,
        shadows: &ShadowDir,
        options: &ReloadOptions,
        serving: Option<&PluginInfo>,
        known: Option<(u64, Sniffed)>,
    ) -> Result<Live, ReloadFailure> {
        let fail = |stage, outcome| failure(stage, outcome, serving.cloned());
        // Diagnoses name the file they looked at, a shadow copy the author
        // never made: name the build instead.
        let in_terms_of_build = |shadow: &Path, mut outcome: Outcome| {
            outcome.reason = outcome.reason.replace(
                &shadow.display().to_string(),
                &original.display().to_string(),
            );
            outcome
        };
        let (shadow, hash) = shadows.copy(original).map_err(|error| {
            // A refused file (a pipe, a device, too large) says what to do
            // itself; a failed read is most likely a build in progress.
            let reason = if error.kind() == std::io::ErrorKind::InvalidInput {
                format!("cannot take the build as a plugin: {error}")
            } else {
                format!(
                    "cannot copy the build `{}` to a shadow: {error}; was it deleted, or is it still being written?",
                    original.display()
                )
            };
            fail(Stage::Copy, Outcome::fail(reason))
        })?;
        if let Some(preflight) = &options.preflight {
            preflight.check(&shadow).map_err(|outcome| {
                let _ = std::fs::remove_file(&shadow);
                fail(Stage::Preflight, in_terms_of_build(&shadow, outcome))
            })?;
        }
        let unchanged = known.filter(|(known_hash, _)| *known_hash == hash);
        let mut session = Session::of_shadow(shadow.clone());
        let prepared = session
            .load_known(unchanged.map(|(_, sniffed)| sniffed))
            .map_err(|outcome| (Stage::Load, outcome))
            .and_then(|()| {
                session
                    .descriptor()
                    .map(|_| ())
                    .map_err(|outcome| (Stage::Handshake, outcome))
            })
            .and_then(|()| match (serving, session.info()) {
                // A reload replaces a plugin with a build of itself: another
                // plugin would be handed state it cannot know.
                (Some(serving), Some(new)) if new.name != serving.name => Err((
                    Stage::Handshake,
                    Outcome::fail(format!(
                        "the new build is the plugin `{}`, not `{}`: a reload only replaces a plugin with a build of the same name (is the build path right?)",
                        crate::text::one_line(&new.name),
                        crate::text::one_line(&serving.name)
                    )),
                )),
                _ => Ok(()),
            })
            .and_then(|()| session.init().map_err(|outcome| (Stage::Init, outcome)));
        match prepared {
            Ok(()) => Ok(Live { session, hash }),
            Err((stage, outcome)) => {
                // Closing a library that failed to start is what a host
                // does; a failure to close changes nothing for the caller.
                let _ = close_or_keep(session, options);
                let _ = std::fs::remove_file(&shadow);
                Err(fail(stage, in_terms_of_build(&shadow, outcome)))
            }
        }
    }
}

impl Drop for ReloadEngine {
    fn drop(&mut self) {
        let live = std::mem::replace(
            &mut self.live.get_mut().session,
            Session::of_shadow(PathBuf::new()),
        );
        let _ = close_or_keep(live, &self.options);
    }
}

/// Shuts `session` down and closes its library, or — where the preflight
/// says the version may not be closed — leaves it loaded for the rest of
/// the process (`Ok(None)`: nothing was closed).
fn close_or_keep(
    mut session: Session,
    options: &ReloadOptions,
) -> Result<Option<PathBuf>, Outcome> {
    let closable = options
        .preflight
        .as_ref()
        .is_none_or(|preflight| preflight.may_close(session.path()));
    if closable {
        return session.close();
    }
    session.shutdown();
    // Its code stays mapped, and so does what it points into: the session
    // (its host tables, which a plugin thread may still call) goes with it.
    std::mem::forget(session);
    Ok(None)
}

/// Hands the old version's state to the new one. `Ok(None)` when either is
/// stateless (nothing to carry, or nowhere to put it).
fn handoff(old: &mut Session, new: &mut Session) -> Result<Option<usize>, Outcome> {
    let Some(saved) = old.save_state()? else {
        return Ok(None);
    };
    if Called::of(saved.status) == Called::Panicked {
        let logged = old.host().map(|host| host.take_logs()).unwrap_or_default();
        return Err(called::panicked(
            "`save_state` of the old version",
            "",
            logged,
        ));
    }
    if saved.status != 0 {
        return Err(Outcome::fail(format!(
            "save_state of the old version returned {}",
            crate::plugin::session::status_text(saved.status)
        )));
    }
    match new.restore_state(&saved.output)? {
        None => Ok(None),
        Some(restored) if restored.status == 0 => Ok(Some(saved.output.len())),
        Some(restored) if Called::of(restored.status) == Called::Panicked => {
            let on = format!(" given the {} bytes the old one saved", saved.output.len());
            Err(called::panicked("`restore_state` of the new version", &on, restored.logged))
        }
        // The new version is retired with its host: its words go into the
        // reason and the detail, or nobody would see them.
        Some(restored) => Err(Outcome::fail(format!(
            "restore_state of the new version refused the {} bytes the old one saved: it returned {}",
            saved.output.len(),
            restored.refusal()
        ))
        .with_detail(|detail| {
            detail.status = Some(restored.status);
            detail.logs = restored.logged;
        })),
    }
}

/// Shuts a replaced (or rejected) version down, closes it, and says
/// whether it left the process. Its shadow copy is removed when it did.
fn retire(session: Session, options: &ReloadOptions) -> OldVersion {
    let hint = session.resident_hint().unwrap_or_default();
    let loaded = session.loaded().is_some();
    match close_or_keep(session, options) {
        Ok(Some(shadow)) if Session::is_resident(&shadow) => OldVersion::Resident { hint },
        Ok(Some(shadow)) => {
            let _ = std::fs::remove_file(shadow);
            OldVersion::Unloaded
        }
        Ok(None) if loaded => OldVersion::Resident {
            hint: "shut down and kept loaded: closing it was not verified to be safe".to_owned(),
        },
        Ok(None) => OldVersion::Unloaded,
        Err(outcome) => OldVersion::Resident {
            hint: outcome.reason,
        },
    }
}

fn failure(stage: Stage, outcome: Outcome, serving: Option<PluginInfo>) -> ReloadFailure {
    ReloadFailure {
        stage,
        outcome: Box::new(outcome),
        serving: serving.map(Box::new),
    }
}
