package testbinary

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// NodeInfo is what a started node wrote to <data-dir>/node.json.
type NodeInfo struct {
	PID       int    `json:"pid"`
	StackAURL string `json:"stack_a_url"`
	StackBURL string `json:"stack_b_url"`
	FedURL    string `json:"fed_url"`
	NodeID    string `json:"node_id"`
}

// Node is a started `agentos serve` process.
type Node struct {
	Cmd     *exec.Cmd
	DataDir string
	// Log is the process's combined output, safe to read while it runs.
	Log *Output
	NodeInfo
}

// ServeArgs are the arguments of `agentos serve` on dataDir with the three
// routers on loopback :0 ports, then extra.
func ServeArgs(dataDir string, extra ...string) []string {
	return append([]string{"serve", "--data-dir", dataDir, "--stack-a-addr", "127.0.0.1:0",
		"--stack-b-addr", "127.0.0.1:0", "--fed-addr", "127.0.0.1:0"}, extra...)
}

// Serve starts `binary` with ServeArgs(dataDir, args...) from a temp dir
// and waits (up to wait) until node.json names this process, so a stale
// file of an earlier node is never mistaken for it. The process is killed
// when the test ends.
func Serve(t *testing.T, binary, dataDir string, wait time.Duration, args ...string) *Node {
	t.Helper()
	cmd := exec.Command(binary, ServeArgs(dataDir, args...)...)
	cmd.Dir = t.TempDir()
	log := &Output{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		var nf NodeInfo
		if raw, err := os.ReadFile(filepath.Join(dataDir, "node.json")); err == nil &&
			json.Unmarshal(raw, &nf) == nil && nf.PID == cmd.Process.Pid {
			return &Node{Cmd: cmd, DataDir: dataDir, Log: log, NodeInfo: nf}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node did not write node.json within %s\n%s", wait, log.String())
	return nil
}

// Output collects a process's output; it may be read while the process
// still writes (exec copies the output in a goroutine of its own).
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String is the output so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
