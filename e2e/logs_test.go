package e2e

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/internal/testkit"
)

// sampleLog is a node log: the edge logs component "stack-a", a stack's
// own logger adds its name again (zerolog repeats the key).
const sampleLog = `{"level":"info","service":"agentos","message":"node ready"}
{"level":"info","component":"stack-a","component":"stacka","run_id":"run_1","message":"run completed"}
{"level":"warn","component":"stack-b","component":"stackb","message":"budget near limit"}
{"level":"info","component":"federation","message":"peer registry loaded"}
{"level":"info","component":"stack-a","message":"GET /v1/runs 200"}
not json at all
`

func TestLogsFiltersByService(t *testing.T) {
	t.Parallel()
	w := newWorkdir(t)
	if err := os.MkdirAll(w.path(".agentos", "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	logPath := testkit.WriteFile(t, w.path(".agentos", "logs", "agentos.log"), sampleLog, 0o600)
	cases := []struct {
		service string
		want    []string
		not     []string
	}{
		{"stack-a", []string{"run completed", "GET /v1/runs 200"}, []string{"budget", "peer registry", "node ready"}},
		{"stack-b", []string{"budget near limit"}, []string{"run completed", "peer registry"}},
		{"federation", []string{"peer registry loaded"}, []string{"run completed", "budget"}},
		{"all", []string{"node ready", "run completed", "budget near limit", "peer registry loaded", "not json at all"}, nil},
	}
	for _, tc := range cases {
		r := w.run("logs", tc.service)
		if r.Code != 0 {
			t.Fatalf("logs %s: %s", tc.service, r)
		}
		for _, s := range tc.want {
			if !strings.Contains(r.Stdout, s) {
				t.Errorf("logs %s lacks %q:\n%s", tc.service, s, r.Stdout)
			}
		}
		for _, s := range tc.not {
			if strings.Contains(r.Stdout, s) {
				t.Errorf("logs %s shows %q:\n%s", tc.service, s, r.Stdout)
			}
		}
	}
	if r := w.run("logs", "stack-a", "-n", "1"); strings.Count(r.Stdout, "\n") != 1 || !strings.Contains(r.Stdout, "GET /v1/runs") {
		t.Errorf("logs -n 1: %s", r)
	}

	// -f prints lines appended later.
	cmd := w.command("logs", "stack-b", "-f")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// -f prints the file's last stack-b line first, then follows: that
	// line arriving says the file has been read to its end, so what is
	// appended now can only come through the follow.
	tail := time.After(10 * time.Second)
	for seen := false; !seen; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("logs -f exited")
			}
			seen = strings.Contains(l, "budget near limit")
		case <-tail:
			t.Fatal("logs -f did not print the file's last stack-b line")
		}
	}
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"level":"info","component":"stack-a","message":"not for stack-b"}` + "\n")
	f.WriteString(`{"level":"error","component":"stack-b","message":"backend down"}` + "\n")
	f.Close()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("logs -f exited")
			}
			if strings.Contains(l, "not for stack-b") {
				t.Fatalf("logs -f stack-b printed a stack-a line: %s", l)
			}
			if strings.Contains(l, "backend down") {
				return
			}
		case <-deadline:
			t.Fatal("logs -f did not print the appended line")
		}
	}
}
