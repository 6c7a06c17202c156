package e2e

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/agentos/agentos/e2e/testbinary"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestBinaryIsStatic: no interpreter, no dynamic section, no needed
// libraries.
func TestBinaryIsStatic(t *testing.T) {
	t.Parallel()
	f, err := elf.Open(testbinary.Binary)
	if err != nil {
		t.Fatalf("open ELF: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has program header %v: dynamically linked", p.Type)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		t.Logf("imported libraries: %v", err)
	}
	if len(libs) > 0 {
		t.Errorf("binary needs %v", libs)
	}
	if s := f.Section(".dynamic"); s != nil {
		t.Errorf("binary has a .dynamic section")
	}
}

func TestVersionPrintsBuildAndSHA(t *testing.T) {
	t.Parallel()
	w := newWorkdir(t)
	r := w.mustRun(t, "version")
	mustContain(t, r, "agentos e2e", "git e2e", "binary sha256 "+sha256File(t, testbinary.Binary))
}

// mailbox is a real SMTP server (emersion/go-smtp) that records messages.
type mailbox struct {
	mu       sync.Mutex
	user     string
	password string
	authed   []string
	msgs     []mailMsg
}

type mailMsg struct {
	From string
	To   []string
	Data string
}

func (m *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{box: m}, nil }

type mailSession struct {
	box    *mailbox
	authed bool
	cur    mailMsg
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.box.user || pass != s.box.password {
			return errors.New("bad credentials")
		}
		s.authed = true
		s.box.mu.Lock()
		s.box.authed = append(s.box.authed, user)
		s.box.mu.Unlock()
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.box.user != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.cur = mailMsg{From: from}
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = string(raw)
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, s.cur)
	s.box.mu.Unlock()
	return nil
}

func (s *mailSession) Reset()        { s.cur = mailMsg{} }
func (s *mailSession) Logout() error { return nil }

func startMailbox(t *testing.T, user, password string) (*mailbox, string, int) {
	t.Helper()
	box := &mailbox{user: user, password: password}
	srv := smtp.NewServer(box)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	return box, host, p
}

// TestTestAlertDelivers sends `agentos test-alert` to a real SMTP server,
// with and without SMTP auth, and checks what arrived.
func TestTestAlertDelivers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, user, password string
	}{
		{"no auth", "", ""},
		{"with auth", "alerts", "s3cret-pass"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			box, host, port := startMailbox(t, tc.user, tc.password)
			w := newWorkdir(t)
			env := []string{"AGENTOS_SMTP_HOST=" + host, "AGENTOS_SMTP_PORT=" + strconv.Itoa(port),
				"AGENTOS_SMTP_FROM=agentos@example.test", "AGENTOS_SMTP_TO=ops@example.test,oncall@example.test",
				"AGENTOS_SMTP_USER=" + tc.user, "AGENTOS_SMTP_PASSWORD=" + tc.password}
			r := w.runEnv(env, "test-alert")
			if r.Code != 0 {
				t.Fatalf("test-alert: %s", r)
			}
			mustContain(t, r, "test alert accepted by "+host+":"+strconv.Itoa(port))
			box.mu.Lock()
			defer box.mu.Unlock()
			if len(box.msgs) != 1 {
				t.Fatalf("server received %d messages", len(box.msgs))
			}
			m := box.msgs[0]
			if m.From != "agentos@example.test" || strings.Join(m.To, ",") != "ops@example.test,oncall@example.test" {
				t.Errorf("envelope from %q to %v", m.From, m.To)
			}
			for _, want := range []string{"Subject: [AgentOS] test alert", "This is a test alert from AgentOS", "To: <ops@example.test>"} {
				if !strings.Contains(m.Data, want) {
					t.Errorf("message lacks %q:\n%s", want, m.Data)
				}
			}
			if tc.user != "" && (len(box.authed) != 1 || box.authed[0] != tc.user) {
				t.Errorf("SMTP auth: %v", box.authed)
			}
		})
	}
	t.Run("unreachable server names host:port", func(t *testing.T) {
		w := newWorkdir(t)
		addr := closedPort(t)
		host, port, _ := net.SplitHostPort(addr)
		r := w.runEnv([]string{"AGENTOS_SMTP_HOST=" + host, "AGENTOS_SMTP_PORT=" + port, "AGENTOS_SMTP_TO=ops@example.test"}, "test-alert")
		if r.Code == 0 || !strings.Contains(r.Stdout, "NOT accepted") || !strings.Contains(r.Stdout, addr) {
			t.Errorf("test-alert to a closed port: %s", r)
		}
	})
	t.Run("require STARTTLS refuses a plain server", func(t *testing.T) {
		box, host, port := startMailbox(t, "", "")
		w := newWorkdir(t)
		r := w.runEnv([]string{"AGENTOS_SMTP_HOST=" + host, "AGENTOS_SMTP_PORT=" + strconv.Itoa(port),
			"AGENTOS_SMTP_TO=ops@example.test", "AGENTOS_SMTP_STARTTLS=require"}, "test-alert")
		if r.Code == 0 {
			t.Errorf("test-alert with STARTTLS required went through a plain server: %s", r)
		}
		box.mu.Lock()
		defer box.mu.Unlock()
		if len(box.msgs) != 0 {
			t.Errorf("a message was delivered without TLS")
		}
	})
	t.Run("not configured", func(t *testing.T) {
		w := newWorkdir(t)
		r := w.run("test-alert")
		if r.Code == 0 || !bytes.Contains([]byte(r.Stderr), []byte("AGENTOS_SMTP_HOST")) {
			t.Errorf("test-alert without SMTP: %s", r)
		}
	})
}
