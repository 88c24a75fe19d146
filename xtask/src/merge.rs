//! `cargo xtask merge-reports`: the legs' JSON reports as one platform ×
//! case table, showing where the platforms disagree. A plugin or case a leg
//! did not report is "not run" there — never passed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use plugcheck::report::Report;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// JSON reports of `plugcheck check --json`, one per leg.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Show every case, not only where the platforms disagree.
    #[arg(long)]
    pub all: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let reports = args
        .reports
        .iter()
        .map(|path| Report::read_json(path))
        .collect::<Result<Vec<_>, _>>()?;
    print!("{}", table(&reports, args.all));
    Ok(())
}

/// A plugin's cases (in suite order) → platform → verdict.
type Cases<'a> = BTreeMap<(usize, &'a str), BTreeMap<&'a str, String>>;

/// The merged table. Rows are plugin × case, in the first report's order;
/// columns are the legs.
pub fn table(reports: &[Report], all: bool) -> String {
    let platforms: Vec<&str> = reports.iter().map(|r| r.platform.os.as_str()).collect();
    let mut rows: BTreeMap<(usize, String), Cases> = BTreeMap::new();
    let mut plugin_order: Vec<String> = Vec::new();
    for report in reports {
        for plugin in &report.plugins {
            let name = stem(&plugin.path.display().to_string());
            let index = plugin_order
                .iter()
                .position(|p| *p == name)
                .unwrap_or_else(|| {
                    plugin_order.push(name.clone());
                    plugin_order.len() - 1
                });
            let cases = rows.entry((index, name)).or_default();
            for (position, case) in plugin.cases.iter().enumerate() {
                cases
                    .entry((position, case.id.id()))
                    .or_default()
                    .insert(report.platform.os.as_str(), case.verdict.to_string());
            }
        }
    }
    let mut out = format!("{:<22} {:<28}", "plugin", "case");
    for platform in &platforms {
        out.push_str(&format!(" {platform:<10}"));
    }
    out.push('\n');
    let mut disagreements = 0;
    for ((_, plugin), cases) in &rows {
        // A plugin a leg never reported is one row, not one per case.
        let reported_on = |platform: &&str| {
            cases
                .values()
                .any(|verdicts| verdicts.contains_key(platform))
        };
        if !platforms.iter().all(reported_on) {
            disagreements += 1;
            out.push_str(&format!("{plugin:<22} {:<28}", "(every case)"));
            for platform in &platforms {
                let ran = if reported_on(platform) {
                    "ran"
                } else {
                    "not run"
                };
                out.push_str(&format!(" {ran:<10}"));
            }
            out.push_str(" ← differs\n");
            continue;
        }
        for ((_, case), verdicts) in cases {
            let column: Vec<&str> = platforms
                .iter()
                .map(|platform| verdicts.get(platform).map_or("not run", String::as_str))
                .collect();
            let differ = column.windows(2).any(|pair| pair[0] != pair[1]);
            disagreements += usize::from(differ);
            if all || differ {
                out.push_str(&format!("{plugin:<22} {case:<28}"));
                for verdict in &column {
                    out.push_str(&format!(" {verdict:<10}"));
                }
                out.push_str(if differ { " ← differs\n" } else { "\n" });
            }
        }
    }
    out.push_str(&format!(
        "{disagreements} case(s) where {} disagree\n",
        platforms.join(" and ")
    ));
    out
}

/// The file stem of a path from either platform.
fn stem(path: &str) -> String {
    let file = path.rsplit(['/', '\\']).next().unwrap_or_default();
    file.rsplit_once('.')
        .map_or(file, |(stem, _)| stem)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(os: &str, plugins: &[(&str, &[(&str, &str)])]) -> Report {
        let plugins: Vec<serde_json::Value> = plugins
            .iter()
            .map(|(path, cases)| {
                let cases: Vec<serde_json::Value> = cases
                    .iter()
                    .map(|(id, verdict)| {
                        serde_json::json!({"id": id, "family": "load", "verdict": verdict,
                            "reason": "", "duration_us": 0})
                    })
                    .collect();
                serde_json::json!({"path": path, "cases": cases, "gate": {"passed": true,
                    "pass": 0, "fail": 0, "crashed": 0, "timed_out": 0, "skipped": 0, "warning": 0},
                    "workers_started": 1, "duration_us": 0})
            })
            .collect();
        serde_json::from_value(serde_json::json!({"tool": "t", "timeout_ms": 1,
            "platform": {"os": os, "arch": "x86_64"}, "plugins": plugins}))
        .unwrap()
    }

    #[test]
    fn disagreements_and_legs_that_did_not_run_are_shown() {
        let linux = report(
            "linux",
            &[
                ("/a/echo.so", &[("load", "pass"), ("unload", "warning")]),
                ("/a/only.so", &[("load", "fail")]),
            ],
        );
        let windows = report(
            "windows",
            &[(r"Z:\a\echo.dll", &[("load", "pass"), ("unload", "pass")])],
        );
        let table = table(&[linux, windows], false);
        assert!(table.contains("echo                   unload"), "{table}");
        assert!(table.contains("warning    pass       ← differs"), "{table}");
        assert!(
            table
                .contains("only                   (every case)                 ran        not run"),
            "{table}"
        );
        assert!(
            !table.contains(" load "),
            "agreeing cases are left out: {table}"
        );
        assert!(
            table.ends_with("2 case(s) where linux and windows disagree\n"),
            "{table}"
        );
    }
}
