package app_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
)

func TestCheckProd_Refusals(t *testing.T) {
	dir := t.TempDir()
	keyed := testkit.WriteFile(t, filepath.Join(dir, "providers-keyed.json"), `{"providers":[{"name":"oa","kind":"openai","api_key":"sk-live-123"}]}`, 0o600)
	clean := testkit.WriteFile(t, filepath.Join(dir, "providers-clean.json"), `{"providers":[{"name":"oa","kind":"openai","api_key_env":"OA_KEY"}]}`, 0o600)
	openKey := testkit.WriteFile(t, filepath.Join(dir, "open.key"), "sk", 0o644)
	ownerKey := testkit.WriteFile(t, filepath.Join(dir, "owner.key"), "sk", 0o600)
	exposed := testkit.WriteFile(t, filepath.Join(dir, "providers-exposed.json"), `{"providers":[{"name":"oa","kind":"openai","api_key_file":"`+openKey+`"}]}`, 0o600)
	owned := testkit.WriteFile(t, filepath.Join(dir, "providers-owned.json"), `{"providers":[{"name":"oa","kind":"openai","api_key_file":"`+ownerKey+`"}]}`, 0o600)
	cases := []struct {
		name    string
		mutate  func(*app.Config)
		envFile map[string]string
		allow   string
		want    string // "" = accepted
	}{
		{"demo is never refused", func(c *app.Config) { c.Mode = app.ModeDemo; c.StackAAddr = "0.0.0.0:8080" }, map[string]string{"AGENTOS_SMTP_PASSWORD": "x"}, "", ""},
		{"prod on loopback", nil, nil, "", ""},
		{"prod with a clean providers file", func(c *app.Config) { c.ProvidersFile = clean }, nil, "", ""},
		{"plain-text secret in env file", nil, map[string]string{"AGENTOS_SMTP_PASSWORD": "x"}, "", "plain-text secrets"},
		{"provider key in env file", nil, map[string]string{"OPENAI_API_KEY": "sk"}, "", "OPENAI_API_KEY"},
		{"Stack A on every interface", func(c *app.Config) { c.StackAAddr = "0.0.0.0:8080" }, nil, "", "open admin surface"},
		{"Stack A with an empty host", func(c *app.Config) { c.StackAAddr = ":8080" }, nil, "", "open admin surface"},
		{"public admin allowed explicitly", func(c *app.Config) { c.StackAAddr = "0.0.0.0:8080" }, nil, "1", ""},
		{"public admin allowed in env file", func(c *app.Config) { c.StackAAddr = "0.0.0.0:8080" }, map[string]string{app.AllowPublicAdminEnv: "true"}, "", ""},
		{"literal provider key", func(c *app.Config) { c.ProvidersFile = keyed }, nil, "", "providers[0].api_key"},
		{"key file readable by others", func(c *app.Config) { c.ProvidersFile = exposed }, nil, "", "readable by others"},
		{"owner-only key file", func(c *app.Config) { c.ProvidersFile = owned }, nil, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.allow != "" {
				t.Setenv(app.AllowPublicAdminEnv, tc.allow)
			} else {
				os.Unsetenv(app.AllowPublicAdminEnv)
			}
			cfg := app.DefaultConfig()
			cfg.Mode = app.ModeProd
			cfg.DataDir = t.TempDir()
			if tc.mutate != nil {
				tc.mutate(&cfg)
			}
			err := app.CheckProd(cfg, tc.envFile)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want refusal with %q, got %v", tc.want, err)
			}
		})
	}
	t.Run("demo credentials present", func(t *testing.T) {
		cfg := app.DefaultConfig()
		cfg.Mode, cfg.DataDir = app.ModeProd, t.TempDir()
		testkit.WriteFile(t, cfg.Path(app.CredentialsFileName), "{}", 0o600)
		if err := app.CheckProd(cfg, nil); err == nil || !strings.Contains(err.Error(), "demo credentials") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestSendMail(t *testing.T) {
	sink := testkit.StartMailSink(t)
	base := app.SMTPConfig{Host: sink.Host, Port: sink.Port, From: "agentos@example.test", To: []string{"ops@example.test"}, StartTLS: "auto"}

	if err := app.SendMail(context.Background(), base, "run failures over threshold", "tenant tnt_demo: 5 failed runs in 5 min"); err != nil {
		t.Fatalf("auto STARTTLS against a plain server: %v", err)
	}
	m, skipped := sink.WaitMail(t, 5*time.Second, "run failures over threshold")
	if len(skipped) != 0 || m.Subject != "run failures over threshold" || !strings.Contains(m.Body, "5 failed runs") ||
		m.From != "agentos@example.test" || !slices.Equal(m.To, []string{"ops@example.test"}) {
		t.Errorf("received %+v (and before it %+v)", m, skipped)
	}

	errCases := []struct {
		name string
		cfg  func(app.SMTPConfig) app.SMTPConfig
		want string
	}{
		{"STARTTLS required", func(c app.SMTPConfig) app.SMTPConfig { c.StartTLS = "require"; return c }, sink.Addr()},
		{"not configured", func(c app.SMTPConfig) app.SMTPConfig { c.Host = ""; return c }, "not configured"},
		{"bad starttls value", func(c app.SMTPConfig) app.SMTPConfig { c.StartTLS = "maybe"; return c }, "maybe"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			err := app.SendMail(context.Background(), tc.cfg(base), "s", "b")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error with %q, got %v", tc.want, err)
			}
		})
	}
}
