// Package testbinary builds the agentos binary once for an end-to-end test
// package, the way an operator gets it: static (CGO_ENABLED=0), -trimpath.
package testbinary

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Run builds agentos into a temp dir, stores its path in *path, runs the
// package's tests and removes the dir; it exits the process with their
// code. Call it from TestMain. ldflags may stamp a version ("" for none).
func Run(m *testing.M, path *string, ldflags string) {
	dir, err := os.MkdirTemp("", "agentos-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*path = filepath.Join(dir, "agentos")
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	args := []string{"build", "-trimpath"}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	build := exec.Command("go", append(args, "-o", *path, ".")...)
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build agentos: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
