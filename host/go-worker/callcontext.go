package main

// Contract 1.1's call context for Go-native plugins: a method registered
// through the host's RegisterContext receives a context.Context that
// carries its call's deadline (ctx.Deadline), its cancellation (ctx.Done,
// ctx.Err) and its trace (the host's TraceParent(ctx), and LogContext,
// which tags a line with the call's trace id).
//
// The contract package cannot grow these (a new version of
// plugcheck.dev/abi is another package to Go, and every 1.0 plugin would
// stop loading), so they are methods of the host value Init receives,
// whose types are the standard library's: a plugin finds them with a type
// assertion on an interface it declares itself. Likewise a plugin makes
// more instances through a NewInstance method on its exported value.

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	plugcheck "plugcheck.dev/abi"
)

// hostABIMinor is the newest minor of the Go-native contract this worker
// speaks. The contract package's own ABIMinor stays 0: the package cannot
// change without every 1.0 plugin ceasing to load.
const hostABIMinor = 1

// ContextMethod is a contract 1.1 method: it receives its call's context.
type ContextMethod = func(ctx context.Context, in []byte) ([]byte, error)

// instanceMaker is a 1.1 plugin that makes instances: each one a Plugin
// value of its own, initialised with a host of its own (so its methods
// are its own), shut down when the host is done with it.
type instanceMaker interface {
	NewInstance() (plugcheck.Plugin, error)
}

// waitProbe is the method the deadline and cancellation cases call: it
// returns once its call is cancelled or its deadline passes.
const waitProbe = "selftest.wait"

// statusCancelled is a call that ended because it was cancelled or ran
// out of time (PLUGCHECK_ERR_CANCELLED): a method that returns its
// context's error.
const statusCancelled = -6

// callFrame is one call of a 1.1 method: what LogContext and TraceParent
// read from the context, and whether the call is over (a line logged
// through a context kept past its call is counted, not tagged).
type callFrame struct {
	traceparent string
	// traceID is the traceparent's trace id, "" without one.
	traceID string
	// goroutine runs the method: a line it logs through Log, not through
	// LogContext, lacks the trace id.
	goroutine uint64
	ended     atomic.Bool
}

type frameKey struct{}

// staleLogs counts lines logged through the context of a call that had
// returned.
var staleLogs atomic.Uint64

// untaggedInCall counts lines logged through Log, to any instance's host,
// by the goroutine running a 1.1 method: lines of the call without its
// trace id, kept or not.
var untaggedInCall atomic.Uint64

// runningCall is the 1.1 call running now, nil between calls: the worker
// calls one method at a time, and a line its goroutine logs through any
// host's Log (another instance's too) is that call's.
var runningCall struct {
	sync.Mutex
	frame *callFrame
}

func setRunningCall(frame *callFrame) {
	runningCall.Lock()
	defer runningCall.Unlock()
	runningCall.frame = frame
}

// onCallingGoroutine says whether the running goroutine is running a 1.1
// method now.
func onCallingGoroutine() bool {
	runningCall.Lock()
	frame := runningCall.frame
	runningCall.Unlock()
	return frame != nil && frame.goroutine == goroutineID()
}

// withFrame is ctx carrying a new frame for a call with `traceparent`
// ("" for none); invoke names the goroutine that runs it.
func withFrame(ctx context.Context, traceparent string) (context.Context, *callFrame) {
	frame := &callFrame{traceparent: traceparent}
	if traceparent != "" {
		frame.traceID = strings.Split(traceparent, "-")[1]
	}
	return context.WithValue(ctx, frameKey{}, frame), frame
}

// frameOf is the frame a plugin's context carries; nil for a context of
// no call (context.Background, nil, or a context the plugin made).
func frameOf(ctx context.Context) (frame *callFrame) {
	if ctx == nil {
		return nil
	}
	// A context of the plugin's own making may panic in Value: then it
	// carries no frame of ours.
	defer func() {
		if recover() != nil {
			frame = nil
		}
	}()
	frame, _ = ctx.Value(frameKey{}).(*callFrame)
	return frame
}

// goroutineID is the running goroutine's number, from the first line of
// its stack (`goroutine 42 [running]:`): Go offers no other way, and a
// line logged through Log is told apart by it only while a 1.1 call runs.
func goroutineID() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	field := bytes.TrimPrefix(buf[:n], []byte("goroutine "))
	if end := bytes.IndexByte(field, ' '); end > 0 {
		id, _ := strconv.ParseUint(string(field[:end]), 10, 64)
		return id
	}
	return 0
}

// validTraceparent says whether text is a version-00 W3C traceparent
// with lowercase hex fields and non-zero ids (the parent sends only
// those; anything else reaches no plugin).
func validTraceparent(text string) bool {
	parts := strings.Split(text, "-")
	if len(parts) != 4 || parts[0] != "00" {
		return false
	}
	for i, want := range []int{2, 32, 16, 2} {
		part := parts[i]
		if len(part) != want || strings.Trim(part, "0123456789abcdef") != "" {
			return false
		}
	}
	return strings.Trim(parts[1], "0") != "" && strings.Trim(parts[2], "0") != ""
}

// callSettings are what a caller of a method hands it (all optional): a
// deadline, a context whose cancellation cancels the call, a trace.
type callSettings struct {
	deadline    time.Time
	cancel      context.Context
	traceparent string
}

// contextFor is the context a 1.1 method is called with, and the frame in
// it; release ends both once the method returned.
func contextFor(settings callSettings) (ctx context.Context, frame *callFrame, release func()) {
	ctx = settings.cancel
	if ctx == nil {
		ctx = context.Background()
	}
	// Done once the call returns, whatever else: a goroutine the method
	// left waiting on ctx.Done() (the net/http idiom) ends with its call,
	// as in an embedding host's calls.
	var cancel context.CancelFunc
	if settings.deadline.IsZero() {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithDeadline(ctx, settings.deadline)
	}
	ctx, frame = withFrame(ctx, settings.traceparent)
	return ctx, frame, func() {
		frame.ended.Store(true)
		cancel()
	}
}

// cancelledStatus says whether a method's error is its context's: the
// call ended because it was cancelled or its deadline passed.
func cancelledStatus(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
