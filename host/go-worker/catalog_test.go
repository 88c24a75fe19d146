package main

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// The table of cases holds the golden cases (host/protocol/cases.json,
// which the Rust catalog's tests read too): the same ids in the same
// order, each with the same prerequisites and the same need of each.
func TestTheCasesAreTheGoldenOnes(t *testing.T) {
	data, err := os.ReadFile("../protocol/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden []json.RawMessage
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden) != len(catalog) {
		t.Errorf("catalog.go has %d cases, host/protocol/cases.json %d", len(catalog), len(golden))
	}
	for i := 0; i < len(golden) && i < len(catalog); i++ {
		var theirs, ours any
		written, err := json.Marshal(catalog[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(golden[i], &theirs); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(written, &ours); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ours, theirs) {
			t.Errorf("case #%d differs (change catalog.go, host/protocol/cases.json and host/src/catalog.rs together):\ncatalog.go: %s\ncases.json: %s", i, written, golden[i])
		}
	}
}

// What the worker does before each case's body follows from the
// prerequisites; pinned here, case by case, as the worker has always
// run them: a changed prerequisite that would change what the worker
// does before a case fails here.
func TestEachCaseStandsOnWhatItsPrerequisitesSay(t *testing.T) {
	want := map[CaseID]stance{
		caseLoad:                     standsOnNothing,
		caseLookupEntry:              standsOnLoad,
		caseDescriptor:               standsOnLoad,
		caseABIVersion:               standsOnLoad,
		caseMetadata:                 standsOnLoad,
		caseInit:                     standsOnLoad,
		caseLookupMethods:            standsOnInit,
		caseSelftest:                 standsOnInit,
		caseStateRoundtrip:           standsOnInit,
		caseShutdown:                 standsOnInit,
		caseUnload:                   standsOnNothing,
		caseLoadTime:                 standsOnNothing,
		caseRepeatLoad:               standsOnInit,
		caseReloadSameVersion:        standsOnInit,
		caseReloadUpgrade:            standsOnInit,
		caseReloadBrokenUpgrade:      standsOnInit,
		caseReloadABIMismatch:        standsOnInit,
		caseReloadWhileCalling:       standsOnNothing,
		caseReloadReplaceWhileLoaded: standsOnNothing,
		caseReloadUnloadVerified:     standsOnNothing,
		caseReloadCycles:             standsOnNothing,
		caseFuzzMethods:              standsOnInit,
		// Contract 1.1's: each readies the plugin itself (a 1.0 plugin
		// is skipped after loading, without another Init).
		caseInstancesIsolated: standsOnNothing,
		caseTraceInLogs:       standsOnNothing,
		caseDeadlineVisible:   standsOnNothing,
		caseCancelHonoured:    standsOnNothing,
	}
	if len(want) != len(catalog) {
		t.Errorf("%d cases pinned, %d in the catalog", len(want), len(catalog))
	}
	for _, row := range catalog {
		pinned, ok := want[row.ID]
		if !ok {
			t.Errorf("`%s` is not pinned", row.ID)
		} else if got := row.stance(); got != pinned {
			t.Errorf("`%s` stands on %d, pinned %d", row.ID, got, pinned)
		}
		if row.run == nil {
			t.Errorf("`%s` has no body", row.ID)
		}
	}
}

// A case the worker does not know (a newer parent) is skipped with the
// reason, not run.
func TestAnUnknownCaseIsSkipped(t *testing.T) {
	o := newSession("/nonexistent.so").runCase("no-such-case")
	if o.Verdict != verdictSkipped {
		t.Errorf("an unknown case concluded %s: %s", o.Verdict, o.Reason)
	}
}
