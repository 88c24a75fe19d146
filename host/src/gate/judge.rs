//! Judging a report by its gate (`policy.rs`): each case gets the first
//! waiver that accepts its verdict, unless the waiver's `until` (a plugin
//! version or a date) has passed; then the verdicts are tallied and each
//! waiver's fate recorded. A pure function of the report, so the merged
//! shards of a run are judged exactly as one run would be.

use chrono::NaiveDate;

use crate::catalog::CaseId;
use crate::gate::policy::{Passage, Policy, Until, UseState, Waiver, WaiverUse};
use crate::report::verdict::Verdict;
use crate::report::{AppliedWaiver, CaseReport, PluginReport, Report, Tally};

/// Whether the waiver is about this case of this plugin (whatever the
/// verdict).
fn covers(waiver: &Waiver, case: CaseId, plugin: &PluginReport) -> bool {
    let case_matches = case.id() == waiver.case || case.family().to_string() == waiver.case;
    let plugin_matches = waiver.plugin.as_deref().is_none_or(|wanted| {
        plugin.stem() == wanted
            || plugin
                .plugin
                .as_ref()
                .is_some_and(|info| info.name == wanted)
    });
    case_matches && plugin_matches
}

/// Why the waiver no longer applies to `plugin` on `today`, if it
/// does not.
pub(crate) fn expiry(waiver: &Waiver, plugin: &PluginReport, today: NaiveDate) -> Option<String> {
    let until = waiver.until.as_deref()?;
    match Until::parse(until) {
        Err(error) => Some(format!("its `until` cannot be read: {error}")),
        Ok(Until::Date(last)) => (today > last)
            .then(|| format!("its `until` date {last} has passed (today is {today}, UTC)")),
        Ok(Until::Version(last)) => {
            let version = plugin.plugin.as_ref()?.version.as_str();
            let version =
                semver::Version::parse(version.strip_prefix('v').unwrap_or(version)).ok()?;
            (version >= last)
                .then(|| format!("the plugin is version {version}, at or past its `until` {last}"))
        }
    }
}

/// Whether a judged case's verdict alone breaks `policy`'s gate.
pub fn breaks(policy: &Policy, case: &CaseReport) -> bool {
    policy.breaks(case.verdict, case.detail.prerequisite.is_some())
}

/// How a judged case stands with the gate.
pub(crate) fn lets_through(policy: &Policy, case: &CaseReport) -> Passage {
    let waived = case
        .waiver
        .as_ref()
        .is_some_and(|waiver| waiver.expired.is_none());
    match (breaks(policy, case), waived) {
        (_, true) => Passage::Waived,
        (true, false) => Passage::Blocked,
        (false, false) => Passage::Clean,
    }
}

/// Counts the verdicts; the gate passes when `policy` lets every case
/// through.
pub(crate) fn tally(cases: &[CaseReport], policy: &Policy) -> Tally {
    let mut tally = Tally {
        passed: true,
        ..Tally::default()
    };
    for case in cases {
        let count = match case.verdict {
            Verdict::Pass => &mut tally.pass,
            Verdict::Fail => &mut tally.fail,
            Verdict::Crashed => &mut tally.crashed,
            Verdict::TimedOut => &mut tally.timed_out,
            Verdict::Skipped => &mut tally.skipped,
            Verdict::Warning => &mut tally.warning,
            Verdict::Unsupported => &mut tally.unsupported,
            Verdict::Flaky => &mut tally.flaky,
        };
        *count += 1;
        match lets_through(policy, case) {
            Passage::Clean => {}
            Passage::Waived => tally.waived += 1,
            Passage::Blocked => tally.passed = false,
        }
    }
    tally
}

/// Marks each case of `plugin` with the first waiver that accepts its
/// verdict, and tallies its verdicts.
pub(crate) fn judge_plugin(policy: &Policy, plugin: &mut PluginReport, today: NaiveDate) {
    let notes: Vec<Option<AppliedWaiver>> = plugin
        .cases
        .iter()
        .map(|case| {
            let waiver = policy
                .waivers
                .iter()
                .find(|waiver| waiver.accept == case.verdict && covers(waiver, case.id, plugin))?;
            Some(AppliedWaiver {
                accept: waiver.accept,
                reason: waiver.reason.clone(),
                line: waiver.line,
                expired: expiry(waiver, plugin, today),
            })
        })
        .collect();
    for (case, note) in plugin.cases.iter_mut().zip(notes) {
        case.waiver = note;
    }
    plugin.tally = tally(&plugin.cases, policy);
}

/// Judges every plugin of `report` and records the policy and how each
/// waiver fared.
pub(crate) fn judge(policy: &Policy, report: &mut Report, today: NaiveDate) {
    for plugin in &mut report.plugins {
        judge_plugin(policy, plugin, today);
    }
    report.policy = policy.clone();
    report.waivers = uses(policy, report);
}

/// How each waiver fared over the judged `report`.
pub(crate) fn uses(policy: &Policy, report: &Report) -> Vec<WaiverUse> {
    policy
        .waivers
        .iter()
        .map(|waiver| {
            let mut applied = 0;
            let mut expired = None;
            let mut ran = false;
            for plugin in &report.plugins {
                for case in &plugin.cases {
                    if !covers(waiver, case.id, plugin) {
                        continue;
                    }
                    ran = true;
                    match &case.waiver {
                        Some(note) if note.line == waiver.line && note.accept == case.verdict => {
                            match &note.expired {
                                None => applied += 1,
                                Some(why) => expired = Some(why.clone()),
                            }
                        }
                        _ => {}
                    }
                }
            }
            let state = match (applied, &expired, ran) {
                (1.., _, _) => UseState::Applied,
                (0, Some(_), _) => UseState::Expired,
                (0, None, true) => UseState::Stale,
                (0, None, false) => UseState::NotRun,
            };
            WaiverUse {
                waiver: waiver.clone(),
                state,
                applied,
                expired,
            }
        })
        .collect()
}

/// Today's date in UTC: a gate's `until` dates mean the same on every
/// runner, whatever its time zone.
/// The gate a plugin's report meets today, judged afresh by `policy` (a
/// report's own): its waivers applied again (one whose `until` has passed
/// since the run no longer lets its verdict through), its stored tally
/// not trusted. What an application admitting a build by its report
/// (`plugcheck-host`) asks.
pub fn tally_today(policy: &Policy, plugin: &PluginReport) -> Tally {
    let mut judged = plugin.clone();
    judge_plugin(policy, &mut judged, today());
    judged.tally
}

pub(crate) fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_report;
    use crate::report::verdict::Verdict;

    fn waiver(case: &str, accept: Verdict, until: Option<&str>, line: u32) -> Waiver {
        Waiver {
            case: case.into(),
            plugin: None,
            accept,
            reason: format!("reason {line}"),
            until: until.map(str::to_owned),
            line,
        }
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn go_echo() -> Report {
        let mut report = test_report(
            "linux",
            &[(
                "/p/go-echo.so",
                &[
                    ("load", "pass"),
                    ("unload", "warning"),
                    ("shutdown", "warning"),
                    ("reload-upgrade", "skipped"),
                    ("selftest", "fail"),
                ],
            )],
        );
        report.plugins[0].plugin = Some(crate::report::PluginInfo {
            name: "go-echo".into(),
            version: "1.4.0".into(),
            toolchain: None,
            abi: "1.0".into(),
            struct_size: 0,
        });
        report
    }

    #[test]
    fn waivers_accept_their_verdict_by_case_or_family_and_nothing_else() {
        let policy = Policy {
            deny_warnings: true,
            deny_skipped: true,
            waivers: vec![
                waiver("hygiene", Verdict::Warning, None, 3),
                waiver("shutdown", Verdict::Warning, Some("2.0.0"), 7),
                waiver("reload-upgrade", Verdict::Skipped, Some("2999-01-01"), 11),
            ],
            file: None,
        };
        let mut report = go_echo();
        judge(&policy, &mut report, day("2026-11-27"));
        let gate = &report.plugins[0].tally;
        assert_eq!(gate.waived, 3, "{:?}", report.plugins[0].cases);
        assert!(!gate.passed, "selftest's failure has no waiver");
        let mut report = go_echo();
        report.plugins[0].cases.pop();
        judge(&policy, &mut report, day("2026-11-27"));
        assert!(report.plugins[0].tally.passed);
        let states: Vec<UseState> = report.waivers.iter().map(|used| used.state).collect();
        assert_eq!(states, [UseState::Applied; 3]);
        assert_eq!(report.policy, policy, "kept for merging shards");
    }

    #[test]
    fn a_waiver_past_its_until_stops_applying_and_says_why() {
        let mut policy = Policy {
            deny_warnings: true,
            ..Policy::default()
        };
        policy.waivers = vec![
            waiver("unload", Verdict::Warning, Some("1.4.0"), 2),
            waiver("shutdown", Verdict::Warning, Some("2026-11-26"), 5),
        ];
        let mut report = go_echo();
        report.plugins[0].cases.pop();
        judge(&policy, &mut report, day("2026-11-27"));
        assert!(!report.plugins[0].tally.passed);
        let unload = &report.plugins[0].cases[1];
        let why = unload.waiver.as_ref().unwrap().expired.as_deref().unwrap();
        assert!(
            why.contains("version 1.4.0") && why.contains("1.4.0"),
            "{why}"
        );
        assert_eq!(report.waivers[0].state, UseState::Expired);
        let why = report.waivers[1].expired.as_deref().unwrap();
        assert!(why.contains("2026-11-26 has passed"), "{why}");
        // The last day still applies.
        judge(&policy, &mut report, day("2026-11-26"));
        assert_eq!(report.waivers[1].state, UseState::Applied);
    }

    #[test]
    fn a_waiver_that_meets_no_verdict_is_stale_and_one_whose_cases_did_not_run_is_not() {
        let mut waivers = vec![
            waiver("load", Verdict::Fail, None, 1),
            waiver("fuzz-methods", Verdict::Crashed, None, 2),
        ];
        waivers.push(Waiver {
            plugin: Some("other".into()),
            ..waiver("unload", Verdict::Warning, None, 3)
        });
        let policy = Policy {
            waivers,
            ..Policy::default()
        };
        let mut report = go_echo();
        judge(&policy, &mut report, day("2026-01-01"));
        let states: Vec<UseState> = report.waivers.iter().map(|used| used.state).collect();
        assert_eq!(
            states,
            [UseState::Stale, UseState::NotRun, UseState::NotRun]
        );
    }

    #[test]
    fn a_waiver_names_its_plugin_by_file_stem_or_by_declared_name() {
        // The build file (`libgoecho.so`) and the name the plugin declares
        // (`go-echo`) differ: either names it, nothing else does.
        for (named, applies) in [("libgoecho", true), ("go-echo", true), ("other", false)] {
            let policy = Policy {
                deny_warnings: true,
                waivers: vec![Waiver {
                    plugin: Some(named.into()),
                    ..waiver("unload", Verdict::Warning, None, 1)
                }],
                ..Policy::default()
            };
            let mut report = go_echo();
            report.plugins[0].path = "/p/libgoecho.so".into();
            judge(&policy, &mut report, day("2026-01-01"));
            let unload = &report.plugins[0].cases[1];
            assert_eq!(unload.waiver.is_some(), applies, "waiver for `{named}`");
            let state = report.waivers[0].state;
            let expected = if applies {
                UseState::Applied
            } else {
                UseState::NotRun
            };
            assert_eq!(state, expected, "waiver for `{named}`");
        }
    }

    #[test]
    fn a_skip_that_does_not_apply_breaks_only_a_deny_skipped_gate() {
        let mut report = test_report("linux", &[("/p/x.so", &[("unload", "skipped")])]);
        judge(&Policy::default(), &mut report, day("2026-01-01"));
        assert!(report.plugins[0].tally.passed);
        let policy = Policy {
            deny_skipped: true,
            ..Policy::default()
        };
        judge(&policy, &mut report, day("2026-01-01"));
        assert!(!report.plugins[0].tally.passed);
    }

    /// The waiver of a prerequisite's verdict accepts that verdict, not
    /// the cases it kept from running: they were not verified.
    #[test]
    fn cases_behind_a_waived_prerequisite_break_the_gate_until_waived_by_name() {
        let cases: &[(&str, &str)] = &[
            ("shutdown", "fail"),
            ("unload", "skipped"),
            ("reload-cycles", "skipped"),
        ];
        let mut report = test_report("linux", &[("/p/x.so", cases)]);
        for case in &mut report.plugins[0].cases[1..] {
            case.detail.prerequisite = Some(CaseId::Shutdown);
        }
        let mut policy = Policy {
            waivers: vec![waiver("shutdown", Verdict::Fail, None, 1)],
            ..Policy::default()
        };
        judge(&policy, &mut report, day("2026-01-01"));
        let gate = &report.plugins[0].tally;
        assert!(!gate.passed, "two cases did not run: {gate:?}");
        assert_eq!(gate.waived, 1);
        policy
            .waivers
            .push(waiver("unload", Verdict::Skipped, None, 2));
        judge(&policy, &mut report, day("2026-01-01"));
        assert!(
            !report.plugins[0].tally.passed,
            "reload-cycles is not waived"
        );
        policy
            .waivers
            .push(waiver("reload", Verdict::Skipped, None, 3));
        judge(&policy, &mut report, day("2026-01-01"));
        assert!(report.plugins[0].tally.passed);
        assert_eq!(report.plugins[0].tally.waived, 3);
    }

    #[test]
    fn the_tally_fails_on_fail_crash_timeout_and_flaky_only() {
        let cases = |verdicts: &[(&str, &str)]| {
            test_report("linux", &[("/p/x.so", verdicts)]).plugins[0]
                .cases
                .clone()
        };
        let ok = cases(&[
            ("load", "pass"),
            ("unload", "skipped"),
            ("shutdown", "warning"),
        ]);
        let lenient = Policy::default();
        let strict = Policy {
            deny_warnings: true,
            ..lenient.clone()
        };
        assert!(tally(&ok, &lenient).passed);
        assert!(
            !tally(&ok, &strict).passed,
            "--deny-warnings counts warnings"
        );
        for bad in ["fail", "crashed", "timed-out", "flaky"] {
            let some_bad = cases(&[("load", "pass"), ("unload", bad)]);
            assert!(!tally(&some_bad, &lenient).passed, "{bad}");
        }
    }
}
