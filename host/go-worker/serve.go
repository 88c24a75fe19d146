package main

// The messages that are not a batch of cases: `plugcheck call`'s call of
// one method on the bytes of a file, and an embedding host's calls (input
// inline, on an instance by key, with a deadline, a trace and a
// cancellation), state handoff and describe.
//
// Messages are read by a goroutine of their own, so a `cancel` reaches
// the call it names while the call runs: it cancels the call's context,
// which a contract 1.1 method sees.

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	plugcheck "plugcheck.dev/abi"
)

// maxCallInput and maxCallOutput bound `plugcheck call`'s input file and
// the output bytes sent back (in hex), as in the Rust worker.
const (
	maxCallInput  = 256 << 20
	maxCallOutput = 1 << 20
)

// instancesByKey is the most instances an embedding host may make by key
// in one worker, as in the Rust worker.
const instancesByKey = 4096

// received is a message from the parent (or why none came), and for a
// call, the context its `cancel` cancels.
type received struct {
	message toWorker
	err     error
	cancel  context.Context
}

// inFlight are the calls read and not yet answered, by sequence number:
// a `cancel` for one cancels its context.
type inFlight struct {
	mu    sync.Mutex
	calls map[uint64]context.CancelFunc
}

// start registers call seq as it is read, so a cancel that comes while
// the plugin starts is not lost.
func (f *inFlight) start(seq uint64) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[uint64]context.CancelFunc{}
	}
	f.calls[seq] = cancel
	return ctx
}

func (f *inFlight) cancel(seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cancel, ok := f.calls[seq]; ok {
		cancel()
	}
}

func (f *inFlight) end(seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cancel, ok := f.calls[seq]; ok {
		cancel()
		delete(f.calls, seq)
	}
}

// readMessages reads the parent's messages into inbox until the channel
// ends; a cancel is acted on here, at once.
func readMessages(ch *channel, inbox chan<- received, flight *inFlight) {
	for {
		message, err := ch.receive()
		if err != nil {
			inbox <- received{err: err}
			return
		}
		if message.Type == "cancel" {
			// One for a call already answered finds nothing to cancel.
			flight.cancel(message.Seq)
			continue
		}
		r := received{message: message}
		if message.Type == "call" {
			r.cancel = flight.start(message.Seq)
		}
		inbox <- r
	}
}

// callInput is a call's input: the bytes inputHex spells (an embedding
// host's call), or those of the file at inputPath (`plugcheck call`),
// or none.
func callInput(inputPath *string, inputHex *string) ([]byte, *callAnswer) {
	notReady := func(reason string) ([]byte, *callAnswer) {
		return nil, &callAnswer{Kind: answerNotReady, Reason: reason}
	}
	switch {
	case inputHex != nil:
		if len(*inputHex) > 2*inlineCallInputBytes {
			return notReady(fmt.Sprintf("the call's input_hex is over %d MiB", inlineCallInputBytes>>20))
		}
		decoded, err := hex.DecodeString(*inputHex)
		if err != nil {
			return notReady(fmt.Sprintf("the call's input_hex is not hex: %v", err))
		}
		return decoded, nil
	case inputPath != nil:
		file, err := os.Open(*inputPath)
		if err != nil {
			return notReady(fmt.Sprintf("cannot read the input: %v", err))
		}
		read, err := io.ReadAll(io.LimitReader(file, maxCallInput+1))
		file.Close()
		if err != nil || len(read) > maxCallInput {
			return notReady(fmt.Sprintf("cannot read the input (at most %d MiB): %v", maxCallInput>>20, err))
		}
		// Exactly as long as the input, as the fuzz series hands it: a
		// method that slices past its input's length but within a larger
		// buffer's capacity would not fail the same way otherwise.
		input := make([]byte, len(read))
		copy(input, read)
		return input, nil
	}
	return nil, nil
}

// serveCall is a `call`: load and Init if not yet, then one method on
// the instance of the call's key, in the call's context. What the plugin
// logs goes to the parent as it is logged (forward), Init's lines before
// the call's, so lines logged before a crash are not lost with the worker.
func (s *session) serveCall(message toWorker, cancel context.Context, forward func(logLine)) callAnswer {
	arrived := time.Now()
	input, refused := callInput(message.Input, message.InputHex)
	if refused != nil {
		return *refused
	}
	// On from here (Init's lines, when this call starts the plugin, go
	// as they come) and left on: lines logged between calls go with this
	// call's number, which the parent takes.
	s.forwarding.set(forward)
	if failed := s.ensureInit(); failed != nil {
		return callAnswer{Kind: answerNotReady, Reason: failed.outcome.Reason}
	}
	// Lines kept before forwarding was on: Init's, at a describe.
	s.current.host.sendUnsent()
	wire := message.Context
	if wire == nil {
		wire = &callContext{}
	}
	instance, failed := s.instanceFor(wire.Instance)
	if failed != nil {
		return callAnswer{Kind: answerNotReady, Reason: failed.Reason}
	}
	method := instance.host.lookup(message.Method)
	if method == nil {
		return callAnswer{Kind: answerNoSuchMethod, Registered: first(instance.host.names(), 50)}
	}
	// Each call forwards up to the bound: what the hosts kept was sent.
	instance.host.takeLogs()
	s.current.host.takeLogs()
	settings := callSettings{cancel: cancel}
	if wire.DeadlineMs != nil {
		settings.deadline = arrived.Add(time.Duration(*wire.DeadlineMs) * time.Millisecond)
	}
	if wire.Traceparent != nil && validTraceparent(*wire.Traceparent) {
		settings.traceparent = *wire.Traceparent
	}
	r, p := instance.host.invoke(method, input, settings)
	// Sent already: what the hosts keep must not pile up over many
	// calls (and each call may forward as many lines as the bound).
	instance.host.takeLogs()
	s.current.host.takeLogs()
	if p != nil {
		return callAnswer{Kind: answerPanicked, Panic: p.String()}
	}
	answer := returned(r.out, r.err, r.message())
	if r.cancelled() {
		answer.Status = statusCancelled
	}
	return answer
}

// instanceFor is the instance a call's key names: the plugin itself
// without a key, or when it makes no instances (contract 1.0, or no
// NewInstance: every key is served by its one instance, as a C-ABI 1.0
// plugin's are); else the key's own, made at its first call.
func (s *session) instanceFor(key *string) (*loaded, *outcome) {
	if key == nil || !s.makesInstances() {
		return s.current, nil
	}
	if instance, ok := s.instances[*key]; ok {
		return instance, nil
	}
	if len(s.instances) >= instancesByKey {
		o := fail(fmt.Sprintf("instance `%s`: this worker holds %d instances by key already, the most it makes: key calls by a bounded set (tenants, not requests), or reload the plugin, which starts with no key's instance", clip(*key, 80), instancesByKey))
		return nil, &o
	}
	instance, failed := s.newInstance()
	if failed != nil {
		failed.Reason = fmt.Sprintf("instance `%s`: %s", clip(*key, 80), failed.Reason)
		return nil, failed
	}
	if s.instances == nil {
		s.instances = map[string]*loaded{}
	}
	s.instances[*key] = instance
	return instance, nil
}

// newInstance makes another instance of a 1.1 plugin that makes them
// (NewInstance) and initialises it with a host of its own. An instance
// handed out again while alive (the plugin's own value, or one made
// before) is refused: its state would be shared.
func (s *session) newInstance(alive ...*loaded) (*loaded, *outcome) {
	maker, ok := s.current.p.(instanceMaker)
	if !ok {
		o := fail("the plugin makes no instances (no NewInstance)")
		return nil, &o
	}
	var made plugcheck.Plugin
	var err error
	if p := guard(func() { made, err = maker.NewInstance() }); p != nil {
		o := failPanic("NewInstance panicked", p)
		return nil, &o
	}
	if err != nil {
		o := fail(fmt.Sprintf("NewInstance returned an error: %s", clip(errorText(err), 500)))
		return nil, &o
	}
	if made == nil || isNilPointer(made) {
		o := fail("NewInstance returned a nil Plugin: return a new value of the plugin's type")
		return nil, &o
	}
	alive = append(alive, s.current)
	for _, instance := range s.instances {
		alive = append(alive, instance)
	}
	for _, other := range alive {
		if samePlugin(made, other.p) {
			o := fail(fmt.Sprintf("NewInstance handed out a %T that is still alive as another instance: each call must return a new value, or the instances share their state", made))
			return nil, &o
		}
	}
	instance := &loaded{plug: s.current.plug, p: made, info: s.current.info, packagePath: s.current.packagePath, forward: s.forwarding}
	if failed := instance.initialize(); failed != nil {
		o := failed.outcome
		o.Reason = "a new instance: " + o.Reason
		return nil, &o
	}
	return instance, nil
}

// isNilPointer says whether a Plugin is a typed nil (a nil pointer in a
// non-nil interface).
func isNilPointer(p plugcheck.Plugin) bool {
	v := reflect.ValueOf(p)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// samePlugin says whether two Plugin values are one: pointers (of any
// types: a pointer converted to another type is the same instance) to the
// same value with room for state, or the same map or channel. Functions
// are not compared: every closure of one literal has the same code
// pointer, whatever it closes over.
func samePlugin(a, b plugcheck.Plugin) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() == reflect.Pointer && vb.Kind() == reflect.Pointer {
		// Go may give every pointer to a zero-size value one address:
		// such values hold no state to share.
		return !va.IsNil() && va.Type().Elem().Size() > 0 && vb.Type().Elem().Size() > 0 &&
			va.Pointer() == vb.Pointer()
	}
	if va.Type() != vb.Type() {
		return false
	}
	switch va.Kind() {
	case reflect.Map, reflect.Chan, reflect.UnsafePointer:
		return !va.IsNil() && va.Pointer() == vb.Pointer()
	}
	// A value (a struct, say) is a copy: what it shares through the
	// pointers in it, the instances' answers show.
	return false
}

// saveState is an embedding host's save-state: the plugin's SaveState, its
// state as the answer's output (an error: status FAILED, with it).
func (s *session) saveState() callAnswer {
	if failed := s.ensureInit(); failed != nil {
		return callAnswer{Kind: answerNotReady, Reason: failed.outcome.Reason}
	}
	stateful, ok := s.current.p.(plugcheck.Stateful)
	if !ok {
		return callAnswer{Kind: answerStateless}
	}
	var state []byte
	var err error
	if p := guard(func() { state, err = stateful.SaveState() }); p != nil {
		return callAnswer{Kind: answerPanicked, Panic: p.String()}
	}
	return returned(state, err, errorIfAny(err))
}

// restoreState is an embedding host's restore-state: the plugin's
// RestoreState with the bytes stateHex spells.
func (s *session) restoreState(stateHex *string) callAnswer {
	if stateHex == nil || len(*stateHex) > 2*inlineCallInputBytes {
		return callAnswer{Kind: answerNotReady, Reason: fmt.Sprintf("the state_hex is missing or over %d MiB", inlineCallInputBytes>>20)}
	}
	state, err := hex.DecodeString(*stateHex)
	if err != nil {
		return callAnswer{Kind: answerNotReady, Reason: fmt.Sprintf("the state_hex is not hex: %v", err)}
	}
	if failed := s.ensureInit(); failed != nil {
		return callAnswer{Kind: answerNotReady, Reason: failed.outcome.Reason}
	}
	stateful, ok := s.current.p.(plugcheck.Stateful)
	if !ok {
		return callAnswer{Kind: answerStateless}
	}
	if p := guard(func() { err = stateful.RestoreState(state) }); p != nil {
		return callAnswer{Kind: answerPanicked, Panic: p.String()}
	}
	return returned(nil, err, errorIfAny(err))
}

// describe is an embedding host's describe: which plugin this is, once
// loaded and initialised. Info's name and version whole, as the Rust
// worker gives them (the report's are clipped for display; a host
// compares names), within the bound metadata holds them to, and the
// contract version (from 1.1 on, a method can see its cancellation).
func (s *session) describe() callAnswer {
	if failed := s.ensureInit(); failed != nil {
		return callAnswer{Kind: answerNotReady, Reason: failed.outcome.Reason}
	}
	if s.first == nil {
		return callAnswer{Kind: answerNotReady, Reason: "the plugin gave no name"}
	}
	info := s.first.info
	if len(info.Name) > pluginStringBytes || len(info.Version) > pluginStringBytes {
		return callAnswer{Kind: answerNotReady, Reason: fmt.Sprintf("its name or version is longer than %d bytes", pluginStringBytes)}
	}
	return callAnswer{
		Kind: answerDescribed, Name: strings.ToValidUTF8(info.Name, "\uFFFD"), Version: strings.ToValidUTF8(info.Version, "\uFFFD"),
		ABI:            fmt.Sprintf("%d.%d", info.ABIMajor, info.ABIMinor),
		MakesInstances: s.makesInstances(),
	}
}

// makesInstances says whether calls by key get instances of their own: a
// plugin of 1.1 whose value has NewInstance. Any other serves every key
// from its one instance.
func (s *session) makesInstances() bool {
	_, makes := s.current.p.(instanceMaker)
	return makes && s.current.info.ABIMinor >= 1
}

// errorIfAny is errorText of err, "" for none.
func errorIfAny(err error) string {
	if err == nil {
		return ""
	}
	return errorText(err)
}

// returned is a `returned` answer: the output's first maxCallOutput bytes
// in hex, and a Go error as status FAILED with its message (read with
// errorText: the error is the plugin's).
func returned(out []byte, err error, message string) callAnswer {
	answer := callAnswer{Kind: answerReturned, OutputLen: uint64(len(out))}
	if len(out) > maxCallOutput {
		out = out[:maxCallOutput]
	}
	answer.Output = fmt.Sprintf("%x", out)
	if err != nil {
		// A Go method's error has no code: FAILED, with its message.
		answer.Status = -5
		answer.Error = ptr(clip(message, 1000))
	}
	return answer
}
