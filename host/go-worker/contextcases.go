package main

// Contract 1.1's cases for a Go-native plugin, judged as the Rust worker
// judges a C-ABI plugin (host/src/cases/instances.rs and context.rs):
// instances-isolated (two fresh instances answer the same calls alike,
// and one's state is untouched by calls to the other), trace-in-logs (the
// lines a method logs during its call carry the call's trace id),
// deadline-visible and cancel-honoured (the wait probe returns soon after
// its context's deadline or cancellation, and not before).

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	plugcheck "plugcheck.dev/abi"
)

// The cases' numbers, the Rust worker's: how many methods and inputs the
// instance and trace cases call, how soon the probe must return, and the
// two windows, apart, so a probe that sleeps a fixed time passes one at
// most.
const (
	isolatedMethods      = 16
	isolatedInputs       = 4
	tracedMethods        = 32
	tracedInputs         = 4
	problemsListed       = 3
	keptLogs             = 4
	soon                 = 500 * time.Millisecond
	probeDeadline        = 1000 * time.Millisecond
	cancelAfterDeadline  = 1000 * time.Millisecond
	cancelAt             = 100 * time.Millisecond
	deadlineAfterCancel  = 1500 * time.Millisecond
	contract10NoInstance = "the plugin is of contract 1.0: it has one instance, and its methods receive no call context"
)

// readyFor11 loads the plugin and, if it is of contract 1.1, initialises
// it; a 1.0 plugin's case is skipped from what loading told (`so` says
// what the case would have looked for), without running Init again, as
// the Rust worker skips a 1.0 plugin's 1.1 cases.
func (s *session) readyFor11(so string) *outcome {
	if failed := s.ensureLoaded(); failed != nil {
		return &failed.outcome
	}
	if s.current.info.ABIMinor < 1 {
		o := skipped(contract10NoInstance + so)
		return &o
	}
	if failed := s.ensureInit(); failed != nil {
		return &failed.outcome
	}
	return nil
}

// statusText is a call's status as the Rust worker words it.
func statusText(status int32) string {
	switch status {
	case 0:
		return "0 (OK)"
	case -5:
		return "-5 (FAILED)"
	case statusCancelled:
		return "-6 (CANCELLED)"
	}
	return fmt.Sprint(status)
}

// reply is one call's answer as the instance case compares them: its
// status and output, as the Rust worker compares them (an error's words
// are shown, not compared: they may name a pointer or a time).
type reply struct {
	status int32
	output []byte
	// err is read for its words only when a reason shows them.
	err error
}

func (r reply) same(other reply) bool {
	return r.status == other.status && bytes.Equal(r.output, other.output)
}

// fresh is a copy of an input, for one call: a method that writes into
// its input must not change what the next call gets. Exactly as long as
// the input, its capacity too (append would round it up): a method that
// slices past its input's length must fail as it would on the series'.
func fresh(input []byte) []byte {
	if input == nil {
		return nil
	}
	copied := make([]byte, len(input))
	copy(copied, input)
	return copied
}

func (r reply) String() string {
	shown := r.output
	more := ""
	if len(shown) > 16 {
		shown, more = shown[:16], "…"
	}
	text := fmt.Sprintf("%s with %d byte(s) 0x%x%s", statusText(r.status), len(r.output), shown, more)
	if r.err != nil {
		text += fmt.Sprintf(" (%q)", clip(errorText(r.err), 80))
	}
	return text
}

// replyOf is what a method's return comes to, its output copied: a
// plugin may hand out the same buffer again, rewritten.
func replyOf(r result) reply {
	out := append([]byte(nil), r.out...)
	switch {
	case r.err == nil:
		return reply{output: out}
	case r.cancelled():
		return reply{status: statusCancelled, output: out, err: r.err}
	}
	return reply{status: -5, output: out, err: r.err}
}

// series is the fuzz series' inputs and what each is, for the cases that
// call methods on its first inputs.
func (s *session) series() ([][]byte, []string, *outcome) {
	if s.settings.FuzzSeries == nil {
		o := skipped("the parent sent no fuzz inputs: update plugcheck")
		return nil, nil, &o
	}
	_, inputs, whats, err := readSeries(*s.settings.FuzzSeries)
	if err != nil {
		o := fail(fmt.Sprintf("cannot read the fuzz inputs the parent wrote: %v", err))
		return nil, nil, &o
	}
	return inputs, whats, nil
}

func (s *session) instancesIsolated() outcome {
	if o := s.readyFor11(""); o != nil {
		return *o
	}
	if _, makes := s.current.p.(instanceMaker); !makes {
		return skipped("the plugin has one instance: its value has no `NewInstance() (plugcheck.Plugin, error)`, so there is no other instance to keep apart from")
	}
	inputs, whats, failed := s.series()
	if failed != nil {
		return *failed
	}
	before := map[uint64]bool{}
	for _, g := range pluginGoroutines(s.broughtPackages(s.current)) {
		before[g.id] = true
	}
	x, failed := s.newInstance()
	if failed != nil {
		return *failed
	}
	y, failed := s.newInstance(x)
	if failed != nil {
		x.shutdown()
		return *failed
	}
	o := compareInstances(x, y, inputs, whats)
	// The instances end here: a Shutdown that fails, or leaves a goroutine
	// of theirs running, is the plugin's failure too (the exported
	// instance's is judged by `shutdown`).
	for _, instance := range []*loaded{y, x} {
		if failed := instance.shutdown(); failed != nil && o.Verdict == verdictPass {
			o = fail("an instance made by NewInstance failed to shut down: " + failed.Reason)
		}
	}
	if left := s.goroutinesBeyond(before); len(left) > 0 && o.Verdict == verdictPass {
		o = fail(fmt.Sprintf("the two instances NewInstance made left %d goroutine(s) running after their Shutdown: %s; an instance's Shutdown stops every goroutine it started",
			len(left), strings.Join(first(left, 3), "; ")))
		o.Detail.Goroutines = left
	}
	return o
}

// goroutinesBeyond waits up to the grace for the plugin's goroutines to be
// those of `before` (by number: a goroutine's name changes once it
// starts), and names those that are not.
func (s *session) goroutinesBeyond(before map[uint64]bool) []string {
	brought := s.broughtPackages(s.current)
	deadline := time.Now().Add(time.Duration(s.settings.GraceMs) * time.Millisecond)
	for {
		var beyond []string
		for _, g := range pluginGoroutines(brought) {
			if !before[g.id] {
				beyond = append(beyond, g.name)
			}
		}
		if len(beyond) == 0 || time.Now().After(deadline) {
			sort.Strings(beyond)
			return beyond
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// compareInstances is instances-isolated's comparison of two fresh
// instances, x and y.
func compareInstances(x, y *loaded, inputs [][]byte, whats []string) outcome {
	all := x.host.callableNames()
	names := first(all, isolatedMethods)
	if theirs := first(y.host.callableNames(), isolatedMethods); strings.Join(names, "\x00") != strings.Join(theirs, "\x00") {
		return fail(fmt.Sprintf("two fresh instances registered different methods: %s on one, %s on the other", listNames(names), listNames(theirs)))
	}
	if len(names) == 0 {
		return skipped("the plugin's instances register no method but the wait probe: there is no call to compare them by")
	}
	count := isolatedInputs
	if count > len(inputs) {
		count = len(inputs)
	}
	type called struct {
		method string
		input  int
		reply  reply
	}
	// y alone gets the next inputs of the series, not x's again: a write
	// that only repeats x's would change nothing shared.
	aloneFrom, aloneTo := count, 2*count
	if aloneTo > len(inputs) {
		aloneFrom, aloneTo = 0, count
	}
	call := func(instance *loaded, name string, index int) (called, *outcome) {
		m := instance.host.lookup(name)
		r, p := instance.host.invoke(m, fresh(inputs[index]), callSettings{})
		if p != nil {
			o := failPanic(fmt.Sprintf("`%s` panicked on fuzz input #%d", clip(name, 60), index), p)
			return called{}, &o
		}
		return called{name, index, replyOf(r)}, nil
	}
	// The same calls to x and y in turn.
	var xReplies, yReplies []called
	var failedOnTheWay *outcome
turns:
	for _, name := range names {
		for index := 0; index < count; index++ {
			a, failed := call(x, name, index)
			if failed == nil {
				var b called
				b, failed = call(y, name, index)
				xReplies, yReplies = append(xReplies, a), append(yReplies, b)
			}
			if failed != nil {
				failedOnTheWay = failed
				break turns
			}
		}
	}
	// Then y alone: x gets no call, so its saved state must stay put.
	stateful, isStateful := x.p.(plugcheck.Stateful)
	save := func() ([]byte, *outcome) { return savedState(stateful) }
	if failedOnTheWay != nil {
		return *failedOnTheWay
	}
	var before, after []byte
	var failed *outcome
	if isStateful {
		if before, failed = save(); failed != nil {
			return *failed
		}
	}
	for _, name := range names {
		for index := aloneFrom; index < aloneTo; index++ {
			if _, failed := call(y, name, index); failed != nil {
				return *failed
			}
		}
	}
	if isStateful {
		if after, failed = save(); failed != nil {
			return *failed
		}
		if !bytes.Equal(before, after) {
			return fail(fmt.Sprintf("calls to one instance changed another's state: instance x saved %d bytes before calls to instance y alone and %d bytes after, and they differ; keep state in the instance, not in package variables",
				len(before), len(after)))
		}
	}
	for i := range xReplies {
		a, b := xReplies[i], yReplies[i]
		if !a.reply.same(b.reply) {
			return fail(fmt.Sprintf("two fresh instances answered the same call differently: `%s` on fuzz input #%d (%s) answered %s on one and %s on the other, which had the same calls before it, so state written through one instance is seen through the other (or the method's answers depend on time or chance, which cannot be told apart)",
				clip(a.method, 60), a.input, whats[a.input], a.reply, b.reply))
		}
	}
	stateNote := ""
	if isStateful {
		stateNote = ", and one's saved state was not touched by calls to the other"
	}
	return pass(fmt.Sprintf("two fresh instances answered the same %d call(s) alike, made in turn%s%s", len(xReplies), stateNote, ofMethods(len(names), len(all))))
}

// ofMethods says that only the first `called` of `all` methods were
// called, when so ("" otherwise).
func ofMethods(called, all int) string {
	if called == all {
		return ""
	}
	return fmt.Sprintf(" (the first %d of %d methods in name order)", called, all)
}

// listNames is `a`, `b` (or "none"), for a reason.
func listNames(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	quoted := make([]string, len(names))
	for i, name := range names {
		quoted[i] = "`" + clip(name, 60) + "`"
	}
	return strings.Join(quoted, ", ")
}

// numberedTrace is a trace context made from the case's seed and the
// call's place in the series, as the Rust worker makes it: the same trace
// ids on every run, and in snapshots.
func numberedTrace(seed uint64, method, input int) string {
	call := uint64(method)<<32 | uint64(input)
	return fmt.Sprintf("00-%016x%016x-%016x-01", seed, call^0x5ca1ab1e, call|1)
}

// contextMethods are the methods but the wait probe registered through
// RegisterContext.
func (l *loaded) contextMethods() []string {
	var names []string
	for _, name := range l.host.callableNames() {
		if l.host.lookup(name).speaks11() {
			names = append(names, name)
		}
	}
	return names
}

func (s *session) traceInLogs() outcome {
	if o := s.readyFor11(", so no trace id to log"); o != nil {
		return *o
	}
	names := s.current.contextMethods()
	if len(names) == 0 {
		return skipped("no method but the wait probe is registered through contract 1.1's RegisterContext: a 1.0 method gets no context, so no trace id to log")
	}
	inputs, whats, failed := s.series()
	if failed != nil {
		return *failed
	}
	count := tracedInputs
	if count > len(inputs) {
		count = len(inputs)
	}
	host := s.current.host
	staleBefore := staleLogs.Load()
	var problems []string
	var kept []logLine
	tagged, calls := 0, 0
	for m, name := range first(names, tracedMethods) {
		for index := 0; index < count; index++ {
			calls++
			trace := numberedTrace(s.settings.Seed, m, index)
			traceID := strings.Split(trace, "-")[1]
			host.takeLogs()
			untaggedBefore := untaggedInCall.Load()
			_, p := host.invoke(host.lookup(name), fresh(inputs[index]), callSettings{traceparent: trace})
			if p != nil {
				return failPanic(fmt.Sprintf("`%s` panicked on fuzz input #%d", clip(name, 60), index), p)
			}
			lines := host.takeLogs()
			untagged := untaggedInCall.Load() - untaggedBefore
			on := fmt.Sprintf("`%s` on fuzz input #%d (%s)", clip(name, 60), index, whats[index])
			seen := uint64(0)
			for _, line := range lines {
				switch {
				case line.TraceID != nil && *line.TraceID == traceID:
					tagged++
				case line.TraceID != nil:
					problems = append(problems, fmt.Sprintf("%s logged %q tagged with trace %s, not its call's %s", on, clip(line.Message, 80), *line.TraceID, traceID))
				case line.untaggedInCall:
					seen++
					problems = append(problems, fmt.Sprintf("%s logged %q without its call's trace id, through Log (or LogContext with a context not the call's): log through the host's LogContext with the call's context", on, clip(line.Message, 80)))
				default:
					// Another goroutine's line, of no call.
					continue
				}
				if len(kept) < keptLogs {
					kept = append(kept, line)
				}
			}
			if untagged > seen {
				problems = append(problems, fmt.Sprintf("%s logged %d more line(s) through Log (to another instance's host, or past the lines kept) without its call's trace id", on, untagged-seen))
			}
		}
	}
	if stale := staleLogs.Load() - staleBefore; stale > 0 {
		problems = append(problems, fmt.Sprintf("%d line(s) came through the context of a call that had already returned: a call's context is valid only while its method runs", stale))
	}
	var o outcome
	switch {
	case len(problems) > 0:
		more := ""
		if len(problems) > problemsListed {
			more = fmt.Sprintf("; and %d more", len(problems)-problemsListed)
		}
		o = fail(fmt.Sprintf("%d line(s) logged during a call without the call's trace id: %s%s", len(problems), strings.Join(first(problems, problemsListed), "; "), more))
	case tagged == 0:
		o = skipped(fmt.Sprintf("no method logged anything during its %d call(s), so there was no trace id to carry", calls))
	default:
		o = pass(fmt.Sprintf("%d line(s) logged during %d call(s), each tagged with its call's trace id%s", tagged, calls, ofMethods(len(first(names, tracedMethods)), len(names))))
	}
	o.Detail.Logs = kept
	return o
}

// probe is the plugin's wait probe, or the outcome of a plugin that has
// none to judge.
func (s *session) probe() (*method, *outcome) {
	if o := s.readyFor11(", so no deadline or cancellation to see"); o != nil {
		return nil, o
	}
	m := s.current.host.lookup(waitProbe)
	switch {
	case m == nil:
		o := skipped(fmt.Sprintf("the plugin registers no `%s` (contract 1.1: a method that returns once its call's context is done — cancelled or past its deadline), so its deadlines and cancellation cannot be observed", waitProbe))
		return nil, &o
	case !m.speaks11():
		o := fail(fmt.Sprintf("`%s` is registered through Register, so it gets no context and cannot see a deadline or a cancellation: register it through the host's RegisterContext", waitProbe))
		return nil, &o
	}
	return m, nil
}

// waited is what the wait probe answered, how long its call took, and
// when (after the call began) its context was cancelled, if it was.
type waited struct {
	reply       reply
	took        time.Duration
	cancelledAt time.Duration
	cancelled   bool
	panicked    *panicked
}

// waitOnProbe calls the probe with a deadline `deadline` from now and
// cancels its context `after` from now, unless it returned before.
func (s *session) waitOnProbe(m *method, deadline, after time.Duration) waited {
	cancelCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var w waited
	returned := false
	started := time.Now()
	timer := time.AfterFunc(after, func() {
		mu.Lock()
		defer mu.Unlock()
		if !returned {
			w.cancelled, w.cancelledAt = true, time.Since(started)
			cancel()
		}
	})
	defer timer.Stop()
	r, p := s.current.host.invoke(m, nil, callSettings{deadline: started.Add(deadline), cancel: cancelCtx})
	// When the method returned, not when its error had said what it is.
	took := time.Since(started)
	if !r.returned.IsZero() {
		took = r.returned.Sub(started)
	}
	mu.Lock()
	returned = true
	result := w
	mu.Unlock()
	result.took, result.panicked, result.reply = took, p, replyOf(r)
	return result
}

// probeOutcome adds the probe's status to an outcome, as the Rust worker
// reports it.
func probeOutcome(o outcome, r reply) outcome {
	o.Detail.Status = ptr(r.status)
	return o
}

func (s *session) deadlineVisible() outcome {
	m, failed := s.probe()
	if failed != nil {
		return *failed
	}
	w := s.waitOnProbe(m, probeDeadline, probeDeadline+cancelAfterDeadline)
	if w.panicked != nil {
		return failPanic(fmt.Sprintf("`%s` panicked", waitProbe), w.panicked)
	}
	deadlineMs := probeDeadline.Milliseconds()
	switch {
	case w.took < probeDeadline:
		return probeOutcome(fail(fmt.Sprintf("`%s` returned %s before its deadline of %d ms: it must wait until its call is cancelled or its deadline passes", waitProbe, statusText(w.reply.status), deadlineMs)), w.reply)
	case w.took >= probeDeadline+cancelAfterDeadline:
		return probeOutcome(fail(fmt.Sprintf("`%s` did not see its deadline of %d ms: it returned only when the call was cancelled %d ms after it; wait on the context's Done (or read its Deadline)", waitProbe, deadlineMs, cancelAfterDeadline.Milliseconds())), w.reply)
	case w.took > probeDeadline+soon:
		return probeOutcome(fail(fmt.Sprintf("`%s` returned more than %d ms after its deadline of %d ms (and before the call was cancelled)", waitProbe, soon.Milliseconds(), deadlineMs)), w.reply)
	}
	return probeOutcome(pass(fmt.Sprintf("`%s` returned %s within %d ms of its deadline of %d ms: the deadline is visible to the method", waitProbe, statusText(w.reply.status), soon.Milliseconds(), deadlineMs)), w.reply)
}

func (s *session) cancelHonoured() outcome {
	m, failed := s.probe()
	if failed != nil {
		return *failed
	}
	w := s.waitOnProbe(m, cancelAt+deadlineAfterCancel, cancelAt)
	if w.panicked != nil {
		return failPanic(fmt.Sprintf("`%s` panicked", waitProbe), w.panicked)
	}
	cancelMs := cancelAt.Milliseconds()
	switch {
	case !w.cancelled || w.took < w.cancelledAt:
		return probeOutcome(fail(fmt.Sprintf("`%s` returned %s before its call was cancelled at %d ms: it must wait until its call is cancelled or its deadline passes", waitProbe, statusText(w.reply.status), cancelMs)), w.reply)
	case w.took >= cancelAt+deadlineAfterCancel:
		return probeOutcome(fail(fmt.Sprintf("`%s` ignored its cancellation at %d ms: it returned only at its deadline, %d ms later; wait on the context's Done, not only its Deadline", waitProbe, cancelMs, deadlineAfterCancel.Milliseconds())), w.reply)
	case w.took > w.cancelledAt+soon:
		return probeOutcome(fail(fmt.Sprintf("`%s` returned more than %d ms after its call was cancelled (and before its deadline)", waitProbe, soon.Milliseconds())), w.reply)
	}
	return probeOutcome(pass(fmt.Sprintf("`%s` returned %s within %d ms of its call's cancellation", waitProbe, statusText(w.reply.status), soon.Milliseconds())), w.reply)
}
