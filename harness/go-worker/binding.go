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
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
)

// contractModule is the module of the Go-native contract.
const contractModule = "plugcheck.dev/abi"

// settingsThatBind are the build settings that change what a package
// compiles to, so host and plugin must agree on them.
var settingsThatBind = []string{
	"-asan", "-compiler", "-gcflags", "-msan", "-race", "-tags", "-trimpath",
	"CGO_ENABLED", "GOAMD64", "GOARCH", "GOEXPERIMENT", "GOOS",
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
	hashes, err := packageHashes(path)
	if err != nil {
		return buildFacts{}, err
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		info = nil
	}
	return factsOf(info, hashes), nil
}

var (
	selfOnce  sync.Once
	selfFacts buildFacts
	selfErr   error
)

// workerFacts are this worker's own build facts.
func workerFacts() (buildFacts, error) {
	selfOnce.Do(func() {
		exe, err := os.Executable()
		if err != nil {
			selfErr = err
			return
		}
		hashes, err := packageHashes(exe)
		if err != nil {
			selfErr = err
			return
		}
		info, _ := debug.ReadBuildInfo()
		selfFacts = factsOf(info, hashes)
	})
	return selfFacts, selfErr
}

// packageHashes reads the linker's per-package hashes from an ELF file's
// dynamic symbols.
func packageHashes(path string) (map[string]string, error) {
	file, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	symbols, err := file.DynamicSymbols()
	if err != nil {
		return nil, err
	}
	hashes := map[string]string{}
	for _, symbol := range symbols {
		var pkg string
		for _, prefix := range []string{"go.link.pkghashbytes.", "go:link.pkghashbytes."} {
			if strings.HasPrefix(symbol.Name, prefix) {
				pkg = strings.TrimPrefix(symbol.Name, prefix)
			}
		}
		if pkg == "" || symbol.Size == 0 || symbol.Size > 64 {
			continue
		}
		for _, section := range file.Sections {
			if section.Type == elf.SHT_NOBITS || symbol.Value < section.Addr ||
				symbol.Value+symbol.Size > section.Addr+section.Size {
				continue
			}
			bytes := make([]byte, symbol.Size)
			if _, err := section.ReadAt(bytes, int64(symbol.Value-section.Addr)); err == nil {
				hashes[pkg] = hex.EncodeToString(bytes)
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
	if plugin.goVersion != "" && plugin.goVersion != host.goVersion {
		m.bindings = append(m.bindings, binding{What: "Go release", Plugin: plugin.goVersion, Host: host.goVersion})
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
			m.shared++
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
			parts = append(parts, fmt.Sprintf(
				"the plugin was built by %s, this worker by %s: build both with one Go release (or set PLUGCHECK_GO to a %s toolchain, which plugcheck then builds its worker with)",
				b.Plugin, b.Host, b.Plugin))
		case b.What == contractModule:
			parts = append(parts, fmt.Sprintf(
				"the plugin uses %s %s, the worker %s: build the plugin against the contract this plugcheck ships (%s %s)",
				contractModule, orNone(b.Plugin), orNone(b.Host), contractModule, orNone(b.Host)))
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
		}
		if len(m.bindings) == 0 {
			packages += fmt.Sprintf("; the plugin carries no Go build information to say why: build it with %s, the same build flags as its host (-trimpath, -race, CGO_ENABLED, tags) and the same copy of every package they share", host.goVersion)
		}
		parts = append(parts, packages)
	}
	return strings.Join(parts, "; ") + "; plugin.Open was not called (Go ends the process on some of these mismatches)"
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
