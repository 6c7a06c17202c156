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

	"github.com/agentos/agentos/store/postgres/pgtest"
)

// Binary is the path of the agentos executable Main built.
var Binary string

// Main builds agentos into a temp dir, sets Binary to it, runs the
// package's tests and removes the dir; it exits the process with their
// code. A package's TestMain is one call of it. ldflags may stamp a
// version ("" for none).
func Main(m *testing.M, ldflags string) {
	dir, err := os.MkdirTemp("", "agentos-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	Binary = filepath.Join(dir, "agentos")
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	args := []string{"build", "-trimpath", "-tags", "urfave_cli_no_docs"} // as make build does
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	build := exec.Command("go", append(args, "-o", Binary, ".")...)
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

// Stores are the storage adapters an end-to-end test runs over: bbolt
// always, and PostgreSQL when AGENTOS_TEST_POSTGRES_URL names a test server
// (.ci/run starts one; under CI=true it must be there).
func Stores() []string {
	if os.Getenv(pgtest.EnvURL) != "" || os.Getenv("CI") == "true" {
		return []string{"bbolt", "postgres"}
	}
	return []string{"bbolt"}
}

// StoreFlags are the serve flags that put a node on store: none for bbolt
// (the file in its data dir), --store with a fresh schema of the test
// server for postgres. Nodes that must share one database (a restart)
// reuse the flags.
func StoreFlags(t testing.TB, store string) []string {
	t.Helper()
	if store != "postgres" {
		return nil
	}
	return []string{"--store", pgtest.URL(t)}
}
