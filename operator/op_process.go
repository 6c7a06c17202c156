package operator

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agentos/agentos/app"
)

// Runtime files of a node in its data dir.
const (
	PIDFileName = "agentos.pid"
	LogDirName  = "logs"
	LogFileName = "agentos.log"
	// launchFileName keeps the flags `up` started the node with, so
	// `redeploy` starts it again with the same configuration.
	launchFileName = "launch.json"
)

// LogPath is <data-dir>/logs/agentos.log.
func LogPath(cfg app.Config) string { return filepath.Join(cfg.DataDir, LogDirName, LogFileName) }

// readPID reads <data-dir>/agentos.pid; 0 when absent or unreadable.
func readPID(cfg app.Config) int {
	raw, err := os.ReadFile(cfg.Path(PIDFileName))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// processAlive reports whether pid is a live process that is an agentos
// node (on Linux its command line is checked, so a recycled pid of an
// unrelated process does not count).
func processAlive(pid int) bool {
	if !processExists(pid) {
		return false
	}
	if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		for _, arg := range bytes.Split(cmd, []byte{0}) {
			if a := string(arg); a == "serve" || a == "up" || a == "redeploy" {
				return true
			}
		}
		return false
	}
	return true
}

// processExists reports whether pid is a process that has not exited: it
// answers signal 0 and is not a zombie. Unlike processAlive it does not
// ask what the process is, which is what waiting for a signalled node to
// go needs: while a process exits, after its memory is released and before
// it is a zombie, /proc/<pid>/cmdline reads empty, so processAlive already
// says no while the process still holds its ports and store.
func processExists(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// A zombie has exited: field 3 is the state.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			return false
		}
	}
	return true
}

// runningNode is the node of the data dir when one is running: its pid is
// alive and node.json names the same pid.
func runningNode(cfg app.Config) (app.NodeFile, bool) {
	pid := readPID(cfg)
	nf, err := app.ReadNodeFile(cfg.DataDir)
	if err != nil {
		if pid != 0 && processAlive(pid) {
			return app.NodeFile{PID: pid}, false
		}
		return nf, false
	}
	if !processAlive(nf.PID) {
		return nf, false
	}
	return nf, true
}

// backgroundNode is a node process started by this CLI.
type backgroundNode struct {
	PID    int
	exited chan struct{}
	err    error
}

// startBackground starts `agentos serve` with args as a session leader
// (it outlives this process), output appended to the log file, and writes
// the pid file.
func startBackground(cfg app.Config, args []string, extraEnv []string) (*backgroundNode, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, LogDirName), 0o700); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	logf, err := os.OpenFile(LogPath(cfg), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(exe, append([]string{"serve"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	bn := &backgroundNode{PID: cmd.Process.Pid, exited: make(chan struct{})}
	go func() {
		bn.err = cmd.Wait()
		close(bn.exited)
	}()
	if err := os.WriteFile(cfg.Path(PIDFileName), []byte(strconv.Itoa(bn.PID)+"\n"), 0o600); err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	return bn, nil
}

// waitNodeFile waits until node.json names pid (the node has bound its
// ports), the process exits, or ctx ends.
func waitNodeFile(ctx context.Context, cfg app.Config, pid int, exited <-chan struct{}) (app.NodeFile, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if nf, err := app.ReadNodeFile(cfg.DataDir); err == nil && nf.PID == pid {
			return nf, nil
		}
		select {
		case <-exited:
			return app.NodeFile{}, fmt.Errorf("node process %d exited during startup", pid)
		case <-ctx.Done():
			return app.NodeFile{}, fmt.Errorf("node.json not written by pid %d: %w", pid, ctx.Err())
		case <-tick.C:
		}
	}
}

// waitReady polls /readyz of each URL until all answer 200; it returns how
// many are ready and, on timeout, the last reason per router.
func waitReady(ctx context.Context, urls map[string]string) (int, error) {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last map[string]string
	for {
		last = map[string]string{}
		for name, u := range urls {
			code, body, err := getPublic(ctx, u+"/readyz")
			switch {
			case err != nil:
				last[name] = err.Error()
			case code != 200:
				last[name] = fmt.Sprintf("HTTP %d %v", code, body["checks"])
			}
		}
		if len(last) == 0 {
			return len(urls), nil
		}
		select {
		case <-ctx.Done():
			var parts []string
			for n, r := range last {
				parts = append(parts, n+": "+r)
			}
			return len(urls) - len(last), fmt.Errorf("not ready: %s", strings.Join(parts, "; "))
		case <-tick.C:
		}
	}
}

// stopCheck is the check that stops the node (redeploy, nuke): it gives
// the node its shutdown timeout plus 5 s before SIGKILL, and says "no node
// was running" or which pid it stopped, then note.
func stopCheck(cfg app.Config, note string) func() (string, error) {
	return func() (string, error) {
		pid, err := stopNode(cfg, cfg.ShutdownTimeout+5*time.Second)
		if err != nil {
			return "", err
		}
		if pid == 0 {
			return "no node was running", nil
		}
		return fmt.Sprintf("pid %d stopped%s", pid, note), nil
	}
}

// stopNode sends SIGTERM to the data dir's node and waits for it to exit,
// then SIGKILL after grace. It reports whether a process was stopped.
func stopNode(cfg app.Config, grace time.Duration) (int, error) {
	pid := readPID(cfg)
	if nf, err := app.ReadNodeFile(cfg.DataDir); err == nil && nf.PID > 0 && (pid == 0 || !processAlive(pid)) {
		pid = nf.PID
	}
	if pid == 0 || !processAlive(pid) {
		os.Remove(cfg.Path(PIDFileName))
		os.Remove(cfg.Path("node.json"))
		return 0, nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return pid, fmt.Errorf("signal pid %d: %w", pid, err)
	}
	// Signalled, the node is waited for until it has exited, not until it
	// stops looking like a node (see processExists).
	if !waitExit(pid, grace) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		if !waitExit(pid, 2*time.Second) {
			return pid, fmt.Errorf("pid %d did not stop", pid)
		}
	}
	os.Remove(cfg.Path(PIDFileName))
	os.Remove(cfg.Path("node.json"))
	return pid, nil
}

// waitExit polls until pid has exited or limit has passed, and reports
// whether it exited.
func waitExit(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for processExists(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// tailLines returns the last n lines of a file (best effort).
func tailLines(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 256<<10 {
		_, _ = f.Seek(st.Size()-256<<10, io.SeekStart)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}
