//! The cases of a plugin that did not run, and why, for the gate's
//! summary: a gate that passes must show what it did not verify, so a
//! waiver that kept cases from running cannot hide them.

use crate::catalog::CaseId;
use crate::report::verdict::Verdict;
use crate::report::{CaseReport, PluginReport};

/// Cases that did not run for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotRun {
    pub cases: Vec<CaseId>,
    pub why: String,
    /// Skipped behind a prerequisite: nothing was verified, and the gate
    /// fails on them unless a waiver names them.
    pub not_verified: bool,
}

/// The plugin's skipped cases grouped by why, in suite order: cases
/// behind a prerequisite by the case whose verdict kept them back (so a
/// chain of skips reads as one cause), the others by their reason.
pub(crate) fn not_run(plugin: &PluginReport) -> Vec<NotRun> {
    let mut groups: Vec<NotRun> = Vec::new();
    for case in plugin
        .cases
        .iter()
        .filter(|c| c.verdict == Verdict::Skipped)
    {
        let (why, not_verified) = match root(plugin, case) {
            Some(root) => {
                let waived = root
                    .waiver
                    .as_ref()
                    .is_some_and(|waiver| waiver.expired.is_none());
                let waived = if waived { " (waived)" } else { "" };
                let why = format!("`{}` {}{waived}", root.id, root.verdict.past_tense());
                (why, true)
            }
            None => (case.reason.clone(), false),
        };
        match groups
            .iter_mut()
            .find(|group| group.why == why && group.not_verified == not_verified)
        {
            Some(group) => group.cases.push(case.id),
            None => groups.push(NotRun {
                cases: vec![case.id],
                why,
                not_verified,
            }),
        }
    }
    groups
}

/// The case whose verdict kept `case` from running, following a chain of
/// skips; none when `case` was not skipped behind a prerequisite.
fn root<'a>(plugin: &'a PluginReport, case: &'a CaseReport) -> Option<&'a CaseReport> {
    let mut current = case;
    // A chain is never longer than the catalog; a forged report's loop
    // ends there.
    for _ in 0..=CaseId::ALL.len() {
        if current.verdict != Verdict::Skipped {
            return Some(current);
        }
        let prerequisite = current.detail.prerequisite?;
        let Some(next) = plugin.cases.iter().find(|c| c.id == prerequisite) else {
            // Its prerequisite is not in the report (filtered out of a
            // later run, say): this skip is the root we can name.
            return Some(current);
        };
        current = next;
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_report;

    #[test]
    fn skips_are_grouped_by_the_verdict_that_kept_them_back_or_by_their_reason() {
        let mut report = test_report(
            "linux",
            &[(
                "/p/x.so",
                &[
                    ("shutdown", "fail"),
                    ("state-roundtrip", "skipped"),
                    ("unload", "skipped"),
                    ("repeat-load", "skipped"),
                    ("reload-cycles", "skipped"),
                    ("fuzz-methods", "skipped"),
                ],
            )],
        );
        let plugin = &mut report.plugins[0];
        plugin.cases[1].reason = "stateless plugin".into();
        plugin.cases[2].detail.prerequisite = Some(CaseId::Shutdown);
        plugin.cases[3].detail.prerequisite = Some(CaseId::Unload);
        plugin.cases[4].detail.prerequisite = Some(CaseId::Shutdown);
        plugin.cases[5].reason = "no methods".into();
        let groups = not_run(plugin);
        let shown: Vec<(Vec<&str>, &str, bool)> = groups
            .iter()
            .map(|g| {
                (
                    g.cases.iter().map(|c| c.id()).collect(),
                    g.why.as_str(),
                    g.not_verified,
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (vec!["state-roundtrip"], "stateless plugin", false),
                (
                    vec!["unload", "repeat-load", "reload-cycles"],
                    "`shutdown` failed",
                    true
                ),
                (vec!["fuzz-methods"], "no methods", false),
            ]
        );
    }

    #[test]
    fn a_forged_chain_that_loops_ends() {
        let mut report = test_report(
            "linux",
            &[("/p/x.so", &[("unload", "skipped"), ("shutdown", "skipped")])],
        );
        let plugin = &mut report.plugins[0];
        plugin.cases[0].detail.prerequisite = Some(CaseId::Shutdown);
        plugin.cases[1].detail.prerequisite = Some(CaseId::Unload);
        let groups = not_run(plugin);
        assert!(groups.iter().all(|group| group.not_verified), "{groups:?}");
        assert_eq!(groups.iter().map(|g| g.cases.len()).sum::<usize>(), 2);
    }
}
