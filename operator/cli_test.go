package operator_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit/testnode"
	"github.com/agentos/agentos/operator"
)

func TestCLI_AuditVerify(t *testing.T) {
	n, creds := testnode.Start(t).Parts()
	body := strings.NewReader(`{"tenant_create":{"tenant_id":"tnt_audited","name":"Audited"}}`)
	req, _ := http.NewRequest(http.MethodPost, n.URL(app.StackA)+"/v1/admin/tenants", body)
	req.Header.Set("Authorization", "Bearer "+creds.PlatformAdmin.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create tenant: %v %v", err, resp)
	}
	resp.Body.Close()
	dir := n.Config.DataDir
	n.Close()
	var out bytes.Buffer
	cli := operator.NewCLI(app.BuildInfo{Version: "test"}, &out, &out)
	if err := cli.Run([]string{"agentos", "audit", "verify", "--data-dir", dir}); err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ok   tnt_audited: 1 records, chain intact") || !strings.Contains(out.String(), "ok   tnt_demo:") {
		t.Fatalf("verify output:\n%s", out.String())
	}
}
