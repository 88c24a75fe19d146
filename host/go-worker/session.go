package main

import (
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
	"time"
	"unicode/utf8"

	plugcheck "plugcheck.dev/abi"
)

// host is the plugcheck.Host a plugin is given at Init.
type host struct {
	mu       sync.Mutex
	open     bool
	methods  map[string]plugcheck.Method
	rejected []string
	// droppedRejections are refusals past rejectionsKept, counted only.
	droppedRejections int
	logs              []logLine
}

func newHost() *host { return &host{methods: map[string]plugcheck.Method{}} }

func (h *host) Log(level int, message string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.logs) >= logLinesKept {
		return
	}
	if len(message) > logLineBytes {
		message = clip(message, logLineBytes)
	}
	h.logs = append(h.logs, logLine{Level: int32(level), Message: strings.ToValidUTF8(message, "\uFFFD")})
}

func (h *host) Register(name string, m plugcheck.Method) error {
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
	// announce tells the parent of a fuzz call before it is made.
	announce func(method string, input uint32)
}

func newSession(path string) *session { return &session{path: path} }

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

// guard runs a call into the plugin, recovering a panic in it. Whether
// the call panicked is told by a flag set after it returns, not by
// recover's value: `panic(nil)` (or a nil error) recovers as nil before
// Go 1.21, and under a go.mod that asks for older semantics after it.
func guard(call func()) (recovered *panicked) {
	completed := false
	defer func() {
		value := recover()
		if completed {
			return
		}
		what := fmt.Sprint(value)
		if value == nil {
			what = "panic(nil): a panic with a nil value"
		}
		recovered = &panicked{value: clip(what, 500), frame: pluginFrame(debug.Stack())}
	}()
	call()
	completed = true
	return nil
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
	if l.info.ABIMajor != plugcheck.ABIMajor || l.info.ABIMinor > plugcheck.ABIMinor {
		o := fail(fmt.Sprintf(
			"the plugin was built against contract %d.%d, this host accepts %d.0 to %d.%d: rebuild it against %s %d.x",
			l.info.ABIMajor, l.info.ABIMinor, plugcheck.ABIMajor, plugcheck.ABIMajor, plugcheck.ABIMinor, contractModule, plugcheck.ABIMajor))
		o.Detail.HostABI = ptr(fmt.Sprintf("%d.%d", plugcheck.ABIMajor, plugcheck.ABIMinor))
		o.Detail.PluginABI = ptr(fmt.Sprintf("%d.%d", l.info.ABIMajor, l.info.ABIMinor))
		return nil, &stepError{string(caseABIVersion), o}
	}
	return l, nil
}

// initialize runs Init with a new host.
func (l *loaded) initialize() *stepError {
	h := newHost()
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
		return &stepError{string(caseInit), fail(fmt.Sprintf("Init returned an error: %s", clip(err.Error(), 1000)))}
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
		o := fail(fmt.Sprintf("Shutdown returned an error: %s", clip(err.Error(), 1000)))
		return &o
	}
	return nil
}

// call calls a registered method; a non-nil outcome when it failed.
func (l *loaded) call(name string, in []byte) ([]byte, *outcome) {
	method := l.host.methods[name]
	if method == nil {
		o := fail(fmt.Sprintf("no method named %q is registered", name))
		return nil, &o
	}
	var out []byte
	var err error
	if p := guard(func() { out, err = method(in) }); p != nil {
		o := failPanic(fmt.Sprintf("`%s` panicked", name), p)
		return nil, &o
	}
	if err != nil {
		o := fail(fmt.Sprintf("`%s` returned an error: %s", name, clip(err.Error(), 1000)))
		return nil, &o
	}
	return out, nil
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
