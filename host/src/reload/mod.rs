//! Hot reload: replace a running plugin with a new build of it, carrying
//! its state, without ever loading the build output itself.
//!
//! - Every version is loaded from a *shadow copy* with a unique name in a
//!   per-engine temporary directory, so the original can be rebuilt,
//!   overwritten or deleted while loaded (on Windows a loaded DLL cannot be
//!   written or deleted; on Linux overwriting a mapped `.so` in place
//!   corrupts the running code).
//! - The new version is loaded, checked and initialised while the old one
//!   keeps serving. Only the handoff — `save_state` of the old,
//!   `restore_state` of the new, the switch — holds calls back, and it
//!   waits for calls in flight to finish on the old version first.
//! - Any failure (copy, load, handshake, init, restore, or a crash in the
//!   optional isolated pre-flight) leaves the old version serving with its
//!   state, and carries the same diagnosis the load cases give.
//! - After the switch the old version is shut down and closed, and the OS is
//!   asked whether it really left the process.
//!
//! [`watch::Watcher`] adds change detection: a file watcher, a quiet period
//! (debounce), and a content hash, so a touch or a linker's
//! delete-and-recreate reloads once, or not at all.

mod engine;
pub mod preflight;
mod shadow;
pub use shadow::ShadowDir;
pub mod watch;

pub use engine::{
    Logged, OldVersion, Preflight, ReloadEngine, ReloadFailure, ReloadOptions, Reloaded, Stage,
};
