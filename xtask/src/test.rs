//! `cargo xtask test`: the workspace's tests on the host, and the harness's
//! own unit tests built for Windows and run under Wine, so Windows-only
//! code (Job Objects, NTSTATUS names, toolhelp) is tested, not only
//! compiled.

use std::ffi::OsString;
use std::path::Path;

use anyhow::Context;

use xshell::Shell;

use crate::platform::{Platform, Selection};
use crate::runner::Runner;
use crate::toolchain::{RustBuild, TestExecutable};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Which legs to test.
    #[arg(long, value_enum, default_value_t)]
    pub platform: Selection,
    /// Fail when a test skipped itself for want of a tool (Go, a second
    /// Go release, the Windows harness) instead of listing it.
    #[arg(long)]
    pub require_all: bool,
}

/// Unit tests that run on the foreign leg: the engine and host runtime
/// (with the OS seam), the harness's command line and the ABI as
/// libraries, and the xtask (whose Windows-host code, the WSL bridge, is
/// tested there). The fixtures' tests run there too, from `cargo xtask
/// conformance`, which builds what they drive.
pub const FOREIGN_TESTED: [(&str, &str); 4] = [
    ("plugcheck-host", "--lib"),
    ("plugcheck", "--lib"),
    ("plugcheck-abi", "--lib"),
    ("xtask", "--bins"),
];

/// Which of the tests [`run_part`] runs: the host's workspace tests, the
/// other legs' tests, or both (`cargo xtask test`). CI runs the other
/// legs' last, after conformance: their build, started in the background
/// (`prebuild.rs`), is done by then instead of holding up the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Host,
    Foreign,
    Both,
}

/// The host's tests that run the README's commands, the Windows ones
/// under Wine with the Windows harness (`harness/tests/all/readme.rs`):
/// with the Windows leg selected from a Linux host they wait for that
/// harness, and run with the other legs' tests.
const README_TESTS: &str = "readme::";

pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    run_part(sh, args, Part::Both)
}

pub fn run_part(sh: &Shell, args: &Args, part: Part) -> anyhow::Result<()> {
    // The tests that skip themselves log it here (`plugcheck_test_support::skip_log`),
    // as the fixture tests do for `conformance`.
    let skip_log = tempfile::NamedTempFile::new().context("cannot create the skip log")?;
    let ran = run_tests(sh, args, part, skip_log.path());
    let skipped = std::fs::read_to_string(skip_log.path()).unwrap_or_default();
    let skipped: Vec<&str> = skipped.lines().collect();
    if !skipped.is_empty() {
        eprintln!("\nSKIPPED {} test(s) for want of a tool:", skipped.len());
        for test in &skipped {
            eprintln!("  {test}");
        }
    }
    ran?;
    if args.require_all && !skipped.is_empty() {
        anyhow::bail!(
            "{} test(s) skipped themselves (see above) and --require-all is given: install what they need",
            skipped.len()
        );
    }
    Ok(())
}

fn run_tests(sh: &Shell, args: &Args, part: Part, skip_log: &Path) -> anyhow::Result<()> {
    let platforms = args.platform.platforms();
    let readme_needs_windows = Platform::host() == Platform::Linux
        && platforms.contains(&Platform::Linux)
        && platforms.contains(&Platform::Windows);
    if part != Part::Foreign && platforms.contains(&Platform::host()) {
        let mut argv = vec!["test", "--quiet", "--workspace"];
        if readme_needs_windows {
            argv.extend(["--", "--skip", README_TESTS]);
        }
        let tests = crate::test_failures::cargo(sh, &argv)
            .env(plugcheck_test_support::skip_log::VAR, skip_log);
        crate::test_failures::run(tests, &format!("{} workspace tests", Platform::host()))?;
    }
    if part == Part::Host {
        return Ok(());
    }
    if readme_needs_windows {
        let rust = RustBuild::for_platform(sh, Platform::Windows)?;
        rust.build(sh, &["plugcheck".to_owned()], "dev")?;
        let harness = rust.out_dir("dev").join("plugcheck.exe");
        let argv = [
            "test",
            "--quiet",
            "-p",
            "plugcheck",
            "--test",
            "all",
            "--",
            README_TESTS,
        ];
        let tests = crate::test_failures::cargo(sh, &argv)
            .env("PLUGCHECK_WINDOWS_HARNESS", harness)
            .env(plugcheck_test_support::skip_log::VAR, skip_log);
        crate::test_failures::run(tests, "the README's commands, on Linux and under Wine")?;
    }
    for platform in platforms {
        if platform == Platform::host() {
            continue;
        }
        let rust = RustBuild::for_platform(sh, platform)?;
        eprintln!("{platform} unit tests: built by {}", rust.description);
        let mut executables = Vec::new();
        for (package, targets) in FOREIGN_TESTED {
            executables.extend(rust.test_executables(sh, &[package.to_owned()], targets)?);
        }
        let runner = Runner::for_platform(platform)?;
        run_foreign(
            platform,
            &runner,
            &executables,
            &[],
            &[],
            &mut std::io::stdout(),
        )?;
    }
    Ok(())
}

/// Runs test executables built for `platform` through `runner` (under Wine
/// for Windows on a Linux host), each with `env`, `--include-ignored` so
/// the fixtures' tests run, and `args` (libtest's: `--skip NAME`), their
/// output written to `out`; fails on the first that fails.
pub fn run_foreign(
    platform: Platform,
    runner: &Runner,
    executables: &[TestExecutable],
    args: &[&str],
    env: &[(&str, OsString)],
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    for executable in executables {
        let path = &executable.path;
        writeln!(out, "$ {} (under {platform})", path.display())?;
        let args: Vec<OsString> = [OsString::from("--quiet"), "--include-ignored".into()]
            .into_iter()
            .chain(args.iter().map(OsString::from))
            .collect();
        let mut command = runner.command(path, args);
        for (name, value) in env {
            command = command.env(name, value);
        }
        crate::test_failures::run_into(
            command,
            &format!(
                "{platform} tests `{}` in `{}`",
                executable.target,
                path.display()
            ),
            out,
        )?;
    }
    Ok(())
}
