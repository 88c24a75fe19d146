//! plugcheck: a conformance harness for native plugins.
//!
//! The parent process never loads a plugin. [`run`] starts a worker
//! (this binary, re-executed) per plugin, sends it the cases of the
//! [`catalog`] one by one over a loopback socket, and turns what comes back
//! — or how the worker died — into a [`report`]. Only [`os`] names a
//! platform.

#![warn(unreachable_pub)]

pub mod bridge;
mod cases;
pub mod catalog;
pub mod cli;
pub mod embed;
pub mod fuzz;
pub mod gate;
pub mod inspect;
pub mod os;
pub mod outcome;
mod plan;
pub mod plugin;
pub mod postmortem;
pub mod reload;
pub mod report;
pub mod run;
pub mod text;
pub mod worker;
