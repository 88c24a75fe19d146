package main

// The conformance catalog (host/src/catalog.rs) mapped onto Go's plugin
// semantics: plugin.Open for load, Lookup of `Plugin`, its type, its Info,
// Init and the methods it registers, state through plugcheck.Stateful,
// Shutdown and the goroutines left behind. Cases with no meaning for a
// Go-native plugin (Go never unloads one, and loads a package path once
// per process) are skipped or warned with the reason.

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	plugcheck "plugcheck.dev/abi"
)

// noReloadOfOneBuild is why the cases that reload one build again and
// again have no meaning for a Go-native plugin.
const noReloadOfOneBuild = "Go loads each package path once per process, so one build cannot be reloaded again and again; reload-upgrade checks a version built under its own package path"

const neverUnloads = "Go has no plugin.Close: a Go-native plugin stays in the process, with its memory and goroutines, until the process exits"

func (s *session) run(id CaseID) caseResult {
	o := s.runCase(id)
	return caseResult{Outcome: o, Plugin: s.info()}
}

// runCase runs a case by its row in the catalog: first what the case
// stands on (loading, Init), whose failure on the way decides the case,
// then its body.
func (s *session) runCase(id CaseID) outcome {
	row, known := lookupCase(id)
	if !known {
		return skipped(fmt.Sprintf("the Go worker does not know the case `%s`: update plugcheck", clip(string(id), 80)))
	}
	switch row.stance() {
	case standsOnLoad:
		// A load step passes when loading got past it: only a failure at
		// its own step or an earlier one decides it.
		if failed := s.ensureLoaded(); failed != nil && stepIndex(CaseID(failed.stage)) <= stepIndex(id) {
			return failed.outcome
		}
	case standsOnInit:
		if failed := s.ensureInit(); failed != nil {
			return failed.outcome
		}
	}
	return row.run(s)
}

func (s *session) load() outcome {
	if failed := s.ensureLoaded(); failed != nil {
		if failed.stage == string(caseLoad) {
			return failed.outcome
		}
	}
	if s.plug == nil {
		return fail("the plugin did not load")
	}
	path := packagePath(s.plug)
	o := pass(fmt.Sprintf("plugin.Open loaded the Go-native plugin (package path `%s`, built by %s like this worker)", path, goVersion))
	o.Detail.LoadMs = s.loadMs
	return o
}

// loadSteps are the cases loading a build goes through, in order.
var loadSteps = []CaseID{caseLoad, caseLookupEntry, caseDescriptor, caseABIVersion}

// stepIndex is a case's place among loadSteps; after them for any other.
func stepIndex(id CaseID) int {
	for i, step := range loadSteps {
		if step == id {
			return i
		}
	}
	return len(loadSteps)
}

// entered is lookup-entry, descriptor or abi-version, past its step.
func (s *session) entered(id CaseID) outcome {
	switch id {
	case caseLookupEntry:
		return pass("the plugin exports `Plugin`")
	case caseDescriptor:
		if s.current == nil {
			return pass("`Plugin` is a plugcheck.Plugin")
		}
		return pass(fmt.Sprintf("`Plugin` is a plugcheck.Plugin holding a %T", s.current.p))
	}
	info := s.current.info
	o := pass(fmt.Sprintf("the plugin was built against contract %d.%d; this host accepts %d.0 to %d.%d",
		info.ABIMajor, info.ABIMinor, plugcheck.ABIMajor, plugcheck.ABIMajor, hostABIMinor))
	o.Detail.HostABI = ptr(fmt.Sprintf("%d.%d", plugcheck.ABIMajor, hostABIMinor))
	o.Detail.PluginABI = ptr(fmt.Sprintf("%d.%d", info.ABIMajor, info.ABIMinor))
	return o
}

func (s *session) metadata() outcome {
	info := s.current.info
	switch {
	case info.Name == "":
		return fail("Info().Name is empty: a plugin must be named")
	case info.Version == "":
		return fail("Info().Version is empty: give the plugin's own semver")
	}
	// The bounds and the encoding the Rust worker holds a descriptor's
	// strings to: one plugin, one verdict, whichever worker judges it.
	for _, field := range []struct{ what, value string }{{"Name", info.Name}, {"Version", info.Version}} {
		if len(field.value) > pluginStringBytes {
			return fail(fmt.Sprintf("Info().%s is %d bytes long, over the %d-byte bound: keep it short", field.what, len(field.value), pluginStringBytes))
		}
		if !utf8.ValidString(field.value) {
			return fail(fmt.Sprintf("Info().%s is not valid UTF-8: a plugin's name and version must be UTF-8", field.what))
		}
	}
	return pass(fmt.Sprintf("%q %s, built by %s", clip(info.Name, 200), clip(info.Version, 100), goVersion))
}

func (s *session) init() outcome {
	started := time.Now()
	if failed := s.current.initialize(); failed != nil {
		failed.outcome.Detail.Logs = s.current.host.keptLogs()
		return failed.outcome
	}
	ms := float64(time.Since(started).Microseconds()) / 1000
	if s.initMs == nil {
		s.initMs = &ms
	}
	names := s.current.host.names()
	listed := strings.Join(first(names, methodsListed), ", ")
	if len(names) > methodsListed {
		listed += ", …"
	}
	o := pass(fmt.Sprintf("Init registered %d method(s): %s", len(names), listed))
	o.Detail.Methods = first(names, methodsListed)
	o.Detail.Logs = s.current.host.keptLogs()
	o.Detail.InitMs = &ms
	return o
}

func (s *session) lookupMethods() outcome {
	names := s.current.host.names()
	if _, failed := s.current.call("plugcheck-no-such-method", nil); failed == nil {
		return fail("an unknown method name was found")
	}
	o := pass(fmt.Sprintf("%d method(s) found by name; an unknown name is refused", len(names)))
	o.Detail.Methods = first(names, methodsListed)
	return o
}

func (s *session) selftest() outcome {
	if s.current.host.lookup("selftest") == nil {
		return skipped("the plugin registers no `selftest` method")
	}
	if _, failed := s.current.call("selftest", nil); failed != nil {
		return *failed
	}
	return pass("`selftest` returned no error for empty input")
}

// stateRoundtrip drives the plugin's methods until its saved state differs
// from a fresh one, restarts it (Shutdown, Init: Go cannot load a second
// instance), restores the state and saves again.
func (s *session) stateRoundtrip() outcome {
	stateful, ok := s.current.p.(plugcheck.Stateful)
	if !ok {
		return skipped("stateless plugin: it does not implement plugcheck.Stateful")
	}
	save := func() ([]byte, *outcome) { return savedState(stateful) }
	initial, failed := save()
	if failed != nil {
		return *failed
	}
	changedBy, tried, failed := s.driveState(initial, save)
	if failed != nil {
		return *failed
	}
	carried, failed := save()
	if failed != nil {
		return *failed
	}
	if o := s.current.shutdown(); o != nil {
		return *o
	}
	if failed := s.current.initialize(); failed != nil {
		return failed.outcome
	}
	var err error
	if p := guard(func() { err = stateful.RestoreState(fresh(carried)) }); p != nil {
		return failPanic("RestoreState panicked", p)
	}
	if err != nil {
		return fail(fmt.Sprintf("RestoreState refused the %d bytes SaveState produced: %s", len(carried), clip(errorText(err), 500)))
	}
	again, failed := save()
	if failed != nil {
		return *failed
	}
	n := len(carried)
	if !bytes.Equal(again, carried) {
		lost := ""
		if changedBy != "" && bytes.Equal(again, initial) {
			lost = ": the restarted plugin saved a fresh state, so RestoreState did not take in what it was given"
		}
		return fail(fmt.Sprintf("state changed across save → restart → restore → save (%d bytes went in, %d came out)%s", n, len(again), lost))
	}
	var o outcome
	if changedBy != "" {
		o = pass(fmt.Sprintf("%d bytes of state, changed by calling %s, carried across a restart unchanged", n, changedBy))
	} else {
		o = warning(fmt.Sprintf("only the initial state could be carried (%d bytes): no method changed what SaveState returns (%s), so a RestoreState that ignores its input would pass too", n, tried))
	}
	o.Detail.StateBytes = ptr(uint64(n))
	return o
}

// savedState is what a Stateful's SaveState hands over, copied: a plugin
// that hands out its own buffer, rewritten by the next save, would
// otherwise compare equal to itself. A panic or an error is the outcome.
func savedState(stateful plugcheck.Stateful) ([]byte, *outcome) {
	var state []byte
	var err error
	if p := guard(func() { state, err = stateful.SaveState() }); p != nil {
		o := failPanic("SaveState panicked", p)
		return nil, &o
	}
	if err != nil {
		o := fail(fmt.Sprintf("SaveState returned an error: %s", clip(errorText(err), 500)))
		return nil, &o
	}
	return append([]byte{}, state...), nil
}

// State is driven as the Rust worker drives it (host/src/cases/state.rs):
// each method twice with empty input, then inputs #1.. of the fuzz series,
// round by round over every method, stateRounds at most and stateCalls in
// all, every method getting at least one.
const (
	stateRounds = 8
	stateCalls  = 512
)

// driveState calls the plugin's methods until SaveState's bytes differ
// from initial: the call that changed them (empty when none did), what was
// tried, and the outcome when a call panicked or SaveState failed. An
// error answer is allowed here, as in the Rust worker: a natural `get`
// refuses a key never put.
func (s *session) driveState(initial []byte, save func() ([]byte, *outcome)) (string, string, *outcome) {
	names := s.current.host.callableNames()
	drive := func(name string, in []byte, on string) (bool, *outcome) {
		method := s.current.host.lookup(name)
		if _, p := s.current.host.invoke(method, in, callSettings{}); p != nil {
			o := failPanic(fmt.Sprintf("`%s` panicked%s (called to change the state)", name, on), p)
			return false, &o
		}
		now, failed := save()
		if failed != nil {
			return false, failed
		}
		return !bytes.Equal(now, initial), nil
	}
	for _, name := range names {
		for i := 0; i < 2; i++ {
			changed, failed := drive(name, nil, " on empty input")
			if failed != nil || changed {
				return "`" + name + "`", "", failed
			}
		}
	}
	rounds := 0
	if s.settings.FuzzSeries != nil && len(names) > 0 {
		_, inputs, whats, err := readSeries(*s.settings.FuzzSeries)
		if err == nil {
			rounds = stateCalls / len(names)
			if rounds < 1 {
				rounds = 1
			}
			if rounds > stateRounds {
				rounds = stateRounds
			}
			if rounds > len(inputs)-1 {
				rounds = len(inputs) - 1
			}
			for i := 1; i <= rounds; i++ {
				on := fmt.Sprintf(" on fuzz input #%d (%s; seed %#x)", i, whats[i], s.settings.Seed)
				for _, name := range names {
					changed, failed := drive(name, inputs[i], on)
					if failed != nil || changed {
						return "`" + name + "`" + on, "", failed
					}
				}
			}
		}
	}
	if rounds < 0 {
		rounds = 0
	}
	return "", fmt.Sprintf("each of %d method(s) called twice with empty input, then with %d input(s) of the fuzz series", len(names), rounds), nil
}

func (s *session) shutdown() outcome {
	if o := s.current.shutdown(); o != nil {
		return *o
	}
	left := s.leftoversAfterGrace(s.current)
	if !left.empty() {
		o := fail(left.describe("after Shutdown") + "; " + left.remedy())
		left.into(&o)
		return o
	}
	return pass("Shutdown returned and no goroutine or child process of the plugin runs")
}

func (s *session) loadTime() outcome {
	if s.loadMs == nil || s.initMs == nil {
		return skipped("this worker did not time the plugin's first load and Init")
	}
	total := *s.loadMs + *s.initMs
	bound := s.settings.LoadTimeBoundMs
	var o outcome
	if total > float64(bound) {
		o = warning(fmt.Sprintf("plugin.Open plus Init took %.0f ms, more than the %d ms bound", total, bound))
	} else {
		o = pass(fmt.Sprintf("plugin.Open plus Init took less than the %d ms bound", bound))
	}
	o.Detail.LoadMs, o.Detail.InitMs, o.Detail.BoundMs = s.loadMs, s.initMs, &bound
	return o
}

// repeatLoad opens the same file again (Go hands back the loaded plugin)
// and cycles Shutdown and Init, watching the plugin's goroutines.
func (s *session) repeatLoad() outcome {
	again, err := openAgain(s.plug)
	if err != nil {
		return fail(fmt.Sprintf("a second plugin.Open of the same file failed: %s", clip(err.Error(), 500)))
	}
	if again != s.plug {
		return fail("a second plugin.Open of the same file gave another plugin: Go loaded it twice")
	}
	cycles := int(s.settings.RepeatCycles)
	for i := 0; i < cycles; i++ {
		if o := s.current.shutdown(); o != nil {
			return *o
		}
		if failed := s.current.initialize(); failed != nil {
			return failed.outcome
		}
	}
	if o := s.current.shutdown(); o != nil {
		return *o
	}
	if left := s.leftoversAfterGrace(s.current); !left.empty() {
		o := fail(fmt.Sprintf("after %d Init/Shutdown cycles, %s; %s", cycles, left.describe("after the last Shutdown"), left.remedy()))
		left.into(&o)
		return o
	}
	return pass(fmt.Sprintf("a second plugin.Open of the same file returns the plugin already loaded (Go loads a plugin once per process; its init does not run again); %d Init/Shutdown cycles left no goroutine or child process behind", cycles))
}

// reloadSameVersion shows what Go does with the loaded build opened from a
// second path (a hard link: no bytes copied): it refuses it. A rebuild of
// the same package path, another file, is refused alike (the
// go-native-echo-rebuilt fixture).
func (s *session) reloadSameVersion() outcome {
	second, err := s.anotherPath(s.path)
	if err != nil {
		return fail(fmt.Sprintf("cannot give the build a second path in the run's scratch directory: %v", err))
	}
	_, _, failed := s.openChecked(second, s.path)
	if failed == nil {
		return warning("Go loaded the same build again from a second path, beside the first: two instances of one package now run in this process")
	}
	if strings.Contains(failed.outcome.Reason, "already loaded") {
		return skipped("Go refused the loaded build opened again from a second path, with `plugin already loaded`: " + noReloadOfOneBuild)
	}
	return failed.outcome
}

// switchTo loads another build beside the current one, hands the state
// over and makes it current. On failure the current version keeps serving.
func (s *session) switchTo(path string) (*loaded, *stepError) {
	plug, _, failed := s.open(path)
	if failed != nil {
		return nil, failed
	}
	next, failed := enter(plug)
	if failed != nil {
		return nil, failed
	}
	next.forward = s.forwarding
	if failed := next.initialize(); failed != nil {
		next.shutdown()
		return nil, failed
	}
	oldState, oldStateful := s.current.p.(plugcheck.Stateful)
	newState, newStateful := next.p.(plugcheck.Stateful)
	if oldStateful && newStateful {
		var state []byte
		var err error
		if p := guard(func() { state, err = oldState.SaveState() }); p != nil || err != nil {
			next.shutdown()
			return nil, &stepError{"save-state", fail("the running version's SaveState failed: " + failureText(err, p))}
		}
		if p := guard(func() { err = newState.RestoreState(state) }); p != nil || err != nil {
			next.shutdown()
			return nil, &stepError{"restore-state", fail("the new version's RestoreState refused the state: " + failureText(err, p))}
		}
	}
	if o := s.current.shutdown(); o != nil {
		return nil, &stepError{"shutdown", *o}
	}
	previous := s.current
	s.current = next
	return previous, nil
}

// backToFirst makes the version under judgement current again after a
// reload case switched to another build: the cases after it (fuzz-methods,
// contract 1.1's) judge the plugin checked, not its upgrade. The other
// build is shut down (Go cannot unload it); the first is initialised
// again by the next case that needs it.
func (s *session) backToFirst() {
	if s.first == nil || s.current == s.first {
		return
	}
	s.current.shutdown()
	s.current = s.first
}

func (s *session) reloadUpgrade() outcome {
	defer s.backToFirst()
	path, ok := s.settings.ReloadTo["upgrade"]
	if !ok {
		return skipped("no upgrade build given (--reload-to upgrade=PATH: the next version, built under its own package path)")
	}
	from := s.current
	_, failed := s.switchTo(path)
	if failed != nil {
		o := failed.outcome
		if strings.Contains(o.Reason, "already loaded") {
			o.Reason = fmt.Sprintf("Go refused the upgrade: %s — it has the same package path (`%s`) as the loaded version; Go loads a package path once per process, so each version meant to replace a loaded one needs its own: build it from its own module path (`%s/v2`) or a copy of the package under a new import path (-ldflags=-pluginpath does not do it)",
				o.Reason, from.packagePath, from.packagePath)
		} else {
			o.Reason = fmt.Sprintf("the upgrade was refused at `%s`: %s; the old version keeps serving", failed.stage, o.Reason)
		}
		o.Detail.FailedStage = ptr(failed.stage)
		return o
	}
	if _, failed := s.current.call("selftest", nil); failed != nil && s.current.host.lookup("selftest") != nil {
		return fail("after the upgrade the new version's selftest failed: " + failed.Reason)
	}
	o := pass(fmt.Sprintf("reloaded %s → %s (package path %s → %s), state carried, the new version answers; the old one stays resident (Go never unloads)",
		clip(from.info.Version, 50), clip(s.current.info.Version, 50), from.packagePath, s.current.packagePath))
	o.Detail.ReloadedFrom = ptr(from.info.Version)
	o.Detail.ReloadedTo = ptr(s.current.info.Version)
	return o
}

// reloadRefused switches to a build that must be refused, and checks that
// the running version keeps serving.
func (s *session) reloadRefused(role, what string) outcome {
	defer s.backToFirst()
	path, ok := s.settings.ReloadTo[role]
	if !ok {
		return skipped(fmt.Sprintf("no %s build given (--reload-to %s=PATH: %s)", role, role, what))
	}
	if problem := noLibraryHere(path); problem != "" {
		namedAt, ok := s.settings.ReloadNamedAt[role]
		if !ok {
			namedAt = "--reload-to"
		}
		return fail(fmt.Sprintf("the `%s` build (named at `%s`) cannot be loaded here at all, so reloading to it proves nothing: `%s` %s; name a linux build for `%s`",
			role, namedAt, path, problem, role))
	}
	previous, failed := s.switchTo(path)
	if failed == nil {
		return fail(fmt.Sprintf("the %s build (%s %s) was accepted: it should have been refused", role, clip(s.current.info.Name, 100), clip(previous.info.Version, 50)))
	}
	if s.current.host.lookup("selftest") != nil {
		if _, broken := s.current.call("selftest", nil); broken != nil {
			return fail("after the refused reload the old version no longer serves: " + broken.Reason)
		}
	}
	o := pass(fmt.Sprintf("refused at `%s` (%s); the old version keeps serving", failed.stage, clip(failed.outcome.Reason, 300)))
	o.Detail.FailedStage = ptr(failed.stage)
	return o
}

// failureText is how a guarded call failed: its panic, or its error.
func failureText(err error, p *panicked) string {
	if p != nil {
		return "it panicked: " + p.String()
	}
	return clip(errorIfAny(err), 500)
}

func first(items []string, n int) []string {
	if len(items) > n {
		return items[:n]
	}
	return items
}

// noLibraryHere says why the file at path is no Go plugin this worker
// could load at all (missing, not a regular file, not ELF, not a shared
// object, another architecture, no Go plugin's package hashes), or "" when
// it may be one: a refusal of such a file proves nothing about rollback.
func noLibraryHere(path string) string {
	// Asked before opening: opening a FIFO waits for a writer.
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Sprintf("cannot be read (%v)", err)
	}
	if !info.Mode().IsRegular() {
		return "is not a regular file"
	}
	file, err := elf.Open(path)
	if err != nil {
		return "is not an ELF shared object (Go-native plugins load as ELF on Linux only)"
	}
	defer file.Close()
	if file.Type != elf.ET_DYN {
		return fmt.Sprintf("is an ELF %s, not a shared object", file.Type)
	}
	if want, known := elfMachine[runtime.GOARCH]; known && file.Machine != want {
		return fmt.Sprintf("is built for %s, and this worker is %s", file.Machine, runtime.GOARCH)
	}
	hashes, err := packageHashes(file)
	if err != nil {
		return fmt.Sprintf("is no Go plugin: %v", err)
	}
	if _, ok := hashes["runtime"]; !ok {
		return "is no Go plugin (go build -buildmode=plugin): it exports no Go package hashes; a C-ABI library cannot stand in for a Go-native build"
	}
	return ""
}

// elfMachine is the ELF machine of each architecture Go builds plugins for.
var elfMachine = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"386":     elf.EM_386,
	"arm":     elf.EM_ARM,
	"ppc64le": elf.EM_PPC64,
	"riscv64": elf.EM_RISCV,
	"s390x":   elf.EM_S390,
}
