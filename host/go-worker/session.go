package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"plugin"
	"reflect"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	plugcheck "plugcheck.dev/abi"
)

// host is the plugcheck.Host a plugin (or one of its instances) is given
// at Init. For a plugin of contract 1.1 it has RegisterContext,
// LogContext and TraceParent too (callcontext.go).
type host struct {
	mu   sync.Mutex
	open bool
	// minor is the contract minor the plugin said it was built against:
	// a 1.0 plugin may not register through 1.1's RegisterContext.
	minor    uint16
	methods  map[string]*method
	rejected []string
	// droppedRejections are refusals past rejectionsKept, counted only.
	droppedRejections int
	logs              []logLine
	// forwarder, while an embedding host's calls are served, sends each
	// line kept to the parent as it is logged; sent counts the lines of
	// logs it sent.
	forwarder *forwarder
	sent      int
}

// method is a registered method: a 1.0 one (plugcheck.Method) or a 1.1
// one, which receives its call's context.
type method struct {
	plain   plugcheck.Method
	context ContextMethod
}

// speaks11 says whether the method receives a call context.
func (m *method) speaks11() bool { return m.context != nil }

func newHost(minor uint16) *host { return &host{minor: minor, methods: map[string]*method{}} }

func (h *host) Log(level int, message string) {
	h.log(nil, level, message)
}

// LogContext logs a line tagged with the trace id of ctx's call: contract
// 1.1's log for a method's lines.
func (h *host) LogContext(ctx context.Context, level int, message string) {
	frame := frameOf(ctx)
	if frame != nil && frame.ended.Load() {
		staleLogs.Add(1)
		frame = nil
	}
	h.log(frame, level, message)
}

// TraceParent is the W3C traceparent of ctx's call, "" when it carries
// none: for a plugin that passes its caller's trace on.
func (h *host) TraceParent(ctx context.Context) string {
	if frame := frameOf(ctx); frame != nil && !frame.ended.Load() {
		return frame.traceparent
	}
	return ""
}

func (h *host) log(frame *callFrame, level int, message string) {
	if len(message) > logLineBytes {
		message = clip(message, logLineBytes)
	}
	line := logLine{Level: int32(level), Message: strings.ToValidUTF8(message, "\uFFFD")}
	if frame != nil && frame.traceID != "" {
		line.TraceID = ptr(frame.traceID)
	}
	if frame == nil && onCallingGoroutine() {
		line.untaggedInCall = true
		untaggedInCall.Add(1)
	}
	h.mu.Lock()
	// Past the lines kept, none is forwarded either (as in the Rust
	// worker): a plugin that logs without end does not flood the channel.
	if len(h.logs) >= logLinesKept {
		h.mu.Unlock()
		return
	}
	h.logs = append(h.logs, line)
	var forward func(logLine)
	if h.forwarder != nil {
		if forward = h.forwarder.get(); forward != nil {
			h.sent = len(h.logs)
		}
	}
	h.mu.Unlock()
	if forward != nil {
		forward(line)
	}
}

func (h *host) Register(name string, m plugcheck.Method) error {
	if m == nil {
		return h.register(name, nil, "Register")
	}
	return h.register(name, &method{plain: m}, "Register")
}

// RegisterContext registers a method that receives its call's context:
// contract 1.1's Register.
func (h *host) RegisterContext(name string, m ContextMethod) error {
	if m == nil {
		return h.register(name, nil, "RegisterContext")
	}
	return h.register(name, &method{context: m}, "RegisterContext")
}

func (h *host) register(name string, m *method, through string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	shown := fmt.Sprintf("%q", clip(name, 60))
	var why string
	switch {
	case !h.open:
		why = "outside Init"
	case len(name) > methodNameBytes:
		why = fmt.Sprintf("the name is %d bytes long, over the %d-byte bound", len(name), methodNameBytes)
	case name == "" || !utf8.ValidString(name):
		why = "the name is empty or not UTF-8"
	case m == nil:
		why = "the method is nil"
	case m.speaks11() && h.minor < 1:
		why = fmt.Sprintf("registered through %s, which is contract 1.1's, by a plugin that says it was built against 1.%d: set Info's ABIMinor to 1", through, h.minor)
	case h.methods[name] != nil:
		why = "registered twice"
	case len(h.methods) >= methods:
		why = fmt.Sprintf("more than %d methods registered", methods)
	}
	if why != "" {
		if len(h.rejected) < rejectionsKept {
			h.rejected = append(h.rejected, shown+": "+why)
		} else {
			h.droppedRejections++
		}
		return fmt.Errorf("plugcheck: method %s refused: %s", shown, why)
	}
	h.methods[name] = m
	return nil
}

func (h *host) names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.methods))
	for name := range h.methods {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// callableNames are the methods the cases call: all but a 1.1 wait probe
// (calling one only waits; a 1.0 method of that name is an ordinary
// method, as in the Rust worker).
func (h *host) callableNames() []string {
	names := h.names()
	kept := names[:0]
	for _, name := range names {
		if m := h.lookup(name); name == waitProbe && m != nil && m.speaks11() {
			continue
		}
		kept = append(kept, name)
	}
	return kept
}

func (h *host) lookup(name string) *method {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.methods[name]
}

// keptLogs is a copy of the lines kept (a plugin's goroutines may be
// logging).
func (h *host) keptLogs() []logLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logLine(nil), h.logs...)
}

// takeLogs hands over the lines kept and empties them.
func (h *host) takeLogs() []logLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	lines := h.logs
	h.logs, h.sent = nil, 0
	return lines
}

// sendUnsent forwards the lines kept before forwarding began (Init's, at
// a describe), once forwarding is on.
func (h *host) sendUnsent() {
	h.mu.Lock()
	var forward func(logLine)
	if h.forwarder != nil {
		forward = h.forwarder.get()
	}
	if forward == nil {
		h.mu.Unlock()
		return
	}
	pending := append([]logLine(nil), h.logs[h.sent:]...)
	h.sent = len(h.logs)
	h.mu.Unlock()
	for _, line := range pending {
		forward(line)
	}
}

// forwarder sends the lines a plugin logs to the parent while an
// embedding host's calls are served: one for the session, shared by the
// host of every instance, so lines logged between calls, or by another
// instance's goroutines, are sent too (with the last call's number).
type forwarder struct {
	mu sync.Mutex
	to func(logLine)
}

func (f *forwarder) set(to func(logLine)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.to = to
}

func (f *forwarder) get() func(logLine) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.to
}

// result is what a method returned: its output and its error, and when.
// The error's words (message) and whether it is its context's
// (cancelled) are read only where a reason or a status needs them: each
// reading runs the plugin's code, bounded.
type result struct {
	out []byte
	err error
	// ctxDone: the method had a context, and it was done (cancelled or
	// past its deadline) when the method returned: only then is an error
	// of the context's a cancellation, not one of the method's own
	// timeouts.
	ctxDone bool
	// returned is when the method returned.
	returned time.Time
}

// message is the error's words ("" for none).
func (r result) message() string { return errorIfAny(r.err) }

// cancelled says whether the call ended because its context was done.
func (r result) cancelled() bool { return r.err != nil && r.ctxDone && errorCancelled(r.err) }

// invoke calls m with in: a 1.1 method in a context made from settings.
// A panic is recovered and returned.
func (h *host) invoke(m *method, in []byte, settings callSettings) (r result, p *panicked) {
	read := func() { r.returned = time.Now() }
	if !m.speaks11() {
		p = guard(func() { r.out, r.err = m.plain(in); read() })
		return r, p
	}
	ctx, frame, release := contextFor(settings)
	p = guard(func() {
		// The goroutine guard runs the method on: its lines through Log
		// are the call's, untagged.
		frame.goroutine = goroutineID()
		setRunningCall(frame)
		r.out, r.err = m.context(ctx, in)
		read()
		// Past its deadline counts as done even before the context's
		// own timer has fired: a method that slept to the deadline and
		// returned its error must not be told apart by a race.
		deadline, hasDeadline := ctx.Deadline()
		r.ctxDone = ctx.Err() != nil || hasDeadline && !r.returned.Before(deadline)
	})
	setRunningCall(nil)
	release()
	return r, p
}

// loaded is one version of the plugin in this process.
type loaded struct {
	plug *plugin.Plugin
	p    plugcheck.Plugin
	info plugcheck.Info
	// packagePath is the plugin's package path, which Go loads once per
	// process.
	packagePath string
	host        *host
	initialized bool
	// brought are the packages whose goroutines are the plugin's, once
	// asked (broughtPackages).
	brought map[string]bool
	// forward is the session's forwarder, given to the host of each Init.
	forward *forwarder
}

type session struct {
	path     string
	settings settings
	plug     *plugin.Plugin
	current  *loaded
	// first is the version the worker was asked to judge; reports name it
	// even after a reload switched to another.
	first *loaded
	// loadMs and initMs are the first load's and init's, for load-time.
	loadMs, initMs *float64
	// loadFailure is how loading the plugin failed, once it did.
	loadFailure *stepError
	copies      int
	// instances are those an embedding host's calls made by key.
	instances map[string]*loaded
	// forwarding is on while an embedding host's calls are served.
	forwarding *forwarder
	// announce tells the parent of a fuzz call before it is made.
	announce func(method string, input uint32)
}

func newSession(path string) *session { return &session{path: path, forwarding: &forwarder{}} }

// panicked is a recovered panic: its value and the plugin's frame.
type panicked struct {
	value string
	frame string
}

func (p *panicked) String() string {
	if p.frame == "" {
		return p.value
	}
	return fmt.Sprintf("%s (at %s)", p.value, p.frame)
}

// guard runs a call into the plugin on a goroutine of its own, recovering
// a panic in it. Whether the call panicked is told by a flag set after it
// returns, not by recover's value: `panic(nil)` (or a nil error) recovers
// as nil before Go 1.21, and under a go.mod that asks for older semantics
// after it. On its own goroutine, a call that ends it (runtime.Goexit,
// which no recover stops) is reported too, where it would otherwise end
// the worker's own goroutine and leave the worker hanging.
func guard(call func()) *panicked {
	ended := make(chan *panicked, 1)
	go func() {
		// A Goexit runs the deferred calls, recover stops nothing, and the
		// goroutine goes on ending: past the inner function's return only
		// after a return or a recovered panic (panic(nil) included).
		goexit := &panicked{value: "runtime.Goexit: the call ended its goroutine without returning"}
		defer func() {
			if goexit != nil {
				ended <- goexit
			}
		}()
		var p *panicked
		func() {
			completed := false
			defer func() {
				if completed {
					return
				}
				value := recover()
				what := "panic(nil): a panic with a nil value"
				if value != nil {
					what = valueText(value, "the panic value")
				}
				p = &panicked{value: clip(what, 500), frame: pluginFrame(debug.Stack())}
				goexit.frame = p.frame
			}()
			call()
			completed = true
		}()
		goexit = nil
		ended <- p
	}()
	return <-ended
}

// textBound is how long the worker waits for a plugin's value to answer
// about itself (its Error, String, Unwrap or Is method is the plugin's
// code).
const textBound = time.Second

// unanswered is set once a plugin's value did not answer within the
// bound: the worker asks none again (each would cost the bound, on calls
// whose answers nothing reads), and says why.
var unanswered atomic.Bool

// askValue runs ask, which calls a plugin's value's methods, without
// trusting it: a panic gives panicked, no answer within the bound gives
// timedOut (and no value is asked again).
func askValue[T any](ask func() T, panicked, timedOut T) T {
	if unanswered.Load() {
		return timedOut
	}
	said := make(chan T, 1)
	go func() {
		// Told by a flag, not by recover's value: panic(nil) recovers
		// as nil under this module's Go version.
		answered := false
		defer func() {
			if !answered {
				recover()
				said <- panicked
			}
		}()
		answer := ask()
		answered = true
		said <- answer
	}()
	timer := time.NewTimer(textBound)
	defer timer.Stop()
	select {
	case answer := <-said:
		return answer
	case <-timer.C:
		// An answer ready as the bound passed (a stalled process wakes
		// to both) is still an answer.
		select {
		case answer := <-said:
			return answer
		default:
		}
		unanswered.Store(true)
		return timedOut
	}
}

// valueText is a plugin's value (a panic value, an error) as text: its
// Error or String method may panic or never return.
func valueText(value any, what string) string {
	return askValue(func() string { return fmt.Sprint(value) },
		fmt.Sprintf("(%s, a %T, panicked when asked what it is)", what, value),
		fmt.Sprintf("(%s, a %T, not read: a value of the plugin's did not say what it is within %s)", what, value, textBound))
}

// errorText is an error the plugin returned, as text (valueText).
func errorText(err error) string { return valueText(err, "the error") }

// errorCancelled says whether an error the plugin returned is its
// context's: the context's own error at once; a wrapped one through
// errors.Is, which calls the plugin's Unwrap and Is (they may loop, block
// or panic: none of those is a cancellation).
func errorCancelled(err error) bool {
	if err == context.Canceled || err == context.DeadlineExceeded {
		return true
	}
	return askValue(func() bool { return cancelledStatus(err) }, false, false)
}

// pluginFrame is the innermost frame of a stack that is not the runtime's,
// the plugin package's or this worker's: where the plugin panicked.
func pluginFrame(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	seenPanic := false
	for i := 0; i+1 < len(lines); i++ {
		function := lines[i]
		if strings.HasPrefix(function, "panic(") {
			seenPanic = true
			continue
		}
		if !seenPanic || strings.HasPrefix(function, "\t") || function == "" {
			continue
		}
		if strings.HasPrefix(function, "runtime.") || strings.HasPrefix(function, "plugin.") ||
			strings.HasPrefix(function, "main.") {
			continue
		}
		name := function
		if cut := strings.LastIndex(name, "("); cut > 0 {
			name = name[:cut]
		}
		place := strings.TrimSpace(lines[i+1])
		if cut := strings.LastIndex(place, " +0x"); cut > 0 {
			place = place[:cut]
		}
		return clip(fmt.Sprintf("%s (%s)", name, filepath.Base(place)), 300)
	}
	return ""
}

func clip(text string, max int) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	if len(text) <= max {
		return text
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut] + "…"
}

// anotherPath gives a build a second path in the run's scratch directory:
// a hard link where it can (no bytes copied), else a copy.
func (s *session) anotherPath(path string) (string, error) {
	dir := os.TempDir()
	if s.settings.Scratch != nil {
		dir = *s.settings.Scratch
	}
	s.copies++
	target := filepath.Join(dir, fmt.Sprintf("go-%d-%d-%s", os.Getpid(), s.copies, filepath.Base(path)))
	if os.Link(path, target) == nil {
		return target, nil
	}
	from, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer from.Close()
	to, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o700)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(to, io.LimitReader(from, 1<<30)); err != nil {
		to.Close()
		return "", err
	}
	return target, to.Close()
}

// stepError is a failed step of loading a build: the case it belongs to
// (a CaseID, or a step of a reload: save-state, restore-state), and the
// outcome.
type stepError struct {
	stage   string
	outcome outcome
}

// open checks the build's binding and opens it. Go-native plugins are
// opened where they are: the worker lives for one check, and a build that
// must be rebuilt while loaded gets a new package path anyway.
func (s *session) open(path string) (*plugin.Plugin, float64, *stepError) {
	facts, err := pluginFacts(path)
	if err != nil {
		return nil, 0, &stepError{string(caseLoad), fail(fmt.Sprintf("cannot read the plugin's ELF headers: %v", err))}
	}
	self, err := workerFacts()
	if err != nil {
		return nil, 0, &stepError{string(caseLoad), fail(fmt.Sprintf("the Go worker cannot read its own build (%v): a plugcheck problem, please report it", err))}
	}
	if m := compareBuilds(facts, self); m != nil {
		o := fail(m.reason)
		o.Detail.Binding = m.detail()
		return nil, 0, &stepError{string(caseLoad), o}
	}
	return s.openChecked(path, path)
}

// openChecked opens `file`, a build whose binding was checked, reporting
// it as `path`.
func (s *session) openChecked(file, path string) (*plugin.Plugin, float64, *stepError) {
	var plug *plugin.Plugin
	var openErr error
	started := time.Now()
	if p := guard(func() { plug, openErr = plugin.Open(file) }); p != nil {
		return nil, 0, &stepError{string(caseLoad), failPanic("the plugin's package initialization (init) panicked during plugin.Open", p)}
	}
	ms := float64(time.Since(started).Microseconds()) / 1000
	if openErr != nil {
		// Go names the file it opened, maybe a second path: name the build.
		message := strings.ReplaceAll(openErr.Error(), strings.TrimSuffix(file, ".so"), strings.TrimSuffix(path, ".so"))
		return nil, 0, &stepError{string(caseLoad), fail(fmt.Sprintf("plugin.Open refused it: %s", clip(message, 2000)))}
	}
	loadedFrom[plug] = file
	return plug, ms, nil
}

// enter finds the exported Plugin in an opened build and reads its Info.
func enter(plug *plugin.Plugin) (*loaded, *stepError) {
	l := &loaded{plug: plug, packagePath: packagePath(plug)}
	symbol, err := plug.Lookup("Plugin")
	if err != nil {
		exports := exportedNames(plug)
		listed := "nothing"
		if len(exports) > 0 {
			listed = strings.Join(exports, ", ")
		}
		o := fail(fmt.Sprintf("the plugin exports no `Plugin` (Lookup: %s); it exports %s: declare `var Plugin plugcheck.Plugin = …` in its main package",
			clip(err.Error(), 300), clip(listed, 1000)))
		o.Detail.Symbol = ptr("Plugin")
		return nil, &stepError{string(caseLookupEntry), o}
	}
	pointer, ok := symbol.(*plugcheck.Plugin)
	if !ok {
		return nil, &stepError{string(caseDescriptor), fail(fmt.Sprintf(
			"`Plugin` is a %T, not a plugcheck.Plugin variable (Lookup gives a *plugcheck.Plugin for one): declare it as `var Plugin plugcheck.Plugin = …`",
			symbol))}
	}
	if *pointer == nil {
		return nil, &stepError{string(caseDescriptor), fail("`Plugin` is nil: assign the plugin's value to it (`var Plugin plugcheck.Plugin = &myPlugin{}`)")}
	}
	l.p = *pointer
	if p := guard(func() { l.info = l.p.Info() }); p != nil {
		return nil, &stepError{string(caseABIVersion), failPanic("Info panicked", p)}
	}
	if l.info.ABIMajor != plugcheck.ABIMajor || l.info.ABIMinor > hostABIMinor {
		o := fail(fmt.Sprintf(
			"the plugin was built against contract %d.%d, this host accepts %d.0 to %d.%d: rebuild it against %s %d.x",
			l.info.ABIMajor, l.info.ABIMinor, plugcheck.ABIMajor, plugcheck.ABIMajor, hostABIMinor, contractModule, plugcheck.ABIMajor))
		o.Detail.HostABI = ptr(fmt.Sprintf("%d.%d", plugcheck.ABIMajor, hostABIMinor))
		o.Detail.PluginABI = ptr(fmt.Sprintf("%d.%d", l.info.ABIMajor, l.info.ABIMinor))
		return nil, &stepError{string(caseABIVersion), o}
	}
	return l, nil
}

// initialize runs Init with a new host.
func (l *loaded) initialize() *stepError {
	h := newHost(l.info.ABIMinor)
	h.forwarder = l.forward
	h.mu.Lock()
	h.open = true
	h.mu.Unlock()
	var err error
	p := guard(func() { err = l.p.Init(h) })
	h.mu.Lock()
	h.open = false
	h.mu.Unlock()
	l.host = h
	switch {
	case p != nil:
		return &stepError{string(caseInit), failPanic("Init panicked", p)}
	case err != nil:
		return &stepError{string(caseInit), fail(fmt.Sprintf("Init returned an error: %s", clip(errorText(err), 1000)))}
	case len(h.rejected) > 0:
		more := ""
		if h.droppedRejections > 0 {
			more = fmt.Sprintf("; and %d more", h.droppedRejections)
		}
		o := fail(fmt.Sprintf("Init registered methods the host refused: %s%s", strings.Join(h.rejected, "; "), more))
		o.Detail.RejectedRegistrations = h.rejected
		return &stepError{string(caseInit), o}
	}
	l.initialized = true
	return nil
}

// shutdown runs Shutdown; nil when it returned cleanly.
func (l *loaded) shutdown() *outcome {
	if !l.initialized {
		return nil
	}
	l.initialized = false
	var err error
	if p := guard(func() { err = l.p.Shutdown() }); p != nil {
		o := failPanic("Shutdown panicked", p)
		return &o
	}
	if err != nil {
		o := fail(fmt.Sprintf("Shutdown returned an error: %s", clip(errorText(err), 1000)))
		return &o
	}
	return nil
}

// call calls a registered method (a 1.1 one with a context of no
// deadline, cancellation or trace); a non-nil outcome when it failed.
func (l *loaded) call(name string, in []byte) ([]byte, *outcome) {
	method := l.host.lookup(name)
	if method == nil {
		o := fail(fmt.Sprintf("no method named %q is registered", name))
		return nil, &o
	}
	r, p := l.host.invoke(method, in, callSettings{})
	if p != nil {
		o := failPanic(fmt.Sprintf("`%s` panicked", name), p)
		return nil, &o
	}
	if r.err != nil {
		o := fail(fmt.Sprintf("`%s` returned an error: %s", name, clip(r.message(), 1000)))
		return nil, &o
	}
	return r.out, nil
}

func failPanic(what string, p *panicked) outcome {
	o := fail(fmt.Sprintf("%s: %s; the Go worker recovered it, but a host that does not recover dies", what, p))
	if p.frame != "" {
		o.Detail.PanicFrame = ptr(p.frame)
	}
	return o
}

// packagePath is a loaded plugin's package path, which plugin.Plugin keeps
// unexported.
func packagePath(plug *plugin.Plugin) string {
	field := reflect.ValueOf(plug).Elem().FieldByName("pluginpath")
	if field.IsValid() && field.Kind() == reflect.String {
		return field.String()
	}
	return ""
}

// exportedNames lists what a plugin exports, from plugin.Plugin's
// unexported symbol table.
func exportedNames(plug *plugin.Plugin) []string {
	field := reflect.ValueOf(plug).Elem().FieldByName("syms")
	if !field.IsValid() || field.Kind() != reflect.Map {
		return nil
	}
	var names []string
	for _, key := range field.MapKeys() {
		if key.Kind() == reflect.String {
			names = append(names, fmt.Sprintf("%q", key.String()))
		}
		if len(names) >= 50 {
			break
		}
	}
	sort.Strings(names)
	return names
}

// ensureLoaded loads the plugin if this worker has not yet (a new worker
// after a crash), recording the first load's time.
func (s *session) ensureLoaded() *stepError {
	if s.current != nil {
		return nil
	}
	// Go opens a build once per process: a load that failed on the way is
	// not tried again, its failure stands.
	if s.loadFailure != nil {
		return s.loadFailure
	}
	plug, ms, failed := s.open(s.path)
	if failed != nil {
		s.loadFailure = failed
		return failed
	}
	if s.loadMs == nil {
		s.loadMs = &ms
	}
	s.plug = plug
	l, failed := enter(plug)
	if failed != nil {
		s.loadFailure = failed
		return failed
	}
	l.forward = s.forwarding
	s.current = l
	if s.first == nil {
		s.first = l
	}
	return nil
}

// ensureInit loads and initializes the plugin if it is not.
func (s *session) ensureInit() *stepError {
	if failed := s.ensureLoaded(); failed != nil {
		return failed
	}
	if s.current.initialized {
		return nil
	}
	started := time.Now()
	if failed := s.current.initialize(); failed != nil {
		return failed
	}
	if s.initMs == nil {
		ms := float64(time.Since(started).Microseconds()) / 1000
		s.initMs = &ms
	}
	return nil
}

// info is the plugin as reports show it, once known.
func (s *session) info() *pluginInfo {
	if s.first == nil {
		return nil
	}
	info := s.first.info
	return &pluginInfo{
		Name:      clip(info.Name, 200),
		Version:   clip(info.Version, 100),
		Toolchain: ptr(goVersion),
		ABI:       fmt.Sprintf("%d.%d", info.ABIMajor, info.ABIMinor),
	}
}

// openAgain opens a loaded plugin's file again: Go hands back the plugin it
// loaded.
func openAgain(plug *plugin.Plugin) (*plugin.Plugin, error) {
	return plugin.Open(loadedFrom[plug])
}

// loadedFrom remembers the file each plugin was opened from.
var loadedFrom = map[*plugin.Plugin]string{}
