// Package testnode starts a real node in-process for tests: :0 ports, a
// temp data dir, seeded, closed when the test ends (NATS's RunServer).
package testnode

import (
	"context"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/rs/zerolog"
)

// Node is a running, seeded node and the credentials the seed wrote.
type Node struct {
	*app.Node
	Creds app.Credentials
}

// Parts are the node and its credentials apart, for callers that hold
// them as two: n, creds := testnode.Start(t).Parts().
func (n *Node) Parts() (*app.Node, app.Credentials) { return n.Node, n.Creds }

// Config is the configuration Start begins from: DefaultConfig with a
// temp data dir, loopback :0 ports and a short shutdown.
func Config(t testing.TB) app.Config {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.StackAAddr, cfg.StackBAddr, cfg.FedAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

// Start opens and seeds a node from Config changed by each mutate, and
// closes it when the test ends.
func Start(t testing.TB, mutate ...func(*app.Config)) *Node {
	t.Helper()
	cfg := Config(t)
	for _, m := range mutate {
		m(&cfg)
	}
	return StartWith(t, cfg)
}

// StartWith is Start with a configuration made by the caller.
func StartWith(t testing.TB, cfg app.Config) *Node {
	t.Helper()
	return StartLogging(t, cfg, zerolog.Nop())
}

// StartLogging is StartWith logging to log (a benchmark formats its
// access log as in production and discards it; tests log nothing).
func StartLogging(t testing.TB, cfg app.Config, log zerolog.Logger) *Node {
	t.Helper()
	n := app.NewNode(cfg, app.BuildInfo{Version: "test"}, log)
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
	return &Node{Node: n, Creds: creds}
}
