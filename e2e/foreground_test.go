package e2e

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
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
	f := startForeground(t, w)
	out := f.waitLine(t, "Ctrl-C stops it", 60*time.Second)
	for _, want := range []string{"services healthy 3/3", "smoke 7/7", "(foreground)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	nf := w.node()
	if nf.PID != f.cmd.Process.Pid {
		t.Errorf("node.json pid %d, up pid %d", nf.PID, f.cmd.Process.Pid)
	}
	if code := testkit.Call(t, http.MethodGet, nf.StackAURL+"/v1/agents", w.creds().TenantAdmin.APIKey, nil, nil); code != http.StatusOK {
		t.Errorf("foreground node: GET /v1/agents HTTP %d", code)
	}
	if err := f.stop(t); err != nil {
		t.Errorf("up --foreground after SIGTERM: %v", err)
	}
	checkCleanedUp(t, w)
}

// TestUpForeground_SignalDuringSetup: a SIGTERM that comes while `up
// --foreground` is still seeding and validating (the node already booted
// in the process) is handled, not the signal's default action: the
// process exits on its own and the node's shutdown removes node.json and
// the pid file, so a later `up` does not find a stale node.
func TestUpForeground_SignalDuringSetup(t *testing.T) {
	t.Parallel()
	w := newWorkdir(t)
	f := startForeground(t, w)
	f.waitLine(t, "[3/6]", 60*time.Second)
	f.stop(t) // its exit status is up's: the interrupted phase failed
	checkCleanedUp(t, w)
}

// foreground is `up --foreground` running in a workdir: its stdout lines
// as they come and its exit.
type foreground struct {
	cmd   *exec.Cmd
	lines chan string // closed when stdout ends
	done  chan error  // cmd.Wait's result
	out   strings.Builder
}

func startForeground(t *testing.T, w *workdir) *foreground {
	t.Helper()
	f := &foreground{cmd: w.command("up", "--foreground"), lines: make(chan string, 4096), done: make(chan error, 1)}
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
		close(f.lines)
		f.done <- f.cmd.Wait()
	}()
	return f
}

// waitLine returns the output up to and including the first line holding
// want; the test fails if the process ends first or limit passes.
func (f *foreground) waitLine(t *testing.T, want string, limit time.Duration) string {
	t.Helper()
	timeout := time.After(limit)
	for {
		select {
		case line, ok := <-f.lines:
			if !ok {
				t.Fatalf("up --foreground exited before %q: %v\n%s", want, <-f.done, f.out.String())
			}
			f.out.WriteString(line + "\n")
			if strings.Contains(line, want) {
				return f.out.String()
			}
		case <-timeout:
			t.Fatalf("up --foreground: no %q within %v\n%s", want, limit, f.out.String())
		}
	}
}

// stop sends SIGTERM and returns the exit error once the process is
// gone; the test fails if it takes over 30 s or if the signal's default
// action, not the process's own shutdown, ended it.
func (f *foreground) stop(t *testing.T) error {
	t.Helper()
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	go func() {
		for range f.lines { // keep stdout drained while it shuts down
		}
	}()
	select {
	case err := <-f.done:
		if ws, ok := f.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("up --foreground was ended by %v, not by its own shutdown", ws.Signal())
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("up --foreground did not stop on SIGTERM")
		return nil
	}
}

// checkCleanedUp: the node's shutdown removed its pid file and node.json.
func checkCleanedUp(t *testing.T, w *workdir) {
	t.Helper()
	for _, gone := range []string{"agentos.pid", "node.json"} {
		if _, err := os.Stat(w.path(".agentos", gone)); !os.IsNotExist(err) {
			t.Errorf("%s left after stop: %v", gone, err)
		}
	}
}
