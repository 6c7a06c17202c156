package stacka_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/stacka"
)

// streamCapNode starts a node that allows perNode event streams, perTenant
// of them per tenant, with one run for tok-a (runA) and one for tok-b
// (runB). Its workers are not started: the runs stay queued, so their
// streams stay open.
func streamCapNode(t *testing.T, perNode, perTenant int) (n *testNode, runA, runB string) {
	t.Helper()
	n = newNodeAt(t, filepath.Join(t.TempDir(), "agentos.db"), false, func(c *stacka.Config, _ map[string]*core.Tenant) {
		c.MaxEventStreams, c.MaxEventStreamsPerTenant = perNode, perTenant
	})
	n.putAgent("tok-a", "agt_a")
	n.putAgent("tok-b", "agt_b")
	runA = n.createRun("tok-a", "agt_a", "x")["run_id"].(string)
	runB = n.createRun("tok-b", "agt_b", "x")["run_id"].(string)
	return n, runA, runB
}

// Issue 14 item 5: event streams are capped per tenant and per node; the
// next one answers 429 rate_limited with Retry-After, a closed stream frees
// its slot, and the service keeps answering other requests meanwhile.
func TestHardening_StreamCapPerTenant(t *testing.T) {
	n, runA, runB := streamCapNode(t, 4, 3)

	refused := func(token, runID, appliesTo string) {
		t.Helper()
		_, resp, cancel := n.stream(token, runID)
		defer cancel()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("stream over the cap: %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	var cancels []func()
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	open := func(token, runID string) {
		t.Helper()
		_, resp, cancel := n.stream(token, runID)
		if resp.StatusCode != 200 {
			cancel()
			t.Fatalf("stream within the cap: %d", resp.StatusCode)
		}
		cancels = append(cancels, cancel)
	}
	for i := 0; i < 3; i++ {
		open("tok-a", runA)
	}
	refused("tok-a", runA, "tenant")
	open("tok-b", runB) // the node's fourth
	refused("tok-b", runB, "node")
	if code, _, _ := n.do("GET", "/v1/runs/"+runB, "tok-b", nil); code != 200 {
		t.Fatalf("plain request while streams are at the cap: %d", code)
	}
	// Closing one of A's streams frees a node slot for B.
	cancels[0]()
	testkit.WaitFor(t, "a closed stream to free its slot", 5*time.Second, func() bool {
		_, resp, cancel := n.stream("tok-b", runB)
		if resp.StatusCode == 200 {
			cancels = append(cancels, cancel)
			return true
		}
		cancel()
		return false
	})
}
