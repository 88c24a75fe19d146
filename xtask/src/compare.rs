//! Where the legs disagree: the platform × case comparison of reports
//! from several legs. A plugin or case a leg did not report is "not run"
//! there — never passed.

use std::collections::BTreeMap;

use plugcheck::report::Report;
use plugcheck::report::verdict::Verdict;

/// Where a case comes in the suite.
fn suite_position(case: plugcheck::catalog::CaseId) -> usize {
    plugcheck::catalog::CaseId::ALL
        .iter()
        .position(|known| *known == case)
        .unwrap_or(usize::MAX)
}

/// One row: a plugin's case (or, when a leg never reported the plugin,
/// the plugin as a whole) with each leg's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub plugin: String,
    /// `None`: the plugin as a whole, which some leg did not run.
    pub case: Option<&'static str>,
    /// Per leg, in the order of the reports: a verdict, `ran`, or `None`
    /// (not run).
    pub verdicts: Vec<Option<String>>,
    pub differs: bool,
}

/// The comparison of several legs' reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub platforms: Vec<String>,
    pub rows: Vec<Row>,
}

impl Comparison {
    /// Rows are plugin × case, plugins in the order they first appear,
    /// cases in suite order; plugins match across legs by file stem
    /// (`echo.so` and `echo.dll` are one plugin).
    pub fn of(reports: &[Report]) -> Comparison {
        let platforms: Vec<String> = reports.iter().map(|r| r.platform.os.clone()).collect();
        // plugin (first-seen order) → case (suite order) → leg index → verdict
        type Cases = BTreeMap<(usize, &'static str), BTreeMap<usize, String>>;
        let mut plugins: Vec<(String, Cases)> = Vec::new();
        // plugin → leg index → the plugin as a whole there (`pass`, `fail`,
        // `unsupported`)
        let mut wholes: BTreeMap<String, BTreeMap<usize, String>> = BTreeMap::new();
        for (leg, report) in reports.iter().enumerate() {
            for plugin in &report.plugins {
                let name = plugin.stem();
                let index = match plugins.iter().position(|(known, _)| *known == name) {
                    Some(index) => index,
                    None => {
                        plugins.push((name, Cases::new()));
                        plugins.len() - 1
                    }
                };
                let whole = if plugin
                    .cases
                    .iter()
                    .any(|c| c.verdict == Verdict::Unsupported)
                {
                    Verdict::Unsupported
                } else if plugin.tally.passed {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                };
                wholes
                    .entry(plugins[index].0.clone())
                    .or_default()
                    .insert(leg, whole.to_string());
                for case in &plugin.cases {
                    plugins[index]
                        .1
                        .entry((suite_position(case.id), case.id.id()))
                        .or_default()
                        .insert(leg, case.verdict.to_string());
                }
            }
        }
        let legs = platforms.len();
        let mut rows = Vec::new();
        for (plugin, cases) in plugins {
            let reported: Vec<bool> = (0..legs)
                .map(|leg| cases.values().any(|verdicts| verdicts.contains_key(&leg)))
                .collect();
            if !reported.iter().all(|ran| *ran) {
                rows.push(Row {
                    plugin,
                    case: None,
                    verdicts: reported
                        .iter()
                        .map(|ran| ran.then(|| "ran".to_owned()))
                        .collect(),
                    differs: true,
                });
                continue;
            }
            // A leg that cannot load this kind of plugin at all: one row
            // says so ("linux pass · windows unsupported") instead of a
            // row per case skipped behind it.
            let whole = wholes.remove(&plugin).unwrap_or_default();
            if whole.values().any(|verdict| verdict == "unsupported") {
                rows.push(Row {
                    plugin,
                    case: None,
                    verdicts: (0..legs).map(|leg| whole.get(&leg).cloned()).collect(),
                    differs: whole.values().any(|verdict| verdict != "unsupported"),
                });
                continue;
            }
            for ((_, case), verdicts) in cases {
                let column: Vec<Option<String>> =
                    (0..legs).map(|leg| verdicts.get(&leg).cloned()).collect();
                let differs = column.windows(2).any(|pair| pair[0] != pair[1]);
                rows.push(Row {
                    plugin: plugin.clone(),
                    case: Some(case),
                    verdicts: column,
                    differs,
                });
            }
        }
        Comparison { platforms, rows }
    }

    /// Rows where the legs disagree.
    pub fn disagreements(&self) -> usize {
        self.rows.iter().filter(|row| row.differs).count()
    }

    /// The comparison as a table: every row with `all`, else only where the
    /// legs disagree.
    pub fn table(&self, all: bool) -> String {
        let mut out = format!("{:<22} {:<28}", "plugin", "case");
        for platform in &self.platforms {
            out.push_str(&format!(" {platform:<10}"));
        }
        out.push('\n');
        for row in self.rows.iter().filter(|row| all || row.differs) {
            let case = row.case.unwrap_or("(every case)");
            out.push_str(&format!("{:<22} {case:<28}", row.plugin));
            for verdict in &row.verdicts {
                out.push_str(&format!(" {:<10}", verdict.as_deref().unwrap_or("not run")));
            }
            out.push_str(if row.differs { " ← differs\n" } else { "\n" });
        }
        out.push_str(&format!(
            "{} case(s) where {} disagree\n",
            self.disagreements(),
            self.platforms.join(" and ")
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    /// A report as JSON would give it: `os`, and per plugin its path and
    /// `(case id, verdict)` pairs.
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
                    "pass": 0, "fail": 0, "crashed": 0, "timed_out": 0, "skipped": 0,
                    "warning": 0}, "workers_started": 1, "duration_us": 0})
            })
            .collect();
        serde_json::from_value(serde_json::json!({"tool": "t", "timeout_ms": 1,
            "platform": {"os": os, "arch": "x86_64"}, "plugins": plugins}))
        .expect("a valid report")
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
        let table = Comparison::of(&[linux, windows]).table(false);
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

    #[test]
    fn a_leg_that_cannot_load_the_plugin_is_one_row() {
        let linux = report(
            "linux",
            &[("/a/gn.so", &[("load", "pass"), ("lookup-entry", "pass")])],
        );
        let windows = report(
            "windows",
            &[(
                r"Z:\a\gn.so",
                &[("load", "unsupported"), ("lookup-entry", "skipped")],
            )],
        );
        let comparison = Comparison::of(&[linux, windows]);
        assert_eq!(comparison.rows.len(), 1, "{comparison:?}");
        let table = comparison.table(false);
        assert!(
            table.contains("gn                     (every case)                 pass       unsupported ← differs"),
            "{table}"
        );
    }
}
