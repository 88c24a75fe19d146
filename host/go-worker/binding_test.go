package main

import (
	"fmt"
	"strings"
	"testing"
)

// facts are a Go binary's build facts with the runtime's packages (enough
// to count as a Go plugin) and the contract at `contract`'s hash.
func facts(deps map[string]string, contract string) buildFacts {
	hashes := map[string]string{contractModule: contract}
	for i, pkg := range []string{"runtime", "errors", "sync", "unsafe", "internal/abi", "fmt"} {
		hashes[pkg] = fmt.Sprintf("h%d", i)
	}
	return buildFacts{deps: deps, settings: map[string]string{}, hashes: hashes}
}

// A plugin without build information (Go 1.19 embeds none in plugins)
// whose contract package alone differs: the refusal names the version
// the worker requires, read from the worker's facts, and why it matters.
func TestAContractOfAnotherVersionSaysWhichVersionToRequire(t *testing.T) {
	host := facts(map[string]string{contractModule: "v1.0.0"}, "worker")
	host.goVersion = "go1.19.8"
	m := compareBuilds(facts(map[string]string{}, "plugin"), host)
	if m == nil {
		t.Fatal("a different contract package must be refused")
	}
	for _, want := range []string{
		"different version of package plugcheck.dev/abi",
		"under -trimpath the module version is part of the package's identity",
		"require plugcheck.dev/abi v1.0.0 in go.mod",
	} {
		if !strings.Contains(m.reason, want) {
			t.Errorf("%q not in %q", want, m.reason)
		}
	}
}

// With build information (Go 1.20 and later), the versions are named.
func TestARequiredVersionFromBuildInformationIsNamedOnce(t *testing.T) {
	host := facts(map[string]string{contractModule: "v1.2.3"}, "worker")
	host.goVersion = "go1.22.0"
	plugin := facts(map[string]string{contractModule: "v0.0.0"}, "plugin")
	plugin.goVersion = "go1.22.0"
	m := compareBuilds(plugin, host)
	if m == nil {
		t.Fatal("a different contract version must be refused")
	}
	if !strings.Contains(m.reason, "the plugin requires plugcheck.dev/abi v0.0.0, the worker v1.2.3") ||
		!strings.Contains(m.reason, "require plugcheck.dev/abi v1.2.3 in go.mod") ||
		strings.Count(m.reason, "under -trimpath") != 1 {
		t.Errorf("%q", m.reason)
	}
}

func TestAReleaseStringIsAReleaseAndItsExperiments(t *testing.T) {
	for version, want := range map[string][2]string{
		"go1.19.8":                              {"go1.19.8", ""},
		"go1.21.13 X:loopvar":                   {"go1.21.13", "loopvar"},
		"go1.22.0 X:nocoverageredesign,loopvar": {"go1.22.0", "nocoverageredesign,loopvar"},
		"":                                      {"", ""},
	} {
		release, experiments := splitGoVersion(version)
		if release != want[0] || experiments != want[1] {
			t.Errorf("splitGoVersion(%q) = %q, %q; want %q, %q", version, release, experiments, want[0], want[1])
		}
	}
}

// A plugin built with an experiment by the worker's release differs from
// the worker in its experiments, not its release: the refusal says so and
// never asks for "one Go release".
func TestExperimentsAreABuildSettingNotARelease(t *testing.T) {
	host := facts(map[string]string{contractModule: "v1.0.0"}, "worker")
	host.goVersion = "go1.21.13"
	plugin := facts(map[string]string{contractModule: "v1.0.0"}, "plugin")
	plugin.goVersion = "go1.21.13 X:loopvar"
	m := compareBuilds(plugin, host)
	if m == nil {
		t.Fatal("a plugin built with an experiment the worker lacks must be refused")
	}
	if strings.Contains(m.reason, "one Go release") || strings.Contains(m.reason, "X:loopvar") ||
		!strings.Contains(m.reason, "the plugin was built with GOEXPERIMENT=loopvar, this worker with GOEXPERIMENT=(not set) (both by go1.21.13)") {
		t.Errorf("%q", m.reason)
	}
	if len(m.bindings) != 1 || m.bindings[0].What != "GOEXPERIMENT" {
		t.Errorf("bindings %+v", m.bindings)
	}
	// Built alike, experiments included: nothing binds.
	host.goVersion = "go1.21.13 X:loopvar"
	plugin.hashes[contractModule] = "worker"
	if m := compareBuilds(plugin, host); m != nil {
		t.Errorf("a worker built with the plugin's experiments refused it: %s", m.reason)
	}
	// Another release too: the release is named, and the experiments as
	// the setting they are.
	host.goVersion = "go1.19.8"
	m = compareBuilds(plugin, host)
	if m == nil || !strings.Contains(m.reason, "the plugin was built by go1.21.13 with GOEXPERIMENT=loopvar, this worker by go1.19.8: build both with one Go release (or set PLUGCHECK_GO to a go1.21.13 toolchain: plugcheck then builds its worker with it and GOEXPERIMENT=loopvar)") {
		t.Errorf("%+v", m)
	}
}
