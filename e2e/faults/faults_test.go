// Package faults_test drives the real binary through the faults of issue
// 14: a second serve on a data dir in use, a broken database file, and a
// volume that runs out of space under a running node.
package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/agentos/agentos/e2e/testbinary"
	"github.com/agentos/agentos/internal/testkit"
)

func TestMain(m *testing.M) { testbinary.Main(m, "") }

// start runs `agentos serve` and waits until node.json names it.
func start(t *testing.T, dataDir string, extra ...string) *testbinary.Node {
	t.Helper()
	return testbinary.Serve(t, dataDir, 30*time.Second, append([]string{"--log-level", "warn"}, extra...)...)
}

// runServe runs a serve that is expected to exit, and returns its exit
// code and output.
func runServe(t *testing.T, dataDir string, extra ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testbinary.Binary, testbinary.ServeArgs(dataDir, append([]string{"--log-level", "warn"}, extra...)...)...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	return 0, string(out)
}

// Issue 14 item 6 with two real processes: the refused second serve
// leaves the running node's node.json, and the running node keeps working.
func TestHardening_SecondServeKeepsNodeJSON(t *testing.T) {
	dir := t.TempDir()
	first := start(t, dir)
	before, err := os.ReadFile(filepath.Join(dir, "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	code, out := runServe(t, dir)
	if code == 0 || !strings.Contains(out, "locked by another process") {
		t.Fatalf("second serve: exit %d, output %s", code, out)
	}
	after, err := os.ReadFile(filepath.Join(dir, "node.json"))
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("node.json after the refused serve: %v\n%s\nwas\n%s", err, after, before)
	}
	if st, _ := get(t, first.StackAURL+"/readyz"); st != 200 {
		t.Fatalf("first node readyz %d after the refused serve", st)
	}
}

// Issue 14 item 7 with the binary: a 0-byte or garbage agentos.db stops
// serve with exit 1 and one line naming the file (no panic, no SIGSEGV);
// --reset moves it aside and starts.
func TestHardening_BrokenDatabaseRefusedByServe(t *testing.T) {
	for name, content := range map[string][]byte{"empty": nil, "garbage": bytes.Repeat([]byte("not bbolt "), 2000)} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			db := testkit.WriteFile(t, filepath.Join(dir, "agentos.db"), content, 0o600)
			code, out := runServe(t, dir)
			if code != 1 {
				t.Fatalf("serve on a %s database: exit %d\n%s", name, code, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, db) || !strings.Contains(last, "restore it from a backup") || !strings.Contains(last, "--reset") {
				t.Fatalf("last line %q must name the file and what to do\n%s", last, out)
			}
			for _, bad := range []string{"panic", "SIGSEGV", "goroutine "} {
				if strings.Contains(out, bad) {
					t.Fatalf("serve crashed instead of refusing:\n%s", out)
				}
			}
			if raw, _ := os.ReadFile(db); !bytes.Equal(raw, content) {
				t.Fatal("the refused database was modified")
			}
			start(t, dir, "--reset")
			if m, _ := filepath.Glob(db + ".broken-*"); len(m) != 1 {
				t.Fatalf("--reset should keep the old file aside: %v", m)
			}
		})
	}
}

// setFileSizeLimit sets the soft RLIMIT_FSIZE of pid (the hard limit stays
// unlimited, so it can be lifted again). Past it, writes that grow a file
// fail with EFBIG, which is how the node sees a full volume.
func setFileSizeLimit(t *testing.T, pid int, limit uint64) {
	t.Helper()
	lim := syscall.Rlimit{Cur: limit, Max: ^uint64(0)}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), uintptr(syscall.RLIMIT_FSIZE),
		uintptr(unsafe.Pointer(&lim)), 0, 0, 0); e != 0 {
		t.Fatalf("prlimit: %v", e)
	}
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	r := testkit.Do(t, http.MethodGet, url, "", nil)
	return r.Status, r.Body
}

func putMemory(t *testing.T, base, key, id string, size int) (testkit.Response, []byte) {
	t.Helper()
	r := testkit.Do(t, http.MethodPut, base+"/v1/memory/fill/"+id, key,
		map[string]any{"value": map[string]any{"blob": strings.Repeat("x", size)}})
	return r, r.Body
}

// Issue 14 item 8: when the database cannot grow, writes answer 503
// dependency_unavailable (details.reason storage_full, Retry-After) instead
// of 500 internal_error, /readyz goes 503 while it lasts, /healthz stays
// 200, and once there is room again the node is ready and writes work
// without a restart.
func TestHardening_FullDiskIs503AndNotReady(t *testing.T) {
	dir := t.TempDir()
	n := start(t, dir)
	key := testbinary.ReadCredentials(t, dir).TenantAdmin.APIKey
	if resp, body := putMemory(t, n.StackAURL, key, "before", 100); resp.Status != 200 {
		t.Fatalf("write before the fault: %d %s", resp.Status, body)
	}
	fi, err := os.Stat(filepath.Join(dir, "agentos.db"))
	if err != nil {
		t.Fatal(err)
	}
	setFileSizeLimit(t, n.PID, uint64(fi.Size()))
	var failed []byte
	var resp testkit.Response
	for i := 0; i < 200 && failed == nil; i++ {
		r, body := putMemory(t, n.StackAURL, key, fmt.Sprintf("k%03d", i), 256<<10)
		if r.Status != 200 {
			resp, failed = r, body
		}
	}
	if failed == nil {
		t.Fatal("200 writes of 256 KiB fit in a database that may not grow")
	}
	var e struct {
		Error struct {
			Code      string         `json:"code"`
			Retryable bool           `json:"retryable"`
			Details   map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(failed, &e); err != nil {
		t.Fatalf("decode %s: %v", failed, err)
	}
	if resp.Status != 503 || e.Error.Code != "dependency_unavailable" || !e.Error.Retryable ||
		e.Error.Details["reason"] != "storage_full" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("full store answered %d %s (Retry-After %q)", resp.Status, failed, resp.Header.Get("Retry-After"))
	}
	if st, body := get(t, n.StackAURL+"/readyz"); st != 503 || !strings.Contains(string(body), "storage full") {
		t.Fatalf("readyz while full: %d %s", st, body)
	}
	if st, _ := get(t, n.StackAURL+"/healthz"); st != 200 {
		t.Fatalf("healthz while full: %d (liveness must not fail on a full disk)", st)
	}
	// Room again: the node recovers by itself.
	setFileSizeLimit(t, n.PID, ^uint64(0))
	testkit.WaitFor(t, "readyz 200 after space came back", 30*time.Second, func() bool {
		st, _ := get(t, n.StackAURL+"/readyz")
		return st == 200
	})
	if r, body := putMemory(t, n.StackAURL, key, "after", 256<<10); r.Status != 200 {
		t.Fatalf("write after recovery: %d %s", r.Status, body)
	}
	if alive := n.Cmd.ProcessState == nil; !alive {
		t.Fatal("node exited")
	}
}
