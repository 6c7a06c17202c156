package suite_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/conformance/suite"
	"github.com/agentos/agentos/openapi"
	"github.com/rs/zerolog"
)

func TestRun_LiveNode(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.StackAAddr, cfg.StackBAddr, cfg.FedAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	n := app.NewNode(cfg, app.BuildInfo{Version: "test"}, zerolog.Nop())
	if err := n.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	creds, err := app.ReadCredentials(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	target := suite.Target{URLs: map[string]string{openapi.StackA: n.URL(app.StackA), openapi.StackB: n.URL(app.StackB), openapi.Federation: n.URL(app.StackFed)},
		APIKey: creds.TenantAdmin.APIKey, AdminKey: creds.PlatformAdmin.APIKey, Timeout: 10 * time.Second}
	for round := 1; round <= 2; round++ {
		rep, err := suite.Run(context.Background(), target)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Results {
			if !r.Passed() || r.Skipped != "" {
				t.Errorf("round %d: %s %s: status %d implemented=%v accepted=%v valid=%v skipped=%q: %s", round, r.Stack, r.OperationID, r.Status, r.Implemented, r.Accepted, r.Valid, r.Skipped, r.Difference)
			}
		}
		if !rep.OK() || rep.Passed != len(rep.Results) {
			t.Fatalf("round %d: passed %d failed %d skipped %d of %d", round, rep.Passed, rep.Failed, rep.Skipped, len(rep.Results))
		}
	}
}
