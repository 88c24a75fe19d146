//! Each way a set of shards can fail to be one run's, refused by name;
//! and a run's shards merged into the verdicts and gate of one run.

use std::path::Path;

use super::*;
use crate::report::{CapturedOutput, CaseReport, Detail, test_report};

const PLUGINS: [&str; 9] = [
    "/p/a.so", "/p/b.so", "/p/c.so", "/p/d.so", "/p/e.so", "/p/f.so", "/p/g.so", "/q/a.so",
    "/p/h.so",
];

fn case(id: CaseId, verdict: Verdict) -> CaseReport {
    CaseReport {
        id,
        family: id.family(),
        verdict,
        reason: format!("{id} {verdict}"),
        detail: Detail::default(),
        output: CapturedOutput::default(),
        duration_us: 0,
        work_us: None,
        waiver: None,
        attempts: Vec::new(),
    }
}

fn provenance(partition: Option<Partition>, filter: &[&str]) -> Provenance {
    Provenance {
        version: "0.1.0".into(),
        partition,
        plugin_set: PluginSet::of(PLUGINS.iter().map(Path::new)),
        filter: filter.iter().map(|word| (*word).to_owned()).collect(),
        seed: "0x1".into(),
        repeat: 1,
        fuzz_inputs: 256,
        load_time_bound_ms: 1000,
        repeat_cycles: 20,
        reload_cycles: 100,
        reload_to: Vec::new(),
        gate_file: None,
    }
}

/// The `count` shards of a run over [`PLUGINS`], each plugin with a pass
/// for every case `filter` selects, named `shard-K.json`.
fn run(count: u32, filter: &[&str]) -> Vec<(String, Report)> {
    let words: Vec<String> = filter.iter().map(|word| (*word).to_owned()).collect();
    let cases = crate::catalog::select(&words).unwrap();
    (1..=count)
        .map(|index| {
            let partition = Partition { index, count };
            let mut report = test_report("linux", &[]);
            for path in PLUGINS {
                if !partition.selects(Path::new(path)) {
                    continue;
                }
                let mut plugin = test_report("linux", &[(path, &[])]).plugins.remove(0);
                plugin.cases = cases.iter().map(|id| case(*id, Verdict::Pass)).collect();
                report.plugins.push(plugin);
            }
            let partition = (count > 1).then_some(partition);
            report.provenance = Some(provenance(partition, filter));
            (format!("shard-{index}.json"), report)
        })
        .collect()
}

fn refusal(shards: Vec<(String, Report)>) -> (MergeError, String) {
    let error = merge(shards, &[]).unwrap_err();
    let text = error.to_string();
    (error, text)
}

/// The shard `name` of `shards`, to edit.
fn shard<'a>(shards: &'a mut [(String, Report)], name: &str) -> &'a mut Report {
    &mut shards.iter_mut().find(|(n, _)| n == name).unwrap().1
}

/// The shard holding `path`, and its index among `shards`.
fn holding(shards: &[(String, Report)], path: &str) -> usize {
    shards
        .iter()
        .position(|(_, report)| report.plugins.iter().any(|p| p.path == Path::new(path)))
        .unwrap()
}

#[test]
fn every_shard_holds_plugins_in_the_test_run() {
    let shards = run(3, &[]);
    assert!(
        shards.iter().all(|(_, report)| !report.plugins.is_empty()),
        "the tests below need each shard to hold a plugin"
    );
}

#[test]
fn a_runs_shards_merge_into_one_report_judged_again_from_the_cases() {
    let mut shards = run(3, &[]);
    // A shard whose stored gate says passed while a case crashed.
    let at = holding(&shards, "/p/b.so");
    let plugin = shards[at]
        .1
        .plugins
        .iter_mut()
        .find(|p| p.path == Path::new("/p/b.so"))
        .unwrap();
    plugin.cases[0].verdict = Verdict::Crashed;
    plugin.tally.passed = true;
    shards.reverse();
    let merged = merge(shards, &[]).unwrap();
    let paths: Vec<&Path> = merged.plugins.iter().map(|p| p.path.as_path()).collect();
    let mut sorted = PLUGINS.map(Path::new).to_vec();
    sorted.sort();
    assert_eq!(paths, sorted, "every plugin once, by path");
    assert!(!merged.gate_passed(), "judged again: b.so crashed");
    let b = merged
        .plugins
        .iter()
        .find(|p| p.path == Path::new("/p/b.so"));
    assert_eq!(b.unwrap().tally.crashed, 1);
    let provenance = merged.provenance.as_ref().unwrap();
    assert_eq!(
        provenance.partition, None,
        "the merged report is a whole run"
    );
    // A merged report is a whole run: merged alone it stands as one.
    let again = merge(vec![("merged.json".into(), merged.clone())], &[]).unwrap();
    assert_eq!(again.plugins, merged.plugins);
    assert!(matches!(merge(Vec::new(), &[]), Err(MergeError::Nothing)));
}

#[test]
fn a_missing_shard_is_named_with_the_shards_there_are() {
    let mut shards = run(3, &[]);
    shards.remove(1);
    let (error, text) = refusal(shards);
    assert!(matches!(error, MergeError::Missing { .. }), "{text}");
    assert!(text.contains("shard 2/3 is missing"), "{text}");
    assert!(
        text.contains("1/3 from `shard-1.json`") && text.contains("3/3 from `shard-3.json`"),
        "{text}"
    );
}

#[test]
fn a_shard_given_twice_is_refused_not_counted_twice() {
    let mut shards = run(3, &[]);
    let again = ("again.json".to_owned(), shards[0].1.clone());
    shards.push(again);
    let (error, text) = refusal(shards);
    assert!(matches!(error, MergeError::Duplicate { .. }), "{text}");
    assert!(
        text.contains("`again.json` is shard 1/3 again (`shard-1.json` is too)"),
        "{text}"
    );
}

#[test]
fn a_report_made_without_partition_among_shards_is_refused() {
    let mut shards = run(3, &[]);
    shard(&mut shards, "shard-2.json")
        .provenance
        .as_mut()
        .unwrap()
        .partition = None;
    let (error, text) = refusal(shards);
    assert!(matches!(error, MergeError::Unpartitioned { .. }), "{text}");
    assert!(
        text.contains("`shard-2.json` was made without --partition")
            && text.contains("`shard-1.json` with --partition 1/3"),
        "{text}"
    );
    let mut whole_first = run(1, &[]);
    whole_first.extend(run(3, &[]).into_iter().skip(1));
    let (error, _) = refusal(whole_first);
    assert!(matches!(error, MergeError::Unpartitioned { .. }));
}

#[test]
fn a_report_of_an_older_plugcheck_cannot_be_merged() {
    let mut shards = run(3, &[]);
    shard(&mut shards, "shard-3.json").provenance = None;
    let (error, text) = refusal(shards);
    assert!(matches!(error, MergeError::Unrecorded { .. }), "{text}");
    assert!(text.contains("`shard-3.json` does not say how it was made"));
}

#[test]
fn shards_of_other_runs_or_settings_are_refused_naming_what_differs() {
    type Edit = fn(&mut Report);
    let edits: [(&str, Edit); 14] = [
        ("the number of shards", |r| {
            r.provenance.as_mut().unwrap().partition = Some(Partition { index: 2, count: 4 })
        }),
        ("plugcheck version", |r| {
            r.provenance.as_mut().unwrap().version = "0.2.0".into()
        }),
        ("plugin set", |r| {
            r.provenance.as_mut().unwrap().plugin_set = PluginSet::of([Path::new("/p/a.so")])
        }),
        ("--filter", |r| {
            r.provenance.as_mut().unwrap().filter = vec!["load".into()]
        }),
        ("--seed", |r| {
            r.provenance.as_mut().unwrap().seed = "0x2".into()
        }),
        ("--repeat", |r| r.provenance.as_mut().unwrap().repeat = 3),
        ("--fuzz-inputs", |r| {
            r.provenance.as_mut().unwrap().fuzz_inputs = 8
        }),
        ("--load-time-bound", |r| {
            r.provenance.as_mut().unwrap().load_time_bound_ms = 5
        }),
        ("--reload-cycles", |r| {
            r.provenance.as_mut().unwrap().reload_cycles = 1
        }),
        ("--reload-to roles", |r| {
            r.provenance.as_mut().unwrap().reload_to = vec!["upgrade".into()]
        }),
        ("gate file content", |r| {
            r.provenance.as_mut().unwrap().gate_file = Some("xxh3:0000000000000001".into())
        }),
        ("--timeout", |r| r.timeout_ms = 99),
        ("its gate", |r| r.policy.deny_warnings = true),
        ("plugcheck", |r| r.tool = "plugcheck 9".into()),
    ];
    for (what, edit) in edits {
        let mut shards = run(3, &[]);
        edit(shard(&mut shards, "shard-2.json"));
        let (error, text) = refusal(shards);
        assert!(
            matches!(error, MergeError::Setting { .. }),
            "{what}: {text}"
        );
        assert!(
            text.contains(&format!(
                "`shard-2.json` differs from `shard-1.json` in {what}"
            )),
            "{what}: {text}"
        );
    }
    // The gate file's path may differ between checkouts: its content counts.
    let mut shards = run(3, &[]);
    shard(&mut shards, "shard-2.json").policy.file = Some("/elsewhere/plugcheck.toml".into());
    merge(shards, &[]).unwrap();
    let mut shards = run(3, &[]);
    shard(&mut shards, "shard-3.json").platform.os = "windows".into();
    let (error, text) = refusal(shards);
    assert!(matches!(error, MergeError::Platform { .. }), "{text}");
    assert!(text.contains("`shard-3.json` comes from windows"), "{text}");
}

#[test]
fn a_filtered_run_is_refused_unless_the_merge_names_the_same_filter() {
    let (error, text) = refusal(run(3, &["load"]));
    assert!(matches!(error, MergeError::Filtered { .. }), "{text}");
    assert!(
        text.contains("`shard-1.json` ran only the cases of `--filter load`")
            // The example is a case the shard did not run.
            && text.contains("left out, e.g. `lookup-entry`")
            && text.contains("the whole suite")
            && text.contains("plugcheck merge --filter load"),
        "{text}"
    );
    let merged = merge(run(3, &["load"]), &["load".into()]).unwrap();
    assert!(merged.gate_passed());
    assert_eq!(merged.provenance.unwrap().filter, ["load"], "kept");
    let error = merge(run(3, &["load"]), &["crash".into()]).unwrap_err();
    assert!(matches!(error, MergeError::Filtered { .. }), "{error}");
    let error = merge(run(3, &[]), &["load".into()]).unwrap_err();
    assert!(matches!(error, MergeError::Unfiltered { .. }), "{error}");
    // A filter that selects every case left nothing out.
    let families = [
        "load",
        "lookup",
        "version",
        "lifecycle",
        "state",
        "hygiene",
        "reload",
        "crash",
        "context",
    ];
    merge(run(3, &families), &[]).unwrap();
    let mut shards = run(3, &["load"]);
    for (_, report) in &mut shards {
        report.provenance.as_mut().unwrap().filter = vec!["lod".into()];
    }
    let (error, text) = refusal(shards);
    assert!(matches!(error, MergeError::BadFilter { .. }), "{error}");
    assert!(
        text.contains("lod"),
        "names the word it cannot read: {text}"
    );
}

#[test]
fn a_plugin_without_case_results_is_refused() {
    let mut shards = run(3, &[]);
    let at = holding(&shards, "/p/c.so");
    shards[at].1.plugins.iter_mut().for_each(|p| {
        if p.path == Path::new("/p/c.so") {
            p.cases.clear();
            p.tally.passed = true;
        }
    });
    let (error, text) = refusal(shards);
    assert!(matches!(error, MergeError::NoCases { .. }), "{text}");
    assert!(text.contains("`/p/c.so` in `shard-"), "{text}");
}

#[test]
fn each_plugin_has_exactly_the_selected_cases_each_consistent() {
    type Edit = fn(&mut Vec<CaseReport>);
    let edits: [(&str, Edit); 6] = [
        ("no result for `fuzz-methods`", |cases| {
            cases.retain(|c| c.id != CaseId::FuzzMethods)
        }),
        ("two results for `load`", |cases| {
            let load = cases[0].clone();
            cases.push(load);
        }),
        ("which the run did not select", |cases| {
            cases.push(case(CaseId::FuzzMethods, Verdict::Pass))
        }),
        ("which is not its family", |cases| {
            cases[0].family = crate::catalog::Family::Crash
        }),
        ("only a flaky case keeps its runs", |cases| {
            cases[0].attempts = vec![crate::report::Attempt {
                run: 1,
                verdict: Verdict::Crashed,
                reason: String::new(),
                duration_us: 0,
            }]
        }),
        (
            "skipped behind `init`, which did not hold it back",
            |cases| {
                let fuzz = cases.iter_mut().find(|c| c.id == CaseId::FuzzMethods);
                let fuzz = fuzz.unwrap();
                fuzz.verdict = Verdict::Skipped;
                fuzz.detail.prerequisite = Some(CaseId::Init);
            },
        ),
    ];
    for (problem, edit) in edits {
        let filter: &[&str] = if problem.contains("did not select") {
            &["load"]
        } else {
            &[]
        };
        let mut shards = run(3, filter);
        let at = holding(&shards, "/p/d.so");
        let plugin = shards[at]
            .1
            .plugins
            .iter_mut()
            .find(|p| p.path == Path::new("/p/d.so"))
            .unwrap();
        edit(&mut plugin.cases);
        let words: Vec<String> = filter.iter().map(|w| (*w).to_owned()).collect();
        let text = merge(shards, &words).unwrap_err().to_string();
        assert!(
            text.contains("`/p/d.so` in `shard-") && text.contains(problem),
            "{problem}: {text}"
        );
    }
    // A skip behind a prerequisite that did not give what the case needs
    // (selftest must only survive for fuzzing: here it crashed) is what a
    // run makes.
    let mut shards = run(3, &[]);
    let at = holding(&shards, "/p/d.so");
    let plugin = shards[at]
        .1
        .plugins
        .iter_mut()
        .find(|p| p.path == Path::new("/p/d.so"))
        .unwrap();
    for case in &mut plugin.cases {
        if case.id == CaseId::Selftest {
            case.verdict = Verdict::Crashed;
        }
        if case.id == CaseId::FuzzMethods {
            case.verdict = Verdict::Skipped;
            case.detail.prerequisite = Some(CaseId::Selftest);
        }
    }
    let merged = merge(shards, &[]).unwrap();
    assert!(!merged.gate_passed(), "selftest crashed");
}

#[test]
fn a_plugin_in_two_shards_or_in_the_wrong_one_is_refused() {
    let mut shards = run(3, &[]);
    let from = holding(&shards, "/p/e.so");
    let to = (from + 1) % 3;
    let plugin = shards[from]
        .1
        .plugins
        .iter()
        .find(|p| p.path == Path::new("/p/e.so"))
        .unwrap()
        .clone();
    shards[to].1.plugins.push(plugin.clone());
    let (error, text) = refusal(shards.clone());
    assert!(
        matches!(
            error,
            MergeError::Overlap { .. } | MergeError::WrongShard { .. }
        ),
        "{text}"
    );
    assert!(text.contains("/p/e.so"), "{text}");
    // Moved, not copied: in the wrong shard by the cut.
    shards[from]
        .1
        .plugins
        .retain(|p| p.path != Path::new("/p/e.so"));
    let (error, text) = refusal(shards);
    assert!(matches!(error, MergeError::WrongShard { .. }), "{text}");
    assert!(text.contains("its file name cuts to shard"), "{text}");
    // Twice in one shard.
    let mut shards = run(3, &[]);
    let at = holding(&shards, "/p/e.so");
    let twice = shards[at].1.plugins[0].clone();
    shards[at].1.plugins.push(twice);
    let (error, text) = refusal(shards);
    assert!(matches!(error, MergeError::Overlap { .. }), "{text}");
    assert!(text.contains("is twice in `shard-"), "{text}");
    // The same file name in two directories is one slice's: allowed.
    let a = holding(&run(3, &[]), "/p/a.so");
    assert_eq!(a, holding(&run(3, &[]), "/q/a.so"));
}

#[test]
fn a_shard_that_lost_a_plugin_is_refused_by_the_plugin_set() {
    let mut shards = run(3, &[]);
    let at = holding(&shards, "/p/f.so");
    shards[at]
        .1
        .plugins
        .retain(|p| p.path != Path::new("/p/f.so"));
    let (error, text) = refusal(shards);
    assert!(matches!(error, MergeError::PluginSet { .. }), "{text}");
    assert!(
        text.contains("the shards hold 8 plugin(s)") && text.contains("cut from 9"),
        "{text}"
    );
    // Replaced by another of the same slice: the count agrees, the names
    // do not.
    let mut shards = run(3, &[]);
    let at = holding(&shards, "/p/f.so");
    let slice = shards[at].1.provenance.as_ref().unwrap().slice();
    let stranger = (0..)
        .map(|n| format!("/p/stranger-{n}.so"))
        .find(|path| slice.selects(Path::new(path)))
        .unwrap();
    let plugin = shards[at]
        .1
        .plugins
        .iter_mut()
        .find(|p| p.path == Path::new("/p/f.so"))
        .unwrap();
    plugin.path = stranger.into();
    let (error, text) = refusal(shards);
    assert!(matches!(error, MergeError::PluginSet { .. }), "{text}");
}

#[test]
fn what_a_refusal_or_the_table_shows_of_a_report_is_clipped() {
    let huge = "x".repeat(1 << 20);
    let mut shards = run(3, &[]);
    shard(&mut shards, "shard-2.json")
        .provenance
        .as_mut()
        .unwrap()
        .seed = huge.clone();
    let (_, text) = refusal(shards);
    assert!(text.len() < 2000, "{} bytes", text.len());
    let mut shards = run(3, &[]);
    let at = holding(&shards, "/p/g.so");
    for plugin in &mut shards[at].1.plugins {
        plugin.cases[0].reason = huge.clone();
        plugin.cases[0].output.stdout = format!("{huge}\n{huge}");
    }
    let merged = merge(shards, &[]).unwrap();
    let shown = clipped_for_display(&merged, 100);
    let table: String = shown
        .plugins
        .iter()
        .map(crate::report::table::plugin)
        .collect();
    assert!(table.len() < 50_000, "{} bytes", table.len());
    let kept = merged.plugins.iter().any(|p| p.cases[0].reason == huge);
    assert!(kept, "the merged JSON keeps the text whole");
}
