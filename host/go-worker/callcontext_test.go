package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unsafe"

	plugcheck "plugcheck.dev/abi"
)

// A plugin that says it is of contract 1.0 cannot register through 1.1's
// RegisterContext: a host that speaks only 1.0 would not offer it.
func TestRegisterContextIsRefusedToAPluginOfContract10(t *testing.T) {
	h := newHost(0)
	h.open = true
	err := h.RegisterContext("m", func(context.Context, []byte) ([]byte, error) { return nil, nil })
	if err == nil || !strings.Contains(err.Error(), "set Info's ABIMinor to 1") {
		t.Fatalf("a 1.0 plugin's RegisterContext: %v", err)
	}
	h = newHost(1)
	h.open = true
	if err := h.RegisterContext("m", func(context.Context, []byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
}

// A line logged through the call's context carries its trace id; one
// logged through Log by the method's goroutine is marked untagged; one
// logged through a context kept past its call is counted stale, untagged.
func TestLinesAreTaggedUntaggedOrStaleByHowAndWhenTheyAreLogged(t *testing.T) {
	h := newHost(1)
	h.open = true
	var kept context.Context
	_ = h.RegisterContext("m", func(ctx context.Context, in []byte) ([]byte, error) {
		kept = ctx
		h.LogContext(ctx, 4, "tagged")
		h.Log(4, "untagged")
		h.LogContext(context.Background(), 4, "no call's")
		done := make(chan struct{})
		go func() { h.Log(4, "another goroutine's"); close(done) }()
		<-done
		return nil, nil
	})
	trace := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	untagged := untaggedInCall.Load()
	if r, p := h.invoke(h.lookup("m"), nil, callSettings{traceparent: trace}); r.err != nil || p != nil {
		t.Fatal(r.err, p)
	}
	stale := staleLogs.Load()
	h.LogContext(kept, 4, "stale")
	if staleLogs.Load() != stale+1 {
		t.Error("a line through a returned call's context was not counted")
	}
	lines := h.takeLogs()
	want := []struct {
		message  string
		trace    string
		untagged bool
	}{
		{"tagged", "4bf92f3577b34da6a3ce929d0e0e4736", false},
		{"untagged", "", true},
		{"no call's", "", true},
		{"another goroutine's", "", false},
		{"stale", "", false},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines: %+v", len(lines), lines)
	}
	for i, w := range want {
		got := lines[i]
		trace := ""
		if got.TraceID != nil {
			trace = *got.TraceID
		}
		if got.Message != w.message || trace != w.trace || got.untaggedInCall != w.untagged {
			t.Errorf("line %d: %+v (trace %q), want %+v", i, got, trace, w)
		}
	}
	if counted := untaggedInCall.Load() - untagged; counted != 2 {
		t.Errorf("%d untagged lines counted, want 2", counted)
	}
}

// A call's context ends at its deadline and at its cancellation, and a
// method that returns the context's error answers CANCELLED.
func TestAMethodsContextCarriesTheDeadlineAndTheCancellation(t *testing.T) {
	h := newHost(1)
	h.open = true
	_ = h.RegisterContext("wait", func(ctx context.Context, _ []byte) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() })
	started := time.Now()
	r, _ := h.invoke(h.lookup("wait"), nil, callSettings{deadline: started.Add(50 * time.Millisecond)})
	err := r.err
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(started) < 50*time.Millisecond {
		t.Errorf("at its deadline: %v after %v", err, time.Since(started))
	}
	flight := &inFlight{}
	cancel := flight.start(7)
	time.AfterFunc(20*time.Millisecond, func() { flight.cancel(7) })
	r, _ = h.invoke(h.lookup("wait"), nil, callSettings{cancel: cancel})
	err = r.err
	if !errors.Is(err, context.Canceled) || !cancelledStatus(err) {
		t.Errorf("at its cancellation: %v", err)
	}
	flight.end(7)
	flight.cancel(7) // a cancel for a call answered already: nothing
}

func TestOnlyWellFormedTraceparentsReachAPlugin(t *testing.T) {
	for text, valid := range map[string]bool{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01": true,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01": false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01": false,
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01": false,
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01": false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7":    false,
		"": false,
	} {
		if validTraceparent(text) != valid {
			t.Errorf("%q: valid %v", text, !valid)
		}
	}
}

type emptyPlugin struct{}

func (*emptyPlugin) Info() plugcheck.Info      { return plugcheck.Info{} }
func (*emptyPlugin) Init(plugcheck.Host) error { return nil }
func (*emptyPlugin) Shutdown() error           { return nil }

type statefulPlugin struct{ total int }

type otherStateful statefulPlugin

func (*otherStateful) Info() plugcheck.Info      { return plugcheck.Info{} }
func (*otherStateful) Init(plugcheck.Host) error { return nil }
func (*otherStateful) Shutdown() error           { return nil }

func (*statefulPlugin) Info() plugcheck.Info      { return plugcheck.Info{} }
func (*statefulPlugin) Init(plugcheck.Host) error { return nil }
func (*statefulPlugin) Shutdown() error           { return nil }

// An instance handed out again is one with room for state at the same
// address; pointers to zero-size values may share one address and hold
// nothing to share.
func TestAnInstanceHandedOutAgainIsTheSamePointerToState(t *testing.T) {
	one := &statefulPlugin{}
	if !samePlugin(one, one) || samePlugin(one, &statefulPlugin{}) {
		t.Error("a pointer to state: the same one only when it is one")
	}
	if samePlugin(&emptyPlugin{}, &emptyPlugin{}) {
		t.Error("two zero-size values were taken for one instance")
	}
	if samePlugin(one, &emptyPlugin{}) {
		t.Error("values of two types were taken for one")
	}
	// The same value under another pointer type is the same instance.
	if !samePlugin(one, (*otherStateful)(unsafe.Pointer(one))) {
		t.Error("one instance, converted to another type, was taken for two")
	}
	var typedNil *statefulPlugin
	if samePlugin(typedNil, typedNil) || !isNilPointer(typedNil) {
		t.Error("a typed nil is a nil instance, not a live one")
	}
}

// A call's copy of its input is exactly as long as the input, capacity
// included, so slicing past it fails as it would on the series' bytes.
func TestAFreshInputHasNoRoomPastItsEnd(t *testing.T) {
	for _, n := range []int{0, 1, 3, 9, 1000} {
		in := make([]byte, n)
		if got := fresh(in); len(got) != n || cap(got) != n {
			t.Errorf("%d bytes: len %d cap %d", n, len(got), cap(got))
		}
	}
	if fresh(nil) != nil {
		t.Error("nil became bytes")
	}
}

type nilPanicIs struct{}

func (nilPanicIs) Error() string { return "x" }
func (nilPanicIs) Is(error) bool { panic(nil) }
func (nilPanicIs) Unwrap() error { return nil }

// An error whose Is panics with nil is no cancellation, told at once (not
// after the bound, which would stop every later error being asked).
func TestAnErrorWhoseIsPanicsWithNilAnswersAtOnce(t *testing.T) {
	defer unanswered.Store(false)
	if errorCancelled(nilPanicIs{}) {
		t.Error("taken for a cancellation")
	}
	// Waiting out the bound is what marks values unanswered: not a clock.
	if unanswered.Load() {
		t.Error("the panic was taken for no answer")
	}
}

// A call's context ends when the call does, deadline or not; and a
// method's own deadline error on a call nobody cancelled is not the
// call's cancellation.
func TestACallsContextEndsWithItAndOnlyItsEndIsACancellation(t *testing.T) {
	h := newHost(1)
	h.open = true
	var kept context.Context
	_ = h.RegisterContext("keep", func(ctx context.Context, _ []byte) ([]byte, error) {
		kept = ctx
		return nil, context.DeadlineExceeded
	})
	r, _ := h.invoke(h.lookup("keep"), nil, callSettings{})
	select {
	case <-kept.Done():
	default:
		t.Error("the call's context lives on after the call")
	}
	if r.cancelled() {
		t.Error("a method's own DeadlineExceeded was taken for the call's cancellation")
	}
}

type makerPlugin struct{ statefulPlugin }

func (*makerPlugin) NewInstance() (plugcheck.Plugin, error) { return &makerPlugin{}, nil }

// describe says a plugin makes instances only when a call by key would
// make one: of 1.1, with NewInstance. The parent keeps a worker that holds
// them alive (no idle stop), so a guess here would pin any 1.1 worker.
func TestOnlyA11PluginWithNewInstanceIsSaidToMakeInstances(t *testing.T) {
	for _, c := range []struct {
		p     plugcheck.Plugin
		minor uint16
		makes bool
	}{
		{&makerPlugin{}, 1, true},
		{&makerPlugin{}, 0, false},
		{&statefulPlugin{}, 1, false},
	} {
		s := &session{current: &loaded{p: c.p, info: plugcheck.Info{ABIMajor: 1, ABIMinor: c.minor}}}
		if got := s.makesInstances(); got != c.makes {
			t.Errorf("%T of 1.%d: makes instances %v", c.p, c.minor, got)
		}
	}
}
