//! How each case runs inside the worker. `run` is an exhaustive match over
//! the catalog; the bodies are free functions grouped by topic.

mod handshake;
mod hygiene;
mod lifecycle;
mod loading;
mod reload;
mod state;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::catalog::CaseId;
use crate::report::{CapturedOutput, Detail, PluginInfo, Verdict};
use crate::session::Session;

/// A version a reload case reloads to, besides the plugin itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReloadRole {
    /// A newer build of the same plugin (`reload-upgrade`).
    Upgrade,
    /// A build whose load, handshake or init fails (`reload-broken-upgrade`).
    Broken,
    /// A build for another ABI major (`reload-abi-mismatch`).
    AbiMismatch,
}

impl ReloadRole {
    pub const ALL: [ReloadRole; 3] = [
        ReloadRole::Upgrade,
        ReloadRole::Broken,
        ReloadRole::AbiMismatch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReloadRole::Upgrade => "upgrade",
            ReloadRole::Broken => "broken",
            ReloadRole::AbiMismatch => "abi-mismatch",
        }
    }
}

/// Settings cases read; sent by the parent with every batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSettings {
    /// `load-time` warns when the first load plus init take longer.
    pub load_time_bound_ms: u64,
    /// Cycles `repeat-load` runs after one warm-up cycle.
    pub repeat_cycles: u32,
    /// How long threads and processes get to wind down after `shutdown`
    /// before they count as left running. Kept well inside the case
    /// timeout, or a slow exit would read as a hang.
    pub grace_ms: u64,
    /// Reloads `reload-cycles` runs.
    pub reload_cycles: u32,
    /// Other builds the reload cases switch to.
    pub reload_to: BTreeMap<ReloadRole, PathBuf>,
    /// A directory of the run's, removed by the parent at the end (also
    /// after a worker was killed), for shadow copies and scratch builds.
    pub scratch: Option<PathBuf>,
}

impl CaseSettings {
    /// The grace for a case timeout: a quarter of it, at most a second.
    pub fn grace_for(timeout: std::time::Duration) -> u64 {
        (timeout.as_millis() as u64 / 4).min(1000)
    }
}

impl Default for CaseSettings {
    fn default() -> Self {
        CaseSettings {
            load_time_bound_ms: 1000,
            repeat_cycles: 20,
            grace_ms: 1000,
            reload_cycles: 100,
            reload_to: BTreeMap::new(),
            scratch: None,
        }
    }
}

/// What a case concluded, as the worker reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub verdict: Verdict,
    pub reason: String,
    /// Boxed: outcomes travel through `Result::Err` on every step, and
    /// the detail is most of their size.
    #[serde(default)]
    pub detail: Box<Detail>,
    /// What the plugin printed; filled in by the parent, which captures it.
    #[serde(skip)]
    pub output: CapturedOutput,
}

impl Outcome {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Outcome {
        Outcome {
            verdict,
            reason: reason.into(),
            detail: Box::default(),
            output: CapturedOutput::default(),
        }
    }

    pub fn pass(reason: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Pass, reason)
    }

    pub fn fail(reason: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Fail, reason)
    }

    pub fn warning(reason: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Warning, reason)
    }

    pub fn skipped(reason: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Skipped, reason)
    }

    pub fn with_detail(mut self, fill: impl FnOnce(&mut Detail)) -> Outcome {
        fill(&mut self.detail);
        self
    }
}

/// A case's outcome plus what the worker learnt of the plugin on the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    pub outcome: Outcome,
    pub plugin: Option<PluginInfo>,
}

/// Runs one case against the session.
pub fn run(case: CaseId, session: &mut Session, settings: &CaseSettings) -> CaseResult {
    let result = match case {
        CaseId::Load => loading::load(session),
        CaseId::LookupEntry => loading::lookup_entry(session),
        CaseId::Descriptor => handshake::descriptor(session),
        CaseId::AbiVersion => handshake::abi_version(session),
        CaseId::Metadata => handshake::metadata(session),
        CaseId::Init => lifecycle::init(session),
        CaseId::LookupMethods => lifecycle::lookup_methods(session),
        CaseId::Selftest => lifecycle::selftest(session),
        CaseId::StateRoundtrip => state::state_roundtrip(session),
        CaseId::Shutdown => lifecycle::shutdown(session, settings),
        CaseId::Unload => hygiene::unload(session),
        CaseId::LoadTime => hygiene::load_time(session, settings),
        CaseId::RepeatLoad => hygiene::repeat_load(session, settings),
        CaseId::ReloadSameVersion => reload::same_version(session, settings),
        CaseId::ReloadUpgrade => reload::upgrade(session, settings),
        CaseId::ReloadBrokenUpgrade => reload::broken_upgrade(session, settings),
        CaseId::ReloadAbiMismatch => reload::abi_mismatch(session, settings),
        CaseId::ReloadWhileCalling => reload::while_calling(session, settings),
        CaseId::ReloadReplaceWhileLoaded => reload::replace_while_loaded(session, settings),
        CaseId::ReloadUnloadVerified => reload::unload_verified(session, settings),
        CaseId::ReloadCycles => reload::cycles(session, settings),
    };
    let mut outcome = result.unwrap_or_else(|failure| failure);
    if let Some(host) = session.host() {
        outcome.detail.logs.extend(host.take_logs());
    }
    CaseResult {
        outcome,
        plugin: session.info(),
    }
}

/// A case body: `Err` carries the outcome of a step that stopped it early.
type CaseFn = Result<Outcome, Outcome>;
