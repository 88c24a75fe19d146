//! Admission decided over real files and reports written as the harness
//! writes them (JSON through `Report::read_json`): each rule, and each
//! allowance a build could slip through.

use super::*;

use std::io::Write;

/// A plugin file with `content`, and its SHA-256.
fn plugin(dir: &Path, name: &str, content: &[u8]) -> (PathBuf, String) {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(content)
        .unwrap();
    let sha256 = file::sha256(&path).unwrap();
    (path, sha256)
}

/// How a test report was made.
struct Run<'a> {
    os: &'a str,
    runtime: &'a str,
    /// `--filter` as given (empty: the whole suite).
    filter: &'a [&'a str],
    fuzz_inputs: u32,
    /// The Go worker judged it.
    go_native: bool,
}

const WHOLE_RUN: Run<'static> = Run {
    os: std::env::consts::OS,
    runtime: "native",
    filter: &[],
    fuzz_inputs: DEFAULT_INPUTS,
    go_native: false,
};

/// A report about one build, made by `run`: every case of the suite (of
/// the filter's families) passing but those `verdicts` names, and a stored
/// gate that says `stored_gate` whatever the cases say.
fn report_with(
    dir: &Path,
    name: &str,
    run: &Run<'_>,
    sha256: Option<&str>,
    verdicts: &[(&str, &str)],
    stored_gate: bool,
) -> PathBuf {
    let cases: Vec<serde_json::Value> = CaseId::ALL
        .iter()
        .filter(|case| {
            run.filter.is_empty() || run.filter.contains(&case.family().to_string().as_str())
        })
        .map(|case| {
            let verdict = verdicts
                .iter()
                .find(|(id, _)| *id == case.id())
                .map_or("pass", |(_, verdict)| verdict);
            serde_json::json!({
                "id": case.id(), "family": case.family(), "verdict": verdict,
                "reason": "as the test says", "duration_us": 1
            })
        })
        .collect();
    let mut plugin = serde_json::json!({
        "path": "/build/plugin.so",
        "cases": cases,
        "gate": {"passed": stored_gate, "pass": 0, "fail": 0, "crashed": 0,
                 "timed_out": 0, "skipped": 0, "warning": 0},
        "workers_started": 1,
        "duration_us": 1
    });
    if let Some(sha256) = sha256 {
        plugin["sha256"] = sha256.into();
    }
    if run.go_native {
        plugin["worker"] = "the Go worker (go1.19.8)".into();
    }
    let report = serde_json::json!({
        "tool": "plugcheck 0.1.0",
        "platform": {"os": run.os, "arch": "x86_64", "runtime": run.runtime},
        "timeout_ms": 10000,
        "plugins": [plugin],
        "provenance": {
            "version": "0.1.0",
            "plugin_set": {"count": 1, "hash": "xxh3:0"},
            "filter": run.filter,
            "seed": "0x706c756763686b31",
            "repeat": 1,
            "fuzz_inputs": run.fuzz_inputs,
            "load_time_bound_ms": 1000,
            "repeat_cycles": 20,
            "reload_cycles": 100
        }
    });
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    path
}

/// Edits the cases of the report at `path` as `edit` says, as a hand
/// would.
fn edit_cases(path: &Path, edit: impl FnOnce(&mut Vec<serde_json::Value>)) {
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(value["plugins"][0]["cases"].as_array_mut().unwrap());
    std::fs::write(path, serde_json::to_vec(&value).unwrap()).unwrap();
}

/// A report of the whole suite, made natively here.
fn report(dir: &Path, name: &str, sha256: Option<&str>, verdicts: &[(&str, &str)]) -> PathBuf {
    report_with(dir, name, &WHOLE_RUN, sha256, verdicts, true)
}

const ELSEWHERE: &str = if cfg!(windows) { "linux" } else { "windows" };

fn rules(require_passing_report: bool) -> Rules {
    Rules {
        pin: None,
        require_passing_report,
        isolation: Isolation::InProcess,
    }
}

fn evidence(reports: &[PathBuf]) -> Evidence {
    let mut evidence = Evidence::default();
    for report in reports {
        evidence.read(report).unwrap();
    }
    evidence
}

#[test]
fn a_build_with_a_passing_report_of_the_whole_suite_is_admitted_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "echo.so", b"echo build 1");
    let mut evidence = Evidence::default();
    let named = evidence
        .read(&report(dir.path(), "r.json", Some(&sha256), &[]))
        .unwrap();
    assert_eq!(named, 1);
    let admitted = admit(&path, &rules(true), &evidence).unwrap();
    assert_eq!(admitted.sha256, sha256);
    assert_eq!(admitted.isolation, Isolation::InProcess);
    assert_eq!(admitted.isolated_by, None);
    assert!(admitted.may_unload, "{:?}", admitted.why);
    assert!(
        admitted.why[0].starts_with("passed the gate in `"),
        "{:?}",
        admitted.why
    );
}

#[test]
fn a_rebuilt_plugin_is_not_covered_by_the_report_of_the_old_build() {
    let dir = tempfile::tempdir().unwrap();
    let (_, old) = plugin(dir.path(), "old.so", b"echo build 1");
    let (path, new) = plugin(dir.path(), "echo.so", b"echo build 2");
    let evidence = evidence(&[report(dir.path(), "r.json", Some(&old), &[])]);
    let refused = admit(&path, &rules(true), &evidence).unwrap_err();
    let said = refused.to_string();
    assert!(matches!(refused, Refused::NoPassingReport { .. }), "{said}");
    assert!(said.contains(&new), "{said}");
    assert!(
        said.contains("none of the 1 report(s) read judged these bytes"),
        "{said}"
    );
    // Without the requirement, it is admitted as asked, but never unloaded:
    // nothing verified that it unloads.
    let admitted = admit(&path, &rules(false), &evidence).unwrap();
    assert_eq!(admitted.isolation, Isolation::InProcess);
    assert!(!admitted.may_unload);
}

#[test]
fn one_failing_report_refuses_the_build_though_another_passed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "echo.so", b"flaky gate");
    let failing = report(dir.path(), "fail.json", Some(&sha256), &[("init", "fail")]);
    let evidence = evidence(&[
        report(dir.path(), "pass.json", Some(&sha256), &[]),
        failing.clone(),
    ]);
    match admit(&path, &rules(true), &evidence) {
        Err(Refused::FailedGate { report, .. }) => assert_eq!(report, failing),
        other => panic!("expected a refusal naming the failing report, got {other:?}"),
    }
}

/// The gate a report stored is not trusted: it is judged again from the
/// cases, by the report's policy, today.
#[test]
fn a_stored_gate_that_its_cases_contradict_is_judged_again() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "echo.so", b"edited report");
    let edited = report_with(
        dir.path(),
        "edited.json",
        &WHOLE_RUN,
        Some(&sha256),
        &[("selftest", "fail")],
        true,
    );
    assert!(matches!(
        admit(&path, &rules(true), &evidence(&[edited])),
        Err(Refused::FailedGate { .. })
    ));
    let understated = report_with(
        dir.path(),
        "low.json",
        &WHOLE_RUN,
        Some(&sha256),
        &[],
        false,
    );
    assert!(admit(&path, &rules(true), &evidence(&[understated])).is_ok());
}

/// Only a run of the whole suite vouches for a build: a `--filter` run, a
/// run with fewer fuzz inputs or a report missing cases never ran what
/// finds the crashes.
#[test]
fn a_partial_run_does_not_vouch_for_a_build() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "echo.so", b"partial");
    let filtered = Run {
        filter: &["load", "lifecycle"],
        ..WHOLE_RUN
    };
    let few_inputs = Run {
        fuzz_inputs: 8,
        ..WHOLE_RUN
    };
    for (name, run) in [("filtered.json", &filtered), ("few.json", &few_inputs)] {
        let partial = report_with(dir.path(), name, run, Some(&sha256), &[], true);
        let said = admit(&path, &rules(true), &evidence(&[partial]))
            .unwrap_err()
            .to_string();
        assert!(said.contains("ran part of the suite"), "{name}: {said}");
    }
    let emptied = report(dir.path(), "empty.json", Some(&sha256), &[]);
    edit_cases(&emptied, |cases| cases.clear());
    assert!(matches!(
        admit(&path, &rules(true), &evidence(&[emptied])),
        Err(Refused::NoPassingReport { .. })
    ));
    // A partial run that saw a crash still counts against the build.
    let crashed = report_with(
        dir.path(),
        "crashed.json",
        &filtered,
        Some(&sha256),
        &[("init", "crashed")],
        false,
    );
    let whole = report(dir.path(), "whole.json", Some(&sha256), &[]);
    assert!(matches!(
        admit(&path, &rules(true), &evidence(&[whole, crashed])),
        Err(Refused::FailedGate { .. })
    ));
}

/// A crash, a hang or a flaky case anywhere — with another build too, where
/// the old version's `save_state` runs — keeps the build out of process;
/// so does being a Go-native plugin, which Go loads only in a Go process.
#[test]
fn a_crash_hang_flaky_case_or_go_native_build_runs_in_a_worker() {
    let lenient = rules(false);
    for (verdict, case) in [
        ("crashed", "fuzz-methods"),
        ("timed-out", "selftest"),
        ("flaky", "init"),
        ("crashed", "reload-upgrade"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (path, sha256) = plugin(dir.path(), "echo.so", verdict.as_bytes());
        let evidence = evidence(&[report(
            dir.path(),
            "r.json",
            Some(&sha256),
            &[(case, verdict)],
        )]);
        let admitted = admit(&path, &lenient, &evidence).unwrap();
        assert_eq!(admitted.isolation, Isolation::Worker, "{case} {verdict}");
        let reason = admitted.isolated_by.unwrap();
        assert!(reason.contains(&format!("`{case}`")), "{case}: {reason}");
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "go.so", b"go-native");
    let go = Run {
        go_native: true,
        ..WHOLE_RUN
    };
    let report = report_with(dir.path(), "go.json", &go, Some(&sha256), &[], true);
    let admitted = admit(&path, &rules(true), &evidence(&[report])).unwrap();
    assert_eq!(admitted.isolation, Isolation::Worker);
    assert!(
        admitted.isolated_by.unwrap().contains("Go-native"),
        "{:?}",
        admitted.why
    );
}

/// `unload` and `reload-unload-verified` must pass in every entry of every
/// report of these bytes: a duplicate entry cannot outvote a failing one.
#[test]
fn a_build_whose_unload_did_not_pass_everywhere_is_never_unloaded() {
    for (case, verdict) in [("unload", "warning"), ("reload-unload-verified", "warning")] {
        let dir = tempfile::tempdir().unwrap();
        let (path, sha256) = plugin(dir.path(), "echo.so", case.as_bytes());
        let evidence = evidence(&[
            report(dir.path(), "a.json", Some(&sha256), &[]),
            report(dir.path(), "b.json", Some(&sha256), &[(case, verdict)]),
        ]);
        let admitted = admit(&path, &rules(true), &evidence).unwrap();
        assert!(!admitted.may_unload, "{case}");
        assert!(
            admitted
                .why
                .iter()
                .any(|why| why.starts_with(&format!("never unloaded: `{case}`"))),
            "{:?}",
            admitted.why
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "echo.so", b"duplicate");
    let twice = report(
        dir.path(),
        "twice.json",
        Some(&sha256),
        &[("unload", "fail")],
    );
    edit_cases(&twice, |cases| {
        let mut passing = cases
            .iter()
            .find(|case| case["id"] == "unload")
            .unwrap()
            .clone();
        passing["verdict"] = "pass".into();
        cases.insert(0, passing);
    });
    let admitted = admit(&path, &rules(false), &evidence(&[twice])).unwrap();
    assert!(!admitted.may_unload);
}

#[test]
fn a_report_from_the_other_operating_system_admits_nothing_here() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "echo.so", b"judged elsewhere");
    let elsewhere = Run {
        os: ELSEWHERE,
        ..WHOLE_RUN
    };
    let report = report_with(dir.path(), "r.json", &elsewhere, Some(&sha256), &[], true);
    let said = admit(&path, &rules(true), &evidence(&[report]))
        .unwrap_err()
        .to_string();
    assert!(
        said.contains(&format!("judged on {ELSEWHERE} only")),
        "{said}"
    );
}

/// A report made under Wine counts, and the admission says it was not
/// native: what Wine does not show was not seen.
#[test]
fn a_report_made_under_wine_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "echo.so", b"under wine");
    let wine = Run {
        runtime: "Wine 8.0",
        ..WHOLE_RUN
    };
    let report = report_with(dir.path(), "r.json", &wine, Some(&sha256), &[], true);
    let admitted = admit(&path, &rules(true), &evidence(&[report])).unwrap();
    assert!(
        admitted
            .why
            .iter()
            .any(|why| why.contains("judged under Wine 8.0")),
        "{:?}",
        admitted.why
    );
}

#[test]
fn a_pin_refuses_every_other_build_and_must_be_a_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "echo.so", b"pinned");
    let evidence = Evidence::default();
    let pinned = |pin: &str| Rules {
        pin: Some(pin.to_owned()),
        ..rules(false)
    };
    let admitted = admit(&path, &pinned(&sha256.to_uppercase()), &evidence).unwrap();
    assert_eq!(admitted.sha256, sha256);
    let other = "0".repeat(64);
    let said = admit(&path, &pinned(&other), &evidence)
        .unwrap_err()
        .to_string();
    assert!(said.contains(&sha256) && said.contains(&other), "{said}");
    for bad in ["", "abc", &"g".repeat(64), &format!("{sha256}00")] {
        assert!(
            matches!(
                admit(&path, &pinned(bad), &evidence),
                Err(Refused::BadPin { .. })
            ),
            "{bad:?}"
        );
    }
}

/// The SHA-256 a report claims is read, not trusted: one that is not a
/// digest names no build.
#[test]
fn reports_without_a_digest_or_with_a_malformed_one_name_no_build() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = plugin(dir.path(), "echo.so", b"old report");
    let mut evidence = Evidence::default();
    let old = report(dir.path(), "old.json", None, &[]);
    assert_eq!(evidence.read(&old).unwrap(), 0);
    let forged = report(dir.path(), "forged.json", Some("../../etc"), &[]);
    assert_eq!(evidence.read(&forged).unwrap(), 0);
    assert!(matches!(
        admit(&path, &rules(true), &evidence),
        Err(Refused::NoPassingReport { .. })
    ));
}

#[test]
fn what_is_not_a_plugin_file_or_a_report_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let evidence = Evidence::default();
    let said = admit(&dir.path().join("missing.so"), &rules(false), &evidence)
        .unwrap_err()
        .to_string();
    assert!(said.contains("does not exist"), "{said}");
    assert!(matches!(
        admit(dir.path(), &rules(false), &evidence),
        Err(Refused::File(FileProblem::Directory { .. }))
    ));
    let mut evidence = Evidence::default();
    let not_json = dir.path().join("notes.txt");
    std::fs::write(&not_json, "not a report").unwrap();
    let said = evidence.read(&not_json).unwrap_err().to_string();
    assert!(said.contains("is not a plugcheck JSON report"), "{said}");
}

/// A report that reloaded these bytes to another build and failed there
/// judged the pair: it neither refuses nor admits the build alone.
#[test]
fn a_gate_failed_only_with_another_build_says_nothing_of_these_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "counter.so", b"counter");
    let paired = report(
        dir.path(),
        "pair.json",
        Some(&sha256),
        &[("reload-upgrade", "fail")],
    );
    let said = admit(
        &path,
        &rules(true),
        &evidence(std::slice::from_ref(&paired)),
    )
    .unwrap_err()
    .to_string();
    assert!(
        said.contains("failed only where it was reloaded to another build"),
        "{said}"
    );
    let alone = report(dir.path(), "alone.json", Some(&sha256), &[]);
    let admitted = admit(
        &path,
        &rules(true),
        &evidence(&[paired.clone(), alone.clone()]),
    )
    .unwrap();
    assert_eq!(
        admitted.isolation,
        Isolation::InProcess,
        "{:?}",
        admitted.why
    );
    // A case of these bytes alone that breaks the gate still refuses them,
    // though the gate failed on the pair too.
    let both = report(
        dir.path(),
        "both.json",
        Some(&sha256),
        &[("init", "fail"), ("reload-upgrade", "fail")],
    );
    assert!(matches!(
        admit(&path, &rules(true), &evidence(&[paired, alone, both])),
        Err(Refused::FailedGate { .. })
    ));
}

#[test]
fn a_refusal_names_the_build_where_it_named_the_copy_read() {
    let (read, build) = (Path::new("/tmp/shadow/x.so"), Path::new("/app/x.so"));
    let named = Refused::NoPassingReport {
        path: read.to_owned(),
        sha256: "ab".repeat(32),
        found: "no report".into(),
    }
    .naming(read, build);
    assert!(matches!(&named, Refused::NoPassingReport { path, .. } if path == build));
    let named = Refused::File(FileProblem::NotFound {
        path: read.to_owned(),
    })
    .naming(read, build);
    assert!(named.to_string().contains("/app/x.so"), "{named}");
    // Another file (a report) is left as it is.
    let other = Path::new("/reports/r.json");
    let named = Refused::FailedGate {
        path: other.to_owned(),
        sha256: "ab".repeat(32),
        report: other.to_owned(),
    }
    .naming(read, build);
    assert!(matches!(&named, Refused::FailedGate { path, .. } if path == other));
}
