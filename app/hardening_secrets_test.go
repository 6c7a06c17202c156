package app_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
)

// entitleTool lets tnt_demo call toolID (platform admin).
func entitleTool(t *testing.T, n *testNode, toolID string) {
	t.Helper()
	tools := append(append([]string{}, app.BuiltinToolIDs...), toolID)
	testkit.PatchTenant(t, n.URL(app.StackA), n.creds.PlatformAdmin.APIKey, app.DemoTenantID,
		map[string]any{"entitlements": map[string]any{"tool_ids_allowed": tools}})
}

// runToolAgent registers an agent calling toolID and runs it to its end;
// it returns the finished run. It retries a dry run until the run's tools
// include toolID, so a tenant read cache cannot make the test flaky.
func runToolAgent(t *testing.T, n *testNode, toolID string) map[string]any {
	t.Helper()
	a, key := n.URL(app.StackA), n.creds.TenantAdmin.APIKey
	agentID := "agt_" + strings.ReplaceAll(toolID, ".", "_")
	if r := do(t, "PUT", a+"/v1/agents/"+agentID, key, map[string]any{"agent": map[string]any{
		"name": "hook caller", "model_ref": "tier:fast", "tool_ids": []string{toolID}}}); r.Status/100 != 2 {
		t.Fatalf("put agent: %d %s", r.Status, r.Body)
	}
	i := 0
	testkit.WaitFor(t, "the tool to be in a new run's tools", 5*time.Second, func() bool {
		i++
		r := do(t, "POST", a+"/v1/agents/"+agentID+"/runs", key, map[string]any{"input": map[string]any{"type": "text", "text": "probe"},
			"idempotency_key": fmt.Sprintf("idem_probe_%d", i), "run_options": map[string]any{"dry_run": true}})
		tools, _ := r.JSON(t)["run"].(map[string]any)["tools"].([]any)
		return len(tools) == 1 && tools[0] == toolID
	})
	r := do(t, "POST", a+"/v1/agents/"+agentID+"/runs", key, map[string]any{"input": map[string]any{"type": "text", "text": "sign me"},
		"idempotency_key": "idem_" + agentID})
	expectStatus(t, r, http.StatusCreated, "create run")
	id := r.JSON(t)["run"].(map[string]any)["run_id"].(string)
	return testkit.WaitRun(t, a, key, id, 10*time.Second)
}

// TestHardening_ToolSecretRefCannotNameHostSecrets: issue 14 item 3. A
// tenant's tool may not name a host file or environment variable as its
// webhook secret (the node's own secret above all); the PUT is refused
// with 400 naming the field, and a tool stored with such a ref before the
// rule is refused at call time, so the node's secret never signs anything.
func TestHardening_ToolSecretRefCannotNameHostSecrets(t *testing.T) {
	n := MustStartNode(t)
	a, key := n.URL(app.StackA), n.creds.TenantAdmin.APIKey
	hook := testkit.StartWebhook(t, nil)
	nodeSecret := filepath.Join(n.Config.DataDir, "node.secret")
	if _, err := os.Stat(nodeSecret); err != nil {
		t.Fatalf("the node secret is not where the attack aims: %v", err)
	}
	t.Setenv("AGENTOS_HARDENING_HOST_VAR", "host-value")
	for _, ref := range []string{"file:" + nodeSecret, "file:/etc/passwd", "env:AGENTOS_HARDENING_HOST_VAR", "env:HOME",
		"secret:../node.secret", "secret:a/b", "secret:", "vault:x", "secret:missing"} {
		r := do(t, "PUT", a+"/v1/tools/tool.steal", key, map[string]any{"tool": map[string]any{"kind": "http", "name": "hook",
			"config": map[string]any{"url": hook.URL, "secret_ref": ref}}})
		expectStatus(t, r, http.StatusBadRequest, "secret_ref "+ref)
		e := r.JSON(t)["error"].(map[string]any)
		if e["code"] != "invalid_request" || e["details"].(map[string]any)["field"] != "tool.config.secret_ref" {
			t.Fatalf("secret_ref %s: %s", ref, r.Body)
		}
	}

	// A tool stored before the rule (written straight into the store) is
	// refused when called: no request goes out signed with the node secret.
	if _, err := n.Store().PutTool(context.Background(), core.ToolDescriptor{TenantID: app.DemoTenantID, ToolID: "tool.legacy",
		Name: "legacy", Kind: "http", Config: map[string]any{"url": hook.URL, "secret_ref": "file:" + nodeSecret}}); err != nil {
		t.Fatal(err)
	}
	entitleTool(t, n, "tool.legacy")
	run := runToolAgent(t, n, "tool.legacy")
	if calls := hook.Calls(); len(calls) != 0 {
		t.Fatalf("the legacy tool was called %d times (signature %s)", len(calls), calls[0].Header.Get("X-AgentOS-Signature"))
	}
	evs := do(t, "GET", a+"/v1/runs/"+run["run_id"].(string)+"/events", key, nil, "Accept", "application/json")
	if !strings.Contains(string(evs.Body), "secret_ref") || !strings.Contains(string(evs.Body), "invalid_request") {
		t.Fatalf("the refused secret is not explained in the run's events: %s", evs.Body)
	}
}

// TestHardening_TenantSecretStore: issue 14 item 3. Secrets set through the
// admin API are tenant-scoped, never returned, audited by name, and sign a
// tool's webhook calls when the tool names them as secret:<name>.
func TestHardening_TenantSecretStore(t *testing.T) {
	n := MustStartNode(t)
	a := n.URL(app.StackA)
	padmin, tadmin := n.creds.PlatformAdmin.APIKey, n.creds.TenantAdmin.APIKey
	const value = "whsec-tenant-demo-value"
	entitleTool(t, n, "tool.signed")

	put := func(key, tenant, name string, body any) response {
		return do(t, "PUT", a+"/v1/admin/tenants/"+tenant+"/secrets/"+name, key, body)
	}
	r := put(tadmin, "tnt_demo", "hook", map[string]any{"secret": map[string]any{"value": value}})
	expectStatus(t, r, http.StatusCreated, "put secret")
	if strings.Contains(string(r.Body), value) {
		t.Fatalf("put answer carries the value: %s", r.Body)
	}
	expectStatus(t, put(tadmin, "tnt_demo", "hook", map[string]any{"secret": map[string]any{"value": value}}), http.StatusOK, "replace secret")
	r = do(t, "GET", a+"/v1/admin/tenants/tnt_demo/secrets", tadmin, nil)
	expectStatus(t, r, http.StatusOK, "list secrets")
	if strings.Contains(string(r.Body), value) || !strings.Contains(string(r.Body), `"name":"hook"`) {
		t.Fatalf("secret list: %s", r.Body)
	}

	// Bad names and values, and callers without reach.
	for _, c := range []struct {
		name string
		body any
	}{{"..", map[string]any{"secret": map[string]any{"value": "x"}}}, {".hidden", map[string]any{"secret": map[string]any{"value": "x"}}},
		{"ok", map[string]any{"secret": map[string]any{"value": ""}}}, {"ok", map[string]any{"secret": map[string]any{}}},
		{"ok", map[string]any{"secret": map[string]any{"value": strings.Repeat("x", core.MaxSecretBytes+1)}}}} {
		expectStatus(t, put(tadmin, "tnt_demo", c.name, c.body), http.StatusBadRequest, "bad secret "+c.name)
	}
	expectStatus(t, do(t, "POST", a+"/v1/admin/tenants", padmin, map[string]any{"tenant_create": map[string]any{
		"tenant_id": "tnt_other", "name": "Other"}}), http.StatusCreated, "create tenant")
	r = do(t, "POST", a+"/v1/admin/tenants/tnt_other/tokens", padmin, map[string]any{"token_create": map[string]any{
		"principal_id": "usr_other_admin", "principal_type": "user", "roles": []string{"tenant_admin"}, "scopes": []string{}}})
	expectStatus(t, r, http.StatusCreated, "other tenant admin")
	other := r.JSON(t)["secret"].(string)
	expectStatus(t, put(other, "tnt_demo", "hook", map[string]any{"secret": map[string]any{"value": "evil"}}), http.StatusNotFound, "other tenant writes")
	expectStatus(t, do(t, "GET", a+"/v1/admin/tenants/tnt_demo/secrets", other, nil), http.StatusNotFound, "other tenant lists")
	expectStatus(t, do(t, "DELETE", a+"/v1/admin/tenants/tnt_demo/secrets/hook", other, nil), http.StatusNotFound, "other tenant deletes")
	r = do(t, "POST", a+"/v1/admin/tenants/tnt_demo/tokens", tadmin, map[string]any{"token_create": map[string]any{
		"principal_id": "usr_plain", "principal_type": "user", "roles": []string{"tenant_user"}, "scopes": []string{}}})
	expectStatus(t, r, http.StatusCreated, "tenant user")
	expectStatus(t, put(r.JSON(t)["secret"].(string), "tnt_demo", "hook", map[string]any{"secret": map[string]any{"value": "x"}}),
		http.StatusForbidden, "tenant user writes")
	// The other tenant's tool cannot name tnt_demo's secret: it has none.
	r = do(t, "PUT", a+"/v1/tools/tool.signed", other, map[string]any{"tool": map[string]any{"kind": "http", "name": "hook",
		"config": map[string]any{"url": "http://127.0.0.1:9/hook", "secret_ref": "secret:hook"}}})
	expectStatus(t, r, http.StatusBadRequest, "other tenant names demo's secret")

	// The secret signs the webhook call.
	hook := testkit.StartWebhook(t, nil)
	expectStatus(t, do(t, "PUT", a+"/v1/tools/tool.signed", tadmin, map[string]any{"tool": map[string]any{"kind": "http", "name": "hook",
		"config": map[string]any{"url": hook.URL, "secret_ref": "secret:hook"}}}), http.StatusCreated, "put tool")
	if run := runToolAgent(t, n, "tool.signed"); run["status"] != "completed" {
		t.Fatalf("run: %v", run)
	}
	calls := hook.Calls()
	if len(calls) != 1 || !calls[0].SignedWith(value) {
		t.Fatalf("webhook calls %d, signed with the stored secret: %v", len(calls), len(calls) == 1 && calls[0].SignedWith(value))
	}

	// Audited by name, never by value; delete removes it.
	expectStatus(t, do(t, "DELETE", a+"/v1/admin/tenants/tnt_demo/secrets/hook", tadmin, nil), http.StatusOK, "delete secret")
	expectStatus(t, do(t, "DELETE", a+"/v1/admin/tenants/tnt_demo/secrets/hook", tadmin, nil), http.StatusNotFound, "delete twice")
	recs, err := n.Store().ListAudit(context.Background(), app.DemoTenantID, core.AuditFilter{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, rec := range recs {
		if rec.ObjectType == "secret" {
			actions[rec.Action]++
		}
		if strings.Contains(fmt.Sprint(rec.Details), value) {
			t.Fatalf("audit record carries the secret: %+v", rec)
		}
	}
	if actions["secret.put"] != 2 || actions["secret.delete"] != 1 || actions["secret.read"] < 1 {
		t.Fatalf("secret audit: %v", actions)
	}
}

// TestHardening_TenantSecretsDirRefusesTraversal: issue 14 item 3, the
// operator-named directory. A tenant reads only its own subdirectory; a
// symlink out of the directory (to the node secret) is refused.
func TestHardening_TenantSecretsDirRefusesTraversal(t *testing.T) {
	dir := t.TempDir()
	n := MustStartNode(t, func(c *app.Config) { c.TenantSecretsDir = dir })
	a, key := n.URL(app.StackA), n.creds.TenantAdmin.APIKey
	for path, v := range map[string]string{"tnt_demo/dirhook": "dir-secret\n", "tnt_other/theirs": "theirs"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(path)), 0o700) // a failure fails the write
		testkit.WriteFile(t, filepath.Join(dir, path), v, 0o600)
	}
	if err := os.Symlink(filepath.Join(n.Config.DataDir, "node.secret"), filepath.Join(dir, "tnt_demo", "escape")); err != nil {
		t.Fatal(err)
	}
	putTool := func(ref string) response {
		return do(t, "PUT", a+"/v1/tools/tool.dir", key, map[string]any{"tool": map[string]any{"kind": "http", "name": "hook",
			"config": map[string]any{"url": "http://127.0.0.1:9/hook", "secret_ref": ref}}})
	}
	expectStatus(t, putTool("secret:theirs"), http.StatusBadRequest, "another tenant's subdirectory")
	expectStatus(t, putTool("secret:escape"), http.StatusBadRequest, "symlink out of the directory")
	expectStatus(t, putTool("secret:../tnt_other/theirs"), http.StatusBadRequest, "traversal in the name")

	hook := testkit.StartWebhook(t, nil)
	entitleTool(t, n, "tool.dir")
	expectStatus(t, do(t, "PUT", a+"/v1/tools/tool.dir", key, map[string]any{"tool": map[string]any{"kind": "http", "name": "hook",
		"config": map[string]any{"url": hook.URL, "secret_ref": "secret:dirhook"}}}), http.StatusCreated, "own subdirectory")
	if run := runToolAgent(t, n, "tool.dir"); run["status"] != "completed" {
		t.Fatalf("run: %v", run)
	}
	if calls := hook.Calls(); len(calls) != 1 || !calls[0].SignedWith("dir-secret") {
		t.Fatalf("webhook calls: %d", len(calls))
	}
}
