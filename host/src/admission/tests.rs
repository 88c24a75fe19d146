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

/// A report about one build: its hash, whether the gate passed, and its
/// cases' verdicts (`(id, family, verdict)`), made on `os`.
fn report(
    dir: &Path,
    name: &str,
    os: &str,
    sha256: Option<&str>,
    passed: bool,
    cases: &[(&str, &str, &str)],
) -> PathBuf {
    let cases: Vec<serde_json::Value> = cases
        .iter()
        .map(|(id, family, verdict)| {
            serde_json::json!({
                "id": id, "family": family, "verdict": verdict,
                "reason": "as the test says", "duration_us": 1
            })
        })
        .collect();
    let mut plugin = serde_json::json!({
        "path": "/build/plugin.so",
        "cases": cases,
        "gate": {"passed": passed, "pass": 0, "fail": 0, "crashed": 0,
                 "timed_out": 0, "skipped": 0, "warning": 0},
        "workers_started": 1,
        "duration_us": 1
    });
    if let Some(sha256) = sha256 {
        plugin["sha256"] = sha256.into();
    }
    let report = serde_json::json!({
        "tool": "plugcheck 0.1.0",
        "platform": {"os": os, "arch": "x86_64", "runtime": "native"},
        "timeout_ms": 10000,
        "plugins": [plugin]
    });
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    path
}

const HERE: &str = std::env::consts::OS;
const ELSEWHERE: &str = if cfg!(windows) { "linux" } else { "windows" };

fn rules(require_passing_report: bool) -> Rules {
    Rules {
        pin: None,
        require_passing_report,
        isolation: Isolation::InProcess,
    }
}

const CLEAN: &[(&str, &str, &str)] = &[
    ("load", "load", "pass"),
    ("init", "lifecycle", "pass"),
    ("unload", "hygiene", "pass"),
];

#[test]
fn a_build_with_a_passing_report_is_admitted_as_asked_and_may_unload() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "echo.so", b"echo build 1");
    let mut evidence = Evidence::default();
    let named = evidence
        .read(&report(
            dir.path(),
            "r.json",
            HERE,
            Some(&sha256),
            true,
            CLEAN,
        ))
        .unwrap();
    assert_eq!(named, 1);
    let admitted = admit(&path, &rules(true), &evidence).unwrap();
    assert_eq!(admitted.sha256, sha256);
    assert_eq!(admitted.isolation, Isolation::InProcess);
    assert!(admitted.may_unload);
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
    let mut evidence = Evidence::default();
    evidence
        .read(&report(dir.path(), "r.json", HERE, Some(&old), true, CLEAN))
        .unwrap();
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
    let mut evidence = Evidence::default();
    evidence
        .read(&report(
            dir.path(),
            "pass.json",
            HERE,
            Some(&sha256),
            true,
            CLEAN,
        ))
        .unwrap();
    let init_fails = [("load", "load", "pass"), ("init", "lifecycle", "fail")];
    let failing = report(
        dir.path(),
        "fail.json",
        HERE,
        Some(&sha256),
        false,
        &init_fails,
    );
    evidence.read(&failing).unwrap();
    match admit(&path, &rules(true), &evidence) {
        Err(Refused::FailedGate { report, .. }) => assert_eq!(report, failing),
        other => panic!("expected a refusal naming the failing report, got {other:?}"),
    }
}

/// A gate that passed with a waived crash still ran a build that crashed:
/// the passing gate admits it, the crash isolates it.
#[test]
fn a_crash_hang_or_flaky_case_in_a_passing_report_isolates_the_build() {
    for verdict in ["crashed", "timed-out", "flaky"] {
        let dir = tempfile::tempdir().unwrap();
        let (path, sha256) = plugin(dir.path(), "echo.so", verdict.as_bytes());
        let mut evidence = Evidence::default();
        let cases = [
            ("load", "load", "pass"),
            ("fuzz-methods", "crash", verdict),
            ("unload", "hygiene", "pass"),
        ];
        evidence
            .read(&report(
                dir.path(),
                "r.json",
                HERE,
                Some(&sha256),
                true,
                &cases,
            ))
            .unwrap();
        let admitted = admit(&path, &rules(true), &evidence).unwrap();
        assert_eq!(admitted.isolation, Isolation::Worker, "{verdict}");
        assert!(
            admitted
                .why
                .iter()
                .any(|why| why.contains("`fuzz-methods`")),
            "{verdict}: {:?}",
            admitted.why
        );
    }
}

#[test]
fn a_build_whose_unload_did_not_pass_everywhere_is_never_unloaded() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "echo.so", b"stays resident");
    let mut evidence = Evidence::default();
    evidence
        .read(&report(
            dir.path(),
            "a.json",
            HERE,
            Some(&sha256),
            true,
            CLEAN,
        ))
        .unwrap();
    let resident = [("load", "load", "pass"), ("unload", "hygiene", "warning")];
    evidence
        .read(&report(
            dir.path(),
            "b.json",
            HERE,
            Some(&sha256),
            true,
            &resident,
        ))
        .unwrap();
    let admitted = admit(&path, &rules(true), &evidence).unwrap();
    assert!(!admitted.may_unload);
    assert!(
        admitted
            .why
            .iter()
            .any(|why| why.starts_with("never unloaded: `unload`")),
        "{:?}",
        admitted.why
    );
}

#[test]
fn a_report_from_the_other_operating_system_admits_nothing_here() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "echo.so", b"judged elsewhere");
    let mut evidence = Evidence::default();
    let elsewhere = report(dir.path(), "r.json", ELSEWHERE, Some(&sha256), true, CLEAN);
    evidence.read(&elsewhere).unwrap();
    let said = admit(&path, &rules(true), &evidence)
        .unwrap_err()
        .to_string();
    assert!(
        said.contains(&format!("judged on {ELSEWHERE} only")),
        "{said}"
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
    let old = report(dir.path(), "old.json", HERE, None, true, CLEAN);
    assert_eq!(evidence.read(&old).unwrap(), 0);
    let forged = report(
        dir.path(),
        "forged.json",
        HERE,
        Some("../../etc"),
        true,
        CLEAN,
    );
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
    let paired = [
        ("load", "load", "pass"),
        ("reload-upgrade", "reload", "crashed"),
        ("unload", "hygiene", "pass"),
    ];
    let mut evidence = Evidence::default();
    evidence
        .read(&report(
            dir.path(),
            "pair.json",
            HERE,
            Some(&sha256),
            false,
            &paired,
        ))
        .unwrap();
    let said = admit(&path, &rules(true), &evidence)
        .unwrap_err()
        .to_string();
    assert!(
        said.contains("failed only where it was reloaded to another build"),
        "{said}"
    );
    evidence
        .read(&report(
            dir.path(),
            "alone.json",
            HERE,
            Some(&sha256),
            true,
            CLEAN,
        ))
        .unwrap();
    let admitted = admit(&path, &rules(true), &evidence).unwrap();
    assert_eq!(
        admitted.isolation,
        Isolation::InProcess,
        "{:?}",
        admitted.why
    );
    // A case of these bytes alone that breaks the gate still refuses them,
    // though the gate failed on the pair too.
    let both = [
        ("init", "lifecycle", "fail"),
        ("reload-upgrade", "reload", "fail"),
    ];
    evidence
        .read(&report(
            dir.path(),
            "both.json",
            HERE,
            Some(&sha256),
            false,
            &both,
        ))
        .unwrap();
    assert!(matches!(
        admit(&path, &rules(true), &evidence),
        Err(Refused::FailedGate { .. })
    ));
}

/// A waiver the gate file applied lets the gate pass on that verdict: the
/// report passed, and a waived crash still isolates.
#[test]
fn a_failing_gate_with_only_waived_verdicts_does_not_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sha256) = plugin(dir.path(), "echo.so", b"waived");
    let path_json = report(dir.path(), "r.json", HERE, Some(&sha256), false, CLEAN);
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path_json).unwrap()).unwrap();
    value["plugins"][0]["cases"][1]["verdict"] = "fail".into();
    value["plugins"][0]["cases"][1]["waiver"] =
        serde_json::json!({"accept": "fail", "reason": "upstream bug", "line": 3});
    std::fs::write(&path_json, serde_json::to_vec(&value).unwrap()).unwrap();
    let mut evidence = Evidence::default();
    evidence.read(&path_json).unwrap();
    // The gate failed for some other reason (its tally says so) but no case
    // of these bytes broke it unwaived: not refused, and not admitted
    // either, for no report passed.
    assert!(matches!(
        admit(&path, &rules(true), &evidence),
        Err(Refused::NoPassingReport { .. })
    ));
}
