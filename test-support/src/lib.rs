//! What the workspace's tests share and the product does not ship: the
//! skip log every test that cannot run here writes to, and a stand-in for
//! `wsl.exe` the WSL bridge's tests run against. A crate of its own so the
//! harness, the fixtures' tests and the xtask use one copy, and none of it
//! is in `plugcheck`.

pub mod skip_log;
#[cfg(unix)]
pub mod wsl;
