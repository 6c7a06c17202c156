package app_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/agentos/agentos/app"
	"github.com/emersion/go-smtp"
)

func TestCheckProd_Refusals(t *testing.T) {
	dir := t.TempDir()
	keyed := filepath.Join(dir, "providers-keyed.json")
	clean := filepath.Join(dir, "providers-clean.json")
	os.WriteFile(keyed, []byte(`{"providers":[{"name":"oa","kind":"openai","api_key":"sk-live-123"}]}`), 0o600)
	os.WriteFile(clean, []byte(`{"providers":[{"name":"oa","kind":"openai","api_key_env":"OA_KEY"}]}`), 0o600)
	openKey, ownerKey := filepath.Join(dir, "open.key"), filepath.Join(dir, "owner.key")
	os.WriteFile(openKey, []byte("sk"), 0o644)
	os.WriteFile(ownerKey, []byte("sk"), 0o600)
	exposed, owned := filepath.Join(dir, "providers-exposed.json"), filepath.Join(dir, "providers-owned.json")
	os.WriteFile(exposed, []byte(`{"providers":[{"name":"oa","kind":"openai","api_key_file":"`+openKey+`"}]}`), 0o600)
	os.WriteFile(owned, []byte(`{"providers":[{"name":"oa","kind":"openai","api_key_file":"`+ownerKey+`"}]}`), 0o600)
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
		os.WriteFile(cfg.Path(app.CredentialsFileName), []byte("{}"), 0o600)
		if err := app.CheckProd(cfg, nil); err == nil || !strings.Contains(err.Error(), "demo credentials") {
			t.Fatalf("got %v", err)
		}
	})
}

// inbox is a minimal go-smtp backend that keeps what it receives.
type inbox struct {
	mu   sync.Mutex
	from []string
	to   []string
	data []string
}

func (b *inbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &inboxSession{b: b}, nil }

type inboxSession struct{ b *inbox }

func (s *inboxSession) Mail(from string, _ *smtp.MailOptions) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.from = append(s.b.from, from)
	return nil
}

func (s *inboxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.to = append(s.b.to, to)
	return nil
}

func (s *inboxSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.data = append(s.b.data, string(raw))
	return err
}

func (s *inboxSession) Reset()        {}
func (s *inboxSession) Logout() error { return nil }

func TestSendMail(t *testing.T) {
	box := &inbox{}
	srv := smtp.NewServer(box)
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	base := app.SMTPConfig{Host: "127.0.0.1", Port: p, From: "agentos@example.test", To: []string{"ops@example.test"}, StartTLS: "auto"}

	if err := app.SendMail(context.Background(), base, "run failures over threshold", "tenant tnt_demo: 5 failed runs in 5 min"); err != nil {
		t.Fatalf("auto STARTTLS against a plain server: %v", err)
	}
	box.mu.Lock()
	if len(box.data) != 1 || !strings.Contains(box.data[0], "Subject: run failures over threshold") ||
		!strings.Contains(box.data[0], "5 failed runs") || box.from[0] != "agentos@example.test" || box.to[0] != "ops@example.test" {
		t.Errorf("received %+v", box)
	}
	box.mu.Unlock()

	errCases := []struct {
		name string
		cfg  func(app.SMTPConfig) app.SMTPConfig
		want string
	}{
		{"STARTTLS required", func(c app.SMTPConfig) app.SMTPConfig { c.StartTLS = "require"; return c }, ln.Addr().String()},
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
