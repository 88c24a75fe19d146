//! The isolated worker: the parent never loads a plugin. It re-executes its
//! own binary in a hidden worker mode (or forks it), talks to it over a
//! channel of its own (a socket pair on Linux, loopback TCP on Windows)
//! (the side channel: the plugin owns the worker's stdout and stderr), and
//! kills the worker's whole process tree on timeout and at the end.

mod capture;
mod child;
pub mod choice;
mod entry;
pub mod go;
pub mod limits;
mod protocol;
mod scope;
mod supervisor;
mod trail;
pub mod workspace;

pub use child::WorkerArgs;
pub use child::{MAX_CALL_INPUT, MAX_CALL_OUTPUT, call_answer, read_call_input, unhex};
pub use entry::{forked_worker, main_worker, serve_to_code};
pub(crate) use protocol::CallContextWire;
pub use protocol::{CallAnswer, EXIT_CHANNEL_LOST, Module, RawStack};
// The harness's own (its commands' interrupt handling and workers): an
// application embeds workers through `crate::embed`, which installs no
// interrupt handler and starts workers from one long-lived thread.
#[doc(hidden)]
pub use scope::{OnInterrupt, WorkerScope};
#[doc(hidden)]
pub use supervisor::{
    CallResult, Exchange, Forbidden, Launched, SpawnError, Worker, interrupted, run_helper,
    wait_for_teardown,
};
pub(crate) use trail::{CallTrail, FuzzCall, MAX_TRAIL_CALLS};
