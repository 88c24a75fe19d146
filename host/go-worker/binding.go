package main

// Version binding: Go loads a plugin only when it was built by the same Go
// release, with the same build configuration, against the same version of
// every package it shares with the host. Go checks this inside plugin.Open
// by comparing per-package hashes the linker records, and some mismatches
// (another Go release) end the process with "fatal error: runtime: no
// plugin module data" instead of an error. So the worker compares first,
// from the files: the plugin's embedded build information (Go 1.20 and
// later embed it in plugins) and the linker's package hashes
// (go.link.pkghashbytes.PKG, go:link… since Go 1.21), and calls
// plugin.Open only when they agree.

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
)

// minSharedPackages: the fewest packages a real Go plugin shares with a Go
// host (runtime and its internal packages alone are more).
const minSharedPackages = 5

// contractModule is the module of the Go-native contract.
const contractModule = "plugcheck.dev/abi"

// settingsThatBind are the build settings that change what a package
// compiles to, so host and plugin must agree on them. GOEXPERIMENT is not
// among them: the experiments a build really had are in its release
// string (`go1.21.13 X:loopvar`, see splitGoVersion), while the setting
// holds only what the environment said (GOEXPERIMENT=loopvar on a release
// where it is on anyway builds the same as none).
var settingsThatBind = []string{
	"-asan", "-compiler", "-gcflags", "-msan", "-race", "-tags", "-trimpath",
	"CGO_ENABLED", "GOAMD64", "GOARCH", "GOOS",
}

// splitGoVersion reads a release string as Go writes it: the release and
// the experiments it was built with, `go1.21.13 X:loopvar` → `go1.21.13`,
// `loopvar` (a GOEXPERIMENT value that builds the same). A release with
// experiments is a release plus a build setting, and is reported as such:
// "built by go1.21.13 X:loopvar, this worker by go1.21.13" would blame the
// release, which is the same.
func splitGoVersion(version string) (release, experiments string) {
	words := strings.Fields(version)
	if len(words) == 0 {
		return "", ""
	}
	for _, word := range words[1:] {
		if strings.HasPrefix(word, "X:") {
			experiments = strings.TrimPrefix(word, "X:")
		}
	}
	return words[0], experiments
}

// withExperiments is a release string as a reader takes it:
// `go1.21.13 with GOEXPERIMENT=loopvar`.
func withExperiments(version string) string {
	release, experiments := splitGoVersion(version)
	if experiments == "" {
		return release
	}
	return fmt.Sprintf("%s with GOEXPERIMENT=%s", release, experiments)
}

// buildFacts is what a Go binary says about how it was built.
type buildFacts struct {
	// goVersion is "" when the binary carries no build information.
	goVersion string
	mainPath  string
	deps      map[string]string
	settings  map[string]string
	// hashes maps each package linked in to its link-time hash.
	hashes map[string]string
}

func factsOf(info *debug.BuildInfo, hashes map[string]string) buildFacts {
	facts := buildFacts{deps: map[string]string{}, settings: map[string]string{}, hashes: hashes}
	if info == nil {
		return facts
	}
	facts.goVersion = info.GoVersion
	facts.mainPath = info.Path
	for _, dep := range info.Deps {
		facts.deps[dep.Path] = dep.Version
	}
	for _, setting := range info.Settings {
		facts.settings[setting.Key] = setting.Value
	}
	return facts
}

// pluginFacts reads a plugin file's build facts.
func pluginFacts(path string) (buildFacts, error) {
	prefetched.once.Do(func() {})
	if prefetched.path == path {
		return prefetched.facts, prefetched.err
	}
	return readFacts(path)
}

// prefetched are the judged plugin's facts, read once at start.
var prefetched struct {
	once  sync.Once
	path  string
	facts buildFacts
	err   error
}

// prefetchFacts reads the worker's and the judged plugin's build facts.
func prefetchFacts(path string) {
	prefetched.once.Do(func() {
		prefetched.path = path
		prefetched.facts, prefetched.err = readFacts(path)
	})
	_, _ = workerFacts()
}

var (
	selfOnce  sync.Once
	selfFacts buildFacts
	selfErr   error
)

// savedFacts is buildFacts as the file beside the worker keeps them.
type savedFacts struct {
	GoVersion string            `json:"go_version"`
	MainPath  string            `json:"main_path"`
	Deps      map[string]string `json:"deps"`
	Settings  map[string]string `json:"settings"`
	Hashes    map[string]string `json:"hashes"`
}

// factsFile is where plugcheck keeps a built worker's own facts: reading
// them back costs far less than scanning the worker's own symbols.
const factsFile = "worker-facts.json"

// writeOwnFacts prints this worker's facts (`__facts`), for plugcheck to
// keep beside it.
func writeOwnFacts() {
	facts, err := computeWorkerFacts()
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugcheck go worker: cannot read its own build:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(savedFacts{facts.goVersion, facts.mainPath, facts.deps, facts.settings, facts.hashes})
}

func computeWorkerFacts() (buildFacts, error) {
	exe, err := os.Executable()
	if err != nil {
		return buildFacts{}, err
	}
	facts, err := readFacts(exe)
	if err != nil {
		return buildFacts{}, err
	}
	info, _ := debug.ReadBuildInfo()
	return factsOf(info, facts.hashes), nil
}

// workerFacts are this worker's own build facts: from the file plugcheck
// keeps beside it when it is there and of this very build, else read now.
func workerFacts() (buildFacts, error) {
	selfOnce.Do(func() {
		if exe, err := os.Executable(); err == nil {
			if data, err := os.ReadFile(filepath.Join(filepath.Dir(exe), factsFile)); err == nil {
				var saved savedFacts
				if json.Unmarshal(data, &saved) == nil && saved.GoVersion == goVersion && len(saved.Hashes) > 0 {
					selfFacts = buildFacts{saved.GoVersion, saved.MainPath, saved.Deps, saved.Settings, saved.Hashes}
					return
				}
			}
		}
		selfFacts, selfErr = computeWorkerFacts()
	})
	return selfFacts, selfErr
}

// The most of .dynsym and .dynstr read: a Go plugin or host exports every
// symbol, some tens of thousands; far below this.
const maxDynamicBytes = 64 << 20

// readFacts reads a Go binary's package hashes and, when it embeds them,
// its build information. The dynamic symbols are scanned in place for the
// hash symbols' prefix: decoding every symbol (debug/elf's
// DynamicSymbols) costs milliseconds on binaries that export everything.
func readFacts(path string) (buildFacts, error) {
	file, err := elf.Open(path)
	if err != nil {
		return buildFacts{}, err
	}
	defer file.Close()
	hashes, err := packageHashes(file)
	if err != nil {
		return buildFacts{}, err
	}
	var info *debug.BuildInfo
	if section := file.Section(".go.buildinfo"); section != nil {
		if opened, err := os.Open(path); err == nil {
			info, _ = buildinfo.Read(opened)
			opened.Close()
		}
	}
	return factsOf(info, hashes), nil
}

func packageHashes(file *elf.File) (map[string]string, error) {
	symtab, strtab := file.Section(".dynsym"), file.Section(".dynstr")
	if symtab == nil || strtab == nil {
		return nil, fmt.Errorf("no dynamic symbol table: not a Go plugin or Go host")
	}
	if symtab.Size > maxDynamicBytes || strtab.Size > maxDynamicBytes {
		return nil, fmt.Errorf("a dynamic symbol table larger than %d MiB", maxDynamicBytes>>20)
	}
	symbols, err := symtab.Data()
	if err != nil {
		return nil, err
	}
	names, err := strtab.Data()
	if err != nil {
		return nil, err
	}
	const entry = 24 // Elf64_Sym
	order := file.ByteOrder
	hashes := map[string]string{}
	prefixes := [][]byte{[]byte("go.link.pkghashbytes."), []byte("go:link.pkghashbytes.")}
	for at := 0; at+entry <= len(symbols); at += entry {
		nameAt := int(order.Uint32(symbols[at:]))
		if nameAt <= 0 || nameAt >= len(names) {
			continue
		}
		name := names[nameAt:]
		var prefix []byte
		for _, candidate := range prefixes {
			if bytes.HasPrefix(name, candidate) {
				prefix = candidate
			}
		}
		if prefix == nil {
			continue
		}
		end := bytes.IndexByte(name, 0)
		if end < 0 {
			continue
		}
		pkg := string(name[len(prefix):end])
		value, size := order.Uint64(symbols[at+8:]), order.Uint64(symbols[at+16:])
		if size == 0 || size > 64 {
			continue
		}
		for _, section := range file.Sections {
			if section.Type == elf.SHT_NOBITS || value < section.Addr || value+size > section.Addr+section.Size {
				continue
			}
			hash := make([]byte, size)
			if _, err := section.ReadAt(hash, int64(value-section.Addr)); err == nil {
				hashes[pkg] = hex.EncodeToString(hash)
			}
			break
		}
	}
	return hashes, nil
}

// mismatch is why plugin.Open would refuse the plugin.
type mismatch struct {
	bindings []binding
	// packages are the shared packages whose hashes differ.
	packages []string
	shared   int
	reason   string
}

// compareBuilds says whether `plugin` can be loaded by a host built as
// `host`; nil when it can.
func compareBuilds(plugin, host buildFacts) *mismatch {
	m := &mismatch{}
	for pkg := range plugin.hashes {
		if _, ok := host.hashes[pkg]; ok {
			m.shared++
		}
	}
	// Every Go plugin links the runtime and the dozens of packages under
	// it; a file with fewer hashes only looks like one, and plugin.Open
	// would end the process on it ("runtime: no plugin module data").
	if _, ok := plugin.hashes["runtime"]; !ok || m.shared < minSharedPackages {
		m.reason = fmt.Sprintf("not a Go plugin: it exports the hashes of %d package(s) a Go host shares, where every `go build -buildmode=plugin` library links the runtime and the dozens of packages under it (plugin.Open would end the process on it); build it with go build -buildmode=plugin", m.shared)
		return m
	}
	if plugin.goVersion != "" {
		pluginRelease, pluginExperiments := splitGoVersion(plugin.goVersion)
		hostRelease, hostExperiments := splitGoVersion(host.goVersion)
		if pluginRelease != hostRelease {
			m.bindings = append(m.bindings, binding{What: "Go release", Plugin: plugin.goVersion, Host: host.goVersion})
		} else if pluginExperiments != hostExperiments {
			m.bindings = append(m.bindings, binding{What: "GOEXPERIMENT", Plugin: pluginExperiments, Host: hostExperiments})
		}
	}
	if version, ok := plugin.deps[contractModule]; ok && version != host.deps[contractModule] {
		m.bindings = append(m.bindings, binding{What: contractModule, Plugin: version, Host: host.deps[contractModule]})
	}
	if plugin.goVersion != "" {
		for _, key := range settingsThatBind {
			if plugin.settings[key] != host.settings[key] {
				m.bindings = append(m.bindings, binding{What: "build setting " + key, Plugin: plugin.settings[key], Host: host.settings[key]})
			}
		}
	}
	for pkg, hash := range plugin.hashes {
		if hostHash, ok := host.hashes[pkg]; ok {
			if hostHash != hash {
				m.packages = append(m.packages, pkg)
			}
		}
	}
	if len(m.bindings) == 0 && len(m.packages) == 0 {
		return nil
	}
	sort.Slice(m.packages, func(i, j int) bool {
		return packageRank(m.packages[i]) < packageRank(m.packages[j]) ||
			packageRank(m.packages[i]) == packageRank(m.packages[j]) && m.packages[i] < m.packages[j]
	})
	m.reason = m.explain(host)
	return m
}

// packageRank puts the packages a reader acts on first: the contract, then
// the runtime, then the rest.
func packageRank(pkg string) int {
	switch {
	case pkg == contractModule:
		return 0
	case pkg == "runtime":
		return 1
	default:
		return 2
	}
}

func (m *mismatch) explain(host buildFacts) string {
	var parts []string
	for _, b := range m.bindings {
		switch {
		case b.What == "Go release":
			release, experiments := splitGoVersion(b.Plugin)
			toolchain := fmt.Sprintf("set PLUGCHECK_GO to a %s toolchain, which plugcheck then builds its worker with", release)
			if experiments != "" {
				toolchain = fmt.Sprintf("set PLUGCHECK_GO to a %s toolchain: plugcheck then builds its worker with it and GOEXPERIMENT=%s", release, experiments)
			}
			parts = append(parts, fmt.Sprintf(
				"the plugin was built by %s, this worker by %s: build both with one Go release (or %s)",
				withExperiments(b.Plugin), withExperiments(b.Host), toolchain))
		case b.What == "GOEXPERIMENT":
			parts = append(parts, fmt.Sprintf(
				"the plugin was built with GOEXPERIMENT=%s, this worker with GOEXPERIMENT=%s (both by %s): Go refuses a plugin built with other experiments than its host; plugcheck builds its worker with the experiments the plugin's release string names, so this worker was built another way: clear plugcheck's Go worker cache, or build the plugin without experiments",
				orNone(b.Plugin), orNone(b.Host), host.goVersionRelease()))
		case b.What == contractModule:
			parts = append(parts, fmt.Sprintf(
				"the plugin requires %s %s, the worker %s: %s",
				contractModule, orNone(b.Plugin), orNone(b.Host), contractVersionAdvice(b.Host)))
		default:
			parts = append(parts, fmt.Sprintf(
				"the plugin was built with %s=%s, the worker with %s=%s: a plugin must be built with its host's build flags",
				strings.TrimPrefix(b.What, "build setting "), orNone(b.Plugin),
				strings.TrimPrefix(b.What, "build setting "), orNone(b.Host)))
		}
	}
	releaseDiffers := len(m.bindings) > 0 && m.bindings[0].What == "Go release"
	if len(m.packages) > 0 && !releaseDiffers {
		// Counts depend on the Go release's standard library: the reason
		// says whether every shared package differs, and names the first.
		named := strings.Join(first(m.packages, 3), ", ")
		var packages string
		if len(m.packages) == m.shared && m.shared > 1 {
			packages = fmt.Sprintf("plugin.Open would refuse it: the plugin was built with a different version of package %s and every other package it shares with the worker", named)
		} else {
			if len(m.packages) > 3 {
				named += " and others"
			}
			packages = fmt.Sprintf("plugin.Open would refuse it: the plugin was built with a different version of package %s; the other packages it shares with the worker match", named)
			if m.packages[0] == contractModule && !m.bindsContract() {
				packages += "; " + contractVersionAdvice(host.deps[contractModule])
			}
		}
		if len(m.bindings) == 0 {
			packages += fmt.Sprintf("; the plugin carries no Go build information to say why: build it with %s, the same build flags as its host (-trimpath, -race, CGO_ENABLED, tags) and the same copy of every package they share", host.goVersion)
		}
		parts = append(parts, packages)
	}
	return strings.Join(parts, "; ") + "; plugin.Open was not called (Go ends the process on some of these mismatches)"
}

// bindsContract says whether the build information already named the
// contract's versions (then its advice was given with them).
func (m *mismatch) bindsContract() bool {
	for _, b := range m.bindings {
		if b.What == contractModule {
			return true
		}
	}
	return false
}

// contractVersionAdvice is what to do when the plugin's contract package
// differs from the worker's, which requires the contract at hostVersion
// (read from the worker's own build information, which plugcheck's go.mod
// for it sets). Under -trimpath, which Go-native plugins and their hosts
// are built with, a package's identity is its module path and version, not
// its directory: a go.mod that requires the contract at v0.0.0 beside a
// replace (natural, since the replace supplies the source) makes a
// different package from the same files.
func contractVersionAdvice(hostVersion string) string {
	return fmt.Sprintf(
		"under -trimpath the module version is part of the package's identity, so the same source required at another version is another package: require %s %s in go.mod (the version this worker requires; a replace beside it still chooses the copy)",
		contractModule, orNone(hostVersion))
}

// detail is the mismatch as the report's binding list: what differs, and
// the first shared packages whose hashes differ (all of them do when the
// Go release differs, which says it already).
func (m *mismatch) detail() []binding {
	list := append([]binding(nil), m.bindings...)
	if len(m.bindings) > 0 && m.bindings[0].What == "Go release" {
		return list
	}
	for _, pkg := range first(m.packages, 3) {
		list = append(list, binding{What: "package " + pkg, Plugin: "built differently", Host: "as the worker was built"})
	}
	return list
}

func orNone(value string) string {
	if value == "" {
		return "(not set)"
	}
	return value
}

// goVersionRelease is the release a build was made by, without its
// experiments.
func (f buildFacts) goVersionRelease() string {
	release, _ := splitGoVersion(f.goVersion)
	return release
}
