//go:build !linux

package main

// becomeSubreaper does nothing where there is no PR_SET_CHILD_SUBREAPER:
// Go-native plugins are judged on Linux only; elsewhere the worker
// builds, and a plugin's daemonized child is re-parented as the OS does.
func becomeSubreaper() {}
