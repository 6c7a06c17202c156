package testbinary

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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

// Serve starts `binary serve --data-dir dataDir args...` from a temp dir and
// waits (up to wait) until node.json names this process, so a stale file of
// an earlier node is never mistaken for it. The process is killed when the
// test ends; its combined output is in the returned buffer.
func Serve(t *testing.T, binary, dataDir string, wait time.Duration, args ...string) (*exec.Cmd, NodeInfo, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--data-dir", dataDir}, args...)...)
	cmd.Dir = t.TempDir()
	log := &bytes.Buffer{}
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
			return cmd, nf, log
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node did not write node.json within %s\n%s", wait, log.String())
	return nil, NodeInfo{}, nil
}
