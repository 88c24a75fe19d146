//! How a run is configured: what the command line and the gate file
//! decided, read by the runner and by each plugin's run.

use std::path::PathBuf;
use std::time::Duration;

use super::head_start::HeadStart;
use crate::catalog::CaseId;
use crate::gate::policy::Policy;
use crate::outcome::CaseSettings;
use crate::report::provenance::Provenance;

/// How a run is configured.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `plugcheck` binary to re-execute as the worker.
    pub worker_exe: PathBuf,
    /// Cases to run, in suite order.
    pub cases: Vec<CaseId>,
    pub timeout: Duration,
    pub settings: CaseSettings,
    /// What passes the gate.
    pub policy: Policy,
    /// Runs of each plugin's cases, each in fresh workers (`--repeat`):
    /// runs that disagree make a case flaky.
    pub repeat: u32,
    /// Plugins checked at the same time.
    pub jobs: usize,
    /// Where inputs that crash or hang a method are saved (none: they are
    /// not, and the report says so).
    pub inputs_dir: Option<PathBuf>,
    /// How the run was made, recorded in its report (none for a run no
    /// report of is kept, like a reload's pre-flight).
    pub provenance: Option<Provenance>,
    /// A worker started for the run's one plugin before the run was set
    /// up, for its run to take.
    pub head_start: HeadStart,
    /// Whether each plugin's report names its build by SHA-256: where the
    /// report is written (`--json`). A check that only prints reads no
    /// more of the file (hashing echo's 350 KiB takes 0.28 ms of a 4.8 ms
    /// check here).
    pub hash_builds: bool,
}
