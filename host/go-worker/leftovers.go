package main

// What a plugin leaves running after Shutdown: goroutines of the code it
// brought into the process, and child processes. The `shutdown` and
// `repeat-load` cases wait up to the grace for both to end.

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// leftovers is what still runs after a Shutdown.
type leftovers struct {
	goroutines []string
	processes  []processInfo
}

func (l leftovers) empty() bool { return len(l.goroutines) == 0 && len(l.processes) == 0 }

// leftoversAfterGrace waits up to the grace for the plugin's goroutines
// and child processes to end, and names those still running.
func (s *session) leftoversAfterGrace(l *loaded) leftovers {
	brought := s.broughtPackages(l)
	deadline := time.Now().Add(time.Duration(s.settings.GraceMs) * time.Millisecond)
	for {
		left := leftovers{goroutines: goroutinesOf(brought), processes: runningChildren()}
		if left.empty() || time.Now().After(deadline) {
			return left
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// broughtPackages are the packages whose goroutines count as the
// plugin's: every package linked into the plugin that this worker does not
// link itself, less the standard library's.
//
// Why this set: a goroutine belongs to the plugin when the plugin's code
// started it or runs in it, and the plugin's code is not only its main
// package — a cache library's janitor runs in the library's package, in
// another module, and is the plugin's to stop all the same. The linker
// exports one hash per package linked in (`go.link.pkghashbytes.PKG`, the
// same symbols the binding check reads), in the plugin and in this
// worker alike, so the packages present in the plugin and absent from the
// worker are exactly what the plugin brought: its own module and each
// dependency the host does not share. Packages the worker shares (the
// contract, the runtime) start nothing on the plugin's behalf that the
// worker did not start too. Standard-library packages the plugin alone
// links (os/signal's signal loop, …) run goroutines the Go runtime owns
// and no plugin can stop; a goroutine the plugin starts through one is
// still seen, since its creator is the plugin's own function.
//
// Which packages are the standard library's is read from the list
// plugcheck keeps beside the worker (`go list std` of the worker's
// release, which is the plugin's: Go loads no plugin of another). Without
// the list (a worker built by hand), a package counts as the standard
// library's when its first path element has no dot (the rule `go` itself
// applies), unless the plugin's build information names a module it
// belongs to (a local `module cache` under a `replace`); Go 1.19 plugins
// carry none, so there a dotless dependency would be missed.
func (s *session) broughtPackages(l *loaded) map[string]bool {
	if l.brought != nil {
		return l.brought
	}
	brought := map[string]bool{}
	if l.packagePath != "" {
		brought[l.packagePath] = true
	}
	plugin, perr := pluginFacts(loadedFrom[l.plug])
	self, serr := workerFacts()
	if perr == nil && serr == nil {
		modules := []string{plugin.mainPath}
		for module := range plugin.deps {
			modules = append(modules, module)
		}
		for pkg := range plugin.hashes {
			if _, shared := self.hashes[pkg]; shared {
				continue
			}
			if std := standardPackages(); std != nil {
				if !std[pkg] {
					brought[pkg] = true
				}
			} else if !standardLooking(pkg) || underAny(pkg, modules) {
				brought[pkg] = true
			}
		}
	}
	l.brought = brought
	return brought
}

// stdFile is where plugcheck keeps the standard library's package list of
// the worker's Go release (`go list std`), beside the worker.
const stdFile = "std-packages.txt"

var (
	stdOnce sync.Once
	stdList map[string]bool
)

// standardPackages is the standard library's package list kept beside the
// worker; nil without one.
func standardPackages() map[string]bool {
	stdOnce.Do(func() {
		exe, err := os.Executable()
		if err != nil {
			return
		}
		data, err := os.ReadFile(filepath.Join(filepath.Dir(exe), stdFile))
		if err != nil || len(data) > 1<<20 {
			return
		}
		list := map[string]bool{}
		for _, pkg := range strings.Fields(string(data)) {
			list[pkg] = true
		}
		// A list without the runtime is no list of the standard library.
		if list["runtime"] {
			stdList = list
		}
	})
	return stdList
}

// standardLooking says whether an import path looks like the standard
// library's: no dot in its first element.
func standardLooking(pkg string) bool {
	first, _, _ := strings.Cut(pkg, "/")
	return !strings.Contains(first, ".")
}

// underAny says whether pkg is one of modules or below one.
func underAny(pkg string, modules []string) bool {
	for _, module := range modules {
		if module != "" && (pkg == module || strings.HasPrefix(pkg, module+"/")) {
			return true
		}
	}
	return false
}

// packageOf is the package of a function as a stack names it:
// `example.com/cache.(*Cache).janitor` → `example.com/cache`. The last
// path element runs to its first dot; a dot inside it is printed escaped
// (`gopkg.in/yaml%2ev3`).
func packageOf(function string) string {
	slash := strings.LastIndex(function, "/")
	rest := function[slash+1:]
	dot := strings.Index(rest, ".")
	if dot < 0 {
		return ""
	}
	return strings.ReplaceAll(function[:slash+1+dot], "%2e", ".")
}

// goroutinesOf names the goroutines running code of the given packages, or
// started by it, from the goroutine profile: the innermost such function,
// and the one that started the goroutine.
func goroutinesOf(packages map[string]bool) []string {
	var names []string
	for _, g := range pluginGoroutines(packages) {
		names = append(names, g.name)
	}
	return names
}

// goroutine is one of the plugin's goroutines: its number, and its name
// as goroutinesOf gives it (which changes as it runs: one not yet started
// is named by the closure that starts it).
type goroutine struct {
	id   uint64
	name string
}

// pluginGoroutines are the goroutines running code of the given packages,
// or started by it (goroutinesOf).
func pluginGoroutines(packages map[string]bool) []goroutine {
	if len(packages) == 0 {
		return nil
	}
	buffer := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buffer, true)
		if n < len(buffer) || len(buffer) >= 64<<20 {
			buffer = buffer[:n]
			break
		}
		buffer = make([]byte, 2*len(buffer))
	}
	var found []goroutine
	for _, block := range strings.Split(string(buffer), "\n\n") {
		// The worker's own: a plugin's value it asked about (askValue)
		// that never answered, stuck in the plugin's code.
		if askedByTheWorker(block) {
			continue
		}
		lines := strings.Split(block, "\n")
		name, creator := "", ""
		for _, line := range lines[1:] {
			if strings.HasPrefix(line, "\t") {
				continue
			}
			createdBy := strings.HasPrefix(line, "created by ")
			function := strings.TrimPrefix(line, "created by ")
			if cut := strings.LastIndex(function, "("); cut > 0 && !createdBy {
				function = function[:cut]
			}
			if cut := strings.Index(function, " in goroutine"); cut > 0 {
				function = function[:cut]
			}
			if !packages[packageOf(function)] {
				continue
			}
			if createdBy {
				creator = function
			} else if name == "" {
				name = function
			}
		}
		// `goroutine 42 [select]:`
		var id uint64
		if fields := strings.Fields(lines[0]); len(fields) > 1 {
			id, _ = strconv.ParseUint(fields[1], 10, 64)
		}
		switch {
		case name != "" && creator != "":
			found = append(found, goroutine{id, clip(fmt.Sprintf("%s (started by %s)", name, creator), 300)})
		case name != "":
			found = append(found, goroutine{id, clip(name, 300)})
		case creator != "":
			found = append(found, goroutine{id, clip("a goroutine started by "+creator, 300)})
		}
	}
	return found
}

// askedByTheWorker says whether a goroutine's stack is one askValue
// started (`created by main.askValue[...]`).
func askedByTheWorker(stack string) bool {
	for _, line := range strings.Split(stack, "\n") {
		if strings.HasPrefix(line, "created by ") {
			creator := strings.Fields(strings.TrimPrefix(line, "created by "))
			return len(creator) > 0 && (strings.Contains(creator[0], ".askValue[") || strings.HasSuffix(creator[0], ".askValue"))
		}
	}
	return false
}

// processInfo is a child process as the report names it (the parent's
// ProcessInfo).
type processInfo struct {
	Pid  uint32 `json:"pid"`
	Name string `json:"name"`
}

// runningChildren are this worker's child processes that still run (not
// zombies, which a plugin that started a process and never waited for it
// leaves once it exits): the plugin's, since the worker starts none, and
// orphans of the plugin re-parented to the worker (it is a subreaper). As
// the Rust worker does (os::running_child_processes): each thread's
// `/proc/self/task/TID/children`, every pid checked against its `stat`.
func runningChildren() []processInfo {
	self := procPid()
	var pids []int
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, task := range tasks {
		data, err := os.ReadFile(task)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(field); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	if len(tasks) == 0 {
		// Kernels built without CONFIG_PROC_CHILDREN: every process.
		entries, _ := os.ReadDir("/proc")
		for _, entry := range entries {
			if pid, err := strconv.Atoi(entry.Name()); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	sort.Ints(pids)
	var found []processInfo
	seen := map[int]bool{}
	for _, pid := range pids {
		if seen[pid] {
			continue
		}
		seen[pid] = true
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		name, state, ppid, ok := parseStat(string(stat))
		if ok && ppid == self && state != 'Z' {
			found = append(found, processInfo{Pid: uint32(pid), Name: clip(name, 64)})
		}
	}
	return found
}

// procPid is this process's pid as /proc numbers it: inside the PID
// namespace of its own the harness starts it in, os.Getpid() says 2 while
// /proc (the machine's) gives the outer pid, and the ppid of its children
// in /proc is that one.
func procPid() int {
	if link, err := os.Readlink("/proc/self"); err == nil {
		if pid, err := strconv.Atoi(link); err == nil {
			return pid
		}
	}
	return os.Getpid()
}

// parseStat reads `pid (comm) state ppid …`; the name may hold spaces and
// parentheses, so it runs to the last `)`.
func parseStat(stat string) (name string, state byte, ppid int, ok bool) {
	open, end := strings.Index(stat, "("), strings.LastIndex(stat, ")")
	if open < 0 || end < open {
		return "", 0, 0, false
	}
	fields := strings.Fields(stat[end+1:])
	if len(fields) < 2 || len(fields[0]) != 1 {
		return "", 0, 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return "", 0, 0, false
	}
	return stat[open+1 : end], fields[0][0], ppid, true
}

// describe is what was left, for a reason: each kind counted and named.
func (l leftovers) describe(after string) string {
	var parts []string
	if len(l.goroutines) > 0 {
		parts = append(parts, fmt.Sprintf("%d goroutine(s) the plugin started still run %s: %s",
			len(l.goroutines), after, strings.Join(first(l.goroutines, 5), "; ")))
	}
	if len(l.processes) > 0 {
		names := make([]string, 0, len(l.processes))
		for _, p := range l.processes {
			names = append(names, "`"+p.Name+"`")
		}
		parts = append(parts, fmt.Sprintf("%d child process(es) the plugin started still run %s (%s)",
			len(l.processes), after, strings.Join(first(names, 5), ", ")))
	}
	return strings.Join(parts, "; and ")
}

// remedy is what Shutdown must do about what was left.
func (l leftovers) remedy() string {
	var remedies []string
	if len(l.goroutines) > 0 {
		remedies = append(remedies, "stop every goroutine the plugin started")
	}
	if len(l.processes) > 0 {
		remedies = append(remedies, "kill or wait for every child process the plugin started")
	}
	return "Shutdown must " + strings.Join(remedies, " and ")
}

// into puts what was left into a failing outcome's detail.
func (l leftovers) into(o *outcome) {
	o.Detail.Goroutines = first(l.goroutines, 20)
	if len(l.processes) > 20 {
		o.Detail.LeakedProcesses = l.processes[:20]
	} else {
		o.Detail.LeakedProcesses = l.processes
	}
}
