package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// The worker builds for an OS without prctl: Linux-only calls sit behind
// build constraints (subreaper_linux.go), not in files every OS compiles.
// Go-native plugins load on Linux only, but a call compiled for the wrong
// OS should fail a build, not hide in one.
func TestTheWorkerBuildsOffLinux(t *testing.T) {
	for _, goos := range []string{"windows", "darwin"} {
		vet := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "vet", ".")
		vet.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		if output, err := vet.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go vet: %v\n%s", goos, err, output)
		}
	}
}
