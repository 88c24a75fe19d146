//! plugcheck: a conformance harness for native plugins.
//!
//! The parent process never loads a plugin. [`run`] starts a worker
//! (this binary, re-executed) per plugin, sends it the cases of the
//! [`catalog`] one by one over a loopback socket, and turns what comes back
//! — or how the worker died — into a [`report`].
//!
//! This crate is the command line ([`cli`]) and the bridges to the other
//! platform ([`bridge`]). Everything else — loading, the worker and its
//! protocol, crash decoding, the case suite, the reload engine, the report
//! model and the gate — is `plugcheck-host`'s, the runtime applications
//! embed to load the same plugins: one implementation, re-exported here
//! under the paths the harness has always had. Only [`os`] names a
//! platform.

#![warn(unreachable_pub)]

pub mod bridge;
pub mod cli;

pub use plugcheck_host::{
    catalog, embed, fuzz, gate, inspect, os, outcome, plugin, postmortem, reload, report, run,
    text, worker,
};
