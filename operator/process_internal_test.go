package operator

import (
	"os/exec"
	"testing"
	"time"
)

// startChild runs name args as a child the test kills at its end.
func startChild(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// A process that exists is not therefore a node: processAlive asks what
// the process is (so a recycled pid is not signalled as ours), while
// processExists, which stopNode waits on after its signal, only asks
// whether it has exited. A zombie has.
func TestProcessExists_IsNotProcessAlive(t *testing.T) {
	other := startChild(t, "sleep", "30")
	if !processExists(other.Process.Pid) {
		t.Fatal("a running sleep does not exist")
	}
	if processAlive(other.Process.Pid) {
		t.Fatal("a running sleep counts as an agentos node")
	}
	// sh keeps "serve" on its command line, as a node's does.
	node := startChild(t, "sh", "-c", "sleep 30; :", "serve")
	if !processAlive(node.Process.Pid) || !processExists(node.Process.Pid) {
		t.Fatal("a process whose command line says serve is not alive")
	}

	if waitExit(node.Process.Pid, 100*time.Millisecond) {
		t.Fatal("waitExit said a running process exited")
	}
	if err := node.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Killed and not yet reaped: a zombie, which has exited.
	if !waitExit(node.Process.Pid, 5*time.Second) {
		t.Fatal("waitExit: a killed process did not exit within 5 s")
	}
	if processExists(node.Process.Pid) || processAlive(node.Process.Pid) {
		t.Fatal("a zombie counts as running")
	}
	if processExists(0) || processExists(-1) {
		t.Fatal("pid 0 or -1 exists")
	}
}
