#![doc = include_str!("../README.md")]
#![warn(unreachable_pub)]

// The engine: the one implementation of loading, worker processes, crash
// decoding, the case suite and the reload engine. The harness (`plugcheck`,
// the command line and the platform bridges) builds on it, and so does the
// runtime below: the worker a host starts for a plugin is the worker a
// conformance run judges it in, and the reload engine a host reloads with
// is the one `plugcheck watch` and the reload cases use. Only `os` names a
// platform.
mod cases;
pub mod catalog;
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

// The runtime an application embeds.
pub mod admission;
pub mod call;
pub mod config;
pub mod host;
mod identity;
pub mod in_process;
pub mod isolated;
pub mod observe;
pub mod supervision;

pub use embed::serve_if_worker;
