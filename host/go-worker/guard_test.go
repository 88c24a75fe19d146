package main

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

// A panic is a panic whatever its value: panic(nil) and a nil error
// recover as nil under the go.mod's semantics, and must still be caught.
func TestGuardCatchesEveryPanic(t *testing.T) {
	var nilError error
	cases := map[string]func(){
		"nil":       func() { panic(nil) },
		"nil error": func() { panic(nilError) },
		"text":      func() { panic("boom") },
		"error":     func() { panic(errors.New("bad")) },
	}
	for name, call := range cases {
		if p := guard(call); p == nil {
			t.Errorf("%s: a panic went unseen", name)
		}
	}
	if p := guard(func() {}); p != nil {
		t.Errorf("a call that returned was taken for a panic: %s", p)
	}
	if p := guard(func() { panic(nil) }); !strings.Contains(p.String(), "nil") {
		t.Errorf("panic(nil) not named: %s", p)
	}
}

func TestEveryMethodGetsInputs(t *testing.T) {
	for _, c := range []struct{ methods, inputs, want int }{
		{1, 256, 256}, {64, 256, 256}, {65, 256, 252}, {1000, 256, 16}, {10001, 256, 1}, {10001, 3, 1}, {3, 100000, 100000},
	} {
		if got := inputsPerMethod(c.methods, c.inputs); got != c.want {
			t.Errorf("inputsPerMethod(%d, %d) = %d, want %d", c.methods, c.inputs, got, c.want)
		}
	}
}

type evilError struct{ block bool }

func (e evilError) Error() string {
	if e.block {
		select {}
	}
	panic(evilError{})
}

// A call that ends its goroutine (runtime.Goexit) is reported, not left
// to hang the worker; a panic value or an error whose Error panics or
// never returns is named by its type.
func TestGuardSurvivesWhatAPluginsValuesDo(t *testing.T) {
	defer unanswered.Store(false)
	if p := guard(runtime.Goexit); p == nil || !strings.Contains(p.String(), "Goexit") {
		t.Errorf("runtime.Goexit: %v", p)
	}
	if p := guard(func() { panic(evilError{}) }); p == nil || !strings.Contains(p.String(), "panicked when asked") {
		t.Errorf("a panic value whose Error panics: %v", p)
	}
	if text := errorText(evilError{block: true}); !strings.Contains(text, "did not say what it is") {
		t.Errorf("an error whose Error never returns: %q", text)
	}
}
