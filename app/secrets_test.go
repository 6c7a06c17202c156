package app_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
)

// TestNode_SecretReadsAreAudited: a provider key from a file, one from the
// environment and the SMTP password are each audited in the system chain,
// by reference, never by value.
func TestNode_SecretReadsAreAudited(t *testing.T) {
	dir := t.TempDir()
	keyFile := testkit.WriteFile(t, filepath.Join(dir, "vllm.key"), "sk-file-secret\n", 0o600)
	t.Setenv("AGENTOS_TEST_UPSTREAM_KEY", "sk-env-secret")
	providers := testkit.WriteFile(t, filepath.Join(dir, "providers.json"), `{"providers": [
	  {"name": "local-a", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_file": "`+keyFile+`",
	   "models": [{"model_id": "m-a", "capabilities": ["chat"], "tier": "balanced"}]},
	  {"name": "local-b", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "AGENTOS_TEST_UPSTREAM_KEY",
	   "models": [{"model_id": "m-b", "capabilities": ["chat"], "tier": "premium"}]}],
	  "tiers": {"fast": ["builtin/echo-1"]}}`, 0o600)
	n := MustStartNode(t, func(c *app.Config) {
		c.ProvidersFile = providers
		c.SMTP.Password = "smtp-secret"
	})
	recs, err := n.Store().ListAudit(context.Background(), core.SystemTenantID, core.AuditFilter{Action: "secret.read", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{}
	for _, r := range recs {
		refs[r.ObjectID] = true
		for _, v := range []string{"sk-file-secret", "sk-env-secret", "smtp-secret"} {
			if strings.Contains(r.ObjectID, v) || strings.Contains(r.Outcome, v) {
				t.Fatalf("audit record carries a secret value: %+v", r)
			}
		}
	}
	for _, want := range []string{"file:" + keyFile, "env:AGENTOS_TEST_UPSTREAM_KEY", "config:AGENTOS_SMTP_PASSWORD"} {
		if !refs[want] {
			t.Errorf("no secret.read audit for %s: %v", want, refs)
		}
	}
}
