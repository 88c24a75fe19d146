package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestAFunctionsPackageIsReadFromItsName(t *testing.T) {
	for function, want := range map[string]string{
		"example.com/ttlcache.(*Cache).janitor":          "example.com/ttlcache",
		"example.com/ttlcache.New.func1":                 "example.com/ttlcache",
		"plugcheck.dev/fixtures/go-native/x.poll":        "plugcheck.dev/fixtures/go-native/x",
		"gopkg.in/yaml%2ev3.(*parser).parse":             "gopkg.in/yaml.v3",
		"main.main":                                      "main",
		"time.Sleep":                                     "time",
		"github.com/a/b/v2.Run[...]":                     "github.com/a/b/v2",
		"noDot":                                          "",
		"example.com/ttlcache/internal/clock.(*T).Stamp": "example.com/ttlcache/internal/clock",
	} {
		if got := packageOf(function); got != want {
			t.Errorf("packageOf(%q) = %q, want %q", function, got, want)
		}
	}
}

// The standard library's packages are not the plugin's even when only
// the plugin links them, unless its build information puts them in one
// of its modules (a dotless module path under a `replace`).
func TestWhichPackagesThePluginBrings(t *testing.T) {
	for _, c := range []struct {
		pkg      string
		standard bool
	}{{"os/signal", true}, {"net/http", true}, {"example.com/ttlcache", false}, {"golang.org/x/sys/unix", false}, {"mycache", true}} {
		if standardLooking(c.pkg) != c.standard {
			t.Errorf("standardLooking(%q) != %v", c.pkg, c.standard)
		}
	}
	modules := []string{"mycache", "example.com/plugin"}
	if !underAny("mycache", modules) || !underAny("mycache/store", modules) || underAny("mycachex", modules) || underAny("os", modules) {
		t.Error("underAny matches module paths wrongly")
	}
}

// A goroutine of a package is found by the function it runs, and by the
// function that started it.
func TestGoroutinesAreFoundByPackage(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	go func() { <-stop }()
	found := goroutinesOf(map[string]bool{"plugcheck.dev/go-worker": true})
	if len(found) == 0 {
		t.Fatal("no goroutine of this package found, though one waits")
	}
	if got := goroutinesOf(map[string]bool{"example.com/none": true}); len(got) != 0 {
		t.Errorf("goroutines of a package that runs none: %v", got)
	}
}

// A child that runs is found, named by its command; once it ended it is
// a zombie until waited for, and no longer counts.
func TestRunningChildrenAreFoundAndZombiesAreNot(t *testing.T) {
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Skip("no `sleep` to start:", err)
	}
	found := false
	for _, p := range runningChildren() {
		found = found || (int(p.Pid) == child.Process.Pid && p.Name == "sleep")
	}
	if !found {
		t.Errorf("the running child %d is not among %v", child.Process.Pid, runningChildren())
	}
	_ = child.Process.Signal(os.Kill)
	deadline := time.Now().Add(5 * time.Second)
	for {
		still := false
		for _, p := range runningChildren() {
			still = still || int(p.Pid) == child.Process.Pid
		}
		if !still {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a killed child (a zombie) still counts as running")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = child.Wait()
}

func TestStatLinesWithOddNamesParse(t *testing.T) {
	name, state, ppid, ok := parseStat("123 (a) b (c)) S 77 1 1 0")
	if !ok || name != "a) b (c)" || state != 'S' || ppid != 77 {
		t.Errorf("got %q %c %d %v", name, state, ppid, ok)
	}
	if _, _, _, ok := parseStat("garbage"); ok {
		t.Error("garbage parsed")
	}
}

type stuckError struct{ stuck chan struct{} }

func (e stuckError) Error() string { <-e.stuck; return "never" }

// A plugin's value the worker asked about and gave up on (askValue) is
// the worker's goroutine, stuck in the plugin's code: not a goroutine the
// plugin left running.
func TestAGoroutineStuckAnsweringForAValueIsNotThePlugins(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	defer unanswered.Store(false)
	if text := errorText(stuckError{stuck}); !strings.Contains(text, "did not say what it is") {
		t.Fatalf("%q", text)
	}
	for _, g := range goroutinesOf(map[string]bool{"plugcheck.dev/go-worker": true, "main": true}) {
		if strings.Contains(g, "stuckError") {
			t.Errorf("the worker's own goroutine was counted: %s", g)
		}
	}
}
