package main

// The conformance catalog as the Go worker holds it: the case ids and
// their prerequisites as host/src/catalog.rs defines them, and how the
// Go worker runs each case. host/protocol/cases.json is the golden copy
// of the ids and prerequisites; catalog_test.go compares this table with
// it, as the Rust tests compare the Rust catalog.

// CaseID is a conformance case's stable kebab-case id.
type CaseID string

// The cases, in suite order.
const (
	caseLoad                     CaseID = "load"
	caseLookupEntry              CaseID = "lookup-entry"
	caseDescriptor               CaseID = "descriptor"
	caseABIVersion               CaseID = "abi-version"
	caseMetadata                 CaseID = "metadata"
	caseInit                     CaseID = "init"
	caseLookupMethods            CaseID = "lookup-methods"
	caseSelftest                 CaseID = "selftest"
	caseStateRoundtrip           CaseID = "state-roundtrip"
	caseShutdown                 CaseID = "shutdown"
	caseUnload                   CaseID = "unload"
	caseLoadTime                 CaseID = "load-time"
	caseRepeatLoad               CaseID = "repeat-load"
	caseReloadSameVersion        CaseID = "reload-same-version"
	caseReloadUpgrade            CaseID = "reload-upgrade"
	caseReloadBrokenUpgrade      CaseID = "reload-broken-upgrade"
	caseReloadABIMismatch        CaseID = "reload-abi-mismatch"
	caseReloadWhileCalling       CaseID = "reload-while-calling"
	caseReloadReplaceWhileLoaded CaseID = "reload-replace-while-loaded"
	caseReloadUnloadVerified     CaseID = "reload-unload-verified"
	caseReloadCycles             CaseID = "reload-cycles"
	caseFuzzMethods              CaseID = "fuzz-methods"
	caseInstancesIsolated        CaseID = "instances-isolated"
	caseTraceInLogs              CaseID = "trace-in-logs"
	caseDeadlineVisible          CaseID = "deadline-visible"
	caseCancelHonoured           CaseID = "cancel-honoured"
)

// need is what a case needs of a prerequisite (catalog.rs's Need).
type need string

const (
	// needPassed: that it passed (or warned).
	needPassed need = "passed"
	// needSurvived: that it ended with an answer, whichever.
	needSurvived need = "survived"
)

// prerequisite is one case another stands on.
type prerequisite struct {
	Case CaseID `json:"case"`
	Need need   `json:"need"`
}

// caseRow is one case: what it stands on, and how the Go worker runs it.
type caseRow struct {
	ID            CaseID         `json:"id"`
	Prerequisites []prerequisite `json:"prerequisites"`
	// alone: the case answers from what the worker already knows or
	// from Go's own semantics (a Go-native plugin never unloads, loads
	// a package path once), without loading or calling the plugin — or
	// readies the plugin itself, as far as it needs (readyFor11).
	alone bool
	run   func(s *session) outcome
}

// on is a prerequisite, for the table.
func on(id CaseID, n need) prerequisite { return prerequisite{Case: id, Need: n} }

// Prerequisites shared by several cases, as catalog.rs groups them.
var (
	onInit = []prerequisite{on(caseInit, needPassed)}
	// A reload closes the old version, and calls selftest or runs Init
	// again: the whole family stands on a clean shutdown and a selftest
	// that answered.
	onShutdownAndSelftest = []prerequisite{on(caseShutdown, needPassed), on(caseSelftest, needSurvived)}
)

// catalog is every case, in suite order (prerequisites first).
var catalog = []caseRow{
	{ID: caseLoad, Prerequisites: []prerequisite{}, run: (*session).load},
	{ID: caseLookupEntry, Prerequisites: []prerequisite{on(caseLoad, needPassed)},
		run: func(s *session) outcome { return s.entered(caseLookupEntry) }},
	{ID: caseDescriptor, Prerequisites: []prerequisite{on(caseLookupEntry, needPassed)},
		run: func(s *session) outcome { return s.entered(caseDescriptor) }},
	{ID: caseABIVersion, Prerequisites: []prerequisite{on(caseDescriptor, needPassed)},
		run: func(s *session) outcome { return s.entered(caseABIVersion) }},
	{ID: caseMetadata, Prerequisites: []prerequisite{on(caseABIVersion, needPassed)}, run: (*session).metadata},
	{ID: caseInit, Prerequisites: []prerequisite{on(caseMetadata, needPassed)}, run: func(s *session) outcome {
		// Init again from the start: a version still initialized is
		// shut down first.
		if o := s.current.shutdown(); o != nil {
			return *o
		}
		return s.init()
	}},
	{ID: caseLookupMethods, Prerequisites: onInit, run: (*session).lookupMethods},
	{ID: caseSelftest, Prerequisites: onInit, run: (*session).selftest},
	{ID: caseStateRoundtrip, Prerequisites: onInit, run: (*session).stateRoundtrip},
	{ID: caseShutdown, Prerequisites: onInit, run: (*session).shutdown},
	{ID: caseUnload, Prerequisites: []prerequisite{on(caseShutdown, needPassed)}, alone: true,
		run: func(*session) outcome { return warning(neverUnloads) }},
	// Reads the first load's and Init's times: nothing to run again.
	{ID: caseLoadTime, Prerequisites: onInit, alone: true, run: (*session).loadTime},
	{ID: caseRepeatLoad, Prerequisites: []prerequisite{on(caseShutdown, needPassed)}, run: (*session).repeatLoad},
	{ID: caseReloadSameVersion, Prerequisites: onShutdownAndSelftest, run: (*session).reloadSameVersion},
	{ID: caseReloadUpgrade, Prerequisites: onShutdownAndSelftest, run: (*session).reloadUpgrade},
	{ID: caseReloadBrokenUpgrade, Prerequisites: onShutdownAndSelftest, run: func(s *session) outcome {
		return s.reloadRefused("broken", "a build whose load, entry, contract or Init fails")
	}},
	{ID: caseReloadABIMismatch, Prerequisites: onShutdownAndSelftest, run: func(s *session) outcome {
		return s.reloadRefused("abi-mismatch", "a build for another contract major")
	}},
	{ID: caseReloadWhileCalling, Prerequisites: onShutdownAndSelftest, alone: true, run: noReload},
	{ID: caseReloadReplaceWhileLoaded, Prerequisites: onShutdownAndSelftest, alone: true, run: noReload},
	{ID: caseReloadUnloadVerified, Prerequisites: onShutdownAndSelftest, alone: true, run: func(*session) outcome {
		return warning("every version of the plugin this worker loaded is still in the process: " + neverUnloads)
	}},
	{ID: caseReloadCycles, Prerequisites: onShutdownAndSelftest, alone: true, run: noReload},
	{ID: caseFuzzMethods, Prerequisites: []prerequisite{on(caseInit, needPassed), on(caseSelftest, needSurvived)},
		run: (*session).fuzzMethods},
	// Contract 1.1's cases (contextcases.go): each loads the plugin, and
	// initialises it only if it is of 1.1 (readyFor11).
	{ID: caseInstancesIsolated, Prerequisites: []prerequisite{on(caseFuzzMethods, needPassed)}, alone: true, run: (*session).instancesIsolated},
	{ID: caseTraceInLogs, Prerequisites: []prerequisite{on(caseFuzzMethods, needPassed)}, alone: true, run: (*session).traceInLogs},
	{ID: caseDeadlineVisible, Prerequisites: []prerequisite{on(caseInit, needPassed), on(caseSelftest, needSurvived)}, alone: true, run: (*session).deadlineVisible},
	{ID: caseCancelHonoured, Prerequisites: []prerequisite{on(caseInit, needPassed), on(caseSelftest, needSurvived)}, alone: true, run: (*session).cancelHonoured},
}

func noReload(*session) outcome { return skipped(noReloadOfOneBuild) }

// lookupCase is the row of a case; false for an id this worker does not
// know (a newer parent).
func lookupCase(id CaseID) (caseRow, bool) {
	for _, row := range catalog {
		if row.ID == id {
			return row, true
		}
	}
	return caseRow{}, false
}

// stance is what the worker must have done with the plugin before a
// case's body runs.
type stance int

const (
	// standsOnNothing: the body runs as it is (it loads the plugin itself,
	// or does not touch it).
	standsOnNothing stance = iota
	// standsOnLoad: the plugin loaded, up to the case's own step.
	standsOnLoad
	// standsOnInit: the plugin loaded and initialized.
	standsOnInit
)

// stance follows from the prerequisites: a case that stands on init,
// directly or through another case, needs the plugin initialized; one
// that stands on other cases only, loaded; one that stands on none (load)
// or answers alone, nothing.
func (row caseRow) stance() stance {
	switch {
	case row.alone || len(row.Prerequisites) == 0:
		return standsOnNothing
	case standsOn(row.ID, caseInit):
		return standsOnInit
	default:
		return standsOnLoad
	}
}

// standsOn says whether case id stands on case base, directly or through
// other cases.
func standsOn(id, base CaseID) bool {
	row, known := lookupCase(id)
	if !known {
		return false
	}
	for _, p := range row.Prerequisites {
		if p.Case == base || standsOn(p.Case, base) {
			return true
		}
	}
	return false
}
