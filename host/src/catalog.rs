//! The closed set of conformance cases. A case's kebab-case id is its name
//! everywhere: CLI filter, worker protocol, JSON report, snapshots, the
//! fixtures manifest.
//!
//! This file says *what* each case is (description, family, prerequisites,
//! isolation needs); `cases/` says how it runs inside the worker.

use serde::{Deserialize, Serialize};

macro_rules! case_ids {
    ($($variant:ident => $id:literal,)*) => {
        /// A conformance case, in the order the suite runs them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum CaseId {
            $(#[serde(rename = $id)] $variant,)*
        }

        impl CaseId {
            /// Every case, in suite order (prerequisites first).
            pub const ALL: &'static [CaseId] = &[$(CaseId::$variant,)*];

            /// The stable kebab-case id.
            pub fn id(self) -> &'static str {
                match self {
                    $(CaseId::$variant => $id,)*
                }
            }
        }
    };
}

case_ids! {
    Load => "load",
    LookupEntry => "lookup-entry",
    Descriptor => "descriptor",
    AbiVersion => "abi-version",
    Metadata => "metadata",
    Init => "init",
    LookupMethods => "lookup-methods",
    Selftest => "selftest",
    StateRoundtrip => "state-roundtrip",
    Shutdown => "shutdown",
    Unload => "unload",
    LoadTime => "load-time",
    RepeatLoad => "repeat-load",
    ReloadSameVersion => "reload-same-version",
    ReloadUpgrade => "reload-upgrade",
    ReloadBrokenUpgrade => "reload-broken-upgrade",
    ReloadAbiMismatch => "reload-abi-mismatch",
    ReloadWhileCalling => "reload-while-calling",
    ReloadReplaceWhileLoaded => "reload-replace-while-loaded",
    ReloadUnloadVerified => "reload-unload-verified",
    ReloadCycles => "reload-cycles",
    FuzzMethods => "fuzz-methods",
    InstancesIsolated => "instances-isolated",
    TraceInLogs => "trace-in-logs",
    DeadlineVisible => "deadline-visible",
    CancelHonoured => "cancel-honoured",
}

/// One case another stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prerequisite {
    pub case: CaseId,
    pub need: Need,
}

/// What a case needs of a prerequisite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// That it passed (or warned): the case builds on what it verified.
    Passed,
    /// That it ended with an answer, whichever: the case would only run
    /// into the same crash or hang again, but a plain failure does not
    /// stop it from verifying its own part.
    Survived,
}

/// The topic a case belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Load,
    Lookup,
    Version,
    Lifecycle,
    State,
    Reload,
    Hygiene,
    /// Cases that go looking for a crash rather than wait for one.
    Crash,
    /// What a method learns of its call (ABI 1.1): deadline,
    /// cancellation, trace context.
    Context,
}

impl CaseId {
    /// One line saying what the case checks.
    pub fn description(self) -> &'static str {
        match self {
            CaseId::Load => {
                "the file is a shared library for this platform and loads with immediate binding"
            }
            CaseId::LookupEntry => "the library exports `plugcheck_entry`",
            CaseId::Descriptor => {
                "`plugcheck_entry` returns a descriptor with the PLUGCHK magic and a readable header"
            }
            CaseId::AbiVersion => "the plugin's ABI version is one this host accepts",
            CaseId::Metadata => {
                "the descriptor covers ABI v1.0, its strings are valid UTF-8 and its functions are present"
            }
            CaseId::Init => "init returns 0 and every method it registers is accepted",
            CaseId::LookupMethods => {
                "every registered method is found by name; an unknown name is a clean error"
            }
            CaseId::Selftest => "the `selftest` method returns 0 for empty input",
            CaseId::StateRoundtrip => {
                "state saved by save_state is restored unchanged into a new instance"
            }
            CaseId::Shutdown => "after shutdown no thread or child process the plugin started runs",
            CaseId::Unload => "after shutdown and close the library leaves the process",
            CaseId::LoadTime => "load plus init finish within the load-time bound",
            CaseId::RepeatLoad => {
                "repeated load/init/shutdown/close cycles do not grow threads, handles or mapped memory"
            }
            CaseId::ReloadSameVersion => {
                "hot reload of the same build switches to a fresh copy and carries the state"
            }
            CaseId::ReloadUpgrade => {
                "hot reload to the upgrade carries the state and the new version answers"
            }
            CaseId::ReloadBrokenUpgrade => {
                "an upgrade that fails is rolled back: the old version keeps serving with its state"
            }
            CaseId::ReloadAbiMismatch => {
                "an upgrade built for another ABI major is refused and the old version kept"
            }
            CaseId::ReloadWhileCalling => {
                "calls on another thread during reloads all succeed, none on a closed library"
            }
            CaseId::ReloadReplaceWhileLoaded => {
                "the build output can be overwritten or re-created while loaded, then reloaded"
            }
            CaseId::ReloadUnloadVerified => "after a reload the old version has left the process",
            CaseId::ReloadCycles => {
                "many reloads do not grow threads, handles or mapped memory beyond a bound"
            }
            CaseId::FuzzMethods => {
                "every registered method survives a seeded series of inputs: no crash, hang, panic or broken output buffer"
            }
            CaseId::InstancesIsolated => {
                "(ABI 1.1) calls to one instance change nothing another instance answers or saves"
            }
            CaseId::TraceInLogs => {
                "(ABI 1.1) every line a method logs during its call carries the call's trace id"
            }
            CaseId::DeadlineVisible => {
                "(ABI 1.1) `selftest.wait` returns soon after its call's deadline, not before"
            }
            CaseId::CancelHonoured => {
                "(ABI 1.1) `selftest.wait` returns soon after its call is cancelled"
            }
        }
    }

    pub fn family(self) -> Family {
        match self {
            CaseId::Load => Family::Load,
            CaseId::LookupEntry | CaseId::LookupMethods => Family::Lookup,
            CaseId::Descriptor | CaseId::AbiVersion | CaseId::Metadata => Family::Version,
            CaseId::Init | CaseId::Selftest | CaseId::Shutdown => Family::Lifecycle,
            CaseId::StateRoundtrip => Family::State,
            CaseId::Unload | CaseId::LoadTime | CaseId::RepeatLoad => Family::Hygiene,
            CaseId::ReloadSameVersion
            | CaseId::ReloadUpgrade
            | CaseId::ReloadBrokenUpgrade
            | CaseId::ReloadAbiMismatch
            | CaseId::ReloadWhileCalling
            | CaseId::ReloadReplaceWhileLoaded
            | CaseId::ReloadUnloadVerified
            | CaseId::ReloadCycles => Family::Reload,
            CaseId::FuzzMethods => Family::Crash,
            CaseId::InstancesIsolated => Family::State,
            CaseId::TraceInLogs | CaseId::DeadlineVisible | CaseId::CancelHonoured => {
                Family::Context
            }
        }
    }

    /// The cases this one stands on, and what it needs of each. When a
    /// prerequisite did not give what is needed, this case is skipped
    /// with that reason instead of running into the same failure (or the
    /// same crash, or the same timeout) again.
    pub fn prerequisites(self) -> &'static [Prerequisite] {
        // A struct literal, so the slices are promoted to statics.
        macro_rules! on {
            ($case:ident, $need:ident) => {
                Prerequisite {
                    case: CaseId::$case,
                    need: Need::$need,
                }
            };
        }
        match self {
            CaseId::Load => &[],
            CaseId::LookupEntry => &[on!(Load, Passed)],
            CaseId::Descriptor => &[on!(LookupEntry, Passed)],
            CaseId::AbiVersion => &[on!(Descriptor, Passed)],
            CaseId::Metadata => &[on!(AbiVersion, Passed)],
            CaseId::Init => &[on!(Metadata, Passed)],
            CaseId::LookupMethods
            | CaseId::Selftest
            | CaseId::StateRoundtrip
            | CaseId::Shutdown
            | CaseId::LoadTime => &[on!(Init, Passed)],
            // Closing a library whose threads still run would crash the host:
            // these need a clean shutdown first.
            CaseId::Unload | CaseId::RepeatLoad => &[on!(Shutdown, Passed)],
            // A reload closes the old version, so the whole reload family
            // needs a clean shutdown too. A plugin whose `selftest` crashes
            // or hangs would only do it again under reloads (some call it,
            // all run the plugin's init again); one whose `selftest` merely
            // answers "no" can still be reloaded, and the cases that call
            // it say so in their own verdicts. One rule for the family, so
            // it is skipped or run as a whole.
            CaseId::ReloadSameVersion
            | CaseId::ReloadUpgrade
            | CaseId::ReloadBrokenUpgrade
            | CaseId::ReloadAbiMismatch
            | CaseId::ReloadWhileCalling
            | CaseId::ReloadReplaceWhileLoaded
            | CaseId::ReloadUnloadVerified
            | CaseId::ReloadCycles => &[on!(Shutdown, Passed), on!(Selftest, Survived)],
            // Fuzzing calls `selftest` too: one that crashes or hangs on
            // the empty input would be found again at input #0, and hide
            // what the other methods do. A `selftest` that fails does not
            // stop the other methods from being fuzzed.
            CaseId::FuzzMethods => &[on!(Init, Passed), on!(Selftest, Survived)],
            // These drive every method (but the wait probe) with inputs of
            // the fuzz series: only methods that survived it, or they would
            // find its crash or hang again under another name.
            CaseId::InstancesIsolated | CaseId::TraceInLogs => &[on!(FuzzMethods, Passed)],
            // These call only the wait probe, which fuzzing leaves alone.
            CaseId::DeadlineVisible | CaseId::CancelHonoured => {
                &[on!(Init, Passed), on!(Selftest, Survived)]
            }
        }
    }

    /// Whether the case must be the first to load the plugin in its worker
    /// (it observes what the first load does: constructors, load time).
    /// Other cases share a worker, so a suite costs about one process spawn.
    pub fn needs_fresh_process(self) -> bool {
        matches!(self, CaseId::Load)
    }

    pub fn from_id(id: &str) -> Option<CaseId> {
        CaseId::ALL.iter().copied().find(|case| case.id() == id)
    }
}

impl std::fmt::Display for CaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = serde_json::to_value(self).expect("family serializes");
        f.write_str(name.as_str().expect("family serializes as a string"))
    }
}

/// Checks that `name` is a case id or a family name; the error names it,
/// with the closest known name when there is one.
pub fn check_case_or_family(name: &str) -> Result<(), String> {
    let names: Vec<String> = CaseId::ALL
        .iter()
        .flat_map(|case| [case.id().to_owned(), case.family().to_string()])
        .collect();
    if names.iter().any(|known| known == name) {
        return Ok(());
    }
    let closest = names
        .iter()
        .map(|known| (strsim::jaro_winkler(name, known), known))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| format!(" (did you mean `{known}`?)"))
        .unwrap_or_default();
    Err(format!(
        "unknown case or family `{}`{closest}: `plugcheck list` shows them",
        crate::text::one_line(name)
    ))
}

/// The cases a filter (`--filter`: case ids or family names) selects, in
/// suite order; every case for an empty filter.
pub fn select(filter: &[String]) -> Result<Vec<CaseId>, String> {
    if filter.is_empty() {
        return Ok(CaseId::ALL.to_vec());
    }
    // Each case's family named once, not once per word of the filter:
    // naming one goes through its serde form (45 µs of a check's start
    // when it was done per word, and again to check each word).
    let families: Vec<String> = CaseId::ALL
        .iter()
        .map(|case| case.family().to_string())
        .collect();
    let selected =
        |case: &CaseId, family: &String, wanted: &String| case.id() == wanted || family == wanted;
    for wanted in filter {
        let known = CaseId::ALL
            .iter()
            .zip(&families)
            .any(|(case, family)| selected(case, family, wanted));
        if !known {
            check_case_or_family(wanted)?;
        }
    }
    Ok(CaseId::ALL
        .iter()
        .zip(&families)
        .filter(|(case, family)| filter.iter().any(|wanted| selected(case, family, wanted)))
        .map(|(case, _)| *case)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_match_serde() {
        for &case in CaseId::ALL {
            assert_eq!(CaseId::from_id(case.id()), Some(case));
            let json = serde_json::to_string(&case).unwrap();
            assert_eq!(json, format!("\"{}\"", case.id()));
        }
    }

    /// The closed list of cases with their prerequisites, as
    /// `host/protocol/cases.json` writes it for both workers (the Go
    /// worker's `catalog_test.go` reads it too): the ids in suite order,
    /// and what each case needs of each case it stands on.
    #[test]
    fn the_cases_are_the_golden_ones() {
        let golden: serde_json::Value =
            serde_json::from_str(include_str!("../protocol/cases.json")).unwrap();
        let ours: Vec<serde_json::Value> = CaseId::ALL
            .iter()
            .map(|case| {
                let prerequisites: Vec<serde_json::Value> = case
                    .prerequisites()
                    .iter()
                    .map(|on| {
                        let need = match on.need {
                            Need::Passed => "passed",
                            Need::Survived => "survived",
                        };
                        serde_json::json!({"case": on.case.id(), "need": need})
                    })
                    .collect();
                serde_json::json!({"id": case.id(), "prerequisites": prerequisites})
            })
            .collect();
        let golden = golden.as_array().expect("cases.json is a list");
        for (golden, ours) in golden.iter().zip(&ours) {
            assert_eq!(
                golden.to_string(),
                ours.to_string(),
                "a case in host/protocol/cases.json and in the catalog differ: change both, and the Go worker's catalog.go"
            );
        }
        assert_eq!(
            golden.len(),
            ours.len(),
            "host/protocol/cases.json and the catalog hold different numbers of cases"
        );
    }

    #[test]
    fn prerequisites_run_earlier_in_the_suite() {
        for &case in CaseId::ALL {
            for &Prerequisite {
                case: prerequisite, ..
            } in case.prerequisites()
            {
                assert!(
                    prerequisite < case,
                    "{prerequisite} must come before {case}"
                );
            }
        }
    }
}
