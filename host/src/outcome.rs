//! What a case concludes and what it is given: the value types the case
//! bodies, the session, the plan, the worker protocol, the runner and the
//! reload engine share. A leaf: it names only the report's own types, so
//! none of those modules reaches upward into the case bodies for them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::os::Termination;
use crate::report::verdict::Verdict;
use crate::report::{CapturedOutput, Detail, PluginInfo};

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

/// The time one case (or one `plugcheck call`) may take unless told
/// otherwise, as the command line spells it.
pub const DEFAULT_TIMEOUT: &str = "10s";

/// The defaults of the settings a user can change (flag, gate file), named
/// once: `check`'s help, `init`'s starter file and the README are tested
/// against them (`cli::tests`).
pub const DEFAULT_LOAD_TIME_BOUND_MS: u64 = 1000;
pub const DEFAULT_REPEAT_CYCLES: u32 = 20;
pub const DEFAULT_RELOAD_CYCLES: u32 = 100;

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
    /// Other builds the reload cases switch to, for the platform judged.
    pub reload_to: BTreeMap<ReloadRole, PathBuf>,
    /// Where each reload build was named (`/repo/plugcheck.toml:8`,
    /// `--reload-to`), so a build that turns out unusable is traced to the
    /// line to fix. A role here but not in `reload_to` was named only for
    /// another platform. Apart from `reload_to`, whose shape the Go worker
    /// reads too.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reload_named_at: BTreeMap<ReloadRole, String>,
    /// Inputs `fuzz-methods` calls each method with.
    pub fuzz_inputs: u32,
    /// The seed of the fuzz inputs: the same seed, the same bytes.
    pub seed: u64,
    /// Time `fuzz-methods` may spend before it stops feeding inputs (half
    /// the case timeout): a slow but sound plugin gets a warning saying
    /// how far it got, not a timeout.
    #[serde(default = "default_fuzz_budget")]
    pub fuzz_budget_ms: u64,
    /// The series of fuzz inputs as a file, for a worker that cannot make
    /// it itself (the Go worker); see `fuzz::write_series`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuzz_series: Option<PathBuf>,
    /// A directory of the run's, removed by the parent at the end (also
    /// after a worker was killed), for shadow copies and scratch builds.
    pub scratch: Option<PathBuf>,
}

impl CaseSettings {
    /// The grace for a case timeout: a quarter of it, at most a second.
    pub fn grace_for(timeout: std::time::Duration) -> u64 {
        (timeout.as_millis() as u64 / 4).min(1000)
    }

    /// The fuzz budget for a case timeout: half of it.
    pub fn fuzz_budget_for(timeout: std::time::Duration) -> u64 {
        timeout.as_millis() as u64 / 2
    }
}

fn default_fuzz_budget() -> u64 {
    CaseSettings::default().fuzz_budget_ms
}

impl Default for CaseSettings {
    fn default() -> Self {
        CaseSettings {
            load_time_bound_ms: DEFAULT_LOAD_TIME_BOUND_MS,
            repeat_cycles: DEFAULT_REPEAT_CYCLES,
            grace_ms: 1000,
            reload_cycles: DEFAULT_RELOAD_CYCLES,
            reload_to: BTreeMap::new(),
            reload_named_at: BTreeMap::new(),
            fuzz_inputs: crate::fuzz::DEFAULT_INPUTS,
            seed: crate::fuzz::DEFAULT_SEED,
            fuzz_budget_ms: 5000,
            fuzz_series: None,
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

    pub fn unsupported(reason: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Unsupported, reason)
    }

    /// The worker died during a case: how it ended, and why as far as is
    /// known (the reason says it).
    pub fn crashed(reason: impl Into<String>, termination: Option<Termination>) -> Outcome {
        Outcome::new(Verdict::Crashed, reason)
            .with_detail(|detail| detail.termination = termination)
    }

    /// The case outlived its timeout and the worker was killed.
    pub fn timed_out(reason: impl Into<String>, after_ms: u64) -> Outcome {
        Outcome::new(Verdict::TimedOut, reason)
            .with_detail(|detail| detail.termination = Some(Termination::TimedOut { after_ms }))
    }

    /// A case reported as it came back from another process (a pre-flight
    /// worker), with its verdict, detail and output as they were.
    pub fn as_reported(
        verdict: Verdict,
        reason: impl Into<String>,
        detail: Detail,
        output: CapturedOutput,
    ) -> Outcome {
        Outcome {
            verdict,
            reason: reason.into(),
            detail: Box::new(detail),
            output,
        }
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

/// An outcome reached either at the end of a case (`Ok`) or at an earlier
/// step that already decided it (`Err`: a failed load, init, …), so case
/// bodies can stop at the first such step with `?`.
pub type Concluded = Result<Outcome, Outcome>;
