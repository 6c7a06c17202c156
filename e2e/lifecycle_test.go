package e2e

import (
	"bufio"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentos/agentos/e2e/testbinary"
	"github.com/agentos/agentos/internal/testkit"
)

// TestLifecycle drives one node through up (twice), status, validate, a
// run, redeploy (the run survives), logs, admin commands and nuke.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	w := newWorkdir(t)

	up := w.mustRun(t, "up")
	t.Logf("agentos up to validated: %s wall clock (first start, fresh data dir)", up.Took)
	mustContain(t, up, "[1/6] preflight", "[2/6] boot", "[3/6] seed", "[4/6] wire", "[5/6] validate", "[6/6] report",
		"services healthy 3/3", "smoke 7/7", "AgentOS is up", "/console", "credentials.json", "agentos token rotate",
		"agentos tenant create", "agentos test-alert")
	if _, err := os.Stat(w.path(".agentos.env")); err != nil {
		t.Errorf("up did not write .agentos.env: %v", err)
	}
	checkUpReport(t, w)
	nf := w.node()
	if !alive(nf.PID) {
		t.Fatalf("node pid %d not alive after up", nf.PID)
	}
	if raw, _ := os.ReadFile(w.path(".agentos", "agentos.pid")); strings.TrimSpace(string(raw)) != itoa(nf.PID) {
		t.Errorf("pid file %q, node.json pid %d", raw, nf.PID)
	}

	t.Run("up is idempotent", func(t *testing.T) {
		again := w.mustRun(t, "up")
		mustContain(t, again, "already running", "ports — already ours 3/3")
		t.Logf("agentos up to validated with the node already running: %s", again.Took)
		if w.node().PID != nf.PID {
			t.Errorf("second up started another node")
		}
	})

	t.Run("status", func(t *testing.T) {
		st := w.mustRun(t, "status")
		mustContain(t, st, "running, pid "+itoa(nf.PID), "services healthy 3/3", nf.StackAURL, nf.StackBURL, nf.FedURL)
		if !regexp.MustCompile(`tenants \d+, runs [1-9]\d*`).MatchString(st.Stdout) {
			t.Errorf("status lacks counts of tenants and runs:\n%s", st)
		}
	})

	t.Run("validate", func(t *testing.T) {
		v := w.mustRun(t, "validate")
		mustContain(t, v, "services healthy 3/3", "smoke 7/7", "tenant isolation")
		if len(w.reports("validate")) == 0 {
			t.Error("validate wrote no report")
		}
	})

	creds := w.creds()
	var created struct {
		Run struct {
			RunID string `json:"run_id"`
		} `json:"run"`
	}
	if code := testkit.Call(t, http.MethodPost, nf.StackAURL+"/v1/agents/agt_sample_echo_v1/runs", creds.TenantAdmin.APIKey,
		map[string]any{"input": map[string]any{"type": "text", "text": "survive a redeploy"}, "idempotency_key": "idem_e2e_redeploy"}, &created); code != http.StatusCreated {
		t.Fatalf("create run: HTTP %d", code)
	}
	if run := testkit.WaitRun(t, nf.StackAURL, creds.TenantAdmin.APIKey, created.Run.RunID, 20*time.Second); run["status"] != "completed" {
		t.Fatalf("run %s ended %s", created.Run.RunID, run["status"])
	}

	t.Run("redeploy keeps data", func(t *testing.T) {
		rd := w.mustRun(t, "redeploy")
		mustContain(t, rd, "graceful stop", "stopped (SIGTERM)", "services healthy 3/3", "smoke 7/7")
		if alive(nf.PID) {
			t.Errorf("old node pid %d still alive after redeploy", nf.PID)
		}
		nf2 := w.node()
		if nf2.PID == nf.PID || !alive(nf2.PID) {
			t.Fatalf("redeploy: pid %d → %d (alive %v)", nf.PID, nf2.PID, alive(nf2.PID))
		}
		if nf2.StackID != nf.StackID {
			t.Errorf("stack id changed: %s → %s", nf.StackID, nf2.StackID)
		}
		var got struct {
			Run struct {
				RunID  string `json:"run_id"`
				Status string `json:"status"`
			} `json:"run"`
		}
		if code := testkit.Call(t, http.MethodGet, nf2.StackAURL+"/v1/runs/"+created.Run.RunID, creds.TenantAdmin.APIKey, nil, &got); code != http.StatusOK {
			t.Fatalf("run after redeploy: HTTP %d", code)
		}
		if got.Run.Status != "completed" {
			t.Errorf("run after redeploy: status %q", got.Run.Status)
		}
		if w.creds().TenantAdmin.APIKey != creds.TenantAdmin.APIKey {
			t.Error("redeploy changed the seeded keys")
		}
		if len(w.reports("redeploy")) == 0 {
			t.Error("redeploy wrote no report")
		}
		nf = nf2
	})

	t.Run("logs", func(t *testing.T) {
		all := w.run("logs", "all")
		if all.Code != 0 || !strings.Contains(all.Stdout, `"node ready"`) {
			t.Fatalf("logs all: %s", all)
		}
		bad := w.run("logs", "nope")
		if bad.Code == 0 {
			t.Errorf("logs of an unknown service succeeded")
		}
	})

	t.Run("tenant and token commands", func(t *testing.T) {
		c := w.mustRun(t, "tenant", "create", "--id", "tnt_e2e_acme", "--name", "Acme", "--quotas", `{"runs":{"max_concurrent_runs":3}}`)
		mustContain(t, c, `"tenant_id": "tnt_e2e_acme"`)
		if l := w.run("tenant", "list"); l.Code != 0 || !strings.Contains(l.Stdout, "tnt_e2e_acme") {
			t.Errorf("tenant list: %s", l)
		}
		if u := w.run("tenant", "update", "tnt_e2e_acme", "--quotas", `{"runs":{"max_concurrent_runs":7}}`); u.Code != 0 || !strings.Contains(u.Stdout, `"max_concurrent_runs": 7`) {
			t.Errorf("tenant update: %s", u)
		}
		iss := w.mustRun(t, "token", "issue", "tnt_e2e_acme", "--principal", "usr_acme_ops", "--roles", "tenant_admin")
		secret := regexp.MustCompile(`"secret": "([^"]+)"`).FindStringSubmatch(iss.Stdout)
		tokenID := regexp.MustCompile(`"token_id": "([^"]+)"`).FindStringSubmatch(iss.Stdout)
		if secret == nil || tokenID == nil {
			t.Fatalf("token issue printed no secret/token_id: %s", iss)
		}
		if code := testkit.Call(t, http.MethodGet, nf.StackAURL+"/v1/runs", secret[1], nil, nil); code != http.StatusOK {
			t.Errorf("issued key: HTTP %d", code)
		}
		w.mustRun(t, "token", "rotate", "tnt_e2e_acme", tokenID[1])
		if code := testkit.Call(t, http.MethodGet, nf.StackAURL+"/v1/runs", secret[1], nil, nil); code != http.StatusUnauthorized {
			t.Errorf("old secret after rotate: HTTP %d, want 401", code)
		}
		if r := w.run("token", "revoke", "tnt_e2e_acme", tokenID[1]); r.Code != 0 {
			t.Errorf("token revoke: %s", r)
		}
		if d := w.run("tenant", "disable", "tnt_e2e_acme"); d.Code != 0 || !strings.Contains(d.Stdout, `"status": "disabled"`) {
			t.Errorf("tenant disable: %s", d)
		}
		if s := w.run("tenant", "show", "tnt_missing"); s.Code == 0 {
			t.Errorf("tenant show of a missing tenant succeeded")
		}
	})

	t.Run("nuke refuses without --yes-really", func(t *testing.T) {
		for _, args := range [][]string{{"nuke"}, {"nuke", "--hard"}} {
			r := w.run(args...)
			if r.Code == 0 || !strings.Contains(r.Stderr, "--yes-really") {
				t.Errorf("%v: %s", args, r)
			}
		}
		if !alive(nf.PID) {
			t.Fatal("refused nuke stopped the node")
		}
	})

	t.Run("nuke stops the node and keeps data", func(t *testing.T) {
		w.mustRun(t, "nuke", "--yes-really")
		if alive(nf.PID) {
			t.Errorf("node pid %d alive after nuke", nf.PID)
		}
		for _, gone := range []string{"agentos.pid", "node.json", "logs"} {
			if _, err := os.Stat(w.path(".agentos", gone)); !os.IsNotExist(err) {
				t.Errorf("%s not removed: %v", gone, err)
			}
		}
		for _, kept := range []string{"agentos.db", "credentials.json", "node.secret"} {
			if _, err := os.Stat(w.path(".agentos", kept)); err != nil {
				t.Errorf("%s not kept: %v", kept, err)
			}
		}
		if len(w.reports("nuke")) == 0 {
			t.Error("nuke wrote no report")
		}
		if st := w.run("status"); st.Code == 0 || !strings.Contains(st.Stdout, "not running") {
			t.Errorf("status after nuke: %s", st)
		}
	})

	t.Run("nuke --hard removes the data dir", func(t *testing.T) {
		w.mustRun(t, "nuke", "--yes-really", "--hard")
		if _, err := os.Stat(w.path(".agentos")); !os.IsNotExist(err) {
			t.Errorf("data dir still there: %v", err)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// checkUpReport reads the newest up report and checks the §7 fields.
func checkUpReport(t *testing.T, w *workdir) {
	t.Helper()
	js := w.reports("up")
	if len(js) == 0 {
		t.Fatal("up wrote no JSON report")
	}
	md := strings.TrimSuffix(js[0], ".json") + ".md"
	if raw, err := os.ReadFile(md); err != nil || !strings.Contains(string(raw), "## Smoke tests") {
		t.Errorf("markdown report %s: %v", md, err)
	}
	var rep struct {
		Status string `json:"status"`
		Host   struct {
			Hostname string `json:"hostname"`
		} `json:"host"`
		Binary struct {
			Version string `json:"version"`
			SHA256  string `json:"sha256"`
		} `json:"binary"`
		Node struct {
			URLs map[string]string `json:"urls"`
		} `json:"node"`
		Seeded struct {
			DefaultTenantID          string   `json:"default_tenant_id"`
			PlatformAdminPrincipalID string   `json:"platform_admin_principal_id"`
			TenantAdminPrincipalID   string   `json:"tenant_admin_principal_id"`
			SampleAgentIDs           []string `json:"sample_agent_ids"`
			SampleToolIDs            []string `json:"sample_tool_ids"`
		} `json:"seeded"`
		Credentials struct {
			File         string `json:"file"`
			RotationHint string `json:"rotation_hint"`
		} `json:"credentials"`
		Health []struct {
			Name, Status string
			DurationMS   *int64 `json:"duration_ms"`
		} `json:"health"`
		Smoke []struct {
			Name, Status string
			DurationMS   *int64 `json:"duration_ms"`
		} `json:"smoke"`
		Alerts struct {
			Configured bool   `json:"configured"`
			Hint       string `json:"hint"`
		} `json:"alerts"`
		Remediation []string `json:"remediation"`
	}
	mustReadJSON(t, js[0], &rep)
	s := rep.Seeded
	if rep.Status != "ok" || s.DefaultTenantID != "tnt_demo" || s.PlatformAdminPrincipalID != "usr_platform_admin" ||
		s.TenantAdminPrincipalID != "usr_tnt_demo_admin" || len(s.SampleAgentIDs) != 1 || s.SampleAgentIDs[0] != "agt_sample_echo_v1" ||
		len(s.SampleToolIDs) != 1 || s.SampleToolIDs[0] != "tool.echo" {
		t.Errorf("up report status/seeded block: %+v", rep)
	}
	if rep.Host.Hostname == "" || rep.Binary.Version != "e2e" || len(rep.Binary.SHA256) != 64 {
		t.Errorf("up report host/binary: %+v %+v", rep.Host, rep.Binary)
	}
	if sum := sha256File(t, testbinary.Binary); rep.Binary.SHA256 != sum {
		t.Errorf("report sha256 %s, binary %s", rep.Binary.SHA256, sum)
	}
	if rep.Node.URLs["stack-a"] == "" || rep.Node.URLs["console"] == "" || rep.Credentials.File == "" || rep.Credentials.RotationHint == "" {
		t.Errorf("up report urls/credentials: %+v %+v", rep.Node, rep.Credentials)
	}
	if len(rep.Health) != 3 || len(rep.Smoke) != 7 {
		t.Errorf("up report: %d health checks, %d smoke tests", len(rep.Health), len(rep.Smoke))
	}
	for _, c := range append(rep.Health, rep.Smoke...) {
		if c.Status != "ok" || c.DurationMS == nil {
			t.Errorf("check %s: %s (duration %v)", c.Name, c.Status, c.DurationMS)
		}
	}
	if rep.Alerts.Configured || rep.Alerts.Hint == "" {
		t.Errorf("alerts block: %+v", rep.Alerts)
	}
}

// TestValidateFailsWhenStackBUnreachable starts a node whose Stack A calls
// a remote Stack B on a closed port: validate must fail, naming the gates.
func TestValidateFailsWhenStackBUnreachable(t *testing.T) {
	t.Parallel()
	w := newWorkdir(t)
	cmd := w.command("serve", "--stack-b-url", "http://"+closedPort(t))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "node ready") {
				close(ready)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	testkit.Await(t, "serve to log node ready", 30*time.Second, ready)
	v := w.run("validate")
	if v.Code == 0 {
		t.Fatalf("validate passed with Stack B unreachable: %s", v)
	}
	mustContain(t, v, "FAIL", "stack_b", "validate FAILED", "next:")
	if !strings.Contains(v.Stdout, "events streamed to completion") || !regexp.MustCompile(`smoke [0-6]/7`).MatchString(v.Stdout) {
		t.Errorf("validate output lacks the failing smoke gate:\n%s", v)
	}
	reps := w.reports("validate")
	if len(reps) == 0 {
		t.Fatal("failed validate wrote no report")
	}
	var rep struct {
		Status      string   `json:"status"`
		Remediation []string `json:"remediation"`
	}
	mustReadJSON(t, reps[0], &rep)
	if rep.Status != "failed" || len(rep.Remediation) == 0 {
		t.Errorf("failed validate report: %+v", rep)
	}
}
