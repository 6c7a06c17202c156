// Package console_test drives the operator console in a real headless
// Chromium against a real node: sign in with the tenant admin key from
// credentials.json, open a run that is still executing, and watch its
// events arrive live in the timeline (fetch-based SSE with the key in the
// Authorization header).
//
// Set AGENTOS_UPDATE_SCREENSHOT=1 to refresh docs/console.png; otherwise
// the screenshot goes to the test's temp dir.
package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/internal/testkit/testnode"
	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// call sends one JSON request to the node, expects status want and
// decodes the answer.
func call(t *testing.T, method, url, key string, body any, want int) map[string]any {
	t.Helper()
	r := testkit.Do(t, method, url, key, body).Expect(t, method+" "+url, want)
	out := map[string]any{}
	_ = json.Unmarshal(r.Body, &out)
	return out
}

// cuttingProxy stands between the browser and Stack A. It cuts the first
// event stream after its first write, like a dropped connection, and
// records the Last-Event-ID of every event stream request, so the test can
// see the page resume where it left off.
type cuttingProxy struct {
	rp           *httputil.ReverseProxy
	mu           sync.Mutex
	lastEventIDs []string
}

func (p *cuttingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/events") {
		p.rp.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	p.lastEventIDs = append(p.lastEventIDs, r.Header.Get("Last-Event-ID"))
	first := len(p.lastEventIDs) == 1
	p.mu.Unlock()
	if first {
		w = &cutWriter{ResponseWriter: w}
	}
	p.rp.ServeHTTP(w, r)
}

func (p *cuttingProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string{}, p.lastEventIDs...)
}

// cutWriter lets one write with an event frame through, then aborts the
// connection on the next write.
type cutWriter struct {
	http.ResponseWriter
	frames int
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.frames > 0 {
		panic(http.ErrAbortHandler)
	}
	c.frames += bytes.Count(b, []byte("\n\n"))
	return c.ResponseWriter.Write(b)
}

func (c *cutWriter) Flush() { http.NewResponseController(c.ResponseWriter).Flush() }

func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func repoRoot() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "..")
}

func TestConsole_SignInAndWatchRunLive(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test needs Chromium at %s (apt-get install -y chromium): %v", chromiumPath, err)
	}
	n, creds := testnode.Start(t).Parts()
	stackA := n.URL(app.StackA)
	tenantKey := creds.TenantAdmin.APIKey
	// The tool holds every call until released, so the run stays in
	// flight while the browser watches.
	tool := testkit.StartHeldWebhook(t)
	target, _ := url.Parse(stackA)
	proxy := &cuttingProxy{rp: &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }, FlushInterval: -1}}
	front := testkit.Serve(t, proxy, nil)

	// A tool the demo tenant may call, and an agent that calls it.
	allowed := append(append([]string{}, app.BuiltinToolIDs...), "tool.lookup")
	call(t, "PATCH", stackA+"/v1/admin/tenants/"+creds.DefaultTenantID, creds.PlatformAdmin.APIKey,
		map[string]any{"tenant_update": map[string]any{"entitlements": map[string]any{"tool_ids_allowed": allowed}}}, 200)
	call(t, "PUT", stackA+"/v1/tools/tool.lookup", tenantKey, map[string]any{"tool": map[string]any{
		"tool_id": "tool.lookup", "name": "lookup", "kind": "http", "description": "Looks the question up (slowly).",
		"input_schema": map[string]any{"type": "object"}, "config": map[string]any{"url": tool.URL, "timeout_ms": 30000}}}, 201)
	call(t, "PUT", stackA+"/v1/agents/agt_console_e2e", tenantKey, map[string]any{"agent": map[string]any{
		"name": "Console e2e agent", "model_ref": "tier:fast", "instructions": "Look it up, then answer.",
		"tool_ids": []string{"tool.lookup"}, "status": "active"}}, 201)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()

	// Sign in with the tenant admin key; the health screen comes up.
	err := chromedp.Do(browser,
		chromedp.EmulateViewport(1280, 860),
		chromedp.Navigate(front.URL+"/console/"),
		chromedp.WaitVisible(chromedp.ID("api-key")),
		chromedp.SendKeys(chromedp.ID("api-key"), tenantKey),
		chromedp.Click(chromedp.ID("signin-btn")),
		chromedp.WaitVisible(chromedp.ID("tabs")),
		chromedp.WaitVisible(chromedp.CSS(`#routers tr[data-router="stack-a"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#backends tr[data-backend="builtin"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#nodes tr[data-node]`)),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if who := mustText(t, browser, "who-principal"); who != creds.TenantAdmin.PrincipalID {
		t.Fatalf("signed in as %q, want %q", who, creds.TenantAdmin.PrincipalID)
	}

	// Tenants & usage shows the own tenant against its budget; audit finds
	// the tool registration made above.
	err = chromedp.Do(browser,
		chromedp.Click(chromedp.CSS(`#tabs a[data-tab="tenants"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#tenants tr[data-tenant="`+creds.DefaultTenantID+`"] .bar`)),
		chromedp.Click(chromedp.CSS(`#tabs a[data-tab="audit"]`)),
		chromedp.WaitVisible(chromedp.ID("a-action")),
		chromedp.Click(chromedp.CSS(`#audit-filter button`)),
		chromedp.WaitVisible(chromedp.CSS(`#audit tr[data-audit]`)),
	)
	if err != nil {
		t.Fatalf("tenants and audit screens: %v", err)
	}

	// Start a run; its tool call blocks until released.
	run := call(t, "POST", stackA+"/v1/agents/agt_console_e2e/runs", tenantKey, map[string]any{
		"input": map[string]any{"type": "text", "text": "What is the answer?"}, "idempotency_key": "idem_console_e2e"}, 201)["run"].(map[string]any)
	runID := run["run_id"].(string)
	select {
	case <-tool.Hit:
	case <-ctx.Done():
		t.Fatal("the run never called its tool")
	}

	// The runs screen lists it; open its timeline while it is in flight.
	err = chromedp.Do(browser,
		chromedp.Navigate(front.URL+"/console/#/runs"),
		chromedp.WaitVisible(chromedp.CSS(`#runs tr[data-run="`+runID+`"] a`)),
		chromedp.Click(chromedp.CSS(`#runs tr[data-run="`+runID+`"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-type="agentos.tool.call.requested"]`)),
	)
	if err != nil {
		t.Fatalf("open run: %v", err)
	}
	terminalBefore, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.querySelectorAll('#timeline li[data-type="agentos.run.completed"], #timeline li[data-type="agentos.run.failed"], #timeline li[data-type="agentos.run.canceled"]').length`))
	if err != nil {
		t.Fatal(err)
	}
	if status := mustText(t, browser, "run-status"); status != "running" || terminalBefore != 0 {
		t.Fatalf("while the tool is blocked the run must show running and no terminal event; status %q, terminal events %d", status, terminalBefore)
	}

	// Release the tool: the rest of the run arrives over the open stream.
	tool.Release()
	if err := chromedp.Do(browser, chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-type="agentos.run.completed"]`))); err != nil {
		t.Fatalf("watch the run complete: %v", err)
	}
	status, output := mustText(t, browser, "run-status"), mustText(t, browser, "run-output")
	if status != "completed" || !strings.Contains(output, "echo: What is the answer?") {
		t.Fatalf("after completion: status %q, output %q", status, output)
	}
	seqs, err := chromedp.Run(browser, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#timeline li')).map(li => li.dataset.seq)`))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range seqs {
		if s != strconv.Itoa(i+1) {
			t.Fatalf("timeline sequences %v: want 1..%d without gap or duplicate", seqs, len(seqs))
		}
	}
	// The first stream was cut; the page came back with Last-Event-ID.
	ids := proxy.seen()
	t.Logf("event stream requests, by Last-Event-ID: %q; timeline %d events", ids, len(seqs))
	if len(ids) < 2 || ids[0] != "" {
		t.Fatalf("event stream requests with Last-Event-ID %q: want a first one without and a resume", ids)
	}
	if n, err := strconv.Atoi(ids[1]); err != nil || n < 1 || n >= len(seqs) {
		t.Fatalf("resume sent Last-Event-ID %q, want a sequence in 1..%d", ids[1], len(seqs)-1)
	}
	// The stream carried every stored event.
	var evs struct {
		Events []any `json:"events"`
	}
	testkit.Do(t, "GET", stackA+"/v1/runs/"+runID+"/events", tenantKey, nil, "Accept", "application/json").
		Expect(t, "stored events", 200).Decode(t, &evs)
	if len(evs.Events) != len(seqs) {
		t.Fatalf("timeline shows %d events, the run has %d", len(seqs), len(evs.Events))
	}

	png, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := filepath.Join(t.TempDir(), "console.png")
	if os.Getenv("AGENTOS_UPDATE_SCREENSHOT") == "1" {
		out = filepath.Join(repoRoot(), "docs", "console.png")
	}
	testkit.WriteFile(t, out, png, 0o644)
	t.Logf("screenshot: %s (%d bytes)", out, len(png))
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot is not a PNG: %q", fmt.Sprint(png[:8]))
	}
}

func mustText(t *testing.T, browser context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(browser, chromedp.TextContent(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("text of #%s: %v", id, err)
	}
	return strings.TrimSpace(s)
}

// TestConsoleEndpoints_OnRealNode checks the /v1/console endpoints behind
// the node's real edge: authentication, tenant scoping and the platform
// admin's view of every tenant.
func TestConsoleEndpoints_OnRealNode(t *testing.T) {
	n, creds := testnode.Start(t).Parts()
	stackA := n.URL(app.StackA)
	admin, tenant := creds.PlatformAdmin.APIKey, creds.TenantAdmin.APIKey
	call(t, "POST", stackA+"/v1/admin/tenants", admin, map[string]any{"tenant_create": map[string]any{
		"tenant_id": "tnt_console_other", "name": "Other", "plan_tier": "free"}}, 201)

	usageIDs := func(body map[string]any) []string {
		out := []string{}
		for _, u := range body["usage"].([]any) {
			out = append(out, u.(map[string]any)["tenant_id"].(string))
		}
		return out
	}
	cases := []struct {
		name, path, key string
		want            int
		check           func(t *testing.T, body map[string]any)
	}{
		{name: "no credential", path: "/v1/console/overview", want: 401},
		{name: "overview", path: "/v1/console/overview", key: tenant, want: 200, check: func(t *testing.T, b map[string]any) {
			node := b["node"].(map[string]any)
			if node["status"] != "ok" || len(node["routers"].([]any)) != 3 || b["correlation_id"] == "" {
				t.Fatalf("overview: %v", b)
			}
			// A single node lists itself as the installation's one node.
			if nodes := node["nodes"].([]any); len(nodes) != 1 || nodes[0].(map[string]any)["self"] != true ||
				nodes[0].(map[string]any)["node_id"] != node["node_id"] {
				t.Fatalf("nodes: %v", node["nodes"])
			}
			if w := b["whoami"].(map[string]any); w["tenant_id"] != creds.DefaultTenantID || w["platform_admin"] != false {
				t.Fatalf("whoami: %v", w)
			}
		}},
		{name: "tenant admin: own usage", path: "/v1/console/usage", key: tenant, want: 200, check: func(t *testing.T, b map[string]any) {
			if ids := usageIDs(b); len(ids) != 1 || ids[0] != creds.DefaultTenantID {
				t.Fatalf("usage of %v", ids)
			}
			u := b["usage"].([]any)[0].(map[string]any)
			if u["max_tokens"].(float64) != 100000 || u["window"] != "day" {
				t.Fatalf("usage %v", u)
			}
		}},
		{name: "tenant admin: another tenant is not found", path: "/v1/console/usage?tenant_id=tnt_console_other", key: tenant, want: 404},
		{name: "platform admin: every tenant", path: "/v1/console/usage", key: admin, want: 200, check: func(t *testing.T, b map[string]any) {
			ids := strings.Join(usageIDs(b), ",")
			if !strings.Contains(ids, creds.DefaultTenantID) || !strings.Contains(ids, "tnt_console_other") {
				t.Fatalf("usage of %v", ids)
			}
		}},
		{name: "platform admin: one tenant", path: "/v1/console/usage?tenant_id=tnt_console_other", key: admin, want: 200, check: func(t *testing.T, b map[string]any) {
			if ids := usageIDs(b); len(ids) != 1 || ids[0] != "tnt_console_other" {
				t.Fatalf("usage of %v", ids)
			}
		}},
		{name: "alerts", path: "/v1/console/alerts", key: tenant, want: 200, check: func(t *testing.T, b map[string]any) {
			if _, ok := b["alerts"].([]any); !ok {
				t.Fatalf("alerts: %v", b)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testkit.Do(t, "GET", stackA+tc.path, tc.key, nil).Expect(t, tc.path, tc.want)
			body := r.JSON(t)
			if tc.want >= 400 {
				if e, _ := body["error"].(map[string]any); e == nil || e["code"] == "" {
					t.Fatalf("error answer without the error object: %v", body)
				}
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
	// The page itself is public.
	if r := testkit.Do(t, "GET", stackA+"/console/", "", nil); r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/console/: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
}
