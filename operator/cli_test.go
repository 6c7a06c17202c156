package operator_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/operator"
	"github.com/rs/zerolog"
)

// startNode opens and seeds a real node on :0 ports in a temp dir; it is
// closed when the test ends.
func startNode(t *testing.T) (*app.Node, app.Credentials) {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.StackAAddr, cfg.StackBAddr, cfg.FedAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	n := app.NewNode(cfg, app.BuildInfo{Version: "test"}, zerolog.Nop())
	if err := n.Open(context.Background()); err != nil {
		t.Fatalf("open node: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	if _, err := n.Seed(context.Background()); err != nil {
		t.Fatalf("seed: %v", err)
	}
	creds, err := app.ReadCredentials(cfg.DataDir)
	if err != nil {
		t.Fatalf("read credentials: %v", err)
	}
	return n, creds
}

func TestCLI_AuditVerify(t *testing.T) {
	n, creds := startNode(t)
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
