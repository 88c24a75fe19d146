// go-native-echo: the template Go-native plugin, built with
// `go build -buildmode=plugin` and loaded by a Go host with plugin.Open.
// It passes the whole plugcheck suite: copy it, rename the module, keep the
// shape.
//
// It echoes its input, counts the calls it served (its state, handed to
// the next version on hot reload), and runs one background goroutine that
// Shutdown stops — the part most Go plugins get wrong.
package main

import (
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

type echo struct {
	calls atomic.Uint64
	mu    sync.Mutex
	stop  chan struct{}
	done  sync.WaitGroup
	host  plugcheck.Host
}

// Plugin is what the host looks up: a plugcheck.Plugin variable.
var Plugin plugcheck.Plugin = &echo{}

func (e *echo) Info() plugcheck.Info {
	return plugcheck.Info{
		Name:     "go-native-echo",
		Version:  version,
		ABIMajor: plugcheck.ABIMajor,
		ABIMinor: plugcheck.ABIMinor,
	}
}

func (e *echo) Init(host plugcheck.Host) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.host = host
	e.stop = make(chan struct{})
	e.done.Add(1)
	go e.heartbeat(e.stop)
	for name, method := range map[string]plugcheck.Method{
		"echo":     e.echo,
		"count":    e.count,
		"selftest": e.selftest,
	} {
		if err := host.Register(name, method); err != nil {
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

func (e *echo) echo(in []byte) ([]byte, error) {
	e.calls.Add(1)
	return append([]byte(nil), in...), nil
}

func (e *echo) count(in []byte) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(nil, e.calls.Load()), nil
}

func (e *echo) selftest(in []byte) ([]byte, error) {
	out, err := e.echo([]byte("ping"))
	if err != nil || string(out) != "ping" {
		return nil, errors.New("echo did not answer ping")
	}
	return nil, nil
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
