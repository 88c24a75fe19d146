//! `plugcheck check`: the release gate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use super::foreign::{self, Arg, Forwarded};
use super::shared::{absolute, exit, say};
use crate::catalog::CaseId;
use crate::gate::file::{self, GateFile};
use crate::gate::policy::Policy;
use crate::os::{self, Platform};
use crate::outcome::{CaseSettings, ReloadRole};
use crate::report;
use crate::report::Report;
use crate::report::event::{AtRunEnd, Reporter, Reporters};
use crate::report::progress::Progress;
use crate::report::provenance::Provenance;
use crate::report::table;
use crate::run;
use crate::run::head_start::HeadStart;
use crate::run::options::RunOptions;
use crate::run::partition::{Partition, PluginSet};
use crate::run::timeline;
use crate::worker::workspace::Workspace;
use crate::worker::{OnInterrupt, WorkerScope};

#[derive(Debug, PartialEq, clap::Args)]
pub(super) struct CheckArgs {
    /// Plugin libraries to check (.so on Linux, .dll on Windows).
    #[arg(required = true, value_name = "PLUGIN")]
    plugins: Vec<PathBuf>,
    /// Run only these cases: ids or family names, comma-separated or repeated.
    #[arg(long, value_delimiter = ',', value_name = "CASE|FAMILY")]
    filter: Vec<String>,
    /// Also write the full report as JSON to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the report as JUnit XML to FILE (atomically): one
    /// testsuite per plugin, one testcase per case.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Time one case may take before its worker is killed (e.g. 10s, 500ms)
    /// [default: the gate file's `timeout`, else 10s].
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// `load-time` warns when the first load plus init take longer
    /// [default: the gate file's, else 1s].
    #[arg(long, value_parser = humantime::parse_duration)]
    load_time_bound: Option<Duration>,
    /// Load/init/shutdown/close cycles `repeat-load` runs [default: the gate
    /// file's, else 20].
    #[arg(long)]
    repeat_cycles: Option<u32>,
    /// Reloads `reload-cycles` runs [default: the gate file's, else 100].
    #[arg(long)]
    reload_cycles: Option<u32>,
    /// Another build the reload cases switch to: upgrade=PATH (a newer
    /// version), broken=PATH (one that fails to start), abi-mismatch=PATH
    /// (built for another ABI major), for the platform judged. Repeatable;
    /// a role given here replaces the gate file's.
    #[arg(long, value_name = "ROLE=PATH", value_parser = parse_reload_target)]
    reload_to: Vec<(ReloadRole, PathBuf)>,
    /// Inputs `fuzz-methods` calls each method with [default: the gate
    /// file's, else 256].
    #[arg(long, value_name = "N")]
    fuzz_inputs: Option<u32>,
    /// The seed of the fuzz inputs (decimal or 0x-hex): the same seed gives
    /// the same inputs, byte for byte, on every platform. The report prints
    /// the seed a run used [default: the gate file's, else 0x706c756763686b31].
    #[arg(long, value_parser = crate::fuzz::parse_seed)]
    seed: Option<u64>,
    /// Run each plugin's cases N times, each time in fresh workers: a case
    /// whose runs disagree is `flaky`, which fails the gate unless waived
    /// [default: the gate file's `repeat`, else 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    repeat: Option<u32>,
    /// Check only the K-th of N slices of the plugins (1-based), for a CI
    /// matrix: a plugin's slice follows from a hash of its file name, so
    /// every machine cuts the same slices. `plugcheck merge` joins the
    /// shards' reports.
    #[arg(long, value_name = "K/N", value_parser = Partition::parse)]
    partition: Option<Partition>,
    /// The gate file [default: `plugcheck.toml` beside the plugin or in the
    /// nearest directory above it, up to the repository's root].
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    config: Option<PathBuf>,
    /// Use no gate file, even where one would be found.
    #[arg(long)]
    no_config: bool,
    /// Where inputs that crashed or hung a method are saved [default: a
    /// `plugcheck-inputs` directory beside the --json report, or in the
    /// current directory].
    #[arg(long, value_name = "DIR")]
    inputs_dir: Option<PathBuf>,
    /// Plugins checked at the same time [default: number of CPUs].
    #[arg(long)]
    jobs: Option<usize>,
    /// Count warnings as gate failures (`--deny-warnings=false` overrides a
    /// gate file's `deny-warnings = true`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    deny_warnings: Option<bool>,
    /// Count a case that does not apply to the plugin (skipped, not behind
    /// a failure) as a gate failure, unless a waiver accepts it.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    deny_skipped: Option<bool>,
    /// Post GitHub Actions annotations and a job summary: `auto` does when
    /// run by Actions (`GITHUB_ACTIONS=true`); `never` is for runs whose
    /// failures are intended, like a suite of known-bad test plugins.
    #[arg(long, value_enum, default_value_t = Annotate::Auto)]
    annotate: Annotate,
    /// Judge the plugin on this platform: `windows` from Linux runs the
    /// Windows harness under Wine, `linux` from Windows runs the Linux
    /// harness inside WSL2.
    #[arg(long, value_enum, default_value_t = TargetPlatform::Host)]
    platform: TargetPlatform,
    /// The other platform's plugcheck (with --platform): plugcheck.exe on
    /// Linux [default: $PLUGCHECK_WINDOWS_HARNESS, else beside this binary,
    /// cargo's x86_64-pc-windows-gnu build of it, or cargo's install
    /// directory (~/.cargo/bin)]; on Windows, `plugcheck` inside WSL
    /// [default: ~/.cargo/bin/plugcheck there, or on its PATH].
    #[arg(long, value_name = "PATH")]
    harness: Option<PathBuf>,
    /// With --platform linux on Windows: the WSL distribution [default:
    /// WSL's default].
    #[arg(long, value_name = "NAME")]
    wsl_distro: Option<String>,
}

/// Where inputs that crash or hang a method go: `--inputs-dir`, else a
/// `plugcheck-inputs` directory beside the JSON report, else in the current
/// directory. Created only when an input is saved.
fn inputs_dir(args: &CheckArgs) -> anyhow::Result<PathBuf> {
    const NAME: &str = "plugcheck-inputs";
    match (&args.inputs_dir, &args.json) {
        (Some(dir), _) => absolute(dir),
        (None, Some(json)) => {
            let beside = json.parent().unwrap_or(Path::new(""));
            absolute(&beside.join(NAME))
        }
        (None, None) => absolute(Path::new(NAME)),
    }
}

/// Where a plugin is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum TargetPlatform {
    /// This host.
    Host,
    Linux,
    Windows,
}

impl TargetPlatform {
    /// The platform it names (`host`: this one).
    fn platform(self) -> Platform {
        match self {
            TargetPlatform::Host => os::HOST,
            TargetPlatform::Linux => Platform::Linux,
            TargetPlatform::Windows => Platform::Windows,
        }
    }
}

/// Whether a run speaks to GitHub Actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Annotate {
    Auto,
    Always,
    Never,
}

impl Annotate {
    /// As `--annotate` takes it.
    fn name(self) -> &'static str {
        match self {
            Annotate::Auto => "auto",
            Annotate::Always => "always",
            Annotate::Never => "never",
        }
    }

    fn wanted(self) -> bool {
        match self {
            Annotate::Auto => report::github::in_actions(),
            Annotate::Always => true,
            Annotate::Never => false,
        }
    }
}

/// What a run uses, each setting from the command line, else the gate
/// file, else the built-in default.
struct Resolved {
    timeout: Duration,
    load_time_bound: Duration,
    repeat_cycles: u32,
    reload_cycles: u32,
    fuzz_inputs: u32,
    seed: u64,
    repeat: u32,
    reload_to: BTreeMap<ReloadRole, PathBuf>,
    /// Where each of `reload_to` (or a role with no build here) was named.
    reload_named_at: BTreeMap<ReloadRole, String>,
    policy: Policy,
}

impl Resolved {
    fn of(args: &CheckArgs, file: Option<&GateFile>) -> anyhow::Result<Resolved> {
        let defaults = CaseSettings::default();
        let from_file = |pick: fn(&GateFile) -> Option<Duration>| file.and_then(pick);
        let (reload_to, reload_named_at) = reload_builds(args, file, os::HOST)?;
        Ok(Resolved {
            timeout: args
                .timeout
                .or(from_file(|file| file.timeout))
                .unwrap_or_else(|| {
                    humantime::parse_duration(crate::outcome::DEFAULT_TIMEOUT).expect("a duration")
                }),
            load_time_bound: args
                .load_time_bound
                .or(from_file(|file| file.load_time_bound))
                .unwrap_or(Duration::from_millis(defaults.load_time_bound_ms)),
            repeat_cycles: args
                .repeat_cycles
                .or(file.and_then(|file| file.repeat_cycles))
                .unwrap_or(defaults.repeat_cycles),
            reload_cycles: args
                .reload_cycles
                .or(file.and_then(|file| file.reload_cycles))
                .unwrap_or(defaults.reload_cycles),
            fuzz_inputs: args
                .fuzz_inputs
                .or(file.and_then(|file| file.fuzz_inputs))
                .unwrap_or(crate::fuzz::DEFAULT_INPUTS),
            seed: args
                .seed
                .or(file.and_then(|file| file.seed))
                .unwrap_or(crate::fuzz::DEFAULT_SEED),
            repeat: args
                .repeat
                .or(file.and_then(|file| file.repeat))
                .unwrap_or(1),
            reload_to,
            reload_named_at,
            policy: Policy {
                deny_warnings: args
                    .deny_warnings
                    .or(file.and_then(|file| file.deny_warnings))
                    .unwrap_or(false),
                deny_skipped: args
                    .deny_skipped
                    .or(file.and_then(|file| file.deny_skipped))
                    .unwrap_or(false),
                waivers: file.map(|file| file.waivers.clone()).unwrap_or_default(),
                file: file.map(|file| file.path.display().to_string()),
            },
        })
    }
}

/// The reload builds for `platform` and where each was named: the gate
/// file's entry for that platform, replaced by a `--reload-to` flag (which
/// names the build for the platform judged: with `--platform`, the other
/// harness is handed it as given).
fn reload_builds(
    args: &CheckArgs,
    file: Option<&GateFile>,
    platform: Platform,
) -> anyhow::Result<(BTreeMap<ReloadRole, PathBuf>, BTreeMap<ReloadRole, String>)> {
    let mut builds = BTreeMap::new();
    let mut named_at = BTreeMap::new();
    for entry in file
        .map(|file| file.reload_to.as_slice())
        .unwrap_or_default()
    {
        named_at.insert(entry.role, entry.named_at.clone());
        if let Some(path) = entry.for_platform(platform) {
            builds.insert(entry.role, absolute(path)?);
        }
    }
    for (role, path) in &args.reload_to {
        named_at.insert(*role, format!("--reload-to {}=…", role.name()));
        builds.insert(*role, absolute(path)?);
    }
    Ok((builds, named_at))
}

/// The gate file of this run: `--config`, else the one the plugins share
/// (`plugcheck.toml` beside them or above), else none. Plugins with
/// different gate files cannot share a run: their settings would clash.
fn find_gate_file(args: &CheckArgs) -> anyhow::Result<Option<PathBuf>> {
    if args.no_config {
        return Ok(None);
    }
    if let Some(path) = &args.config {
        return Ok(Some(absolute(path)?));
    }
    let mut found: Option<(PathBuf, &Path)> = None;
    for plugin in &args.plugins {
        let Some(file) = file::discover(&absolute(plugin)?) else {
            continue;
        };
        match &found {
            None => found = Some((file, plugin)),
            Some((first, first_plugin)) if *first != file => bail!(
                "`{}` and `{}` have different gate files (`{}` and `{}`): check them in separate runs, or choose one with --config",
                crate::text::one_line(&first_plugin.display().to_string()),
                crate::text::one_line(&plugin.display().to_string()),
                first.display(),
                file.display()
            ),
            Some(_) => {}
        }
    }
    Ok(found.map(|(file, _)| file))
}

pub(super) fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let passed = match check(args)? {
        Checked::Here(report) => report.gate_passed(),
        Checked::There(code) => return Ok(code),
    };
    Ok(if passed {
        exit::PASSED
    } else {
        exit::GATE_FAILED
    })
}

/// Where a check ran: here, with its report, or on the other platform's
/// harness, with its exit code.
pub(super) enum Checked {
    Here(Box<Report>),
    There(u8),
}

/// Runs the check, printing as it goes.
pub(super) fn check(mut args: CheckArgs) -> anyhow::Result<Checked> {
    let cases = select_cases(&args.filter)?;
    // The one plugin's worker boots while the rest is set up: the gate
    // file, the report's writable check, the workspace, the reporters.
    // Started before the gate file is read, it may not be the worker the
    // run wants (the file asks for repeats, or the partition leaves the
    // plugin out): then no case takes it, and it is killed with the
    // options that hold it. The scope comes first, as for any worker: the
    // worker's orphans come here, and Ctrl-C kills it (and a `go build`
    // of the Go worker the choice may run) from its start on.
    let mut early_scope = None;
    let head_start = match args.plugins.as_slice() {
        [plugin] if args.platform.platform() == os::HOST && args.repeat.is_none_or(|n| n <= 1) => {
            let plugin = absolute(plugin)?;
            early_scope = Some(enter_scope()?);
            HeadStart::start(&plugin, &worker_exe()?)
        }
        _ => HeadStart::default(),
    };
    // Found here, so the other platform's harness is told the same file.
    args.config = find_gate_file(&args)?;
    let gate_file = args.config.as_deref().map(file::read).transpose()?;
    let platform = args.platform.platform();
    if platform != os::HOST {
        return foreign::run(platform, &forwarded(&args)).map(Checked::There);
    }
    let resolved = Resolved::of(&args, gate_file.as_ref())?;
    if let Some(file) = &gate_file {
        say(&format!(
            "gate file: {} ({} waiver(s))\n",
            crate::text::one_line(&file.path.display().to_string()),
            file.waivers.len()
        ));
    }
    // Made absolute before the cut, so the cut and the plugin set are
    // those of the paths the report names, which a merge checks.
    let given = args
        .plugins
        .iter()
        .map(|plugin| absolute(plugin))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let chosen = match args.partition {
        Some(partition) => {
            let slice = partition.slice(&given);
            say(&format!(
                "partition {partition}: {} of {} plugin(s)\n",
                slice.len(),
                given.len()
            ));
            slice
        }
        None => given.clone(),
    };
    if let Some((other, plugin)) = other_platforms_plugin(&chosen) {
        let bridge = match other {
            Platform::Windows => " (under Wine)",
            Platform::Linux => " (in WSL2)",
        };
        say(&format!(
            "note: `{}` is built for {other}; `plugcheck check --platform {other}` judges it there{bridge}\n",
            crate::text::one_line(&plugin.display().to_string()),
        ));
    }
    let plugins = chosen;
    let scope = match early_scope {
        Some(scope) => scope,
        None => enter_scope()?,
    };
    let worker_exe = worker_exe()?;
    // Refuse an unwritable report path now, not after the whole run.
    for path in args.json.iter().chain(&args.junit) {
        crate::report::check_writable(path)?;
    }
    // Shadow copies and scratch builds of the reload cases go here, and
    // the fuzz inputs written for the Go worker; it is emptied at the end,
    // also after a worker was killed mid-case or the run was interrupted.
    let scratch =
        Workspace::take("plugcheck-run-").context("cannot create the run's temporary directory")?;
    let scratch_path = Some(scratch.path().to_owned());
    let provenance = Provenance {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        partition: args.partition,
        plugin_set: PluginSet::of(given.iter().map(PathBuf::as_path)),
        filter: args.filter.clone(),
        seed: crate::fuzz::seed_text(resolved.seed),
        repeat: resolved.repeat,
        fuzz_inputs: resolved.fuzz_inputs,
        load_time_bound_ms: resolved.load_time_bound.as_millis() as u64,
        repeat_cycles: resolved.repeat_cycles,
        reload_cycles: resolved.reload_cycles,
        reload_to: resolved
            .reload_to
            .keys()
            .map(|role| role.name().to_owned())
            .collect(),
        gate_file: gate_file.as_ref().map(|file| file.hash.clone()),
    };
    let options = RunOptions {
        worker_exe,
        cases,
        timeout: resolved.timeout,
        settings: CaseSettings {
            load_time_bound_ms: resolved.load_time_bound.as_millis() as u64,
            repeat_cycles: resolved.repeat_cycles,
            grace_ms: CaseSettings::grace_for(resolved.timeout),
            reload_cycles: resolved.reload_cycles,
            reload_to: resolved.reload_to,
            reload_named_at: resolved.reload_named_at,
            fuzz_inputs: resolved.fuzz_inputs,
            seed: resolved.seed,
            fuzz_budget_ms: CaseSettings::fuzz_budget_for(resolved.timeout),
            fuzz_series: None,
            scratch: scratch_path.clone(),
        },
        policy: resolved.policy,
        repeat: resolved.repeat,
        inputs_dir: Some(inputs_dir(&args)?),
        jobs: args.jobs.unwrap_or_else(|| match plugins.len() {
            1 => 1,
            _ => std::thread::available_parallelism().map_or(1, usize::from),
        }),
        provenance: Some(provenance),
        head_start,
        hash_builds: args.json.is_some(),
    };
    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    // The progress line first: it erases itself before a table prints.
    if let Some(progress) = Progress::for_terminal() {
        reporters.push(Box::new(progress));
    }
    reporters.push(Box::new(table::Table::new(
        format!("plugcheck {}", env!("CARGO_PKG_VERSION")),
        say,
    )));
    if let Some(path) = args.json.clone() {
        reporters.push(Box::new(AtRunEnd(move |report: &Report| {
            report.write_json(&path)?;
            say(&format!("report written to {}\n", path.display()));
            Ok(())
        })));
    }
    if let Some(path) = args.junit.clone() {
        reporters.push(Box::new(AtRunEnd(move |report: &Report| {
            report::junit::write(report, &path)?;
            say(&format!("JUnit report written to {}\n", path.display()));
            Ok(())
        })));
    }
    if args.annotate.wanted() {
        reporters.push(Box::new(AtRunEnd(|report: &Report| {
            say(&report::github::annotations(report));
            report::github::append_summary(report)
                .context("cannot append to the job summary ($GITHUB_STEP_SUMMARY)")
        })));
    }
    let reporters = Reporters::new(reporters);
    timeline::mark("parent:run-starts");
    let report = scope.run(|| run::run_all(&plugins, &options, &reporters))?;
    timeline::mark("parent:run-done");
    reporters.finish()?;
    timeline::mark("parent:reported");
    // A head start no case took goes with the options, before the scope
    // waits for every worker; then the workers' teardown and the orphans'
    // reaping, before the scratch directory they may use is emptied.
    drop(options);
    drop(scope);
    drop(scratch);
    timeline::mark("parent:torn-down");
    Ok(Checked::Here(Box::new(report)))
}

/// The worker scope of a check: Ctrl-C kills every worker and ends the
/// run with 130.
fn enter_scope() -> anyhow::Result<WorkerScope> {
    WorkerScope::enter(OnInterrupt::exit(
        "plugcheck: interrupted; every worker and its processes were killed",
    ))
}

/// This binary, which workers run.
fn worker_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the plugcheck binary to re-execute")
}

/// The arguments of `plugcheck check ARGV…` (without the `check`), for
/// commands built on a check (`init`).
pub(super) fn parse_args(
    argv: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<CheckArgs, clap::Error> {
    #[derive(clap::Parser)]
    struct Only {
        #[command(flatten)]
        args: CheckArgs,
    }
    let argv = std::iter::once(std::ffi::OsString::from("check")).chain(argv);
    <Only as clap::Parser>::try_parse_from(argv).map(|only| only.args)
}

/// The other platform and the first plugin whose name says it was built
/// for it.
fn other_platforms_plugin(plugins: &[PathBuf]) -> Option<(Platform, &Path)> {
    let other = os::HOST.other();
    plugins
        .iter()
        .find(|path| {
            path.extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case(other.library_extension()))
        })
        .map(|path| (other, path.as_path()))
}

/// This check as the other platform's harness takes it: every option but
/// the bridge's own, paths left for the bridge to map. Every field of
/// [`CheckArgs`] is named here, none with `..`: a new option does not
/// compile until it is forwarded or said not to be.
fn forwarded(args: &CheckArgs) -> Forwarded {
    let CheckArgs {
        plugins,
        filter,
        json,
        junit,
        timeout,
        load_time_bound,
        repeat_cycles,
        reload_cycles,
        reload_to,
        fuzz_inputs,
        seed,
        repeat,
        partition,
        config,
        no_config,
        inputs_dir,
        jobs,
        deny_warnings,
        deny_skipped,
        annotate,
        // The bridge's own: the other side judges on its own platform,
        // with itself.
        platform: _,
        harness,
        wsl_distro,
    } = args;
    let mut argv = vec![Arg::Text("check".into())];
    let mut text = |flag: &str, value: Option<String>| {
        if let Some(value) = value {
            argv.extend([Arg::Text(flag.into()), Arg::Text(value.into())]);
        }
    };
    for case in filter {
        text("--filter", Some(case.clone()));
    }
    let duration = |value: &Option<Duration>| {
        value.map(|duration| humantime::format_duration(duration).to_string())
    };
    let number = |value: &Option<u32>| value.map(|n| n.to_string());
    text("--timeout", duration(timeout));
    text("--load-time-bound", duration(load_time_bound));
    text("--repeat-cycles", number(repeat_cycles));
    text("--reload-cycles", number(reload_cycles));
    text("--fuzz-inputs", number(fuzz_inputs));
    text("--seed", seed.map(crate::fuzz::seed_text));
    text("--repeat", number(repeat));
    text("--partition", partition.map(|p| p.to_string()));
    text("--jobs", jobs.map(|n| n.to_string()));
    text("--annotate", Some(annotate.name().to_owned()));
    for (flag, value) in [
        ("--deny-warnings", deny_warnings),
        ("--deny-skipped", deny_skipped),
    ] {
        if let Some(value) = value {
            argv.push(Arg::Text(format!("{flag}={value}").into()));
        }
    }
    if *no_config {
        argv.push(Arg::Text("--no-config".into()));
    }
    // The gate file goes as itself, not as its settings: the other harness
    // takes its own platform's `[reload-to]` builds from it, and names the
    // file's lines in what it says.
    for (flag, path) in [
        ("--json", json),
        ("--junit", junit),
        ("--config", config),
        ("--inputs-dir", inputs_dir),
    ] {
        if let Some(path) = path {
            argv.extend([Arg::Text(flag.into()), Arg::Path(path.clone())]);
        }
    }
    for (role, target) in reload_to {
        argv.extend([
            Arg::Text("--reload-to".into()),
            Arg::Prefixed(format!("{}=", role.name()), target.clone()),
        ]);
    }
    argv.push(Arg::Text("--".into()));
    argv.extend(plugins.iter().cloned().map(Arg::Path));
    Forwarded {
        argv,
        plugins: plugins.clone(),
        harness: harness.clone(),
        wsl_distro: wsl_distro.clone(),
    }
}

/// `upgrade=target/v2/libx.so` → (Upgrade, path).
pub(super) fn parse_reload_target(text: &str) -> Result<(ReloadRole, PathBuf), String> {
    let roles = || {
        ReloadRole::ALL
            .iter()
            .map(|role| role.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (role, path) = text
        .split_once('=')
        .ok_or_else(|| format!("expected ROLE=PATH with ROLE one of {}", roles()))?;
    let role = ReloadRole::ALL
        .into_iter()
        .find(|known| known.name() == role)
        .ok_or_else(|| format!("unknown role `{role}`: use one of {}", roles()))?;
    if path.is_empty() {
        return Err(format!("no path after `{}=`", role.name()));
    }
    Ok((role, PathBuf::from(path)))
}

/// The cases `--filter` selects, in suite order.
fn select_cases(filter: &[String]) -> anyhow::Result<Vec<CaseId>> {
    crate::catalog::select(filter).map_err(|error| anyhow::anyhow!("{error} (in --filter)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(clap::Subcommand)]
    enum Sub {
        Check(CheckArgs),
    }

    fn parse(argv: &[&std::ffi::OsStr]) -> CheckArgs {
        use clap::Parser;
        let mut full: Vec<&std::ffi::OsStr> = vec!["plugcheck".as_ref()];
        full.extend(argv);
        match Wrapper::parse_from(full).command {
            Sub::Check(args) => args,
        }
    }

    /// `path` made absolute as `check` makes it here (on Windows, with the
    /// current drive): what the round trip must give back unchanged.
    fn here(path: &str) -> String {
        absolute(Path::new(path)).unwrap().display().to_string()
    }

    /// Every option of `check` set to a value other than its default
    /// (`--no-config` aside: it conflicts with `--config`).
    fn every_option(platform: &str) -> CheckArgs {
        let argv: Vec<String> = vec![
            "check".into(),
            "--filter".into(),
            "load,reload".into(),
            "--json".into(),
            here("/r/report.json"),
            "--junit".into(),
            here("/r/junit.xml"),
            "--timeout".into(),
            "3s".into(),
            "--load-time-bound".into(),
            "2s".into(),
            "--repeat-cycles".into(),
            "4".into(),
            "--reload-cycles".into(),
            "5".into(),
            "--reload-to".into(),
            format!("upgrade={}", here("/b/v2.dll")),
            "--reload-to".into(),
            format!("broken={}", here("/b/bad.dll")),
            "--fuzz-inputs".into(),
            "17".into(),
            "--seed".into(),
            "42".into(),
            "--inputs-dir".into(),
            here("/i"),
            "--jobs".into(),
            "2".into(),
            "--deny-warnings".into(),
            "--deny-skipped=false".into(),
            "--repeat".into(),
            "3".into(),
            "--partition".into(),
            "2/4".into(),
            "--config".into(),
            here("/g/plugcheck.toml"),
            "--annotate".into(),
            "never".into(),
            "--platform".into(),
            platform.into(),
            "--harness".into(),
            "/h/plugcheck.exe".into(),
            "--wsl-distro".into(),
            "Debian".into(),
            here("/p/a.dll"),
            here("/p/-odd.dll"),
        ];
        parse(&argv.iter().map(|arg| arg.as_ref()).collect::<Vec<_>>())
    }

    /// What the other platform's harness parses from `forwarded(given)`,
    /// with paths mapped by `map`.
    fn there(given: &CheckArgs, map: impl Fn(&Path) -> std::ffi::OsString) -> CheckArgs {
        let argv = forwarded(given).argv(|path| Ok(map(path))).unwrap();
        parse(&argv.iter().map(|arg| arg.as_os_str()).collect::<Vec<_>>())
    }

    #[test]
    fn every_option_set_here_is_parsed_alike_by_the_other_platforms_harness() {
        let defaults = parse(&["check".as_ref(), "x.so".as_ref()]);
        // First: that `every_option` really sets every option, so a flag
        // left out of the forwarding cannot go unnoticed below. Named one
        // by one, no `..`: a new option does not compile until it is set.
        let given = every_option("windows");
        let CheckArgs {
            plugins,
            filter,
            json,
            junit,
            timeout,
            load_time_bound,
            repeat_cycles,
            reload_cycles,
            reload_to,
            fuzz_inputs,
            seed,
            repeat,
            partition,
            config,
            no_config: _, // conflicts with --config: its own case below
            inputs_dir,
            jobs,
            deny_warnings,
            deny_skipped,
            annotate,
            platform,
            harness,
            wsl_distro,
        } = &given;
        let differs = [
            ("plugins", *plugins != defaults.plugins),
            ("filter", *filter != defaults.filter),
            ("json", *json != defaults.json),
            ("junit", *junit != defaults.junit),
            ("timeout", *timeout != defaults.timeout),
            (
                "load-time-bound",
                *load_time_bound != defaults.load_time_bound,
            ),
            ("repeat-cycles", *repeat_cycles != defaults.repeat_cycles),
            ("reload-cycles", *reload_cycles != defaults.reload_cycles),
            ("reload-to", *reload_to != defaults.reload_to),
            ("fuzz-inputs", *fuzz_inputs != defaults.fuzz_inputs),
            ("seed", *seed != defaults.seed),
            ("repeat", *repeat != defaults.repeat),
            ("partition", *partition != defaults.partition),
            ("config", *config != defaults.config),
            ("inputs-dir", *inputs_dir != defaults.inputs_dir),
            ("jobs", *jobs != defaults.jobs),
            ("deny-warnings", *deny_warnings != defaults.deny_warnings),
            ("deny-skipped", *deny_skipped != defaults.deny_skipped),
            ("annotate", *annotate != defaults.annotate),
            ("platform", *platform != defaults.platform),
            ("harness", *harness != defaults.harness),
            ("wsl-distro", *wsl_distro != defaults.wsl_distro),
        ];
        for (option, differs) in differs {
            assert!(differs, "every_option leaves --{option} at its default");
        }
        // The round trip: everything arrives as given, but the bridge's
        // own options, which the other side does not take.
        let unmapped = |path: &Path| path.as_os_str().to_owned();
        let expected = CheckArgs {
            platform: TargetPlatform::Host,
            harness: None,
            wsl_distro: None,
            ..every_option("windows")
        };
        assert_eq!(there(&given, unmapped), expected);
        let plugin = here("/p/a.so");
        let no_config = parse(&[
            "check".as_ref(),
            "--no-config".as_ref(),
            "--platform".as_ref(),
            "linux".as_ref(),
            plugin.as_ref(),
        ]);
        assert!(no_config.no_config);
        assert_eq!(
            there(&no_config, unmapped),
            CheckArgs {
                platform: TargetPlatform::Host,
                ..parse(&["check".as_ref(), "--no-config".as_ref(), plugin.as_ref()])
            }
        );
    }

    #[test]
    fn every_path_reaches_the_other_platforms_harness_mapped() {
        let given = every_option("windows");
        let mapped = there(&given, |path| format!("Z:{}", path.display()).into());
        // Made absolute (with a drive on Windows) before it is mapped.
        let z = |path: &str| {
            PathBuf::from(format!(
                "Z:{}",
                absolute(Path::new(path)).unwrap().display()
            ))
        };
        assert_eq!(mapped.plugins, [z("/p/a.dll"), z("/p/-odd.dll")]);
        assert_eq!(mapped.json, Some(z("/r/report.json")));
        assert_eq!(mapped.junit, Some(z("/r/junit.xml")));
        assert_eq!(mapped.config, Some(z("/g/plugcheck.toml")));
        assert_eq!(mapped.inputs_dir, Some(z("/i")));
        assert_eq!(
            mapped.reload_to,
            [
                (ReloadRole::Upgrade, z("/b/v2.dll")),
                (ReloadRole::Broken, z("/b/bad.dll"))
            ]
        );
        // The rest as given.
        assert_eq!(
            CheckArgs {
                plugins: given.plugins.clone(),
                json: given.json.clone(),
                junit: given.junit.clone(),
                config: given.config.clone(),
                inputs_dir: given.inputs_dir.clone(),
                reload_to: given.reload_to.clone(),
                ..mapped
            },
            CheckArgs {
                platform: TargetPlatform::Host,
                harness: None,
                wsl_distro: None,
                ..every_option("windows")
            }
        );
        let forwarded = forwarded(&given);
        assert_eq!(forwarded.plugins, given.plugins);
        assert_eq!(
            forwarded.harness.as_deref(),
            Some(Path::new("/h/plugcheck.exe"))
        );
        assert_eq!(forwarded.wsl_distro.as_deref(), Some("Debian"));
    }

    #[test]
    fn the_platform_named_is_this_host_or_the_other_one() {
        assert_eq!(TargetPlatform::Host.platform(), os::HOST);
        assert_eq!(TargetPlatform::Linux.platform(), Platform::Linux);
        assert_eq!(TargetPlatform::Windows.platform(), Platform::Windows);
        let other = os::HOST.other();
        assert_ne!(other, os::HOST);
        let plugins = [
            PathBuf::from(format!("/p/here.{}", os::LIBRARY_EXTENSION)),
            PathBuf::from(format!(
                "/p/there.{}",
                other.library_extension().to_uppercase()
            )),
        ];
        assert_eq!(
            other_platforms_plugin(&plugins),
            Some((other, plugins[1].as_path()))
        );
        assert_eq!(other_platforms_plugin(&plugins[..1]), None);
    }

    #[test]
    fn a_flag_beats_the_gate_file_which_beats_the_default() {
        let file = crate::gate::file::parse(
            "schema = 1\ndeny-warnings = true\ntimeout = \"30s\"\nfuzz-inputs = 7\n\
             [reload-to]\nupgrade = \"v2.so\"\nbroken = \"bad.so\"\n",
            Path::new("/repo/plugcheck.toml"),
        )
        .unwrap();
        let args = parse(&[
            "check".as_ref(),
            "--timeout".as_ref(),
            "3s".as_ref(),
            "--deny-warnings=false".as_ref(),
            "--reload-to".as_ref(),
            "upgrade=/other/v3.so".as_ref(),
            "x.so".as_ref(),
        ]);
        let resolved = Resolved::of(&args, Some(&file)).unwrap();
        assert_eq!(resolved.timeout, Duration::from_secs(3), "the flag");
        assert!(!resolved.policy.deny_warnings, "--deny-warnings=false");
        assert_eq!(resolved.fuzz_inputs, 7, "the file");
        assert_eq!(resolved.repeat, 1, "the default");
        // Absolute as this platform makes them (with a drive on Windows).
        let made_absolute = |path: &str| std::path::absolute(path).unwrap();
        assert_eq!(
            resolved.reload_to.get(&ReloadRole::Upgrade),
            Some(&made_absolute("/other/v3.so")),
            "a role given as a flag replaces the file's"
        );
        assert_eq!(
            resolved.reload_to.get(&ReloadRole::Broken),
            Some(&made_absolute("/repo/bad.so")),
            "the file's other roles stay, beside the file"
        );
        assert_eq!(
            resolved.policy.file.as_deref(),
            Some("/repo/plugcheck.toml")
        );
        let bare = Resolved::of(&parse(&["check".as_ref(), "x.so".as_ref()]), None).unwrap();
        assert_eq!(bare.timeout, Duration::from_secs(10));
        assert!(bare.policy.is_default());
    }

    #[test]
    fn each_platform_takes_its_own_build_from_one_gate_file_and_says_where_it_was_named() {
        let file = crate::gate::file::parse(
            "schema = 1\n[reload-to]\n\
             upgrade = { linux = \"l/libx.so\", windows = \"w/x.dll\" }\n\
             broken = { linux = \"l/libbad.so\" }\n",
            Path::new("/repo/plugcheck.toml"),
        )
        .unwrap();
        let made_absolute = |path: &str| std::path::absolute(path).unwrap();
        let args = parse(&["check".as_ref(), "x.so".as_ref()]);
        for (platform, upgrade) in [
            (Platform::Linux, "/repo/l/libx.so"),
            (Platform::Windows, "/repo/w/x.dll"),
        ] {
            let (builds, named_at) = reload_builds(&args, Some(&file), platform).unwrap();
            assert_eq!(
                builds.get(&ReloadRole::Upgrade),
                Some(&made_absolute(upgrade)),
                "{platform}"
            );
            assert_eq!(
                named_at.get(&ReloadRole::Broken).map(String::as_str),
                Some("/repo/plugcheck.toml:4"),
                "{platform}: where `broken` was named, with or without a build here"
            );
        }
        let (windows, _) = reload_builds(&args, Some(&file), Platform::Windows).unwrap();
        assert_eq!(windows.get(&ReloadRole::Broken), None, "linux only");
        let flagged = parse(&[
            "check".as_ref(),
            "--reload-to".as_ref(),
            "broken=/b/bad.dll".as_ref(),
            "x.so".as_ref(),
        ]);
        let (builds, named_at) = reload_builds(&flagged, Some(&file), Platform::Windows).unwrap();
        assert_eq!(
            builds.get(&ReloadRole::Broken),
            Some(&made_absolute("/b/bad.dll"))
        );
        assert_eq!(
            named_at.get(&ReloadRole::Broken).map(String::as_str),
            Some("--reload-to broken=…")
        );
    }

    #[test]
    fn filters_take_ids_and_families_in_suite_order() {
        let picked = select_cases(&["unload".into(), "load".into()]).unwrap();
        assert_eq!(picked, vec![CaseId::Load, CaseId::Unload]);
        let lookup = select_cases(&["lookup".into()]).unwrap();
        assert_eq!(lookup, vec![CaseId::LookupEntry, CaseId::LookupMethods]);
        let typo = select_cases(&["relod".into()]).unwrap_err().to_string();
        assert!(typo.contains("did you mean `reload`?"), "{typo}");
        let error = select_cases(&["nope".into()]).unwrap_err().to_string();
        assert!(!error.contains("did you mean"), "{error}");
        assert!(
            error.contains("`nope`") && error.contains("plugcheck list"),
            "{error}"
        );
    }

    #[test]
    fn reload_targets_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_reload_target("abi-mismatch=x/y.so"),
            Ok((ReloadRole::AbiMismatch, PathBuf::from("x/y.so")))
        );
        let error = parse_reload_target("newer=x.so").unwrap_err();
        assert!(
            error.contains("unknown role `newer`") && error.contains("upgrade"),
            "{error}"
        );
        assert!(
            parse_reload_target("x.so")
                .unwrap_err()
                .contains("ROLE=PATH")
        );
        assert!(parse_reload_target("upgrade=").is_err());
    }
}
