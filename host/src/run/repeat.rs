//! `--repeat N`: one plugin's reports of N runs, each in fresh workers,
//! as one report. A case whose runs disagree is `flaky`, with every run's
//! verdict and reason kept, and the first failing run's detail and output
//! shown, so the rare failure is as readable as a steady one.

use crate::catalog::CaseId;
use crate::report::verdict::Verdict;
use crate::report::{Attempt, CaseReport, PluginReport};

/// The environment variable a worker (and so the plugin) reads its run
/// number from, 1 for the first; absent outside `--repeat`.
pub(crate) const ATTEMPT_VARIABLE: &str = "PLUGCHECK_ATTEMPT";

/// One report of a plugin's runs, first run first; `None` for no runs.
pub(crate) fn combine(runs: Vec<PluginReport>) -> Option<PluginReport> {
    let mut runs = runs.into_iter();
    let first = runs.next()?;
    let rest: Vec<PluginReport> = runs.collect();
    if rest.is_empty() {
        return Some(first);
    }
    let mut combined = first.clone();
    combined.cases = first
        .cases
        .iter()
        .map(|case| {
            let mut runs_of_case = vec![case.clone()];
            runs_of_case.extend(rest.iter().filter_map(|run| find(run, case.id)));
            combine_case(runs_of_case)
        })
        .collect();
    for run in &rest {
        combined.workers_started += run.workers_started;
        combined.duration_us += run.duration_us;
        if combined.plugin.is_none() {
            combined.plugin.clone_from(&run.plugin);
        }
        // Runs that judged other bytes (the file changed between them):
        // the combined report names no build.
        if run.sha256 != combined.sha256 {
            combined.sha256 = None;
        }
    }
    Some(combined)
}

fn find(run: &PluginReport, id: CaseId) -> Option<CaseReport> {
    run.cases.iter().find(|case| case.id == id).cloned()
}

/// Whether a run of a case was skipped behind a failed prerequisite: it
/// says nothing about the case itself.
fn behind_prerequisite(case: &CaseReport) -> bool {
    case.verdict == Verdict::Skipped && case.detail.prerequisite.is_some()
}

/// One case's runs as one report.
fn combine_case(runs: Vec<CaseReport>) -> CaseReport {
    // Runs skipped behind a flaky prerequisite do not make the case flaky
    // too; the prerequisite is. Where every run was skipped, they agree.
    let judged: Vec<&CaseReport> = match runs.iter().any(|run| !behind_prerequisite(run)) {
        true => runs
            .iter()
            .filter(|run| !behind_prerequisite(run))
            .collect(),
        false => runs.iter().collect(),
    };
    let first = judged[0];
    let all_total: u64 = runs.iter().map(|run| run.duration_us).sum();
    if judged.iter().all(|run| run.verdict == first.verdict) {
        let mut agreed = first.clone();
        agreed.duration_us = all_total;
        return agreed;
    }
    let (failing_index, failing) = runs
        .iter()
        .enumerate()
        .find(|(_, run)| run.verdict != Verdict::Pass && judged.contains(run))
        .expect("runs that disagree are not all passes");
    let failing_run = failing_index + 1;
    let attempts: Vec<Attempt> = runs
        .iter()
        .enumerate()
        .map(|(index, run)| Attempt {
            run: index as u32 + 1,
            verdict: run.verdict,
            reason: run.reason.clone(),
            duration_us: run.duration_us,
        })
        .collect();
    let mut flaky = failing.clone();
    flaky.verdict = Verdict::Flaky;
    flaky.reason = format!(
        "{} over {} runs; run {failing_run}: {} — {}",
        tally(&judged),
        runs.len(),
        failing.verdict,
        failing.reason
    );
    flaky.duration_us = all_total;
    flaky.attempts = attempts;
    flaky
}

/// `pass 4, fail 1`: each verdict with its count, in verdict order.
fn tally(runs: &[&CaseReport]) -> String {
    Verdict::ALL
        .iter()
        .filter_map(|verdict| {
            let count = runs.iter().filter(|run| run.verdict == *verdict).count();
            (count > 0).then(|| format!("{verdict} {count}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_report;

    fn plugin(cases: &[(&str, &str)]) -> PluginReport {
        let mut report = test_report("linux", &[("/p/flaky.so", cases)]);
        let mut plugin = report.plugins.remove(0);
        for case in &mut plugin.cases {
            case.reason = format!("{} said {}", case.id, case.verdict);
        }
        plugin
    }

    /// A file that changed between runs was judged as two builds: the
    /// combined report vouches for neither.
    #[test]
    fn runs_of_different_bytes_name_no_build() {
        let with = |hash: &str| {
            let mut run = plugin(&[("init", "pass")]);
            run.sha256 = Some(hash.to_owned());
            run
        };
        let same = combine(vec![with("aa"), with("aa")]).unwrap();
        assert_eq!(same.sha256.as_deref(), Some("aa"));
        let changed = combine(vec![with("aa"), with("aa"), with("bb")]).unwrap();
        assert_eq!(changed.sha256, None);
    }

    #[test]
    fn runs_that_agree_keep_their_verdict_and_runs_that_differ_are_flaky() {
        let pass = plugin(&[("init", "pass"), ("selftest", "pass")]);
        let fail = plugin(&[("init", "pass"), ("selftest", "fail")]);
        let combined = combine(vec![pass.clone(), fail, pass.clone()]).unwrap();
        assert_eq!(combined.cases[0].verdict, Verdict::Pass);
        assert!(combined.cases[0].attempts.is_empty());
        let selftest = &combined.cases[1];
        assert_eq!(selftest.verdict, Verdict::Flaky);
        assert_eq!(
            selftest.reason,
            "pass 2, fail 1 over 3 runs; run 2: fail — selftest said fail"
        );
        let verdicts: Vec<Verdict> = selftest.attempts.iter().map(|a| a.verdict).collect();
        assert_eq!(verdicts, [Verdict::Pass, Verdict::Fail, Verdict::Pass]);
        assert_eq!(combined.workers_started, 3);
        assert_eq!(combine(vec![pass.clone()]), Some(pass));
        assert_eq!(combine(Vec::new()), None);
    }

    #[test]
    fn a_case_skipped_behind_a_flaky_prerequisite_is_not_flaky_itself() {
        let pass = plugin(&[("selftest", "pass"), ("shutdown", "pass")]);
        let mut fail = plugin(&[("selftest", "fail"), ("shutdown", "skipped")]);
        fail.cases[1].detail.prerequisite = Some(CaseId::Selftest);
        let combined = combine(vec![pass, fail.clone()]).unwrap();
        assert_eq!(combined.cases[0].verdict, Verdict::Flaky);
        assert_eq!(combined.cases[1].verdict, Verdict::Pass);
        let combined = combine(vec![fail.clone(), fail]).unwrap();
        assert_eq!(combined.cases[1].verdict, Verdict::Skipped);
    }

    #[test]
    fn a_run_where_the_case_did_not_apply_against_one_that_passed_is_flaky() {
        // Skipped for a reason of its own (no prerequisite named), a run
        // says something about the case: a plugin that offers `shutdown`
        // in one run and not in the next is not steady, whatever order.
        let pass = plugin(&[("selftest", "pass"), ("shutdown", "pass")]);
        let not_applied = plugin(&[("selftest", "pass"), ("shutdown", "skipped")]);
        for runs in [
            vec![pass.clone(), not_applied.clone()],
            vec![not_applied.clone(), pass.clone()],
        ] {
            let combined = combine(runs).unwrap();
            assert_eq!(combined.cases[0].verdict, Verdict::Pass);
            let shutdown = &combined.cases[1];
            assert_eq!(shutdown.verdict, Verdict::Flaky, "{}", shutdown.reason);
            assert!(
                shutdown.reason.starts_with("pass 1, skipped 1 over 2 runs"),
                "{}",
                shutdown.reason
            );
        }
    }
}
