// go-native-echo: the template Go-native plugin, built with
// `go build -buildmode=plugin` and loaded by a Go host with plugin.Open.
// It passes the whole plugcheck suite: copy it, rename the module, keep the
// shape.
//
// It is of contract 1.1: each instance (the exported Plugin, and every one
// NewInstance makes, one per tenant of the host, say) echoes its input,
// counts the calls it served (its state, handed to the next version on hot
// reload), and runs one background goroutine that Shutdown stops — the
// part most Go plugins get wrong. Its methods receive their call's
// context.Context: its deadline, its cancellation, and its trace, which
// the lines they log through LogContext carry.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	plugcheck "plugcheck.dev/abi"
)

// version is the plugin's own semver; a build of the next version sets it
// with -ldflags=-X (see the README).
var version = "1.0.0"

// contextHost is what a host of contract 1.1 offers besides
// plugcheck.Host. The contract package stays at 1.0 (a new version of it
// would be another package to Go, and every 1.0 plugin would stop
// loading), so 1.1 is methods of standard-library types, found with a
// type assertion.
type contextHost interface {
	plugcheck.Host
	// RegisterContext registers a method that receives its call's context.
	RegisterContext(name string, m func(ctx context.Context, in []byte) ([]byte, error)) error
	// LogContext logs a line tagged with the trace id of ctx's call.
	LogContext(ctx context.Context, level int, message string)
}

type echo struct {
	calls atomic.Uint64
	mu    sync.Mutex
	stop  chan struct{}
	done  sync.WaitGroup
	host  contextHost
}

// Plugin is what the host looks up: a plugcheck.Plugin variable, the
// plugin's first instance.
var Plugin plugcheck.Plugin = &echo{}

func (e *echo) Info() plugcheck.Info {
	return plugcheck.Info{
		Name:     "go-native-echo",
		Version:  version,
		ABIMajor: plugcheck.ABIMajor,
		ABIMinor: 1,
	}
}

// NewInstance makes another instance, with a count of its own: contract
// 1.1's instances. The host initialises it with a Host of its own.
func (e *echo) NewInstance() (plugcheck.Plugin, error) { return &echo{}, nil }

func (e *echo) Init(host plugcheck.Host) error {
	h, ok := host.(contextHost)
	if !ok {
		return errors.New("go-native-echo is of contract 1.1: its host must offer RegisterContext and LogContext")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.host = h
	e.stop = make(chan struct{})
	e.done.Add(1)
	go e.heartbeat(e.stop)
	for name, method := range map[string]func(context.Context, []byte) ([]byte, error){
		"echo":          e.echo,
		"count":         e.count,
		"selftest":      e.selftest,
		"selftest.wait": wait,
	} {
		if err := h.RegisterContext(name, method); err != nil {
			return fmt.Errorf("registering %s: %w", name, err)
		}
	}
	host.Log(4, "go-native-echo "+version+" ready")
	return nil
}

// heartbeat stands for the background work a real plugin does.
func (e *echo) heartbeat(stop <-chan struct{}) {
	defer e.done.Done()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
	}
}

func (e *echo) Shutdown() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stop != nil {
		close(e.stop)
		e.stop = nil
	}
	e.done.Wait()
	return nil
}

func (e *echo) echo(ctx context.Context, in []byte) ([]byte, error) {
	e.calls.Add(1)
	e.host.LogContext(ctx, 5, fmt.Sprintf("echo: %d byte(s)", len(in)))
	return append([]byte(nil), in...), nil
}

func (e *echo) count(ctx context.Context, in []byte) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(nil, e.calls.Load()), nil
}

func (e *echo) selftest(ctx context.Context, in []byte) ([]byte, error) {
	probe := &echo{host: e.host}
	out, err := probe.echo(ctx, []byte("ping"))
	if err != nil || string(out) != "ping" {
		return nil, errors.New("echo did not answer ping")
	}
	return nil, nil
}

// wait is the wait probe plugcheck judges deadlines and cancellation by:
// it returns once its call is cancelled or its deadline passes. A real
// method that waits (on I/O, a lock, a timer) selects on ctx.Done() too.
func wait(ctx context.Context, in []byte) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// SaveState and RestoreState carry the call count to the next version.
func (e *echo) SaveState() ([]byte, error) {
	return binary.LittleEndian.AppendUint64(nil, e.calls.Load()), nil
}

func (e *echo) RestoreState(state []byte) error {
	if len(state) != 8 {
		return fmt.Errorf("state of %d bytes, expected 8", len(state))
	}
	e.calls.Store(binary.LittleEndian.Uint64(state))
	return nil
}

func main() {}
