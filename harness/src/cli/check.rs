//! `plugcheck check`: the release gate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use super::{exit, say};
use crate::catalog::{CaseId, Family};
use crate::outcome::{CaseSettings, ReloadRole};
use crate::report::Report;
use crate::report::event::{AtRunEnd, Reporter, Reporters};
use crate::report::progress::Progress;
use crate::report::table;
use crate::runner::{self, RunOptions};
use crate::{os, report, worker};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
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
    /// Time one case may take before its worker is killed (e.g. 10s, 500ms).
    #[arg(long, default_value = crate::outcome::DEFAULT_TIMEOUT, value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// `load-time` warns when the first load plus init take longer.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    load_time_bound: Duration,
    /// Load/init/shutdown/close cycles `repeat-load` runs.
    #[arg(long, default_value_t = CaseSettings::default().repeat_cycles)]
    repeat_cycles: u32,
    /// Reloads `reload-cycles` runs.
    #[arg(long, default_value_t = CaseSettings::default().reload_cycles)]
    reload_cycles: u32,
    /// Another build the reload cases switch to: upgrade=PATH (a newer
    /// version), broken=PATH (one that fails to start), abi-mismatch=PATH
    /// (built for another ABI major). Repeatable.
    #[arg(long, value_name = "ROLE=PATH", value_parser = parse_reload_target)]
    reload_to: Vec<(ReloadRole, PathBuf)>,
    /// Inputs `fuzz-methods` calls each method with.
    #[arg(long, default_value_t = crate::fuzz::DEFAULT_INPUTS, value_name = "N")]
    fuzz_inputs: u32,
    /// The seed of the fuzz inputs (decimal or 0x-hex): the same seed gives
    /// the same inputs, byte for byte, on every platform. The report prints
    /// the seed a run used.
    #[arg(long, default_value = crate::fuzz::DEFAULT_SEED_TEXT, value_parser = crate::fuzz::parse_seed)]
    seed: u64,
    /// Where inputs that crashed or hung a method are saved [default: a
    /// `plugcheck-inputs` directory beside the --json report, or in the
    /// current directory].
    #[arg(long, value_name = "DIR")]
    inputs_dir: Option<PathBuf>,
    /// Plugins checked at the same time [default: number of CPUs].
    #[arg(long)]
    jobs: Option<usize>,
    /// Count warnings as gate failures.
    #[arg(long)]
    deny_warnings: bool,
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
    /// Linux [default: beside this binary, or cargo's
    /// x86_64-pc-windows-gnu build of it]; on Windows, `plugcheck` inside
    /// WSL [default: ~/.cargo/bin/plugcheck there, or on its PATH].
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
pub enum TargetPlatform {
    /// This host.
    Host,
    Linux,
    Windows,
}

/// Whether a run speaks to GitHub Actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Annotate {
    Auto,
    Always,
    Never,
}

impl Annotate {
    fn wanted(self) -> bool {
        match self {
            Annotate::Auto => report::github::in_actions(),
            Annotate::Always => true,
            Annotate::Never => false,
        }
    }
}

pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let cases = select_cases(&args.filter)?;
    let (other, _) = os::OTHER_PLATFORM;
    match args.platform {
        TargetPlatform::Windows if other == "windows" => return super::foreign::on_windows(&args),
        TargetPlatform::Linux if other == "linux" => return super::foreign::on_linux(&args),
        _ => {}
    }
    if let Some((other, plugin)) = other_platforms_plugin(&args.plugins) {
        let bridge = if other == "windows" {
            " (under Wine)"
        } else {
            " (in WSL2)"
        };
        say(&format!(
            "note: `{}` is built for {other}; `plugcheck check --platform {other}` judges it there{bridge}\n",
            crate::text::one_line(&plugin.display().to_string()),
        ));
    }
    // Refuse an unwritable report path now, not after the whole run.
    for path in args.json.iter().chain(&args.junit) {
        crate::report::check_writable(path)?;
    }
    let plugins = args
        .plugins
        .iter()
        .map(|plugin| absolute(plugin))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let reload_to = args
        .reload_to
        .iter()
        .map(|(role, path)| Ok((*role, absolute(path)?)))
        .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
    // Shadow copies and scratch builds of the reload cases go here, and the
    // fuzz inputs written for the Go worker; it goes away at the end, also
    // after a worker was killed mid-case.
    let scratch = if cases
        .iter()
        .any(|case| matches!(case.family(), Family::Reload | Family::Crash))
    {
        let dir = tempfile::Builder::new()
            .prefix("plugcheck-run-")
            .tempdir()
            .context("cannot create the run's temporary directory")?;
        Some(dir)
    } else {
        None
    };
    let scratch_path = scratch.as_ref().map(|dir| dir.path().to_owned());
    let options = RunOptions {
        worker_exe: std::env::current_exe()
            .context("cannot find the plugcheck binary to re-execute")?,
        cases,
        timeout: args.timeout,
        settings: CaseSettings {
            load_time_bound_ms: args.load_time_bound.as_millis() as u64,
            repeat_cycles: args.repeat_cycles,
            grace_ms: CaseSettings::grace_for(args.timeout),
            reload_cycles: args.reload_cycles,
            reload_to,
            fuzz_inputs: args.fuzz_inputs,
            seed: args.seed,
            fuzz_budget_ms: CaseSettings::fuzz_budget_for(args.timeout),
            fuzz_series: None,
            scratch: scratch_path.clone(),
        },
        deny_warnings: args.deny_warnings,
        inputs_dir: Some(inputs_dir(&args)?),
        jobs: args.jobs.unwrap_or_else(|| match plugins.len() {
            1 => 1,
            _ => std::thread::available_parallelism().map_or(1, usize::from),
        }),
    };
    // Orphans a plugin leaves behind come to us, so they can be killed.
    os::become_subreaper();
    // Workers live in process groups of their own, which Ctrl-C does not
    // reach: on an interrupt, kill them, clean up, then leave.
    ctrlc::set_handler(move || {
        worker::kill_all();
        if let Some(scratch) = &scratch_path {
            let _ = std::fs::remove_dir_all(scratch);
        }
        eprintln!("plugcheck: interrupted; every worker and its processes were killed");
        std::process::exit(130);
    })
    .context("cannot install the interrupt handler")?;
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
    let report = runner::run_all(&plugins, &options, &reporters)?;
    if worker::interrupted() {
        // The interrupt handler is exiting with 130; the results of the
        // workers it killed are not verdicts and must not be reported.
        loop {
            std::thread::park();
        }
    }
    reporters.finish()?;
    worker::wait_for_teardown();
    // Every worker is gone: whatever a plugin left running came to us and
    // is killed here, also after the last worker of a one-plugin run.
    worker::reap_leftovers();
    drop(scratch);
    Ok(if report.gate_passed() {
        exit::PASSED
    } else {
        exit::GATE_FAILED
    })
}

/// The other platform and the first plugin whose name says it was built
/// for it.
fn other_platforms_plugin(plugins: &[PathBuf]) -> Option<(&'static str, &Path)> {
    let (other, extension) = os::OTHER_PLATFORM;
    plugins
        .iter()
        .find(|path| {
            path.extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case(extension))
        })
        .map(|path| (other, path.as_path()))
}

/// The arguments of this check as the other platform's harness takes them:
/// every option but the bridge's own, each path mapped by `path`.
pub(super) fn forwarded(
    args: &CheckArgs,
    path: &dyn Fn(&Path) -> std::ffi::OsString,
) -> Vec<std::ffi::OsString> {
    let mut argv: Vec<std::ffi::OsString> = vec!["check".into()];
    for case in &args.filter {
        argv.extend(["--filter".into(), case.into()]);
    }
    if let Some(json) = &args.json {
        argv.extend(["--json".into(), path(json)]);
    }
    if let Some(junit) = &args.junit {
        argv.extend(["--junit".into(), path(junit)]);
    }
    argv.extend([
        "--timeout".into(),
        humantime::format_duration(args.timeout).to_string().into(),
        "--load-time-bound".into(),
        humantime::format_duration(args.load_time_bound)
            .to_string()
            .into(),
        "--repeat-cycles".into(),
        args.repeat_cycles.to_string().into(),
        "--reload-cycles".into(),
        args.reload_cycles.to_string().into(),
        "--fuzz-inputs".into(),
        args.fuzz_inputs.to_string().into(),
        "--seed".into(),
        crate::fuzz::seed_text(args.seed).into(),
    ]);
    if let Some(dir) = &args.inputs_dir {
        argv.extend(["--inputs-dir".into(), path(dir)]);
    }
    for (role, target) in &args.reload_to {
        let mut value = std::ffi::OsString::from(format!("{}=", role.name()));
        value.push(path(target));
        argv.extend(["--reload-to".into(), value]);
    }
    if let Some(jobs) = args.jobs {
        argv.extend(["--jobs".into(), jobs.to_string().into()]);
    }
    if args.deny_warnings {
        argv.push("--deny-warnings".into());
    }
    let annotate = match args.annotate {
        Annotate::Auto => "auto",
        Annotate::Always => "always",
        Annotate::Never => "never",
    };
    argv.extend(["--annotate".into(), annotate.into()]);
    argv.push("--".into());
    argv.extend(args.plugins.iter().map(|plugin| path(plugin)));
    argv
}

pub(super) fn plugins(args: &CheckArgs) -> &[PathBuf] {
    &args.plugins
}

pub(super) fn bridge_options(args: &CheckArgs) -> (Option<&Path>, Option<&str>) {
    (args.harness.as_deref(), args.wsl_distro.as_deref())
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path)
        .with_context(|| format!("cannot make `{}` an absolute path", path.display()))
}

/// `upgrade=target/v2/libx.so` → (Upgrade, path).
fn parse_reload_target(text: &str) -> Result<(ReloadRole, PathBuf), String> {
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
    if filter.is_empty() {
        return Ok(CaseId::ALL.to_vec());
    }
    let selected = |case: &CaseId, wanted: &String| {
        case.id() == wanted || case.family().to_string() == *wanted
    };
    if let Some(unknown) = filter
        .iter()
        .find(|wanted| !CaseId::ALL.iter().any(|case| selected(case, wanted)))
    {
        let names: Vec<String> = CaseId::ALL
            .iter()
            .flat_map(|case| [case.id().to_owned(), case.family().to_string()])
            .collect();
        let closest = names
            .iter()
            .map(|name| (strsim::jaro_winkler(unknown, name), name))
            .filter(|(score, _)| *score >= 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, name)| format!(" (did you mean `{name}`?)"))
            .unwrap_or_default();
        bail!(
            "unknown case or family `{}` in --filter{closest}: `plugcheck list` shows them",
            crate::text::one_line(unknown)
        );
    }
    Ok(CaseId::ALL
        .iter()
        .copied()
        .filter(|case| filter.iter().any(|wanted| selected(case, wanted)))
        .collect())
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

    #[test]
    fn every_option_reaches_the_other_platforms_harness_with_its_paths_mapped() {
        let given = parse(&[
            "check".as_ref(),
            "--filter".as_ref(),
            "load,reload".as_ref(),
            "--json".as_ref(),
            "/r/report.json".as_ref(),
            "--junit".as_ref(),
            "/r/junit.xml".as_ref(),
            "--timeout".as_ref(),
            "3s".as_ref(),
            "--load-time-bound".as_ref(),
            "2s".as_ref(),
            "--repeat-cycles".as_ref(),
            "4".as_ref(),
            "--reload-cycles".as_ref(),
            "5".as_ref(),
            "--reload-to".as_ref(),
            "upgrade=/b/v2.dll".as_ref(),
            "--fuzz-inputs".as_ref(),
            "17".as_ref(),
            "--seed".as_ref(),
            "42".as_ref(),
            "--inputs-dir".as_ref(),
            "/i".as_ref(),
            "--jobs".as_ref(),
            "2".as_ref(),
            "--deny-warnings".as_ref(),
            "--annotate".as_ref(),
            "never".as_ref(),
            "--platform".as_ref(),
            "windows".as_ref(),
            "--harness".as_ref(),
            "/h/plugcheck.exe".as_ref(),
            "/p/-odd.dll".as_ref(),
        ]);
        let mapped = |path: &Path| std::ffi::OsString::from(format!("Z:{}", path.display()));
        let argv = forwarded(&given, &mapped);
        let refs: Vec<&std::ffi::OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
        let there = parse(&refs);
        let expected = format!("{given:?}")
            .replace("\"/", "\"Z:/")
            .replace("platform: Windows", "platform: Host")
            .replace("harness: Some(\"Z:/h/plugcheck.exe\")", "harness: None");
        assert_eq!(format!("{there:?}"), expected);
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
