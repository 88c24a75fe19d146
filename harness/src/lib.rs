//! plugcheck: a conformance harness for native plugins.
//!
//! The parent process never loads a plugin. [`runner`] starts a worker
//! (this binary, re-executed) per plugin, sends it the cases of the
//! [`catalog`] one by one over a loopback socket, and turns what comes back
//! — or how the worker died — into a [`report`]. Only [`os`] names a
//! platform.

pub mod advice;
pub mod archive;
pub mod bridge;
pub mod called;
pub mod cases;
pub mod catalog;
pub mod cli;
pub mod compare;
pub mod fuzz;
pub mod gate_file;
pub mod go_worker;
pub mod handshake;
pub mod host;
pub mod limits;
pub mod loader;
pub mod normalize;
pub mod open_error;
pub mod os;
pub mod outcome;
pub mod partition;
pub mod plan;
pub mod plugin_file;
pub mod plugin_kind;
pub mod plugin_memory;
pub mod policy;
pub mod reload;
pub mod repeat;
pub mod replay;
pub mod report;
pub mod runner;
pub mod saved_input;
pub mod session;
pub mod shard;
pub mod skip_log;
pub mod sniff;
pub mod symbolize;
pub mod text;
pub mod worker;
pub mod worker_choice;
pub mod worker_death;
