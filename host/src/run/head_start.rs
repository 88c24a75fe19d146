//! A worker started for a run's one plugin as soon as its path is known,
//! before the rest of the run is set up (the report's writable check, the
//! workspace, the reporters): it boots on the other core meanwhile, and
//! the plugin's run takes it instead of starting one when it needs its
//! first worker.
//!
//! Only a worker the run would have started itself is taken — the same
//! plugin and the same worker program, with no attempt number — so a run
//! with a head start makes the same workers, in the same order, with the
//! same events, as one without. One never taken is killed with the
//! options that hold it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::worker::choice::{self, Choice, WorkerProgram};
use crate::worker::{Launched, SpawnError, Worker};

/// The head start of a run, if it has one; clones share it.
#[derive(Clone, Default)]
pub struct HeadStart(Arc<Mutex<Option<Started>>>);

struct Started {
    plugin: PathBuf,
    /// The worker the plugin chose (the Go worker's choice reads the
    /// plugin and the toolchain: 0.2 ms, not to be paid twice).
    program: WorkerProgram,
    worker: Option<Launched>,
}

impl HeadStart {
    /// Chooses `plugin`'s worker (`rust_worker` being this binary) and
    /// starts it now. A plugin no worker can judge, or a start that fails,
    /// leaves no head start: the plugin's run chooses and starts as usual,
    /// and reports what went wrong then.
    pub fn start(plugin: &Path, rust_worker: &Path) -> HeadStart {
        let started = match choice::for_plugin(plugin, rust_worker) {
            Choice::Worker(program) => Some(Started {
                plugin: plugin.to_owned(),
                worker: Worker::launch(&program.exe, plugin, &[]).ok(),
                program,
            }),
            Choice::Refused(_) => None,
        };
        HeadStart(Arc::new(Mutex::new(started)))
    }

    /// The worker program chosen ahead for `plugin`, if any.
    pub(crate) fn program_for(&self, plugin: &Path) -> Option<WorkerProgram> {
        let slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .filter(|started| started.plugin == plugin)
            .map(|started| started.program.clone())
    }

    /// The worker started ahead, once it said hello, if it is the one this
    /// run of `plugin` would start with `exe` (and no attempt number);
    /// taken once.
    pub(crate) fn take(
        &self,
        plugin: &Path,
        exe: &Path,
        attempt: Option<u32>,
    ) -> Option<Result<Worker, SpawnError>> {
        if attempt.is_some() {
            return None;
        }
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_mut()
            .filter(|started| started.plugin == plugin && started.program.exe == exe)
            .and_then(|started| started.worker.take())
            .map(Launched::connect)
    }
}

impl std::fmt::Debug for HeadStart {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let started = self.0.lock().map(|slot| slot.is_some()).unwrap_or_default();
        formatter
            .debug_struct("HeadStart")
            .field("waiting", &started)
            .finish()
    }
}
