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
	StackID   string `json:"stack_id"`
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

// Launch starts Binary with ServeArgs(dataDir, args...) from a temp dir
// and returns without waiting for it (Wait does). The process is killed
// when the test ends, and its output logged if the test failed.
func Launch(t *testing.T, dataDir string, args ...string) *Node {
	t.Helper()
	cmd := exec.Command(Binary, ServeArgs(dataDir, args...)...)
	cmd.Dir = t.TempDir()
	log := &Output{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("output of serve on %s:\n%s", dataDir, log.String())
		}
	})
	return &Node{Cmd: cmd, DataDir: dataDir, Log: log}
}

// Wait waits (up to limit) until node.json names this process, so a stale
// file of an earlier node is never mistaken for it, and fills NodeInfo.
func (n *Node) Wait(t *testing.T, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		var nf NodeInfo
		if raw, err := os.ReadFile(filepath.Join(n.DataDir, "node.json")); err == nil &&
			json.Unmarshal(raw, &nf) == nil && nf.PID == n.Cmd.Process.Pid {
			n.NodeInfo = nf
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node did not write node.json within %s\n%s", limit, n.Log.String())
}

// Serve is Launch then Wait: a node ready to be called.
func Serve(t *testing.T, dataDir string, limit time.Duration, args ...string) *Node {
	t.Helper()
	n := Launch(t, dataDir, args...)
	n.Wait(t, limit)
	return n
}

// Credentials are the keys the first start seeded into
// <data-dir>/credentials.json.
type Credentials struct {
	DefaultTenantID string `json:"default_tenant_id"`
	PlatformAdmin   struct {
		PrincipalID string `json:"principal_id"`
		APIKey      string `json:"api_key"`
	} `json:"platform_admin"`
	TenantAdmin struct {
		PrincipalID string `json:"principal_id"`
		APIKey      string `json:"api_key"`
	} `json:"tenant_admin"`
}

// ReadCredentials reads dataDir's credentials.json, failing the test when
// it is missing or lacks a key.
func ReadCredentials(t testing.TB, dataDir string) Credentials {
	t.Helper()
	var c Credentials
	raw, err := os.ReadFile(filepath.Join(dataDir, "credentials.json"))
	if err == nil {
		err = json.Unmarshal(raw, &c)
	}
	if err != nil || c.PlatformAdmin.APIKey == "" || c.TenantAdmin.APIKey == "" {
		t.Fatalf("credentials.json of %s: %v %s", dataDir, err, raw)
	}
	return c
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
