//! Merging the shards of a partitioned run (`check --partition K/N`) into
//! the report one run would have made, judged again by the gate they
//! share. A merged gate is a release gate over the whole plugin set, so
//! nothing a shard says is taken on trust: each shard must say how it was
//! made (`report::provenance`), and the merge refuses, naming the shard and
//! what differs, anything that is not exactly the N slices of one run:
//!
//! - a shard missing or given twice, a report made without `--partition`
//!   among partitioned ones, shards of another platform, plugcheck, gate
//!   (file content, deny flags), plugin set or setting;
//! - a filtered shard, unless the merge is told the same filter (below);
//! - a plugin in two shards, or in a shard its file name does not cut to,
//!   or shards whose plugins are not the set the run was cut from (a shard
//!   lost or truncated plugins);
//! - a plugin without exactly one result for each case the run selected
//!   (none at all, one missing, one twice), and a result that contradicts
//!   itself (a family not its case's, runs recorded for a case that is not
//!   flaky, a skip behind a prerequisite that passed).
//!
//! Each plugin's gate is then counted again from its cases' verdicts: the
//! gate a shard stored is never read.
//!
//! These checks catch shards that went missing, broke, or came from
//! another run or setting; they are not signatures: whoever can write a
//! shard can write a consistent lie, and a gate that must stand against
//! that has to protect its shards where they are made and carried.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::catalog::CaseId;
use crate::gate::judge;
use crate::report::provenance::Provenance;
use crate::report::verdict::Verdict;
use crate::report::{PluginReport, Report};
use crate::run::partition::{Partition, PluginSet};
use crate::text::{clip, one_line};

/// Characters of a value from a report (a path, a setting) an error shows:
/// a forged shard may hold a megabyte where a name should be.
const SHOWN_CHARS: usize = 160;

/// A value from a report as an error shows it: one line, clipped.
fn shown(text: &str) -> String {
    clip(&one_line(text), SHOWN_CHARS)
}

/// Why shards cannot be merged. Every variant names the shard (the file it
/// was read from) and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no reports to merge: give the shards' JSON reports")]
    Nothing,
    #[error(
        "`{shard}` does not say how it was made (partition, plugin set, settings): it was written by a plugcheck older than this one; run every shard again with this plugcheck"
    )]
    Unrecorded { shard: String },
    #[error(
        "`{shard}` comes from {its}, `{first_shard}` from {first}: merge the shards of one platform's run (`cargo xtask merge-reports` compares platforms)"
    )]
    Platform {
        shard: String,
        its: String,
        first_shard: String,
        first: String,
    },
    #[error(
        "`{shard}` differs from `{first_shard}` in {what}: `{its}` in `{shard}`, `{first}` in `{first_shard}`; merge only the shards of one run, each run with the same plugcheck, plugins, options and gate file"
    )]
    Setting {
        shard: String,
        first_shard: String,
        what: &'static str,
        its: String,
        first: String,
    },
    #[error(
        "`{shard}` was made without --partition, `{first_shard}` with --partition {first}: merge the shards of one partitioned run (a whole run needs no merge)"
    )]
    Unpartitioned {
        shard: String,
        first_shard: String,
        first: Partition,
    },
    #[error(
        "{}: the shards overlap; give each shard once",
        if first == second {
            format!("`{second}` is given twice (shard {partition})")
        } else {
            format!("`{second}` is shard {partition} again (`{first}` is too)")
        }
    )]
    Duplicate {
        partition: Partition,
        first: String,
        second: String,
    },
    #[error(
        "{} missing (have {}): every shard of the run must be merged, or its plugins go unjudged; find the shard job that did not report and run it again",
        missing_list(.missing), have_list(.have)
    )]
    Missing {
        missing: Vec<Partition>,
        have: Vec<(Partition, String)>,
    },
    #[error(
        "`{shard}` ran only the cases of `--filter {filter}` ({left_out}), but this merge gates {expected}: a merged gate stands for the cases it names, and a shard that ran fewer could hide a failing case. Run every shard {advice}"
    )]
    Filtered {
        shard: String,
        filter: String,
        /// How many cases were left out, with one for example.
        left_out: String,
        expected: String,
        advice: String,
    },
    #[error(
        "`{shard}` ran every case, but this merge gates only the cases of `--filter {expected}`: give `plugcheck merge` the filter the shards were run with, or none"
    )]
    Unfiltered { shard: String, expected: String },
    #[error("`{shard}` names a filter this plugcheck cannot read: {error}")]
    BadFilter { shard: String, error: String },
    #[error(
        "{}: the shards overlap; give each shard once",
        if first == second {
            format!("`{plugin}` is twice in `{first}`")
        } else {
            format!("`{plugin}` is in both `{first}` and `{second}`")
        }
    )]
    Overlap {
        plugin: String,
        first: String,
        second: String,
    },
    #[error(
        "`{plugin}` is in `{shard}` (shard {partition}), but its file name cuts to shard {belongs}: the shard is not what --partition {partition} checks; run it again"
    )]
    WrongShard {
        plugin: String,
        shard: String,
        partition: Partition,
        belongs: Partition,
    },
    #[error(
        "the shards hold {held} plugin(s) (names hashed {held_hash}), but the run was cut from {count} (names hashed {hash}): a shard lost plugins or holds others; run the lost shard again"
    )]
    PluginSet {
        held: u64,
        held_hash: String,
        count: u64,
        hash: String,
    },
    #[error(
        "`{plugin}` in `{shard}` has no case results: a plugin that ran no case was not judged; run its shard again"
    )]
    NoCases { plugin: String, shard: String },
    #[error(
        "`{plugin}` in `{shard}` has no result for `{case}`, which the run selected: a truncated or edited shard; run it again"
    )]
    MissingCase {
        plugin: String,
        shard: String,
        case: CaseId,
    },
    #[error("`{plugin}` in `{shard}` has {problem}: a truncated or edited shard; run it again")]
    Inconsistent {
        plugin: String,
        shard: String,
        problem: String,
    },
}

fn missing_list(missing: &[Partition]) -> String {
    let names: Vec<String> = missing.iter().map(|p| format!("shard {p}")).collect();
    let verb = if missing.len() == 1 { "is" } else { "are" };
    format!("{} {verb}", clip(&names.join(", "), SHOWN_CHARS))
}

fn have_list(have: &[(Partition, String)]) -> String {
    let names: Vec<String> = have
        .iter()
        .map(|(partition, shard)| format!("{partition} from `{shard}`"))
        .collect();
    clip(&names.join(", "), 4 * SHOWN_CHARS)
}

/// The shards (with the names they were read from) as one report: every
/// plugin once, ordered by path, judged again by the shards' gate, so the
/// verdicts and the gate are those of one run over the union. `filter` is
/// the `--filter` the merge was told (empty: none): shards must have run
/// exactly the cases it selects.
///
/// A filtered shard is refused unless the merge names the same filter,
/// rather than merged with a gate failed for it: the person who runs the
/// merge owns the gate, and a filter is what they decide, not what a shard
/// says. Refused, a shard run under `--filter load` cannot pass the crash
/// cases it never ran; named, a filtered run's gate is that of `check
/// --filter` over the union, as one run would give, and the merged
/// report's provenance keeps the filter.
pub fn merge(shards: Vec<(String, Report)>, filter: &[String]) -> Result<Report, MergeError> {
    let shards: Vec<(String, Report)> = shards
        .into_iter()
        .map(|(name, report)| (one_line(&name).into_owned(), report))
        .collect();
    let Some((first_name, first)) = shards.first() else {
        return Err(MergeError::Nothing);
    };
    let provenance = |name: &String, report: &Report| -> Result<Provenance, MergeError> {
        report
            .provenance
            .clone()
            .ok_or_else(|| MergeError::Unrecorded {
                shard: name.clone(),
            })
    };
    let first_provenance = provenance(first_name, first)?;
    for (name, shard) in &shards[1..] {
        let its = provenance(name, shard)?;
        same_run((first_name, first, &first_provenance), (name, shard, &its))?;
    }
    let cases = selected_cases(first_name, &first_provenance, filter)?;
    let slices = complete_slices(&shards)?;
    let mut origin: BTreeMap<PathBuf, String> = BTreeMap::new();
    for ((name, shard), slice) in shards.iter().zip(&slices) {
        for plugin in &shard.plugins {
            if let Some(first) = origin.get(&plugin.path) {
                return Err(MergeError::Overlap {
                    plugin: shown(&plugin.path.display().to_string()),
                    first: first.clone(),
                    second: name.clone(),
                });
            }
            origin.insert(plugin.path.clone(), name.clone());
            let belongs = slice.of(&plugin.path);
            if belongs != *slice {
                return Err(MergeError::WrongShard {
                    plugin: shown(&plugin.path.display().to_string()),
                    shard: name.clone(),
                    partition: *slice,
                    belongs,
                });
            }
            check_cases(plugin, name, &cases)?;
        }
    }
    let held = PluginSet::of(origin.keys().map(PathBuf::as_path));
    if held != first_provenance.plugin_set {
        return Err(MergeError::PluginSet {
            held: held.count,
            held_hash: held.hash,
            count: first_provenance.plugin_set.count,
            hash: shown(&first_provenance.plugin_set.hash),
        });
    }
    let mut shards = shards.into_iter();
    let (_, mut merged) = shards.next().expect("checked above");
    for (_, shard) in shards {
        merged.plugins.extend(shard.plugins);
    }
    merged.plugins.sort_by(|a, b| a.path.cmp(&b.path));
    merged.provenance = Some(Provenance {
        partition: None,
        ..first_provenance
    });
    let policy = merged.policy.clone();
    judge::judge(&policy, &mut merged, judge::today());
    Ok(merged)
}

/// Whether `shard` is of the same run as the first: platform, gate and
/// every recorded setting but the partition's index alike.
fn same_run(
    (first_name, first, first_provenance): (&String, &Report, &Provenance),
    (name, shard, its): (&String, &Report, &Provenance),
) -> Result<(), MergeError> {
    if shard.platform != first.platform {
        return Err(MergeError::Platform {
            shard: name.clone(),
            its: shown(&shard.platform.describe()),
            first_shard: first_name.clone(),
            first: shown(&first.platform.describe()),
        });
    }
    let differs = |what: &'static str, its: String, first: String| MergeError::Setting {
        shard: name.clone(),
        first_shard: first_name.clone(),
        what,
        its: shown(&its),
        first: shown(&first),
    };
    match (first_provenance.partition, its.partition) {
        (Some(partition), None) => {
            return Err(MergeError::Unpartitioned {
                shard: name.clone(),
                first_shard: first_name.clone(),
                first: partition,
            });
        }
        (None, Some(partition)) => {
            return Err(MergeError::Unpartitioned {
                shard: first_name.clone(),
                first_shard: name.clone(),
                first: partition,
            });
        }
        (Some(a), Some(b)) if a.count != b.count => {
            return Err(differs(
                "the number of shards (--partition K/N)",
                b.to_string(),
                a.to_string(),
            ));
        }
        _ => {}
    }
    let settings = its.settings();
    for ((what, first_value), (_, value)) in first_provenance.settings().into_iter().zip(settings) {
        if value != first_value {
            return Err(differs(what, value, first_value));
        }
    }
    if shard.tool != first.tool {
        return Err(differs("plugcheck", shard.tool.clone(), first.tool.clone()));
    }
    if shard.timeout_ms != first.timeout_ms {
        return Err(differs(
            "--timeout",
            format!("{} ms", shard.timeout_ms),
            format!("{} ms", first.timeout_ms),
        ));
    }
    // The gate file's path may differ between checkouts; its content is
    // compared by hash above, and what the gate was made of here.
    let gate = |report: &Report| crate::gate::policy::Policy {
        file: None,
        ..report.policy.clone()
    };
    if gate(shard) != gate(first) {
        let flags = |report: &Report| {
            format!(
                "deny-warnings {}, deny-skipped {}, {} waiver(s)",
                report.policy.deny_warnings,
                report.policy.deny_skipped,
                report.policy.waivers.len()
            )
        };
        return Err(differs("its gate", flags(shard), flags(first)));
    }
    Ok(())
}

/// The cases every plugin must have a result for: those `filter` selects,
/// which must be those each shard's filter selected.
fn selected_cases(
    first_name: &str,
    provenance: &Provenance,
    filter: &[String],
) -> Result<Vec<CaseId>, MergeError> {
    // Shards agree on the filter (`same_run`), so the first speaks for all.
    let shard = first_name.to_owned();
    let ran =
        crate::catalog::select(&provenance.filter).map_err(|error| MergeError::BadFilter {
            shard: shard.clone(),
            error: clip(&error, 2 * SHOWN_CHARS),
        })?;
    let expected =
        crate::catalog::select(filter).expect("the merge's own filter was checked when parsed");
    if ran == expected {
        return Ok(expected);
    }
    if provenance.filter.is_empty() {
        return Err(MergeError::Unfiltered {
            shard,
            expected: shown(&filter.join(",")),
        });
    }
    let example = expected
        .iter()
        .chain(CaseId::ALL)
        .find(|case| !ran.contains(case))
        .map_or("", |case| case.id());
    let given = shown(&provenance.filter.join(","));
    let (expected_words, advice) = if filter.is_empty() {
        (
            "the whole suite".to_owned(),
            format!(
                "without --filter; to gate a filtered run on purpose, give `plugcheck merge --filter {given}` too"
            ),
        )
    } else {
        (
            format!("the cases of `--filter {}`", shown(&filter.join(","))),
            "with the filter this merge is given".to_owned(),
        )
    };
    Err(MergeError::Filtered {
        shard,
        filter: given,
        left_out: format!(
            "{} of {} case(s) left out, e.g. `{example}`",
            CaseId::ALL.len() - ran.len(),
            CaseId::ALL.len()
        ),
        expected: expected_words,
        advice,
    })
}

/// Each shard's slice, once every slice 1..=N is there exactly once.
fn complete_slices(shards: &[(String, Report)]) -> Result<Vec<Partition>, MergeError> {
    let slices: Vec<Partition> = shards
        .iter()
        .map(|(_, report)| report.provenance.as_ref().expect("checked").slice())
        .collect();
    let mut seen: BTreeMap<Partition, &String> = BTreeMap::new();
    for ((name, _), slice) in shards.iter().zip(&slices) {
        if let Some(first) = seen.insert(*slice, name) {
            return Err(MergeError::Duplicate {
                partition: *slice,
                first: first.clone(),
                second: name.clone(),
            });
        }
    }
    let count = slices[0].count;
    let missing: Vec<Partition> = (1..=count)
        .map(|index| Partition { index, count })
        .filter(|slice| !seen.contains_key(slice))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing {
            missing,
            have: seen
                .into_iter()
                .map(|(slice, name)| (slice, name.clone()))
                .collect(),
        });
    }
    Ok(slices)
}

/// Whether `plugin` has one result for each of `cases` and nothing else,
/// each consistent in itself.
fn check_cases(plugin: &PluginReport, shard: &str, cases: &[CaseId]) -> Result<(), MergeError> {
    let name = || shown(&plugin.path.display().to_string());
    let inconsistent = |problem: String| MergeError::Inconsistent {
        plugin: name(),
        shard: shard.to_owned(),
        problem,
    };
    if plugin.cases.is_empty() {
        return Err(MergeError::NoCases {
            plugin: name(),
            shard: shard.to_owned(),
        });
    }
    let mut results: BTreeMap<CaseId, &crate::report::CaseReport> = BTreeMap::new();
    for case in &plugin.cases {
        if !cases.contains(&case.id) {
            return Err(inconsistent(format!(
                "a result for `{}`, which the run did not select",
                case.id
            )));
        }
        if results.insert(case.id, case).is_some() {
            return Err(inconsistent(format!("two results for `{}`", case.id)));
        }
        if case.family != case.id.family() {
            return Err(inconsistent(format!(
                "`{}` in family `{}`, which is not its family (`{}`)",
                case.id,
                case.family,
                case.id.family()
            )));
        }
        if !case.attempts.is_empty() && case.verdict != Verdict::Flaky {
            return Err(inconsistent(format!(
                "runs recorded for `{}`, whose verdict is {}: only a flaky case keeps its runs",
                case.id, case.verdict
            )));
        }
    }
    if let Some(case) = cases.iter().find(|case| !results.contains_key(case)) {
        return Err(MergeError::MissingCase {
            plugin: name(),
            shard: shard.to_owned(),
            case: *case,
        });
    }
    for case in &plugin.cases {
        let Some(prerequisite) = case.detail.prerequisite else {
            continue;
        };
        if case.verdict != Verdict::Skipped {
            continue;
        }
        // What the case needs of the case it names (a refused plugin's
        // skips name its first case, which may be no catalog prerequisite:
        // then that case must not have passed).
        let need = case
            .id
            .prerequisites()
            .iter()
            .find(|named| named.case == prerequisite)
            .map_or(crate::catalog::Need::Passed, |named| named.need);
        let held_back = results
            .get(&prerequisite)
            .is_some_and(|before| !need.met_by(before.verdict));
        if !held_back {
            return Err(inconsistent(format!(
                "`{}` skipped behind `{prerequisite}`, which did not hold it back",
                case.id
            )));
        }
    }
    Ok(())
}

/// The merged report as the terminal shows it: every text clipped to
/// `max_chars` (a forged shard may hold a report-sized reason or path; the
/// merged JSON keeps them whole, a terminal gets a line).
pub fn clipped_for_display(report: &Report, max_chars: usize) -> Report {
    let mut value = serde_json::to_value(report).expect("reports serialize");
    clip_strings(&mut value, max_chars.max(64));
    // Strings the model parses (verdicts, case ids, `K/N`) were read
    // valid, so are short, and were not cut: this reads back.
    serde_json::from_value(value).unwrap_or_else(|_| report.clone())
}

fn clip_strings(value: &mut serde_json::Value, max_chars: usize) {
    match value {
        serde_json::Value::String(text) if text.chars().nth(max_chars).is_some() => {
            *text = clip(text, max_chars);
        }
        serde_json::Value::Array(items) => {
            for item in items {
                clip_strings(item, max_chars);
            }
        }
        serde_json::Value::Object(map) => {
            for (_, item) in map.iter_mut() {
                clip_strings(item, max_chars);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
