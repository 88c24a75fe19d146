//! What runs inside the worker, next to the plugin: `loader` (every
//! libloading call), `handshake` (the descriptor read in the order the ABI
//! allows), `session` (each handshake step once, remembered), `host` (the
//! host table a plugin calls back into), `memory` (plugin strings copied
//! through the OS, bounded), `called` (what a status says about a call),
//! and `advice` (what to tell the author when a step fails).

pub(crate) mod advice;
pub mod call_context;
pub(crate) mod called;
pub(crate) mod handshake;
pub(crate) mod host;
pub mod loader;
pub(crate) mod memory;
pub mod session;
