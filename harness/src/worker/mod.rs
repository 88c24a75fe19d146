//! The isolated worker: the parent never loads a plugin. It re-executes its
//! own binary in a hidden worker mode (or forks it), talks to it over a
//! channel of its own (a socket pair on Linux, loopback TCP on Windows)
//! (the side channel: the plugin owns the worker's stdout and stderr), and
//! kills the worker's whole process tree on timeout and at the end.

mod capture;
mod child;
pub(crate) mod choice;
pub mod go;
pub mod limits;
mod protocol;
mod scope;
mod supervisor;
mod trail;
pub(crate) mod workspace;

pub(crate) use child::{MAX_CALL_INPUT, WorkerArgs, call_answer, read_call_input, serve, unhex};
pub(crate) use protocol::{CallAnswer, EXIT_CHANNEL_LOST, Module, RawStack};
pub(crate) use scope::{OnInterrupt, WorkerScope};
pub(crate) use supervisor::{
    CallResult, Exchange, Forbidden, Launched, SpawnError, Worker, interrupted, run_helper,
    wait_for_teardown,
};
pub(crate) use trail::{CallTrail, FuzzCall, MAX_TRAIL_CALLS};
