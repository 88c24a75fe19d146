//! The worker scope: what a command that starts workers holds for as long
//! as they may run. Entering it makes this process the subreaper of
//! whatever plugins start and points Ctrl-C at the workers; leaving it (its
//! drop) stops the worker starts, waits for every worker's teardown and
//! reaps what the plugins left. `check`, `call` and `watch` each hold one,
//! so none of them can get that order wrong or forget a step; a second
//! scope cannot open while one is.
//!
//! The registry of live workers stays a static of `supervisor.rs`: the
//! Ctrl-C handler runs on a thread of its own and must reach it without a
//! lock it might wait on forever, and `ctrlc` takes one handler per
//! process, so the handler is installed once and asks the scope that is
//! open now what an interrupt means.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};

use crate::os;

use super::supervisor;

/// What Ctrl-C does while a scope is open.
pub struct OnInterrupt {
    /// Asked first, on the handler's thread: `true` when the command takes
    /// the interrupt itself (a watch that is serving stops in order, and
    /// its scope then ends as any other).
    pub handled_by_command: Option<Box<dyn Fn() -> bool + Send>>,
    /// The last line the interrupted command prints.
    pub message: &'static str,
}

impl OnInterrupt {
    /// Kill every worker, empty the workspaces (the run's scratch, the
    /// workers' directories), print `message`, exit 130.
    pub fn exit(message: &'static str) -> OnInterrupt {
        OnInterrupt {
            handled_by_command: None,
            message,
        }
    }
}

/// The interrupt behaviour of the open scope; none between scopes.
static OPEN: Mutex<Option<OnInterrupt>> = Mutex::new(None);
/// Whether the process's one Ctrl-C handler is installed.
static HANDLER: AtomicBool = AtomicBool::new(false);

/// An open worker scope. Not `Send`: it is left on the thread that opened
/// it, after the workers it covers are done.
#[must_use = "the scope tears the workers down when dropped"]
pub struct WorkerScope {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl WorkerScope {
    /// Opens the scope: orphans come to this process to be killed, and
    /// Ctrl-C does what `on_interrupt` says.
    pub fn enter(on_interrupt: OnInterrupt) -> anyhow::Result<WorkerScope> {
        {
            let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
            if open.is_some() {
                bail!("a worker scope is already open in this process: close it first");
            }
            *open = Some(on_interrupt);
        }
        let scope = WorkerScope {
            _not_send: std::marker::PhantomData,
        };
        os::become_subreaper();
        if !HANDLER.load(Ordering::SeqCst) {
            // Workers live in process groups of their own, which Ctrl-C
            // does not reach: the handler kills them.
            ctrlc::set_handler(interrupt).context("cannot install the interrupt handler")?;
            HANDLER.store(true, Ordering::SeqCst);
        }
        Ok(scope)
    }

    /// Runs `body` (the command's workers), then stops the worker starts.
    /// When Ctrl-C interrupted it, never returns: the handler is exiting
    /// with 130, and the results of the workers it killed are not verdicts
    /// to report.
    pub fn run<T>(&self, body: impl FnOnce() -> T) -> T {
        let result = body();
        os::stop_worker_starts();
        self.halt_if_interrupted();
        result
    }

    /// Never returns once Ctrl-C interrupted the run: the handler is
    /// killing the workers and exiting with 130. A command that shows
    /// results as they come asks it before each, so a worker the handler
    /// killed is not shown as a crash.
    pub fn halt_if_interrupted(&self) {
        if supervisor::interrupted() {
            loop {
                std::thread::park();
            }
        }
    }
}

impl Drop for WorkerScope {
    fn drop(&mut self) {
        os::stop_worker_starts();
        crate::run::timeline::mark("parent:starts-stopped");
        // Every worker is gone, and whatever a plugin left running came
        // to us and is killed here, also after the last worker of a
        // one-plugin run.
        supervisor::end_teardown();
        crate::run::timeline::mark("parent:teardown-waited");
        *OPEN.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The process's Ctrl-C handler.
fn interrupt() {
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(handled) = open.as_ref().and_then(|on| on.handled_by_command.as_ref())
        && handled()
    {
        return;
    }
    supervisor::kill_all();
    let message = match open.take() {
        Some(on) => on.message,
        None => "plugcheck: interrupted",
    };
    super::workspace::clear_all_in_use();
    // Not `eprintln!`: it panics when stderr is a pipe whose reader is gone
    // (the interrupted caller), and a panic here never exits.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{message}\n").as_bytes());
    std::process::exit(130);
}
