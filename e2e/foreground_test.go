package e2e

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentos/agentos/internal/testkit"
)

// TestUpForeground: `up --foreground` runs the phases, stays attached
// with the node inside, and stops cleanly on SIGTERM.
func TestUpForeground(t *testing.T) {
	t.Parallel()
	w := newWorkdir(t)
	cmd := w.command("up", "--foreground")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	attached := make(chan string, 1)
	go func() {
		var out strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Ctrl-C stops it") {
				attached <- out.String()
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { done <- cmd.Wait() }()
	var out string
	select {
	case out = <-attached:
	case err := <-done:
		t.Fatalf("up --foreground exited early: %v", err)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("up --foreground did not attach")
	}
	for _, want := range []string{"services healthy 3/3", "smoke 7/7", "(foreground)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	nf := w.node()
	if nf.PID != cmd.Process.Pid {
		t.Errorf("node.json pid %d, up pid %d", nf.PID, cmd.Process.Pid)
	}
	if code := testkit.Call(t, http.MethodGet, nf.StackAURL+"/v1/agents", w.creds().TenantAdmin.APIKey, nil, nil); code != http.StatusOK {
		t.Errorf("foreground node: GET /v1/agents HTTP %d", code)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("up --foreground after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("up --foreground did not stop on SIGTERM")
	}
	for _, gone := range []string{"agentos.pid", "node.json"} {
		if _, err := os.Stat(w.path(".agentos", gone)); !os.IsNotExist(err) {
			t.Errorf("%s left after stop: %v", gone, err)
		}
	}
}

// BenchmarkUpToValidated measures `agentos up` from a fresh data dir to
// the validated summary (the node is nuked between iterations, outside
// the timer).
func BenchmarkUpToValidated(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w := newWorkdir(b)
		b.StartTimer()
		r := w.run("up")
		b.StopTimer()
		if r.Code != 0 {
			b.Fatalf("up: %s", r)
		}
		if n := w.run("nuke", "--yes-really", "--hard"); n.Code != 0 {
			b.Fatalf("nuke: %s", n)
		}
	}
}

// TestUpForeground_SignalDuringSetup: a SIGTERM that comes while `up
// --foreground` is still seeding and validating (the node already booted
// in the process) is handled, not the signal's default action: the
// process exits on its own and the node's shutdown removes node.json and
// the pid file, so a later `up` does not find a stale node.
func TestUpForeground_SignalDuringSetup(t *testing.T) {
	t.Parallel()
	w := newWorkdir(t)
	cmd := w.command("up", "--foreground")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	booted := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := false
		for sc.Scan() {
			if !once && strings.HasPrefix(sc.Text(), "[3/6]") {
				once = true
				close(booted)
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-booted:
	case err := <-done:
		t.Fatalf("up --foreground exited before seeding: %v", err)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("up --foreground did not boot")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("up --foreground did not stop on SIGTERM during setup")
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("up --foreground was ended by %v, not by its own shutdown", ws.Signal())
	}
	for _, gone := range []string{"agentos.pid", "node.json"} {
		if _, err := os.Stat(w.path(".agentos", gone)); !os.IsNotExist(err) {
			t.Errorf("%s left after stop: %v", gone, err)
		}
	}
}
