//! `plugcheck init PLUGIN`: checks the plugin once and writes a commented
//! starter gate file — strict settings, and a waiver for each case it does
//! not pass today whose `reason` is left empty, so the gate refuses the file
//! until the author has said why each is acceptable (or fixed the plugin
//! and deleted the waiver).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use super::check::{self, Checked};
use super::shared::{exit, say};
use crate::catalog::Family;
use crate::gate::file::{FILE_NAME, SCHEMA};
use crate::gate::judge;
use crate::gate::policy::Policy;
use crate::outcome::{
    DEFAULT_LOAD_TIME_BOUND_MS, DEFAULT_RELOAD_CYCLES, DEFAULT_REPEAT_CYCLES, ReloadRole,
};
use crate::report::verdict::Verdict;
use crate::report::{PluginReport, Report};
use crate::text::one_line;

#[derive(Debug, clap::Args)]
pub(super) struct InitArgs {
    /// The plugin library to write a gate file for.
    #[arg(value_name = "PLUGIN")]
    plugin: PathBuf,
    /// Where to write it.
    #[arg(long, short, value_name = "FILE", default_value = FILE_NAME)]
    output: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
    /// Builds the reload cases switch to (ROLE=PATH, as for `check`):
    /// written into the file, relative to it.
    #[arg(long, value_name = "ROLE=PATH", value_parser = check::parse_reload_target)]
    reload_to: Vec<(ReloadRole, PathBuf)>,
    /// Time one case may take (written into the file) [default: 10s].
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
}

pub(super) fn run(args: InitArgs) -> anyhow::Result<u8> {
    if args.output.exists() && !args.force {
        bail!(
            "`{}` exists: edit it, or pass --force to replace it",
            args.output.display()
        );
    }
    crate::report::check_writable(&args.output)?;
    let mut argv: Vec<OsString> = vec!["--no-config".into(), "--annotate".into(), "never".into()];
    for (role, path) in &args.reload_to {
        let mut target = OsString::from(format!("{}=", role.name()));
        target.push(path);
        argv.extend(["--reload-to".into(), target]);
    }
    if let Some(timeout) = &args.timeout {
        argv.extend(["--timeout".into(), timeout.into()]);
    }
    argv.push("--".into());
    argv.push(args.plugin.clone().into());
    let check_args = check::parse_args(argv).map_err(|error| anyhow::anyhow!("{error}"))?;
    say(&format!(
        "checking {} to see what its gate needs today\n",
        one_line(&args.plugin.display().to_string())
    ));
    let report = match check::check(check_args)? {
        Checked::Here(report) => *report,
        Checked::There(_) => bail!("init judges a plugin on this platform only"),
    };
    let plugin = report
        .plugins
        .first()
        .context("the check judged no plugin")?;
    let output = std::path::absolute(&args.output)
        .with_context(|| format!("cannot make `{}` absolute", args.output.display()))?;
    let reload_to = reload_targets(&args.reload_to, &output)?;
    let text = starter(&report, plugin, args.timeout.as_deref(), &reload_to);
    crate::report::write_atomically(&output, text.as_bytes())?;
    let waivers = waivers_needed(plugin).len();
    say(&format!(
        "\nwrote {}: {waivers} waiver(s) wait for a `reason`; `plugcheck check` refuses the file until each has one\n",
        output.display()
    ));
    let plugin_path = std::path::absolute(&args.plugin)?;
    // Discovery answers with resolved paths: compare the file written so.
    let written = crate::os::real_path(&output).ok();
    if crate::gate::file::discover(&plugin_path) != written {
        say(&format!(
            "note: `plugcheck check` will not find it beside the plugin: pass --config {}\n",
            output.display()
        ));
    }
    Ok(exit::PASSED)
}

/// The reload targets with their paths relative to the gate file's
/// directory where they can be.
fn reload_targets(
    given: &[(ReloadRole, PathBuf)],
    output: &Path,
) -> anyhow::Result<Vec<(ReloadRole, String)>> {
    let dir = output.parent().unwrap_or(Path::new(""));
    given
        .iter()
        .map(|(role, path)| {
            let path = std::path::absolute(path)
                .with_context(|| format!("cannot make `{}` absolute", path.display()))?;
            let relative = path.strip_prefix(dir).unwrap_or(&path);
            Ok((*role, relative.display().to_string()))
        })
        .collect()
}

/// A waiver the plugin needs today: a case or a whole family (when every
/// case of the family got the same verdict), its verdict and why.
struct Needed {
    case: String,
    accept: Verdict,
    today: String,
}

/// What breaks a strict gate (deny-warnings, deny-skipped) today.
fn waivers_needed(plugin: &PluginReport) -> Vec<Needed> {
    let strict = Policy {
        deny_warnings: true,
        deny_skipped: true,
        ..Policy::default()
    };
    let breaking: Vec<_> = plugin
        .cases
        .iter()
        .filter(|case| judge::breaks(&strict, case))
        .collect();
    let mut needed = Vec::new();
    let mut families_done: Vec<Family> = Vec::new();
    for case in &breaking {
        let family = case.id.family();
        if families_done.contains(&family) {
            continue;
        }
        let of_family: Vec<_> = plugin
            .cases
            .iter()
            .filter(|c| c.id.family() == family)
            .collect();
        let whole_family = of_family.len() > 1
            && of_family
                .iter()
                .all(|c| c.verdict == case.verdict && judge::breaks(&strict, c));
        if whole_family {
            families_done.push(family);
            needed.push(Needed {
                case: family.to_string(),
                accept: case.verdict,
                today: format!("every {family} case: {}", case.reason),
            });
        } else {
            needed.push(Needed {
                case: case.id.id().to_owned(),
                accept: case.verdict,
                today: case.reason.clone(),
            });
        }
    }
    needed
}

/// A TOML string literal.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// The starter file's text.
pub(super) fn starter(
    report: &Report,
    plugin: &PluginReport,
    timeout: Option<&str>,
    reload_to: &[(ReloadRole, String)],
) -> String {
    let about = match &plugin.plugin {
        Some(info) => format!("{} {}", one_line(&info.name), one_line(&info.version)),
        None => one_line(&plugin.stem()).into_owned(),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "# plugcheck.toml: the release gate of {about}, started by `plugcheck init`\n\
         # from a check on {}. `plugcheck check` reads it from the plugin's directory\n\
         # or the nearest one above (or from --config); a flag given there wins over\n\
         # the file. Every key but `schema` is optional; `plugcheck list` names every\n\
         # case and family.\n\
         schema = {SCHEMA}\n\n\
         # Fail the gate on a warning, and on a case that does not apply to the plugin\n\
         # (skipped, not behind a failure). A waiver below can accept either. A case\n\
         # skipped behind a prerequisite was not verified: it fails any gate unless a\n\
         # waiver names it (its case or family), whatever waives the prerequisite.\n\
         deny-warnings = true\n\
         deny-skipped = true\n\n\
         # Time one case may take before its worker is killed.\n\
         timeout = {}\n\
         # load-time-bound = {:<9} # load-time warns when load + init take longer\n\
         # repeat-cycles = {:<11} # load/init/shutdown/close cycles of repeat-load\n\
         # reload-cycles = {:<11} # reloads of reload-cycles\n\
         # fuzz-inputs = {:<13} # inputs fuzz-methods feeds each method\n\
         # repeat = 1                # runs of every case, each in fresh workers;\n\
         #                           # runs that disagree make the case `flaky`\n",
        report.platform.describe(),
        quoted(timeout.unwrap_or(crate::outcome::DEFAULT_TIMEOUT)),
        quoted(
            &humantime::format_duration(Duration::from_millis(DEFAULT_LOAD_TIME_BOUND_MS))
                .to_string()
        ),
        DEFAULT_REPEAT_CYCLES,
        DEFAULT_RELOAD_CYCLES,
        crate::fuzz::DEFAULT_INPUTS,
    );
    out.push_str(
        "\n# Other builds of the plugin the reload cases switch to, relative to this file:\n\
         # upgrade (a newer version), broken (fails to start), abi-mismatch (another\n\
         # ABI major). Without them those cases are skipped. A file that gates both\n\
         # platforms names a build for each: upgrade = { linux = \"…\", windows = \"…\" }\n\
         [reload-to]\n",
    );
    for role in ReloadRole::ALL {
        match reload_to.iter().find(|(given, _)| *given == role) {
            Some((_, path)) => {
                let _ = writeln!(out, "{} = {}", role.name(), quoted(path));
            }
            None => {
                let _ = writeln!(out, "# {} = \"path/to/build\"", role.name());
            }
        }
    }
    let needed = waivers_needed(plugin);
    out.push_str(
        "\n# What the plugin does not pass today. Each waiver accepts one verdict of a\n\
         # case (or of a whole family) instead of `pass`. Its `reason` is mandatory:\n\
         # the gate refuses this file until every waiver says why; delete the waivers\n\
         # you fix instead. `until` (a plugin version like \"2.0.0\", or a date\n\
         # YYYY-MM-DD) ends a waiver; from then on the case counts as it is.\n",
    );
    if needed.is_empty() {
        out.push_str("# (none needed: every case passed)\n");
    }
    for waiver in &needed {
        let _ = writeln!(
            out,
            "\n[[waive]]\ncase = {}\naccept = {}\n# today: {}\nreason = \"\"\n# until = \"YYYY-MM-DD\"",
            quoted(&waiver.case),
            quoted(waiver.accept.as_str()),
            one_line(&waiver.today)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CaseId;
    use crate::report::test_report;

    #[test]
    fn the_starter_waives_what_breaks_a_strict_gate_and_reads_back_only_once_reasoned() {
        let mut report = test_report(
            "linux",
            &[(
                "/p/go-echo.so",
                &[
                    ("load", "pass"),
                    ("unload", "warning"),
                    ("reload-upgrade", "skipped"),
                    ("reload-broken-upgrade", "skipped"),
                    ("reload-cycles", "pass"),
                    ("lookup-entry", "fail"),
                    ("lookup-methods", "fail"),
                    ("selftest", "skipped"),
                ],
            )],
        );
        report.plugins[0].cases[7].detail.prerequisite = Some(CaseId::LookupEntry);
        let text = starter(
            &report,
            &report.plugins[0],
            None,
            &[(ReloadRole::Upgrade, "v2/x.so".into())],
        );
        let path = Path::new("/r/plugcheck.toml");
        let error = crate::gate::file::parse(&text, path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("has no `reason`"), "{error}\n{text}");
        let reasoned = text.replace("reason = \"\"", "reason = \"known\"");
        let file = crate::gate::file::parse(&reasoned, path).unwrap();
        let waived: Vec<(&str, Verdict)> = file
            .waivers
            .iter()
            .map(|waiver| (waiver.case.as_str(), waiver.accept))
            .collect();
        assert_eq!(
            waived,
            [
                ("unload", Verdict::Warning),
                ("reload-upgrade", Verdict::Skipped),
                ("reload-broken-upgrade", Verdict::Skipped),
                ("lookup", Verdict::Fail),
                ("selftest", Verdict::Skipped),
            ],
            "one per case, a family where all its cases agree, and the case behind a failure by name"
        );
        assert_eq!(file.deny_warnings, Some(true));
        let upgrades: Vec<_> = file
            .reload_to
            .iter()
            .map(|build| (build.role, build.for_platform(crate::os::Platform::Linux)))
            .collect();
        assert_eq!(
            upgrades,
            [(ReloadRole::Upgrade, Some(Path::new("/r/v2/x.so")))]
        );
    }
}
