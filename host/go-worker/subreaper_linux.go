//go:build linux

package main

import "syscall"

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER (linux/prctl.h),
// which Go's syscall package does not name.
const prSetChildSubreaper = 36

// becomeSubreaper makes the worker the reaper of its descendants: a
// plugin's child that daemonizes is re-parented to the worker, not to
// init, so leftovers.go finds it among the worker's children.
func becomeSubreaper() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
}
