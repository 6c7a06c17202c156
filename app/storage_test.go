package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/store/postgres/pgtest"
	"github.com/rs/zerolog"
)

// tcpProxy forwards a loopback port to the test PostgreSQL, so a test can
// take the database away from a node (stop) and give it back on the same
// address (start) without disturbing other tests sharing the server.
type tcpProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target}
	p.start("127.0.0.1:0")
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) start(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

// stop refuses new connections and cuts every open one.
func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func viaProxy(t *testing.T, rawURL string, proxyAddr string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = proxyAddr
	return u.String()
}

// TestNode_PostgresLostAndBack: a node on PostgreSQL answers 503
// dependency_unavailable with Retry-After while the database is gone,
// /readyz says not ready, and both recover by themselves when it returns;
// what was acknowledged before is still there.
func TestNode_PostgresLostAndBack(t *testing.T) {
	base := pgtest.URL(t)
	u, _ := url.Parse(base)
	proxy := newTCPProxy(t, u.Host)
	n := MustStartNode(t, func(c *app.Config) { c.Store = viaProxy(t, base, proxy.addr) })
	if d := n.Store().Describe(); !strings.HasPrefix(d, "postgres://") {
		t.Fatalf("node store: %s", d)
	}
	key := n.creds.TenantAdmin.APIKey
	runs := n.URL(app.StackA) + "/v1/agents/agt_sample_echo_v1/runs"
	created := do(t, "POST", runs, key, map[string]any{"input": map[string]any{"type": "text", "text": "before"}, "idempotency_key": "before-outage"})
	if created.Status != http.StatusCreated && created.Status != http.StatusOK {
		t.Fatalf("create before the outage: %d %s", created.Status, created.Body)
	}
	run, _ := created.JSON(t)["run"].(map[string]any)
	runID, _ := run["run_id"].(string)
	runURL := n.URL(app.StackA) + "/v1/runs/" + runID
	var last response
	testkit.WaitFor(t, "the run to finish", 20*time.Second, func() bool {
		last = do(t, "GET", runURL, key, nil)
		r, _ := last.JSON(t)["run"].(map[string]any)
		s, _ := r["status"].(string)
		if s != "completed" && s != "failed" {
			return false
		}
		return true
	}, func() string { return fmt.Sprintf("(last answer %d %s)", last.Status, last.Body) })

	proxy.stop()
	r := do(t, "GET", runURL, key, nil)
	if r.Status != http.StatusServiceUnavailable || r.ErrorCode(t) != "dependency_unavailable" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("read while the database is away: %d %q Retry-After=%q %s", r.Status, r.ErrorCode(t), r.Header.Get("Retry-After"), r.Body)
	}
	c := do(t, "POST", runs, key, map[string]any{"input": map[string]any{"type": "text", "text": "during"}, "idempotency_key": "during-outage"})
	if c.Status != http.StatusServiceUnavailable || c.Header.Get("Retry-After") == "" {
		t.Fatalf("create while the database is away: %d %s", c.Status, c.Body)
	}
	ready := func() int {
		r, err := testkit.Send(nil, "GET", n.URL(app.StackA)+"/readyz", "", nil)
		if err != nil {
			return 0
		}
		return r.Status
	}
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while the database is away: %d", got)
	}

	proxy.start(proxy.addr)
	testkit.WaitFor(t, "/readyz to recover", 30*time.Second, func() bool { return ready() == http.StatusOK })
	if r := do(t, "GET", runURL, key, nil); r.Status != http.StatusOK {
		t.Fatalf("acknowledged run after recovery: %d %s", r.Status, r.Body)
	}
	after := do(t, "POST", runs, key, map[string]any{"input": map[string]any{"type": "text", "text": "after"}, "idempotency_key": "after-outage"})
	if after.Status != http.StatusCreated && after.Status != http.StatusOK {
		t.Fatalf("create after recovery: %d %s", after.Status, after.Body)
	}
}

// TestOpenStorage_UnreachablePostgresIsOneClearLine: the start fails with
// one line naming host, port and database, never the password.
func TestOpenStorage_UnreachablePostgresIsOneClearLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := testConfig(t)
	cfg.Store = "postgres://agentos:hunter2-secret@" + addr + "/agentos_prod?sslmode=disable"
	n := app.NewNode(cfg, app.BuildInfo{Version: "test"}, zerolog.Nop())
	err = n.Open(context.Background())
	if err == nil {
		n.Close()
		t.Fatal("node opened on an unreachable database")
	}
	msg := err.Error()
	_, port, _ := net.SplitHostPort(addr)
	for _, want := range []string{"127.0.0.1", port, "agentos_prod", "pg_isready"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "hunter2") || strings.Contains(msg, "\n") {
		t.Errorf("message leaks the password or spans lines: %s", msg)
	}
}

func TestConfig_StoreValues(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{{"bbolt", true}, {"", true}, {"bbolt:/tmp/x.db", true}, {"postgres://u@127.0.0.1:5432/db", true},
		{"postgresql://u@127.0.0.1/db", true}, {"bbolt:", false}, {"mysql://x", false}, {"postgres://", false}} {
		cfg := testConfig(t)
		cfg.Store = tc.v
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("store %q: err %v, want ok=%v", tc.v, err, tc.ok)
		}
	}
	cfg := testConfig(t)
	cfg.Store = "postgres://u:pw@db:5432/agentos"
	if d := app.DescribeStore(cfg); strings.Contains(d, "pw") {
		t.Errorf("describe leaks the password: %s", d)
	}
}
