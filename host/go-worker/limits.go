package main

// The bounds the Go worker holds a Go-native plugin to: the Rust worker's
// (host/src/worker/limits.rs), so the same behaviour gets the same verdict
// whichever worker judges it. host/protocol/limits.json is their golden
// copy; limits_test.go compares these with it, as the Rust tests do theirs.
const (
	// logLinesKept: lines of a plugin's log kept per instance.
	logLinesKept = 200
	// logLineBytes: bytes of one log line kept; a longer one is cut and
	// marked with `…`.
	logLineBytes = 2000
	// methodNameBytes: the longest method name taken; a longer one is
	// refused.
	methodNameBytes = 4096
	// methods: the most methods one instance may register.
	methods = 16384
	// rejectionsKept: refused registrations a report lists; more are
	// counted.
	rejectionsKept = 100
	// methodsListed: method names a report lists.
	methodsListed = 200
	// pluginStringBytes: the longest name or version a plugin may give; a
	// longer one fails `metadata`.
	pluginStringBytes = 4096
	// channelLineBytes: the longest protocol line read.
	channelLineBytes = 4 << 20
	// exitChannelLost: the exit code the parent reads as "the plugin
	// closed or replaced a descriptor it did not open".
	exitChannelLost = 97
	// inlineCallInputBytes: the largest input a call carries in its
	// message (input_hex): an embedding host's call.
	inlineCallInputBytes = 1 << 20
)
