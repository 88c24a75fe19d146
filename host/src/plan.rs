//! Which cases may still run, given what happened to their prerequisites.
//! The worker consults it between the cases of a batch, the parent after a
//! worker died; both use this one ledger, so they decide alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{CaseId, Need, Prerequisite};
use crate::outcome::Outcome;
use crate::report::verdict::Verdict;

/// What a prerequisite gives, by its verdict. Here rather than beside
/// `Need` in the catalog, which knows cases, not verdicts.
impl Need {
    /// Whether a prerequisite that ended with `verdict` gives this.
    pub fn met_by(self, verdict: Verdict) -> bool {
        match self {
            Need::Passed => verdict.satisfies_prerequisite(),
            Need::Survived => matches!(
                verdict,
                Verdict::Pass | Verdict::Warning | Verdict::Fail | Verdict::Flaky
            ),
        }
    }
}

/// How a case ended and which case's verdict decided that: itself, or, for
/// a case skipped behind a prerequisite, the case that failed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Standing {
    pub verdict: Verdict,
    pub root_case: CaseId,
    pub root_verdict: Verdict,
}

/// The verdicts of a plugin's cases so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ledger {
    standings: BTreeMap<CaseId, Standing>,
}

impl Ledger {
    /// A skip outcome when one of `case`'s prerequisites did not give
    /// what the case needs of it (`catalog::Need`), naming the case that
    /// failed first, so a chain of skips reads as one cause.
    pub(crate) fn blocked(&self, case: CaseId) -> Option<Outcome> {
        case.prerequisites().iter().find_map(
            |&Prerequisite {
                 case: prerequisite,
                 need,
             }| {
                let prerequisite = &prerequisite;
                let standing = self.standings.get(prerequisite)?;
                // A case skipped because it does not apply (no `selftest`
                // method, say) has nothing to hold its dependents back with.
                let not_applicable =
                    standing.verdict == Verdict::Skipped && standing.root_case == *prerequisite;
                if need.met_by(standing.verdict) || not_applicable {
                    return None;
                }
                let reason = if standing.root_case == *prerequisite {
                    format!(
                        "prerequisite `{prerequisite}` {}",
                        standing.root_verdict.past_tense()
                    )
                } else {
                    format!(
                        "prerequisite `{prerequisite}` was skipped: `{}` {}",
                        standing.root_case,
                        standing.root_verdict.past_tense()
                    )
                };
                Some(
                    Outcome::skipped(reason)
                        .with_detail(|detail| detail.prerequisite = Some(*prerequisite)),
                )
            },
        )
    }

    /// Records how `case` ended.
    pub(crate) fn record(&mut self, case: CaseId, outcome: &Outcome) {
        let inherited = outcome
            .detail
            .prerequisite
            .and_then(|prerequisite| self.standings.get(&prerequisite));
        let standing = match inherited {
            Some(prerequisite) if outcome.verdict == Verdict::Skipped => Standing {
                verdict: outcome.verdict,
                ..*prerequisite
            },
            _ => Standing {
                verdict: outcome.verdict,
                root_case: case,
                root_verdict: outcome.verdict,
            },
        };
        self.standings.insert(case, standing);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_blocks_its_dependents_and_is_named_down_the_chain() {
        let mut ledger = Ledger::default();
        ledger.record(CaseId::Load, &Outcome::pass("ok"));
        assert!(ledger.blocked(CaseId::LookupEntry).is_none());
        ledger.record(CaseId::LookupEntry, &Outcome::fail("no entry"));
        let skip = ledger.blocked(CaseId::Descriptor).unwrap();
        assert_eq!(skip.reason, "prerequisite `lookup-entry` failed");
        ledger.record(CaseId::Descriptor, &skip);
        let skip = ledger.blocked(CaseId::AbiVersion).unwrap();
        assert_eq!(
            skip.reason,
            "prerequisite `descriptor` was skipped: `lookup-entry` failed"
        );
    }

    #[test]
    fn a_case_that_does_not_apply_does_not_block() {
        let mut ledger = Ledger::default();
        ledger.record(CaseId::Selftest, &Outcome::skipped("no selftest method"));
        assert!(ledger.blocked(CaseId::ReloadWhileCalling).is_none());
        ledger.record(CaseId::Selftest, &Outcome::crashed("SIGSEGV", None));
        assert!(ledger.blocked(CaseId::ReloadWhileCalling).is_some());
    }

    #[test]
    fn a_prerequisite_that_only_has_to_survive_blocks_on_crashes_and_hangs_alone() {
        let mut ledger = Ledger::default();
        ledger.record(CaseId::Init, &Outcome::pass("ok"));
        ledger.record(CaseId::Shutdown, &Outcome::pass("ok"));
        for (verdict, blocks) in [
            (Outcome::fail("selftest returned 1"), false),
            (Outcome::warning("slow"), false),
            (Outcome::crashed("SIGSEGV", None), true),
            (Outcome::timed_out("5 s", 5000), true),
        ] {
            ledger.record(CaseId::Selftest, &verdict);
            for case in [CaseId::FuzzMethods, CaseId::ReloadCycles] {
                let skip = ledger.blocked(case);
                assert_eq!(skip.is_some(), blocks, "{case} after {verdict:?}");
            }
        }
        // What needs a pass still does.
        ledger.record(CaseId::Selftest, &Outcome::fail("selftest returned 1"));
        ledger.record(CaseId::Shutdown, &Outcome::fail("a thread is left"));
        assert!(ledger.blocked(CaseId::ReloadCycles).is_some());
        assert!(ledger.blocked(CaseId::FuzzMethods).is_none());
    }

    #[test]
    fn warnings_satisfy_and_unrecorded_prerequisites_do_not_block() {
        let mut ledger = Ledger::default();
        assert!(
            ledger.blocked(CaseId::Selftest).is_none(),
            "init not run: run anyway"
        );
        ledger.record(CaseId::Init, &Outcome::warning("slow"));
        assert!(ledger.blocked(CaseId::Selftest).is_none());
    }

    #[test]
    fn a_case_skipped_behind_a_failure_stands_as_skipped_for_its_own_dependents() {
        // `selftest` skipped because `init` failed did not survive
        // anything: what needs it only to survive is skipped too, naming
        // the root. (Were the skip to take `init`'s verdict, a `fail` would
        // count as survived and the reloads would run.)
        let mut ledger = Ledger::default();
        ledger.record(CaseId::Shutdown, &Outcome::pass("ok"));
        ledger.record(CaseId::Init, &Outcome::fail("init returned 1"));
        let skip = ledger.blocked(CaseId::Selftest).unwrap();
        ledger.record(CaseId::Selftest, &skip);
        let reload = ledger.blocked(CaseId::ReloadCycles).unwrap();
        assert_eq!(
            reload.reason,
            "prerequisite `selftest` was skipped: `init` failed"
        );
        assert_eq!(reload.detail.prerequisite, Some(CaseId::Selftest));
    }

    #[test]
    fn an_outcome_that_ran_stands_for_itself_even_naming_a_prerequisite() {
        // Only a skip inherits its prerequisite's standing: a failure that
        // also says which prerequisite it relied on is its own root.
        let mut ledger = Ledger::default();
        ledger.record(CaseId::Load, &Outcome::pass("ok"));
        let failed = Outcome::fail("no entry")
            .with_detail(|detail| detail.prerequisite = Some(CaseId::Load));
        ledger.record(CaseId::LookupEntry, &failed);
        let skip = ledger.blocked(CaseId::Descriptor).unwrap();
        assert_eq!(skip.reason, "prerequisite `lookup-entry` failed");
    }

    #[test]
    fn ledgers_cross_the_worker_channel() {
        let mut ledger = Ledger::default();
        ledger.record(CaseId::Init, &Outcome::fail("no"));
        let json = serde_json::to_string(&ledger).unwrap();
        assert_eq!(serde_json::from_str::<Ledger>(&json).unwrap(), ledger);
    }
}
