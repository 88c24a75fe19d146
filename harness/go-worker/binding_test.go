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
