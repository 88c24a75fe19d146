package main

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// The golden `run` batch (harness/protocol/examples/run.json, which the
// Rust tests read into the parent's own type) reads into the Go worker's
// message with no field it does not know, but the ledger, which the Go
// worker leaves to the parent on purpose.
func TestTheGoldenRunBatchReadsWhole(t *testing.T) {
	data, err := os.ReadFile("../protocol/examples/run.json")
	if err != nil {
		t.Fatal(err)
	}
	var message struct {
		toWorker
		Ledger json.RawMessage `json:"ledger"`
	}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&message); err != nil {
		t.Fatalf("run.json does not read into the Go worker's message (a field the parent sends that the Go worker does not know?): %v", err)
	}
	got := message.toWorker
	if got.Type != "run" || got.FirstSeq != 7 || !reflect.DeepEqual(got.Cases, []string{"init", "selftest", "shutdown"}) {
		t.Errorf("the batch read wrong: %+v", got)
	}
	s := got.Settings
	if s.GraceMs != 1000 || s.Seed != 42 || s.FuzzBudgetMs != 15000 || s.ReloadTo["upgrade"] != "/builds/plugin-v2.so" ||
		s.ReloadNamedAt["upgrade"] != "/repo/plugcheck.toml:8" || s.Scratch == nil || *s.Scratch != "/tmp/plugcheck-run" ||
		s.FuzzSeries == nil || *s.FuzzSeries != "/tmp/plugcheck-run/fuzz-series" || s.FuzzInputs != 256 {
		t.Errorf("the settings read wrong: %+v", s)
	}
}

// The golden `done` answer (harness/protocol/examples/done.json, which the
// Rust tests read into the parent's own type and write back unchanged) is
// what the Go worker writes for the same result.
func TestTheGoldenDoneAnswerIsWhatTheGoWorkerWrites(t *testing.T) {
	data, err := os.ReadFile("../protocol/examples/done.json")
	if err != nil {
		t.Fatal(err)
	}
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
	answer := done{
		Type: "done", Seq: 9, Case: "shutdown",
		Result: caseResult{Outcome: o, Plugin: &pluginInfo{Name: "janitor-leak", Version: "1.0.0", Toolchain: ptr("go1.19.8"), ABI: "1.0"}},
		WorkUs: 1234, HasLoaded: true,
	}
	written, err := json.Marshal(answer)
	if err != nil {
		t.Fatal(err)
	}
	var ours, golden any
	if err := json.Unmarshal(written, &ours); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ours, golden) {
		t.Errorf("the Go worker writes\n%s\nwhere done.json has\n%s", written, data)
	}
}
