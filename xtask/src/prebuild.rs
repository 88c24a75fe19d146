//! The Windows leg's Rust, built ahead of time in the background while CI's
//! other steps run (`ci.rs`): clippy and the host's tests keep both cores
//! busy only part of the time (links, test runs that wait on timeouts and
//! Go builds), and the Windows leg's builds (its own host crates, std
//! once, the harness, the tests and the fixtures, by another rustc into
//! another target directory) wait for nobody. The steps then run the very
//! same cargo commands, which find everything built (or wait on cargo's
//! lock for the build under way); a failure here is left to them, so they
//! say it with their own context, and nothing here is printed. It runs as
//! a job beside the steps (`background.rs`), which a CI that fails stops.

use xshell::Shell;

use crate::fixtures;
use crate::platform::Platform;
use crate::toolchain::{self, RustBuild};

/// In the order the steps need them: what the conformance leg builds (the
/// harness, the fixture crates, the fixture tests), then the unit tests
/// run under Wine in CI's last step. The same packages, profiles and
/// targets as `fixtures::build`, `conformance` and `test.rs` ask for, or
/// cargo would build them again there. (A step that asks for one while
/// this builds another waits on cargo's lock for all of this command.)
pub fn build_windows_leg() -> anyhow::Result<()> {
    let sh = Shell::new()?;
    let root = crate::paths::project_root();
    sh.change_dir(&root);
    let rust = RustBuild::for_platform(&sh, Platform::Windows)?.silent();
    rust.build(&sh, &["plugcheck".to_owned()], "dev")?;
    let manifest = plugcheck_fixtures::Manifest::load(&root)?;
    let [plain, with_line_tables] = fixtures::crate_packages(&root, &manifest, Platform::Windows)?;
    rust.build(&sh, &plain, toolchain::PLUGIN_PROFILE)?;
    if !with_line_tables.is_empty() {
        rust.build(&sh, &with_line_tables, toolchain::DEBUGINFO_PROFILE)?;
    }
    rust.test_executables(&sh, &["plugcheck-fixtures".to_owned()], "--tests")?;
    for (package, targets) in crate::test::FOREIGN_TESTED {
        rust.test_executables(&sh, &[package.to_owned()], targets)?;
    }
    Ok(())
}
