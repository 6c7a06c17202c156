package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agentos/agentos/app"
)

func TestDebugAddr_OffByDefault(t *testing.T) {
	n := MustStartNode(t)
	if n.DebugURL() != "" {
		t.Fatalf("debug listener on without --debug-addr: %s", n.DebugURL())
	}
	// The API routers never serve the profiles, with or without a key.
	for _, name := range []string{app.StackA, app.StackB, app.StackFed} {
		res := do(t, "GET", n.URL(name)+"/debug/pprof/", n.creds.PlatformAdmin.APIKey, nil)
		if res.Status != http.StatusNotFound {
			t.Fatalf("%s /debug/pprof/: %d, want 404", name, res.Status)
		}
	}
}

func TestDebugAddr_ServesPprofOnLoopback(t *testing.T) {
	n := MustStartNode(t, func(c *app.Config) { c.DebugAddr = "127.0.0.1:0" })
	if !strings.HasPrefix(n.DebugURL(), "http://127.0.0.1:") {
		t.Fatalf("debug url %q", n.DebugURL())
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/heap?debug=1"} {
		if r := do(t, "GET", n.DebugURL()+path, "", nil).Expect(t, path, 200); len(r.Body) == 0 {
			t.Fatalf("%s: empty answer", path)
		}
	}
}

func TestDebugAddr_RefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "10.1.2.3:6060", "example.com:6060", "nonsense"} {
		cfg := app.DefaultConfig()
		cfg.DebugAddr = addr
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "debug_addr") {
			t.Errorf("debug addr %q: %v", addr, err)
		}
	}
}
