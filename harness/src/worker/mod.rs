//! The isolated worker: the parent never loads a plugin. It re-executes its
//! own binary in a hidden worker mode, talks to it over a loopback socket
//! (the side channel: the plugin owns the worker's stdout and stderr), and
//! kills the worker's whole process tree on timeout and at the end.

mod capture;
mod child;
mod protocol;
mod supervisor;

pub use child::{WorkerArgs, serve};
pub use protocol::EXIT_CHANNEL_LOST;
pub use supervisor::{
    Exchange, SpawnError, Worker, interrupted, kill_all, reap_leftovers, wait_for_teardown,
};
