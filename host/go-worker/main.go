// The Go worker: judges a Go-native plugin (`go build -buildmode=plugin`)
// for the plugcheck harness. Only a Go program can plugin.Open one, so this
// worker stands in for `plugcheck __worker` and speaks its protocol: the
// same command line, the hello with the token, batches of cases, one `done`
// per case, and the case-end markers on stdout and stderr. Everything else
// — timeouts, killing the process tree, decoding how the worker ended, the
// ledger, reports and snapshots — stays in the Rust parent.
//
// The parent decides every skip itself (its ledger): this worker stops a
// batch at the first case that fails and answers the rest as not run.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"time"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "__facts" {
		writeOwnFacts()
		return
	}
	mark("main")
	if len(os.Args) < 2 || os.Args[1] != "__worker" {
		fmt.Fprintln(os.Stderr, "plugcheck-go-worker is started by plugcheck: plugcheck check PLUGIN.so")
		os.Exit(2)
	}
	flags := flag.NewFlagSet("__worker", flag.ExitOnError)
	connect := flags.String("connect", "", "the parent's loopback address")
	channelFD := flags.Int("channel-fd", -1, "the descriptor this worker's end of its channel is on")
	token := flags.String("token", "", "the token that proves the connection is ours")
	pluginPath := flags.String("plugin", "", "the plugin to judge")
	_ = flags.Parse(os.Args[2:])
	// A plugin's child that daemonizes is re-parented to the worker, where
	// the parent finds and reaps it.
	becomeSubreaper()
	// Reading both binaries' build facts has no effect on the plugin: done
	// while the parent connects and sends the first batch, it is off the
	// `load` case's path.
	go prefetchFacts(*pluginPath)
	conn, err := joinChannel(*channelFD, *connect)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugcheck go worker: cannot connect to the harness:", err)
		os.Exit(exitChannelLost)
	}
	ch := &channel{conn: conn, reader: bufio.NewReaderSize(conn, 64*1024)}
	// Marked before the message that lets the parent go on (and end this
	// process at any moment once the last answer is in).
	mark("hello")
	if err := ch.send(hello{Type: "hello", Token: *token, Pid: os.Getpid(), Protocol: protocolVersion}); err != nil {
		channelLost(err)
	}
	warmCodecs()
	s := newSession(*pluginPath)
	inbox := make(chan received, 1)
	flight := &inFlight{}
	go readMessages(ch, inbox, flight)
	for {
		r := <-inbox
		if errors.Is(r.err, io.EOF) {
			return
		}
		if r.err != nil {
			channelLost(r.err)
		}
		batch := r.message
		if batch.Type == "call" {
			seq := batch.Seq
			forward := func(line logLine) {
				if err := ch.send(logged{Type: "logged", Seq: seq, Line: line}); err != nil {
					channelLost(err)
				}
			}
			answer := s.serveCall(batch, r.cancel, forward)
			flight.end(seq)
			// An embedding host's call (its input inline) is not cut
			// from the next by a marker, as in the Rust worker.
			if batch.InputHex == nil {
				markCaseEnd(*token, seq)
			}
			if err := ch.send(called{Type: "called", Seq: seq, Answer: answer}); err != nil {
				channelLost(err)
			}
			continue
		}
		if batch.Type == "save-state" || batch.Type == "restore-state" || batch.Type == "describe" {
			var answer callAnswer
			switch batch.Type {
			case "save-state":
				answer = s.saveState()
			case "restore-state":
				answer = s.restoreState(batch.StateHex)
			default:
				answer = s.describe()
			}
			if err := ch.send(called{Type: "called", Seq: batch.Seq, Answer: answer}); err != nil {
				channelLost(err)
			}
			continue
		}
		mark("batch-received")
		s.settings = batch.Settings
		// After a case fails, what depends on it is the parent's ledger to
		// skip: the rest of the batch is answered as not run, and the
		// parent sends again what its ledger does not skip.
		stopped := false
		for i, id := range batch.Cases {
			seq := batch.FirstSeq + uint64(i)
			started := time.Now()
			s.announce = func(method string, input uint32) {
				if err := ch.send(calling{Type: "calling", Seq: seq, Method: method, Input: input}); err != nil {
					channelLost(err)
				}
			}
			var result caseResult
			if stopped {
				result = caseResult{Outcome: skipped(notRun), Plugin: s.info()}
			} else {
				result = s.run(id)
			}
			workUs := uint64(time.Since(started).Microseconds())
			markCaseEnd(*token, seq)
			mark("case-done")
			err := ch.send(done{
				Type: "done", Seq: seq, Case: id, Result: result,
				WorkUs: workUs, HasLoaded: s.plug != nil, NotRun: stopped,
			})
			stopped = stopped || result.Outcome.Verdict == verdictFail
			if err != nil {
				channelLost(err)
			}
		}
	}
}

// notRun is the reason of a case the worker did not run: an earlier case
// of its batch failed.
const notRun = "not run: an earlier case of the batch failed"

// channelLost ends the worker with the code the parent reads as "the plugin
// closed or replaced a descriptor it did not open".
func channelLost(err error) {
	fmt.Fprintln(os.Stderr, "plugcheck go worker: lost the channel to the harness:", err)
	os.Exit(exitChannelLost)
}

// markCaseEnd writes the case-end marker to both streams, so the parent
// gives what the plugin printed to the right case.
func markCaseEnd(token string, seq uint64) {
	marker := fmt.Sprintf("\n@@plugcheck:%s:%d@@\n", token, seq)
	_, _ = os.Stdout.WriteString(marker)
	_, _ = os.Stderr.WriteString(marker)
}

// goVersion is the Go release this worker (and so every plugin it can load)
// was built by.
var goVersion = runtime.Version()

// joinChannel returns the channel to the parent: the end it was handed
// at its start (`--channel-fd`, a socket pair's end on Linux), or a
// connection to its loopback address (`--connect`).
func joinChannel(fd int, address string) (net.Conn, error) {
	if fd > 2 {
		file := os.NewFile(uintptr(fd), "plugcheck-channel")
		// FileConn works on a duplicate: the original is closed, so what
		// the plugin starts cannot inherit it.
		defer file.Close()
		return net.FileConn(file)
	}
	return net.DialTimeout("tcp", address, 20*time.Second)
}
