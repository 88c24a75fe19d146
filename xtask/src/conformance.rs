//! `cargo xtask conformance`: for each platform leg, build the fixtures,
//! run `plugcheck check` over all of them (under Wine for Windows on a
//! Linux host), then let the conformance tests judge the report against the
//! manifest's intended verdicts and the leg's snapshots. With more than one
//! leg, a summary of where the platforms differ.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use plugcheck::bridge::Missing;
use plugcheck::report::Report;
use xshell::{Shell, cmd};

use crate::fixtures::{self, Artifacts, Built, Skipped};
use crate::needs;
use crate::platform::{Platform, Selection};
use crate::runner::Runner;
use crate::toolchain::RustBuild;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Write changed snapshots instead of failing on them; review them with `git diff fixtures/snapshots`.
    #[arg(long)]
    pub update: bool,
    /// Fail instead of skipping fixtures or legs whose tools are not installed.
    #[arg(long)]
    pub require_all: bool,
    /// Which legs to run.
    #[arg(long, value_enum, default_value_t)]
    pub platform: Selection,
    /// From a Windows host: the WSL2 distribution the Linux leg runs in
    /// [default: WSL's default distribution].
    #[arg(long, value_name = "NAME")]
    pub wsl_distro: Option<String>,
    /// The Linux leg also builds what a Windows host's leg takes from it
    /// (`leg_plan.rs`); the Linux leg in WSL2 is run with it.
    #[arg(long)]
    pub for_windows_host: bool,
}

pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    // First: the Windows leg's Linux-made fixtures must exist even when
    // this leg then fails a verdict, so that leg still runs.
    if args.for_windows_host {
        fixtures::build_for_windows_host(sh)?;
    }
    let mut legs = Legs::default();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut beside: Option<TestsBeside> = None;
        let ran = run_legs(scope, sh, args, &mut legs, &mut beside);
        let Some(tests) = beside else {
            return ran;
        };
        let what = tests.what.clone();
        match (ran, tests.finish()) {
            (Ok(()), tests) => {
                legs.skipped_tests.extend(tests?);
                Ok(())
            }
            (Err(error), Err(tests)) => {
                eprintln!("\n{what} failed too: {tests:#}");
                Err(error)
            }
            (Err(error), Ok(_)) => Err(error),
        }
    })?;
    if legs.reports.len() > 1 {
        print!(
            "\nwhere the platforms differ:\n{}",
            crate::compare::Comparison::of(&legs.reports).table(false)
        );
    }
    list_skipped(&legs.skipped, &legs.skipped_tests);
    for platform in legs.not_run {
        eprintln!(
            "the {platform} leg did NOT run (see above): its results are missing, not passed"
        );
    }
    Ok(())
}

/// What the legs left: their reports, the legs that did not run, the
/// fixtures and tests skipped for want of a tool.
#[derive(Default)]
struct Legs {
    reports: Vec<Report>,
    not_run: Vec<Platform>,
    skipped: Vec<(Platform, Skipped)>,
    skipped_tests: Vec<String>,
}

/// Runs each selected leg in turn into `legs`. The host leg's fixture
/// tests, when another leg follows, are left running in `beside`
/// ([`TestsBeside`]), which the caller joins whatever this returns.
fn run_legs<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    sh: &Shell,
    args: &Args,
    legs: &mut Legs,
    beside: &mut Option<TestsBeside<'scope>>,
) -> anyhow::Result<()> {
    let platforms = args.platform.platforms();
    // The Linux leg's artifacts, once built in this run.
    let mut linux_built: Option<PathBuf> = None;
    for (index, &platform) in platforms.iter().enumerate() {
        if platform == Platform::Linux && Platform::host() == Platform::Windows {
            match linux_leg_in_wsl(args) {
                Ok(report) => legs.reports.push(report),
                Err(error) if may_skip(&error, args) => {
                    eprintln!("\nSKIPPED the linux leg (WSL2): {error:#}");
                    legs.not_run.push(platform);
                }
                Err(error) => return Err(error.context("the linux leg (WSL2) cannot run")),
            }
            continue;
        }
        let built = build_leg(sh, platform, args.require_all, linux_built.as_deref());
        let (runner, artifacts) = match built {
            Ok(leg) => leg,
            // A leg that cannot run here is said loudly, never passed over.
            Err(error) if may_skip(&error, args) => {
                eprintln!("\nSKIPPED the {platform} leg: {error:#}");
                legs.not_run.push(platform);
                continue;
            }
            Err(error) => return Err(error.context(format!("the {platform} leg cannot run"))),
        };
        if platform == Platform::Linux {
            linux_built = Some(artifacts.dir());
        }
        // A foreign leg's own tests (under Wine) need its builds, not its
        // report: they run beside its suite.
        let foreign_tests = match runner {
            Runner::Native => None,
            Runner::Wine(_) => {
                let (artifacts, runner) = (artifacts.clone(), runner.clone());
                Some(TestsBeside::start(
                    scope,
                    sh,
                    format!("{platform} fixture tests under Wine"),
                    move |sh, out| foreign_fixture_tests(sh, &artifacts, &runner, out),
                )?)
            }
        };
        let (report_path, report) = match run_leg_suite(&runner, &artifacts) {
            Ok(suite) => suite,
            Err(error) => {
                if let Some(tests) = foreign_tests {
                    // Their output, and whether they passed, still count.
                    if let Err(failed) = tests.finish() {
                        eprintln!("\n{failed:#}");
                    }
                }
                return Err(error.context(format!("the {platform} leg cannot run")));
            }
        };
        eprintln!(
            "\n{} plugins and fixtures judged on {platform}; report: {}",
            report.plugins.len(),
            report_path.display()
        );
        legs.skipped
            .extend(artifacts.skipped.iter().map(|s| (platform, s.clone())));
        legs.reports.push(report);
        let another_leg_follows = index + 1 < platforms.len();
        if another_leg_follows && matches!(runner, Runner::Native) && !args.update {
            *beside = Some(TestsBeside::start(
                scope,
                sh,
                format!("{platform} fixture tests"),
                move |sh, out| judge(sh, &report_path, &artifacts, &runner, false, out),
            )?);
            continue;
        }
        let judged = judge(
            sh,
            &report_path,
            &artifacts,
            &runner,
            args.update,
            &mut std::io::stdout(),
        );
        if let Some(tests) = foreign_tests {
            match (judged.as_ref(), tests.finish()) {
                (_, Ok(skipped)) => legs.skipped_tests.extend(skipped),
                (Err(_), Err(failed)) => eprintln!("\n{failed:#}"),
                (Ok(_), Err(failed)) => return Err(failed),
            }
        }
        legs.skipped_tests.extend(judged?);
    }
    Ok(())
}

/// Whether a leg that ended in `error` may be skipped: only when it lacks a
/// prerequisite ([`Missing`]), only for `--platform all`, and never with
/// `--require-all`. A leg that ran and failed always fails the run.
fn may_skip(error: &anyhow::Error, args: &Args) -> bool {
    args.platform == Selection::All && !args.require_all && Missing::in_chain(error)
}

/// Says once, at the end, what was left out for want of a tool, and the
/// one command that installs every missing tool.
fn list_skipped(skipped: &[(Platform, Skipped)], tests: &[String]) {
    if skipped.is_empty() {
        return;
    }
    eprintln!(
        "\nSKIPPED {} fixture(s) and probe(s), and the tests that need them, because tools are missing:",
        skipped.len()
    );
    for (platform, skip) in skipped {
        eprintln!(
            "  {:<8} {:<24} {}",
            platform.name(),
            skip.name,
            skip.need.what
        );
    }
    for test in tests {
        eprintln!("  test     {test}");
    }
    let mut apt: Vec<&str> = Vec::new();
    for package in needs::apt_packages(skipped.iter().map(|(_, skip)| &skip.need)) {
        if !apt.contains(&package) {
            apt.push(package);
        }
    }
    if !apt.is_empty() && Platform::host() == Platform::Linux {
        eprintln!(
            "to judge them too: apt-get install {}   (or run `cargo xtask ci`, which installs them)",
            apt.join(" ")
        );
    }
}

/// The Linux leg from a Windows host: built, run and judged inside WSL2;
/// its report is copied back beside the Windows leg's.
fn linux_leg_in_wsl(args: &Args) -> anyhow::Result<Report> {
    let mut inner: Vec<OsString> = Vec::new();
    if args.update {
        inner.push("--update".into());
    }
    if args.require_all {
        inner.push("--require-all".into());
    }
    inner.push("--for-windows-host".into());
    let remote = crate::wsl::run_linux_leg(
        &crate::paths::project_root(),
        args.wsl_distro.as_deref(),
        &inner,
    )?;
    let local = crate::paths::target_dir().join("plugcheck/linux/report.json");
    std::fs::create_dir_all(local.parent().expect("has a parent"))?;
    std::fs::copy(&remote, &local).with_context(|| {
        format!(
            "cannot copy the Linux leg's report from `{}`",
            remote.display()
        )
    })?;
    Ok(Report::read_json(&local)?)
}

/// Tests run beside other work: a leg's fixture tests beside the next
/// leg, a foreign leg's own tests (under Wine) beside its suite. They
/// mostly wait (on timeouts, on the processes they start, on Wine), while
/// the other work compiles or judges on both cores: together they take the
/// longer one's time instead of the sum. Their output is held and printed
/// whole when they end. The host leg's tests tag the processes they start
/// (`ORPHAN_TAG_VAR` of `plugcheck_fixtures::built`), so that their look
/// for survivors never counts the next leg's. Not with `--update`, whose
/// snapshots are written and listed as they are judged.
struct TestsBeside<'scope> {
    what: String,
    thread: std::thread::ScopedJoinHandle<'scope, HeldTests>,
}

/// What tests run beside other work printed, how long they took, and
/// their result (the tests that skipped themselves).
struct HeldTests {
    out: Vec<u8>,
    took: Duration,
    result: anyhow::Result<Vec<String>>,
}

impl<'scope> TestsBeside<'scope> {
    fn start<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        sh: &Shell,
        what: String,
        tests: impl FnOnce(&Shell, &mut dyn std::io::Write) -> anyhow::Result<Vec<String>>
        + Send
        + 'scope,
    ) -> anyhow::Result<TestsBeside<'scope>> {
        eprintln!("\n{what}: running beside what follows; their output follows it");
        // A shell of the thread's own, as this one is: the same directory
        // and the variables CI set on it.
        let own = Shell::new()?;
        own.change_dir(sh.current_dir());
        for name in ["CI", "INSTA_UPDATE"] {
            if let Ok(value) = sh.var(name) {
                own.set_var(name, value);
            }
        }
        let thread = std::thread::Builder::new()
            .name(what.clone())
            .spawn_scoped(scope, move || {
                let started = std::time::Instant::now();
                let mut out = Vec::new();
                let result = tests(&own, &mut out);
                HeldTests {
                    out,
                    took: started.elapsed(),
                    result,
                }
            })?;
        Ok(TestsBeside { what, thread })
    }

    /// Waits for the tests, prints their output, returns their result.
    fn finish(self) -> anyhow::Result<Vec<String>> {
        let held = self
            .thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        eprintln!(
            "\n{} (run beside other work; took {:.1} s):",
            self.what,
            held.took.as_secs_f64()
        );
        std::io::Write::write_all(&mut std::io::stdout(), &held.out)?;
        held.result
    }
}

/// A leg's runner and builds; the Go-native plugins taken from
/// `go_plugins_built`, a Linux leg's artifacts of this run, when given.
fn build_leg(
    sh: &Shell,
    platform: Platform,
    require_all: bool,
    go_plugins_built: Option<&Path>,
) -> anyhow::Result<(Runner, Artifacts)> {
    let runner = Runner::for_platform(platform)?;
    let artifacts = fixtures::build_with(sh, platform, false, require_all, go_plugins_built)?;
    Ok((runner, artifacts))
}

/// A leg's suite over its builds: its report (JSON and JUnit) and where.
fn run_leg_suite(runner: &Runner, artifacts: &Artifacts) -> anyhow::Result<(PathBuf, Report)> {
    let report_path = crate::paths::target_dir()
        .join("plugcheck")
        .join(artifacts.platform.name())
        .join("report.json");
    let report = run_suite_on(runner, artifacts, &report_path)?;
    plugcheck::report::junit::write(&report, &report_path.with_file_name("junit.xml"))?;
    Ok((report_path, report))
}

/// Runs `plugcheck check` over every artifact of the host leg.
pub fn run_suite(artifacts: &Artifacts, report_path: &Path) -> anyhow::Result<Report> {
    run_suite_on(&Runner::Native, artifacts, report_path)
}

/// `plugcheck check` invocations of one leg run at once.
const PARALLEL_INVOCATIONS: usize = 2;

/// What one `plugcheck check` invocation shares: the timeout, the reload
/// targets, the runs per case and the families judged.
type InvocationKey<'a> = (
    Option<Duration>,
    &'a [(String, PathBuf)],
    Option<u32>,
    Option<&'a str>,
);

/// Runs `plugcheck check` over every artifact, one invocation per distinct
/// timeout, set of reload targets and repeat count, and writes the merged report (in
/// manifest order).
pub fn run_suite_on(
    runner: &Runner,
    artifacts: &Artifacts,
    report_path: &Path,
) -> anyhow::Result<Report> {
    let mut groups: BTreeMap<InvocationKey, Vec<&Built>> = BTreeMap::new();
    for built in &artifacts.built {
        groups
            .entry((
                built.timeout,
                &built.reload_to,
                built.repeat,
                built.families.as_deref(),
            ))
            .or_default()
            .push(built);
    }
    let started = std::time::Instant::now();
    let dir = report_path.parent().expect("report path has a directory");
    std::fs::create_dir_all(dir)?;
    let invocations: Vec<(PathBuf, Vec<OsString>)> = groups
        .iter()
        .enumerate()
        .map(|(index, ((timeout, reload_to, repeat, families), group))| {
            let part = dir.join(format!("report-part{index}.json"));
            let mut argv = check_argv();
            argv.extend(["--json".into(), runner.path(&part)]);
            if let Some(timeout) = timeout {
                argv.push("--timeout".into());
                argv.push(humantime::format_duration(*timeout).to_string().into());
            }
            if let Some(repeat) = repeat {
                argv.extend(["--repeat".into(), repeat.to_string().into()]);
            }
            if let Some(families) = families {
                argv.extend(["--filter".into(), (*families).into()]);
            }
            for (role, target) in reload_to.iter() {
                argv.push("--reload-to".into());
                let mut value = OsString::from(format!("{role}="));
                value.push(runner.path(target));
                argv.push(value);
            }
            argv.extend(group.iter().map(|built| runner.path(&built.path)));
            (part, argv)
        })
        .collect();
    // Two invocations at a time: much of a fixture run is waiting (on a
    // hang fixture's timeout, on Wine), which another invocation's plugins
    // fill. Each one's output is printed whole when it ends.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<anyhow::Result<Report>>>> = invocations
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    let run_one = |(part, argv): &(PathBuf, Vec<OsString>)| -> anyhow::Result<Report> {
        let output = runner
            .command(&artifacts.plugcheck, argv.clone())
            // Panic messages must not depend on the caller's environment.
            .env("RUST_BACKTRACE", "0")
            .env(
                plugcheck_fixtures::built::ORPHAN_TAG_VAR,
                suite_tag(artifacts.platform),
            )
            .stdout_capture()
            .stderr_to_stdout()
            .unchecked()
            .run()
            .with_context(|| format!("cannot run `{}`", artifacts.plugcheck.display()))?;
        print!("{}", String::from_utf8_lossy(&output.stdout));
        // 0 and 1 are verdicts (fixtures are meant to fail the gate); 2 is
        // plugcheck itself failing.
        if !matches!(output.status.code(), Some(0 | 1)) {
            bail!(
                "plugcheck check failed ({}); see its error above",
                output.status
            );
        }
        let report = Report::read_json(part)?;
        std::fs::remove_file(part)?;
        Ok(report)
    };
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_INVOCATIONS {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(invocation) = invocations.get(index) else {
                        break;
                    };
                    let result = run_one(invocation);
                    *results[index].lock().expect("no panics while holding") = Some(result);
                }
            });
        }
    });
    let parts = results
        .into_iter()
        .map(|result| {
            result
                .into_inner()
                .expect("no panics while holding")
                .expect("every invocation ran")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut report = Report::merge(parts).context("the manifest lists no fixtures")?;
    let order: Vec<String> = artifacts
        .built
        .iter()
        .map(|built| built.name.clone())
        .collect();
    report.order_plugins(&order);
    report.toolchain_probes = artifacts.probes.clone();
    report.write_json(report_path)?;
    eprintln!(
        "{} plugins and fixtures judged on {} in {:.1} s",
        report.plugins.len(),
        report.platform.describe(),
        started.elapsed().as_secs_f64()
    );
    Ok(report)
}

/// The tag the suite's runs put on the processes their fixtures start
/// (`plugcheck_fixtures::built::ORPHAN_TAG_VAR`): the fixture tests then
/// find whatever of them outlived the suite, while the other leg's run.
pub fn suite_tag(platform: Platform) -> String {
    format!("{platform}-suite-{}", std::process::id())
}

/// `plugcheck check` as every run over the fixtures starts it: silent
/// towards GitHub Actions, since the fixtures' failures are intended.
pub fn check_argv() -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec!["check".into()];
    argv.extend(
        plugcheck_fixtures::built::FIXTURE_RUN_ARGS
            .iter()
            .map(OsString::from),
    );
    argv
}

/// The would-be snapshots (`.snap.new`) of `platform` in the snapshot
/// directory: what a failing run left for review.
fn would_be_snapshots(platform: Platform) -> anyhow::Result<Vec<PathBuf>> {
    let dir = crate::paths::project_root().join(plugcheck_fixtures::SNAPSHOT_DIR);
    let suffixes = [
        format!("@{}.snap.new", platform.name()),
        format!("@{}-wine.snap.new", platform.name()),
    ];
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot list `{}`", dir.display()))?
    {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if suffixes
            .iter()
            .any(|suffix| name.ends_with(suffix.as_str()))
        {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// The fixture tests' binary (fixtures/manifest/tests/all), one module
/// per concern.
const FIXTURE_TESTS: &str = "all";
/// The filter that selects its module judging the report against the
/// manifest and the snapshots (`tests/all/conformance.rs`), which runs
/// natively on every leg, where the snapshots are.
const JUDGES_THE_REPORT: &str = "conformance::";

/// Judges a leg's report against the manifest and the snapshots, natively
/// whatever the leg; on the host's own leg, the fixtures crate's other
/// tests too (a foreign leg's run under it: [`foreign_fixture_tests`]).
/// Returns the tests that skipped themselves for want of a fixture.
fn judge(
    sh: &Shell,
    report: &Path,
    artifacts: &Artifacts,
    runner: &Runner,
    update: bool,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<Vec<String>> {
    let skip_log = tempfile::NamedTempFile::new().context("cannot create the skip log")?;
    // Without --update, a snapshot that differs fails its test and is
    // written beside it as `.snap.new`: the would-be snapshot a reviewer
    // (or CI's artifact) takes from a runner. Those of an earlier run go.
    let insta_update = if update { "always" } else { "new" };
    for stale in would_be_snapshots(artifacts.platform)? {
        std::fs::remove_file(&stale)
            .with_context(|| format!("cannot remove `{}`", stale.display()))?;
    }
    let rust = RustBuild::for_platform(sh, artifacts.platform)?;
    let made_with = crate::made_with::describe(sh, artifacts.platform, runner, &rust);
    let native = matches!(runner, Runner::Native);
    let mut argv: Vec<&str> = vec![
        "test",
        "--quiet",
        "--no-fail-fast",
        "-p",
        "plugcheck-fixtures",
    ];
    if native {
        argv.extend(["--tests", "--", "--include-ignored"]);
    } else {
        argv.extend(["--test", FIXTURE_TESTS, "--", "--include-ignored"]);
        argv.push(JUDGES_THE_REPORT);
    }
    let mut command = crate::test_failures::cargo(sh, &argv);
    let told = FixtureTestEnv {
        report: Some(report),
        artifacts,
        skip_log: skip_log.path(),
        insta_update,
    };
    for (name, value) in told.as_seen_by(&Runner::Native) {
        command = command.env(name, value);
    }
    let runs_under = if native { "native" } else { "wine" };
    let platform = artifacts.platform;
    command = command
        .env(plugcheck_fixtures::MADE_WITH_VAR, &made_with)
        .env(plugcheck_fixtures::RUNS_UNDER_VAR, runs_under)
        .env(
            plugcheck_fixtures::built::ORPHAN_TAG_VAR,
            format!("{platform}-tests-{}", std::process::id()),
        )
        .env(
            plugcheck_fixtures::built::SUITE_ORPHAN_TAG_VAR,
            suite_tag(platform),
        );
    let result =
        crate::test_failures::run_into(command, &format!("{platform} conformance tests"), out);
    if update {
        cmd!(sh, "git status --short fixtures/snapshots").run()?;
        eprintln!(
            "snapshots written: review them with `git diff fixtures/snapshots` before committing"
        );
    } else if result.is_err() {
        let would_be = would_be_snapshots(artifacts.platform)?;
        if !would_be.is_empty() {
            writeln!(
                out,
                "{} snapshot(s) differ; what this run would write is beside each as .snap.new (compare, or rerun with --update):",
                would_be.len()
            )?;
            for path in would_be {
                writeln!(out, "  {}", path.display())?;
            }
        }
    }
    result?;
    Ok(skipped_tests(skip_log.path()))
}

/// A foreign leg's fixture tests but the report's judges: built for the
/// leg and run where its binaries run (under Wine for Windows on a Linux
/// host), against its `plugcheck` and artifacts. Which tests exist on a
/// platform, each test file says by `cfg` (`/proc` and `kill` are
/// Linux's): the Windows leg here runs exactly what a Windows host runs.
/// Returns the tests that skipped themselves for want of a fixture.
fn foreign_fixture_tests(
    sh: &Shell,
    artifacts: &Artifacts,
    runner: &Runner,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<Vec<String>> {
    let skip_log = tempfile::NamedTempFile::new().context("cannot create the skip log")?;
    let rust = RustBuild::for_platform(sh, artifacts.platform)?;
    let executables = rust.test_executables(sh, &["plugcheck-fixtures".to_owned()], "--tests")?;
    let told = FixtureTestEnv {
        report: None,
        artifacts,
        skip_log: skip_log.path(),
        insta_update: "no",
    };
    crate::test::run_foreign(
        artifacts.platform,
        runner,
        &executables,
        &["--skip", JUDGES_THE_REPORT],
        &told.as_seen_by(runner),
        out,
    )?;
    Ok(skipped_tests(skip_log.path()))
}

/// The tests a skip log lists (each appends its name when it skips).
fn skipped_tests(skip_log: &Path) -> Vec<String> {
    let log = std::fs::read_to_string(skip_log).unwrap_or_default();
    log.lines().map(str::to_owned).collect()
}

/// What a leg's fixture tests are told: the report they judge (none for
/// the tests that judge no report), the leg's builds, where to log a skip,
/// whether insta may write.
struct FixtureTestEnv<'a> {
    report: Option<&'a Path>,
    artifacts: &'a Artifacts,
    skip_log: &'a Path,
    insta_update: &'a str,
}

impl FixtureTestEnv<'_> {
    /// As variables, with paths as the tests under `runner` see them (a
    /// Windows test under Wine reads Z:\…).
    fn as_seen_by(&self, runner: &Runner) -> Vec<(&'static str, OsString)> {
        let mut env = vec![
            (
                plugcheck_fixtures::built::SKIPPED_VAR,
                self.artifacts.encoded_skipped().into(),
            ),
            (
                plugcheck_fixtures::built::BIN_VAR,
                runner.path(&self.artifacts.plugcheck),
            ),
            (
                plugcheck_fixtures::built::ARTIFACTS_VAR,
                runner.path(&self.artifacts.dir()),
            ),
            ("INSTA_UPDATE", self.insta_update.into()),
            (
                plugcheck_fixtures::built::SKIP_LOG_VAR,
                runner.path(self.skip_log),
            ),
        ];
        if let Some(report) = self.report {
            env.push(("PLUGCHECK_REPORT", runner.path(report)));
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(platform: Selection, require_all: bool) -> Args {
        Args {
            update: false,
            require_all,
            platform,
            wsl_distro: None,
            for_windows_host: false,
        }
    }

    #[test]
    fn only_a_missing_prerequisite_skips_a_leg_and_never_with_require_all() {
        let missing = || -> anyhow::Error {
            anyhow::Error::new(Missing {
                what: "wine64".into(),
                remedy: "apt-get install wine64".into(),
            })
            .context("the windows leg cannot start")
        };
        let failed = || anyhow::anyhow!("the Linux leg in WSL2 failed (exit status: 101)");
        assert!(may_skip(&missing(), &args(Selection::All, false)));
        assert!(!may_skip(&missing(), &args(Selection::All, true)));
        assert!(!may_skip(&missing(), &args(Selection::Windows, false)));
        assert!(!may_skip(&failed(), &args(Selection::All, false)));
    }
}
