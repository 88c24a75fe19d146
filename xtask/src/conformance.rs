//! `cargo xtask conformance`: build the fixtures, run `plugcheck check`
//! over all of them, then let the conformance tests judge the report
//! against the manifest's intended verdicts and the snapshots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use plugcheck::report::Report;
use xshell::{Shell, cmd};

use crate::fixtures::{self, Artifacts, Built, HOST_PLATFORM};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Write changed snapshots instead of failing on them; review them with `git diff fixtures/snapshots`.
    #[arg(long)]
    pub update: bool,
    /// Fail instead of skipping fixtures whose compiler is not installed.
    #[arg(long)]
    pub require_all: bool,
}

pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    let artifacts = fixtures::run(
        sh,
        &fixtures::Args {
            release: false,
            require_all: args.require_all,
        },
    )?;
    let report_path = crate::project_root()
        .join("target/plugcheck")
        .join(HOST_PLATFORM)
        .join("report.json");
    let report = run_suite(&artifacts, &report_path)?;
    eprintln!(
        "\n{} plugins and fixtures judged on {}; report: {}",
        report.plugins.len(),
        report.platform.os,
        report_path.display()
    );
    judge(sh, &report_path, &artifacts, args.update)
}

/// Runs `plugcheck check` over every artifact, one invocation per distinct
/// timeout, and writes the merged report (in manifest order).
pub fn run_suite(artifacts: &Artifacts, report_path: &Path) -> anyhow::Result<Report> {
    // Options apply to a whole invocation: one per distinct timeout and
    // set of reload targets.
    let mut groups: BTreeMap<(Option<Duration>, &[String]), Vec<&Built>> = BTreeMap::new();
    for built in &artifacts.built {
        groups
            .entry((built.timeout, &built.reload_to))
            .or_default()
            .push(built);
    }
    let dir = report_path.parent().expect("report path has a directory");
    let mut merged: Option<Report> = None;
    for (index, ((timeout, reload_to), group)) in groups.iter().enumerate() {
        let part = dir.join(format!("report-part{index}.json"));
        let mut argv: Vec<PathBuf> = vec!["check".into(), "--json".into(), part.clone()];
        if let Some(timeout) = timeout {
            argv.push("--timeout".into());
            argv.push(humantime::format_duration(*timeout).to_string().into());
        }
        for target in reload_to.iter() {
            argv.push("--reload-to".into());
            argv.push(target.into());
        }
        argv.extend(group.iter().map(|built| built.path.clone()));
        let status = duct::cmd(&artifacts.plugcheck, &argv)
            // Panic messages must not depend on the caller's environment.
            .env("RUST_BACKTRACE", "0")
            .unchecked()
            .run()
            .with_context(|| format!("cannot run `{}`", artifacts.plugcheck.display()))?
            .status;
        // 0 and 1 are verdicts (fixtures are meant to fail the gate); 2 is
        // plugcheck itself failing.
        if !matches!(status.code(), Some(0 | 1)) {
            bail!("plugcheck check failed ({status}); see its error above");
        }
        let part_report = Report::read_json(&part)?;
        std::fs::remove_file(&part)?;
        match &mut merged {
            None => merged = Some(part_report),
            Some(report) => report.plugins.extend(part_report.plugins),
        }
    }
    let mut report = merged.context("the manifest lists no fixtures")?;
    let order: Vec<&PathBuf> = artifacts.built.iter().map(|built| &built.path).collect();
    report
        .plugins
        .sort_by_key(|plugin| order.iter().position(|path| **path == plugin.path));
    report.write_json(report_path)?;
    Ok(report)
}

/// Runs the conformance tests against the report.
fn judge(sh: &Shell, report: &Path, artifacts: &Artifacts, update: bool) -> anyhow::Result<()> {
    let skipped: Vec<&str> = artifacts
        .skipped
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    let skipped = skipped.join(",");
    let plugcheck = &artifacts.plugcheck;
    let artifacts_dir = artifacts
        .built
        .first()
        .and_then(|built| built.path.parent())
        .map(Path::to_owned)
        .unwrap_or_default();
    let insta_update = if update { "always" } else { "no" };
    let result = cmd!(
        sh,
        "cargo test --quiet -p plugcheck-fixtures --test conformance --test isolation --test reload -- --include-ignored"
    )
    .env("PLUGCHECK_REPORT", report)
    .env("PLUGCHECK_SKIPPED", skipped)
    .env("PLUGCHECK_BIN", plugcheck)
    .env("PLUGCHECK_ARTIFACTS", artifacts_dir)
    .env("INSTA_UPDATE", insta_update)
    .run();
    if update {
        cmd!(sh, "git status --short fixtures/snapshots").run()?;
        eprintln!(
            "snapshots written: review them with `git diff fixtures/snapshots` before committing"
        );
    }
    result.context("conformance failed: a fixture missed its intended verdict or its snapshot changed (see above)")
}
