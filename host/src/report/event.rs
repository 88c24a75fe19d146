//! What a run says while it runs, and who listens. The runner emits
//! [`Event`]s; the table, the progress line, the JSON and JUnit files and
//! GitHub's annotations are [`Reporter`]s, each matching every event, so a
//! new event is a compile error in each until it decides what to do.

use std::path::Path;
use std::sync::Mutex;

use super::verdict::Verdict;
use super::{Machine, PluginReport, Report};
use crate::catalog::CaseId;

/// Something that happened in a run. Plugins are named by their index in
/// the run's input order; events of different plugins interleave when
/// several run at once.
#[derive(Debug)]
#[allow(
    dead_code,
    reason = "the whole vocabulary a reporter may read; today's views each read part of it"
)]
pub enum Event<'a> {
    RunStarted {
        plugins: usize,
        /// Cases selected per plugin.
        cases: usize,
        platform: &'a Machine,
        timeout_ms: u64,
    },
    PluginStarted {
        index: usize,
        path: &'a Path,
    },
    WorkerStarted {
        index: usize,
        why: WorkerStart,
    },
    CaseStarted {
        index: usize,
        case: CaseId,
    },
    CaseFinished {
        index: usize,
        case: CaseId,
        verdict: Verdict,
    },
    PluginFinished {
        index: usize,
        report: &'a PluginReport,
    },
    /// Not sent for an interrupted run: its results are not verdicts.
    RunFinished {
        report: &'a Report,
    },
}

/// Why a plugin got a (new) worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerStart {
    /// Its first.
    First,
    /// The last one crashed, hung or was killed during `after`.
    Replacing { after: CaseId, verdict: Verdict },
    /// `case` must see the plugin's first load in a process.
    FreshProcess { case: CaseId },
}

/// A consumer of a run's events.
pub trait Reporter: Send {
    fn on(&mut self, event: &Event<'_>) -> anyhow::Result<()>;
}

/// The run's reporters, in order: each event goes to each of them. The
/// first error is kept (and the rest still hear the events), so a report
/// file that cannot be written does not silence the table.
pub struct Reporters {
    state: Mutex<Listening>,
}

/// The reporters, and the first error one of them met.
type Listening = (Vec<Box<dyn Reporter>>, Option<anyhow::Error>);

impl Reporters {
    pub fn new(reporters: Vec<Box<dyn Reporter>>) -> Reporters {
        Reporters {
            state: Mutex::new((reporters, None)),
        }
    }

    pub(crate) fn emit(&self, event: &Event<'_>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (reporters, first_error) = &mut *state;
        for reporter in reporters.iter_mut() {
            if let Err(error) = reporter.on(event)
                && first_error.is_none()
            {
                *first_error = Some(error);
            }
        }
    }

    /// The first error a reporter met, if any.
    pub fn finish(self) -> anyhow::Result<()> {
        let (_, error) = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        error.map_or(Ok(()), Err)
    }
}

/// A consumer of the finished run only (the JSON and JUnit files, GitHub's
/// annotations): it hears every event, and acts on `RunFinished`.
pub struct AtRunEnd<F>(pub F);

impl<F> Reporter for AtRunEnd<F>
where
    F: FnMut(&Report) -> anyhow::Result<()> + Send,
{
    fn on(&mut self, event: &Event<'_>) -> anyhow::Result<()> {
        match event {
            Event::RunFinished { report } => (self.0)(report),
            Event::RunStarted { .. }
            | Event::PluginStarted { .. }
            | Event::WorkerStarted { .. }
            | Event::CaseStarted { .. }
            | Event::CaseFinished { .. }
            | Event::PluginFinished { .. } => Ok(()),
        }
    }
}
