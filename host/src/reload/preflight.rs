//! The pre-flight `plugcheck watch` hands the reload engine: the new build
//! is loaded and initialised in an isolated worker (this binary), and the
//! first failing step, or a crash, is the answer. Costs one process start
//! per reload; the worker is gone (and reaped) when it answers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::CaseId;
use crate::gate::policy::Policy;
use crate::outcome::{CaseSettings, Outcome};
use crate::run::options::RunOptions;
use crate::run::run_plugin;

#[derive(Debug, Clone)]
pub struct IsolatedPreflight {
    pub worker_exe: PathBuf,
    /// Time the pre-flight may take.
    pub timeout: Duration,
    /// The watch's scratch, for the pre-flight's reload cases (an
    /// interrupt empties it); the worker's own directory is a workspace.
    pub scratch: Option<PathBuf>,
}

impl crate::reload::Preflight for IsolatedPreflight {
    fn check(&self, build: &Path) -> Result<(), Outcome> {
        let upto = CaseId::ALL
            .iter()
            .position(|case| *case == CaseId::Init)
            .expect("init is a case");
        let options = RunOptions {
            worker_exe: self.worker_exe.clone(),
            cases: CaseId::ALL[..=upto].to_vec(),
            timeout: self.timeout,
            settings: CaseSettings {
                scratch: self.scratch.clone(),
                ..CaseSettings::default()
            },
            policy: Policy::default(),
            repeat: 1,
            jobs: 1,
            inputs_dir: None,
            provenance: None,
            head_start: Default::default(),
            hash_builds: false,
        };
        let report = run_plugin(build, &options).map_err(|error| {
            Outcome::fail(format!("the pre-flight worker did not start: {error}"))
        })?;
        crate::worker::wait_for_teardown();
        match report.cases.into_iter().find(|case| {
            !case.verdict.satisfies_prerequisite()
                && case.verdict != crate::report::verdict::Verdict::Skipped
        }) {
            None => Ok(()),
            Some(case) => Err(Outcome::as_reported(
                case.verdict,
                format!(
                    "`{}` {}: {}",
                    case.id,
                    case.verdict.past_tense(),
                    case.reason
                ),
                case.detail,
                case.output,
            )),
        }
    }
}
