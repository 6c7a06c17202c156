// Package e2e builds the agentos binary once and drives it as an operator
// would: up, status, validate, redeploy, nuke, test-alert.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentos/agentos/e2e/testbinary"
)

// TestMain builds the binary the tests drive, stamped with a version.
func TestMain(m *testing.M) { testbinary.Main(m, "-X main.version=e2e -X main.gitSHA=e2e") }

// result is one finished command.
type result struct {
	Code   int
	Stdout string
	Stderr string
	Took   time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.Code, r.Stdout, r.Stderr)
}

// workdir is an operator's working directory: its own data dir, env
// file, reports and free ports.
type workdir struct {
	t   testing.TB
	dir string
	env []string
}

func newWorkdir(t testing.TB) *workdir {
	t.Helper()
	w := &workdir{t: t, dir: t.TempDir()}
	// Every setting on :0 so parallel nodes never collide; the node
	// writes its bound ports to node.json. Inherited AGENTOS_* variables
	// of the developer's shell are dropped.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGENTOS_") {
			w.env = append(w.env, kv)
		}
	}
	w.env = append(w.env, "AGENTOS_STACK_A_ADDR=127.0.0.1:0", "AGENTOS_STACK_B_ADDR=127.0.0.1:0", "AGENTOS_FED_ADDR=127.0.0.1:0")
	t.Cleanup(func() { w.killNode() })
	return w
}

// run executes the binary in the workdir and waits (bounded).
func (w *workdir) run(args ...string) result {
	w.t.Helper()
	return w.runEnv(nil, args...)
}

// mustRun is run for a command that must succeed: any other exit fails
// t (the test or subtest running it) with its output.
func (w *workdir) mustRun(t testing.TB, args ...string) result {
	t.Helper()
	r := w.run(args...)
	if r.Code != 0 {
		t.Fatalf("agentos %s: %s", strings.Join(args, " "), r)
	}
	return r
}

func (w *workdir) runEnv(extra []string, args ...string) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testbinary.Binary, args...)
	cmd.Dir = w.dir
	cmd.Env = append(append([]string{}, w.env...), extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		w.t.Fatalf("run %v: %v", args, err)
	}
	return r
}

// command is the binary with args, to run in the workdir with its
// environment (for a command the test drives while it runs).
func (w *workdir) command(args ...string) *exec.Cmd {
	cmd := exec.Command(testbinary.Binary, args...)
	cmd.Dir, cmd.Env = w.dir, w.env
	return cmd
}

func (w *workdir) path(parts ...string) string {
	return filepath.Join(append([]string{w.dir}, parts...)...)
}

// nodeFile is .agentos/node.json.
type nodeFile = testbinary.NodeInfo

func (w *workdir) node() nodeFile {
	w.t.Helper()
	var nf nodeFile
	mustReadJSON(w.t, w.path(".agentos", "node.json"), &nf)
	return nf
}

// creds are the keys `agentos up` seeded into .agentos/credentials.json.
func (w *workdir) creds() testbinary.Credentials {
	w.t.Helper()
	return testbinary.ReadCredentials(w.t, w.path(".agentos"))
}

// killNode stops a node left running by a failed test.
func (w *workdir) killNode() {
	raw, err := os.ReadFile(w.path(".agentos", "agentos.pid"))
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscanf(string(raw), "%d", &pid); err != nil || pid <= 0 {
		return
	}
	if alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// alive reports a live, non-zombie process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || len(stat) <= i+2 || stat[i+2] != 'Z'
}

// reports lists reports/<action>-*.json.
func (w *workdir) reports(action string) []string {
	w.t.Helper()
	m, err := filepath.Glob(w.path("reports", action+"-*.json"))
	if err != nil {
		w.t.Fatal(err)
	}
	return m
}

func mustReadJSON(t testing.TB, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func mustContain(t *testing.T, r result, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(r.Stdout+r.Stderr, w) {
			t.Errorf("output lacks %q\n%s", w, r)
		}
	}
}
