package main

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"testing"
)

// The golden messages (host/protocol/examples/, which the Rust tests
// read into the parent's own types and write back unchanged), each placed
// as one of three: a message the parent sends the Go worker, one the Go
// worker sends, or one only the Rust worker sends.
var (
	// parentSends: read by the Go worker, refusing any field it does not
	// know but those it ignores on purpose, and checked field by field.
	parentSends = map[string]func(t *testing.T, got toWorker){
		"run.json":           checkRun,
		"call.json":          checkCall,
		"call-inline.json":   checkCallInline,
		"save-state.json":    checkSaveState,
		"restore-state.json": checkRestoreState,
		"describe.json":      checkDescribe,
		"cancel.json":        checkCancel,
		"call-context.json":  checkCallContext,
	}
	// goWorkerSends: what the Go worker writes for the golden message.
	goWorkerSends = map[string]any{
		"hello.json":   hello{Type: "hello", Token: "3f9c2a", Pid: 4242, Protocol: protocolVersion},
		"calling.json": calling{Type: "calling", Seq: 21, Method: "parse", Input: 17},
		"done.json":    goldenDone(),
		"done-not-run.json": done{
			Type: "done", Seq: 10, Case: caseUnload,
			Result: caseResult{Outcome: skipped(notRun), Plugin: nil},
			NotRun: true,
		},
		"called-returned.json": called{Type: "called", Seq: 1, Answer: callAnswer{
			Kind: answerReturned, Status: -5, Output: "6f6b", OutputLen: 2, Error: ptr("bad input")}},
		"called-panicked.json": called{Type: "called", Seq: 1, Answer: callAnswer{
			Kind: answerPanicked, Panic: "runtime error: index out of range [3] with length 1 (at main.parse (main.go:12))"}},
		"called-no-such-method.json": called{Type: "called", Seq: 1, Answer: callAnswer{
			Kind: answerNoSuchMethod, Registered: []string{"echo", "selftest"}}},
		"called-not-ready.json": called{Type: "called", Seq: 1, Answer: callAnswer{
			Kind: answerNotReady, Reason: "Init returned an error: no config"}},
		"called-stateless.json": called{Type: "called", Seq: 3, Answer: callAnswer{Kind: answerStateless}},
		"called-described.json": called{Type: "called", Seq: 5, Answer: callAnswer{
			Kind: answerDescribed, Name: "echo", Version: "1.2.0", ABI: "1.1", MakesInstances: true}},
		"logged.json": logged{Type: "logged", Seq: 1, Line: logLine{
			Level: 2, Message: "parse: unexpected end of input", TraceID: ptr("4bf92f3577b34da6a3ce929d0e0e4736")}},
	}
	// onlyTheRustWorkerSends: a C-ABI plugin's broken output buffer, a
	// dying worker's stack and its seccomp handler's report. The Go
	// worker sends none of them.
	onlyTheRustWorkerSends = []string{"called-broken-buffer.json", "stack.json", "forbidden.json"}
)

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("../protocol/examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Every golden message is placed, and every placed one is there: a new
// message kind makes this test ask which it is.
func TestEveryGoldenMessageIsPlaced(t *testing.T) {
	entries, err := os.ReadDir("../protocol/examples")
	if err != nil {
		t.Fatal(err)
	}
	placed := map[string]int{}
	for name := range parentSends {
		placed[name]++
	}
	for name := range goWorkerSends {
		placed[name]++
	}
	for _, name := range onlyTheRustWorkerSends {
		placed[name]++
	}
	var files []string
	for _, entry := range entries {
		name := entry.Name()
		files = append(files, name)
		switch placed[name] {
		case 0:
			t.Errorf("examples/%s is placed nowhere: add it to parentSends, goWorkerSends or onlyTheRustWorkerSends", name)
		case 1:
		default:
			t.Errorf("examples/%s is placed twice", name)
		}
	}
	sort.Strings(files)
	for name := range placed {
		if i := sort.SearchStrings(files, name); i == len(files) || files[i] != name {
			t.Errorf("examples/%s is placed but missing", name)
		}
	}
}

// The golden messages the parent sends read into the Go worker's message
// with no field it does not know, but the ledger, which the Go worker
// leaves to the parent on purpose.
func TestTheGoldenMessagesTheParentSendsReadWhole(t *testing.T) {
	for name, check := range parentSends {
		var message struct {
			toWorker
			Ledger json.RawMessage `json:"ledger"`
		}
		decoder := json.NewDecoder(bytes.NewReader(readGolden(t, name)))
		decoder.DisallowUnknownFields()
		if err := decoder.Decode(&message); err != nil {
			t.Errorf("examples/%s does not read into the Go worker's message (a field the parent sends that the Go worker does not know?): %v", name, err)
			continue
		}
		check(t, message.toWorker)
	}
}

func checkCancel(t *testing.T, got toWorker) {
	if got.Type != "cancel" || got.Seq != 3 {
		t.Errorf("the cancel read wrong: %+v", got)
	}
}

func checkCallContext(t *testing.T, got toWorker) {
	c := got.Context
	if got.Type != "call" || got.Seq != 3 || got.Method != "add" || c == nil || c.DeadlineMs == nil || *c.DeadlineMs != 2000 ||
		c.Traceparent == nil || *c.Traceparent != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" ||
		c.Instance == nil || *c.Instance != "tenant-a" || !c.Cancellable {
		t.Errorf("the call's context read wrong: %+v", got)
	}
}

func checkRun(t *testing.T, got toWorker) {
	if got.Type != "run" || got.FirstSeq != 7 || !reflect.DeepEqual(got.Cases, []CaseID{caseInit, caseSelftest, caseShutdown}) {
		t.Errorf("the batch read wrong: %+v", got)
	}
	s := got.Settings
	if s.LoadTimeBoundMs != 500 || s.RepeatCycles != 20 || s.GraceMs != 1000 || s.ReloadCycles != 100 ||
		s.Seed != 42 || s.FuzzBudgetMs != 15000 || s.ReloadTo["upgrade"] != "/builds/plugin-v2.so" ||
		s.ReloadNamedAt["upgrade"] != "/repo/plugcheck.toml:8" || s.Scratch == nil || *s.Scratch != "/tmp/plugcheck-run" ||
		s.FuzzSeries == nil || *s.FuzzSeries != "/tmp/plugcheck-run/fuzz-series" || s.FuzzInputs != 256 {
		t.Errorf("the settings read wrong: %+v", s)
	}
}

func checkCall(t *testing.T, got toWorker) {
	if got.Type != "call" || got.Seq != 1 || got.Method != "parse" || got.Input == nil || *got.Input != "/tmp/plugcheck-run/input.bin" {
		t.Errorf("the call read wrong: %+v", got)
	}
}

func checkCallInline(t *testing.T, got toWorker) {
	if got.Type != "call" || got.Seq != 2 || got.Method != "echo" || got.Input != nil || got.InputHex == nil || *got.InputHex != "68690a" {
		t.Errorf("the inline call read wrong: %+v", got)
	}
}

func checkSaveState(t *testing.T, got toWorker) {
	if got.Type != "save-state" || got.Seq != 3 || got.StateHex != nil {
		t.Errorf("the save-state read wrong: %+v", got)
	}
}

func checkRestoreState(t *testing.T, got toWorker) {
	if got.Type != "restore-state" || got.Seq != 4 || got.StateHex == nil || *got.StateHex != "0300000000000000" {
		t.Errorf("the restore-state read wrong: %+v", got)
	}
}

func checkDescribe(t *testing.T, got toWorker) {
	if got.Type != "describe" || got.Seq != 5 || got.Method != "" || got.StateHex != nil || got.InputHex != nil {
		t.Errorf("the describe read wrong: %+v", got)
	}
}

// goldenDone is examples/done.json as the Go worker builds it: a failed
// `shutdown` with goroutines and a child process left.
func goldenDone() done {
	o := fail("1 goroutine(s) the plugin started still run after Shutdown: example.com/ttlcache.(*Cache).janitor (started by example.com/ttlcache.New); and 1 child process(es) the plugin started still run after Shutdown (`sleep`); Shutdown must stop every goroutine the plugin started and kill or wait for every child process the plugin started")
	o.Detail.Methods = []string{"selftest"}
	o.Detail.RejectedRegistrations = []string{`"x": registered twice`}
	o.Detail.LeakedProcesses = []processInfo{{Pid: 4242, Name: "sleep"}}
	o.Detail.Logs = []logLine{{Level: 3, Message: "cache started"}}
	o.Detail.Binding = []binding{{What: "Go release", Plugin: "go1.21.13", Host: "go1.19.8"}}
	o.Detail.Goroutines = []string{"example.com/ttlcache.(*Cache).janitor (started by example.com/ttlcache.New)"}
	o.Detail.PanicFrame = ptr("main.parse (main.go:12)")
	o.Detail.Fuzz = &fuzz{Seed: "0x2a", Inputs: 256, Methods: ptr(uint32(1)), Refused: 3,
		Input: &fuzzInput{Method: "parse", Index: 2, Size: 1, What: "panicked"}}
	return done{
		Type: "done", Seq: 9, Case: caseShutdown,
		Result: caseResult{Outcome: o, Plugin: &pluginInfo{Name: "janitor-leak", Version: "1.0.0", Toolchain: ptr("go1.19.8"), ABI: "1.0"}},
		WorkUs: 1234, HasLoaded: true,
	}
}

// The golden messages a worker sends are what the Go worker writes for
// the same values: the same fields, no more, no fewer.
func TestTheGoldenMessagesTheGoWorkerSendsAreWhatItWrites(t *testing.T) {
	for name, message := range goWorkerSends {
		data := readGolden(t, name)
		written, err := json.Marshal(message)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var ours, golden any
		if err := json.Unmarshal(written, &ours); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &golden); err != nil {
			t.Fatalf("examples/%s: %v", name, err)
		}
		if !reflect.DeepEqual(ours, golden) {
			t.Errorf("the Go worker writes\n%s\nwhere examples/%s has\n%s", written, name, data)
		}
	}
}

// The verdicts are the golden ones (host/protocol/verdicts.json, which
// the Rust report's tests read too), in the same order.
func TestTheVerdictsAreTheGoldenOnes(t *testing.T) {
	data, err := os.ReadFile("../protocol/verdicts.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden []Verdict
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(verdicts, golden) {
		t.Errorf("protocol.go's verdicts are %q, host/protocol/verdicts.json has %q: change both, and report::Verdict", verdicts, golden)
	}
}

// A call answer of a kind the parent does not know is not written.
func TestACallAnswerOfNoKnownKindIsRefused(t *testing.T) {
	if _, err := json.Marshal(callAnswer{Kind: "broken-buffer"}); err == nil {
		t.Error("a broken-buffer answer, which the Go worker never gives, was written")
	}
}
