package testkit

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// PatchTenant applies update (a tenant_update object) to tenantID with a
// platform admin's key on the Stack A at base, failing the test unless it
// is answered 200.
func PatchTenant(t testing.TB, base, adminKey, tenantID string, update map[string]any) {
	t.Helper()
	Do(t, "PATCH", base+"/v1/admin/tenants/"+tenantID, adminKey, map[string]any{"tenant_update": update}).
		Expect(t, "patch tenant "+tenantID, 200)
}

// PutWebhookAgent stores, with key on the Stack A at base, an http tool
// toolID that calls url (60 s timeout) and an agent agentID on tier:fast
// that offers it; the tenant must already be entitled to the tool.
func PutWebhookAgent(t testing.TB, base, key, toolID, agentID, url string) {
	t.Helper()
	name := strings.TrimPrefix(toolID, "tool.")
	Do(t, "PUT", base+"/v1/tools/"+toolID, key, map[string]any{"tool": map[string]any{
		"tool_id": toolID, "name": name, "kind": "http", "description": "webhook " + name,
		"input_schema": map[string]any{"type": "object"}, "config": map[string]any{"url": url, "timeout_ms": 60000}}}).
		Expect(t, "put tool "+toolID, 200, 201)
	Do(t, "PUT", base+"/v1/agents/"+agentID, key, map[string]any{"agent": map[string]any{
		"name": name, "model_ref": "tier:fast", "tool_ids": []string{toolID}}}).
		Expect(t, "put agent "+agentID, 200, 201)
}

// WaitRun polls GET base/v1/runs/{runID} with key until the run's status
// is one of want (any terminal status when want is empty), and returns the
// run object. It fails the test after limit, naming the last status seen.
// A run has no event a client can await without a stream; where the test
// reads the stream anyway, Stream is the better wait.
func WaitRun(t testing.TB, base, key, runID string, limit time.Duration, want ...string) map[string]any {
	t.Helper()
	var run map[string]any
	WaitFor(t, "run "+runID+" to reach "+statusList(want), limit, func() bool {
		r := Do(t, "GET", base+"/v1/runs/"+runID, key, nil, "Accept", "application/json")
		if r.Status != 200 {
			t.Fatalf("get run %s: %d %s", runID, r.Status, r.Body)
		}
		run, _ = r.JSON(t)["run"].(map[string]any)
		st, _ := run["status"].(string)
		if len(want) == 0 {
			return core.RunTerminal(st)
		}
		return slices.Contains(want, st)
	}, func() string { return "(last status " + status(run) + ")" })
	return run
}

func status(run map[string]any) string {
	st, _ := run["status"].(string)
	return st
}

func statusList(want []string) string {
	if len(want) == 0 {
		return "a terminal status"
	}
	return "status " + strings.Join(want, " or ")
}
