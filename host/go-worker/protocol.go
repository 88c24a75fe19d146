package main

// The worker protocol, as host/src/worker/protocol.rs defines it: one
// JSON object per line over the loopback socket. The plugin shares this
// process and may write into the socket too, so a line longer than
// channelLineBytes is refused rather than buffered without end.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
)

type settings struct {
	LoadTimeBoundMs uint64            `json:"load_time_bound_ms"`
	RepeatCycles    uint32            `json:"repeat_cycles"`
	GraceMs         uint64            `json:"grace_ms"`
	ReloadCycles    uint32            `json:"reload_cycles"`
	ReloadTo        map[string]string `json:"reload_to"`
	ReloadNamedAt   map[string]string `json:"reload_named_at"`
	Scratch         *string           `json:"scratch"`
	// FuzzInputs is how many inputs the parent's series holds; the Go
	// worker reads the series itself (FuzzSeries) and counts them there.
	FuzzInputs   uint32  `json:"fuzz_inputs"`
	Seed         uint64  `json:"seed"`
	FuzzBudgetMs uint64  `json:"fuzz_budget_ms"`
	FuzzSeries   *string `json:"fuzz_series"`
}

type toWorker struct {
	Type     string   `json:"type"`
	FirstSeq uint64   `json:"first_seq"`
	Cases    []CaseID `json:"cases"`
	Settings settings `json:"settings"`
	// A `call` (plugcheck call): one method, the bytes of one file.
	Seq    uint64  `json:"seq"`
	Method string  `json:"method"`
	Input  *string `json:"input"`
	// InputHex: the input's bytes themselves, in hex (an embedding host's
	// call, its input in memory), at most inlineCallInputBytes.
	InputHex *string `json:"input_hex,omitempty"`
	// StateHex: a restore-state's state, in hex (an embedding host's
	// reload or restart), at most inlineCallInputBytes.
	StateHex *string `json:"state_hex,omitempty"`
	// Context: what a contract 1.1 method is told of its call, and the
	// instance it goes to (serve.go).
	Context *callContext `json:"context,omitempty"`
}

// callContext is a call's context (protocol.rs's CallContextWire).
type callContext struct {
	DeadlineMs  *uint64 `json:"deadline_ms,omitempty"`
	Traceparent *string `json:"traceparent,omitempty"`
	Instance    *string `json:"instance,omitempty"`
	// Cancellable: the parent may send a `cancel` while the call runs
	// (this worker reads every message on a goroutine of its own, so it
	// needs no notice).
	Cancellable bool `json:"cancellable,omitempty"`
}

// protocolVersion is the worker protocol's version, said in the hello:
// the Rust parent's PROTOCOL_VERSION (the golden hello holds both to it).
const protocolVersion = 2

type hello struct {
	Type     string `json:"type"`
	Token    string `json:"token"`
	Pid      int    `json:"pid"`
	Protocol int    `json:"protocol"`
}

type done struct {
	Type      string     `json:"type"`
	Seq       uint64     `json:"seq"`
	Case      CaseID     `json:"case"`
	Result    caseResult `json:"result"`
	WorkUs    uint64     `json:"work_us"`
	HasLoaded bool       `json:"has_loaded"`
	NotRun    bool       `json:"not_run,omitempty"`
}

type caseResult struct {
	Outcome outcome     `json:"outcome"`
	Plugin  *pluginInfo `json:"plugin"`
}

type pluginInfo struct {
	Name      string  `json:"name"`
	Version   string  `json:"version"`
	Toolchain *string `json:"toolchain,omitempty"`
	ABI       string  `json:"abi"`
}

// Verdict is what a case concluded (report::Verdict). The Go worker
// concludes pass, fail, warning or skipped; the parent concludes the
// rest (a crash, a timeout, …). host/protocol/verdicts.json is the
// golden list, which protocol_test.go compares with verdicts.
type Verdict string

const (
	verdictPass        Verdict = "pass"
	verdictFail        Verdict = "fail"
	verdictCrashed     Verdict = "crashed"
	verdictTimedOut    Verdict = "timed-out"
	verdictSkipped     Verdict = "skipped"
	verdictWarning     Verdict = "warning"
	verdictUnsupported Verdict = "unsupported"
	verdictFlaky       Verdict = "flaky"
)

// verdicts are every verdict, in the order reports count them.
var verdicts = []Verdict{
	verdictPass, verdictFail, verdictCrashed, verdictTimedOut,
	verdictSkipped, verdictWarning, verdictUnsupported, verdictFlaky,
}

type outcome struct {
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason"`
	Detail  detail  `json:"detail"`
}

type logLine struct {
	Level   int32  `json:"level"`
	Message string `json:"message"`
	// TraceID is the trace id of the call the line was logged in, through
	// contract 1.1's LogContext.
	TraceID *string `json:"trace_id,omitempty"`
	// untaggedInCall: logged through Log by the goroutine running a 1.1
	// method, so without its call's trace id. Never sent.
	untaggedInCall bool
}

type binding struct {
	What   string `json:"what"`
	Plugin string `json:"plugin"`
	Host   string `json:"host"`
}

// detail mirrors report::Detail: every field optional.
type detail struct {
	Prerequisite          *string       `json:"prerequisite,omitempty"`
	Symbol                *string       `json:"symbol,omitempty"`
	HostABI               *string       `json:"host_abi,omitempty"`
	PluginABI             *string       `json:"plugin_abi,omitempty"`
	Methods               []string      `json:"methods,omitempty"`
	RejectedRegistrations []string      `json:"rejected_registrations,omitempty"`
	StateBytes            *uint64       `json:"state_bytes,omitempty"`
	LoadMs                *float64      `json:"load_ms,omitempty"`
	InitMs                *float64      `json:"init_ms,omitempty"`
	BoundMs               *uint64       `json:"bound_ms,omitempty"`
	ReloadedFrom          *string       `json:"reloaded_from,omitempty"`
	ReloadedTo            *string       `json:"reloaded_to,omitempty"`
	FailedStage           *string       `json:"failed_stage,omitempty"`
	Logs                  []logLine     `json:"logs,omitempty"`
	Binding               []binding     `json:"binding,omitempty"`
	Goroutines            []string      `json:"goroutines,omitempty"`
	LeakedProcesses       []processInfo `json:"leaked_processes,omitempty"`
	PanicFrame            *string       `json:"panic_frame,omitempty"`
	Status                *int32        `json:"status,omitempty"`
	Fuzz                  *fuzz         `json:"fuzz,omitempty"`
}

// fuzz is what fuzz-methods fed the plugin (the report's `Fuzz`).
type fuzz struct {
	Seed    string     `json:"seed"`
	Inputs  uint32     `json:"inputs"`
	Methods *uint32    `json:"methods,omitempty"`
	Digest  *string    `json:"digest,omitempty"`
	Refused uint64     `json:"refused"`
	Input   *fuzzInput `json:"input,omitempty"`
}

// fuzzInput is the input that broke a method; the parent says what it is
// and saves it.
type fuzzInput struct {
	Method string `json:"method"`
	Index  uint32 `json:"index"`
	Size   uint64 `json:"size"`
	What   string `json:"what"`
}

// calling announces a fuzz call before it is made: if the worker dies or
// hangs now, the parent knows which call did it.
type calling struct {
	Type   string `json:"type"`
	Seq    uint64 `json:"seq"`
	Method string `json:"method"`
	Input  uint32 `json:"input"`
}

// logged is a line the plugin logged during a `call`, sent as it comes.
type logged struct {
	Type string  `json:"type"`
	Seq  uint64  `json:"seq"`
	Line logLine `json:"line"`
}

// called answers a `call`.
type called struct {
	Type   string     `json:"type"`
	Seq    uint64     `json:"seq"`
	Answer callAnswer `json:"answer"`
}

// callKind is which answer a `call` got (the parent's CallAnswer's
// `kind`).
type callKind string

const (
	answerReturned     callKind = "returned"
	answerPanicked     callKind = "panicked"
	answerNoSuchMethod callKind = "no-such-method"
	answerNotReady     callKind = "not-ready"
	// answerStateless answers a save-state or restore-state to a plugin
	// that is not a plugcheck.Stateful.
	answerStateless callKind = "stateless"
	// answerDescribed answers a describe: the plugin's name and version.
	answerDescribed callKind = "described"
	// broken-buffer is the Rust worker's only: a Go method returns a
	// slice, never a broken buffer.
)

// callAnswer is the parent's CallAnswer: `kind` says which fields count,
// and only those are written.
type callAnswer struct {
	Kind       callKind
	Status     int32
	Output     string
	OutputLen  uint64
	Error      *string
	Panic      string
	Registered []string
	Reason     string
	Name       string
	Version    string
	// ABI is a described plugin's contract version, "1.1".
	ABI string
	// MakesInstances: a described plugin of 1.1 with NewInstance, whose
	// calls by key make instances of their own.
	MakesInstances bool
}

func (a callAnswer) MarshalJSON() ([]byte, error) {
	switch a.Kind {
	case answerReturned:
		return json.Marshal(struct {
			Kind      callKind `json:"kind"`
			Status    int32    `json:"status"`
			Output    string   `json:"output"`
			OutputLen uint64   `json:"output_len"`
			Error     *string  `json:"error,omitempty"`
		}{a.Kind, a.Status, a.Output, a.OutputLen, a.Error})
	case answerPanicked:
		return json.Marshal(struct {
			Kind  callKind `json:"kind"`
			Panic string   `json:"panic"`
		}{a.Kind, a.Panic})
	case answerNoSuchMethod:
		registered := a.Registered
		if registered == nil {
			registered = []string{}
		}
		return json.Marshal(struct {
			Kind       callKind `json:"kind"`
			Registered []string `json:"registered"`
		}{a.Kind, registered})
	case answerNotReady:
		return json.Marshal(struct {
			Kind   callKind `json:"kind"`
			Reason string   `json:"reason"`
		}{a.Kind, a.Reason})
	case answerStateless:
		return json.Marshal(struct {
			Kind callKind `json:"kind"`
		}{a.Kind})
	case answerDescribed:
		return json.Marshal(struct {
			Kind    callKind `json:"kind"`
			Name    string   `json:"name"`
			Version string   `json:"version"`
			ABI     string   `json:"abi,omitempty"`
			Makes   bool     `json:"makes_instances,omitempty"`
		}{a.Kind, a.Name, a.Version, a.ABI, a.MakesInstances})
	}
	return nil, fmt.Errorf("a call answer of no kind the parent knows: %q", a.Kind)
}

func pass(reason string) outcome    { return outcome{Verdict: verdictPass, Reason: reason} }
func fail(reason string) outcome    { return outcome{Verdict: verdictFail, Reason: reason} }
func warning(reason string) outcome { return outcome{Verdict: verdictWarning, Reason: reason} }
func skipped(reason string) outcome { return outcome{Verdict: verdictSkipped, Reason: reason} }

func ptr[T any](value T) *T { return &value }

type channel struct {
	conn   net.Conn
	reader *bufio.Reader
	// writing keeps lines whole: a plugin's goroutines forward log lines
	// while the worker answers.
	writing sync.Mutex
}

func (c *channel) send(message any) error {
	line, err := json.Marshal(message)
	if err != nil {
		return err
	}
	c.writing.Lock()
	defer c.writing.Unlock()
	_, err = c.conn.Write(append(line, '\n'))
	return err
}

// warmCodecs decodes a batch and encodes an answer once, to nothing:
// encoding/json builds its codec for a type at the type's first use, a
// fifth of a millisecond for these, which would otherwise fall between
// the first batch's arrival and its first case. Run after the hello, it
// fills the time the parent takes to send that batch.
func warmCodecs() {
	var batch toWorker
	_ = json.Unmarshal([]byte(`{"type":"run","first_seq":1,"cases":["load"],"settings":{"load_time_bound_ms":1,"repeat_cycles":1,"grace_ms":1,"reload_cycles":1,"reload_to":{},"reload_named_at":{},"scratch":null,"fuzz_inputs":1,"seed":1,"fuzz_budget_ms":1,"fuzz_series":null},"seq":0,"method":"","input":null}`), &batch)
	_, _ = json.Marshal(done{Type: "done", Result: caseResult{Plugin: &pluginInfo{}}})
}

// receive reads one message; io.EOF when the parent hung up.
func (c *channel) receive() (toWorker, error) {
	var line []byte
	for {
		chunk, more, err := c.reader.ReadLine()
		if err != nil {
			return toWorker{}, err
		}
		line = append(line, chunk...)
		if len(line) > channelLineBytes {
			return toWorker{}, errors.New("a line longer than any message")
		}
		if !more {
			break
		}
	}
	var message toWorker
	if err := json.Unmarshal(line, &message); err != nil {
		return toWorker{}, err
	}
	switch message.Type {
	case "run", "call", "cancel", "save-state", "restore-state", "describe":
	default:
		return toWorker{}, errors.New("a message of another type than `run`, `call`, `cancel`, `save-state`, `restore-state` or `describe`: " + clip(message.Type, 80))
	}
	return message, nil
}
