package operator_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/internal/testkit/testnode"
	"github.com/agentos/agentos/operator"
)

// runCLI runs the agentos CLI in process and returns its exit code and
// what it printed on stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errw bytes.Buffer
	code := operator.Run(append([]string{"agentos"}, args...), app.BuildInfo{Version: "test"}, &out, &errw)
	return code, out.String(), errw.String()
}

func TestCLI_AuditVerify(t *testing.T) {
	n, creds := testnode.Start(t).Parts()
	testkit.Do(t, "POST", n.URL(app.StackA)+"/v1/admin/tenants", creds.PlatformAdmin.APIKey,
		`{"tenant_create":{"tenant_id":"tnt_audited","name":"Audited"}}`).Expect(t, "create tenant", 201)
	dir := n.Config.DataDir
	n.Close()
	code, out, errw := runCLI(t, "audit", "verify", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errw)
	}
	if !strings.Contains(out, "ok   tnt_audited: 1 records, chain intact") || !strings.Contains(out, "ok   tnt_demo:") {
		t.Fatalf("verify output:\n%s", out)
	}
}
