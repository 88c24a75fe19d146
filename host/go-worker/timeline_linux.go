//go:build linux

package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// clockMonotonic is CLOCK_MONOTONIC (linux/time.h): the clock the
// harness's processes share, which Go's time package does not expose.
const clockMonotonic = 1

// timeline is the file PLUGCHECK_TIMELINE names, when the harness asks for
// a run's phases (host/src/run/timeline.rs); nil otherwise.
var timeline = openTimeline()

func openTimeline() *os.File {
	path := os.Getenv("PLUGCHECK_TIMELINE")
	if path == "" {
		return nil
	}
	file, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil
	}
	return file
}

// mark records that the worker reached phase now, as `PID PHASE NS` on the
// shared clock, in one write (lines of several processes do not mix).
func mark(phase string) {
	if timeline == nil {
		return
	}
	var now syscall.Timespec
	_, _, _ = syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&now)), 0)
	line := fmt.Sprintf("%d go-worker:%s %d\n", os.Getpid(), phase, uint64(now.Sec)*1_000_000_000+uint64(now.Nsec))
	_, _ = timeline.WriteString(line)
}
