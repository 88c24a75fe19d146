//! CI's clippy: `cargo clippy -D warnings` over every workspace crate and
//! target, run beside the steps (`background.rs`) instead of before them:
//! it is 40 s of CPU on 2 cores that the steps' waits (on timeouts, on
//! Wine) can absorb. In a target directory of its own, so that its long
//! hold on cargo's lock never stops the steps' builds. At the steps'
//! priority: niced, it starved behind a busy machine's other work (eight
//! minutes under `../shared/tools/under-load` and still checking
//! dependencies).
//!
//! Not clippy-driver as the builds' compiler (`RUSTC_WORKSPACE_WRAPPER`):
//! it would lint in the same pass, but it also turns off the debug
//! builds' checks of raw-pointer dereferences (alignment, null), which the
//! harness's tests rely on where plugins hand it pointers.

use anyhow::Context;

/// Runs clippy; fails naming the first lint.
pub fn check() -> anyhow::Result<()> {
    let target = crate::paths::target_dir().join("clippy");
    let status = std::process::Command::new("cargo")
        .args(["clippy", "--quiet", "--workspace", "--all-targets"])
        .arg("--target-dir")
        .arg(&target)
        .args(["--", "-D", "warnings"])
        .current_dir(crate::paths::project_root())
        .status()
        .context("cannot start `cargo clippy`")?;
    anyhow::ensure!(
        status.success(),
        "`cargo clippy --workspace --all-targets -- -D warnings` failed ({status}): see its lints above"
    );
    Ok(())
}
