package stacka_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
)

// TestRecovery_AfterCrashEveryRunEndsGapless leaves runs queued (no
// workers) and running (blocked inside a webhook call, with an open step),
// stops the node without finishing them, reopens the same file and checks
// that Start drives every run to a terminal status with gapless events.
func TestRecovery_AfterCrashEveryRunEndsGapless(t *testing.T) {
	hook := testkit.StartHeldWebhook(t)
	path := filepath.Join(t.TempDir(), "agentos.db")

	n1 := newNodeAt(t, path, true)
	n1.do("PUT", "/v1/tools/tool.hook", "tok-a", map[string]any{"tool": map[string]any{"kind": "http", "config": map[string]any{"url": hook.URL}}})
	n1.putAgent("tok-a", "agt_h", "tool.hook")
	var running []string
	for i := 0; i < 3; i++ {
		id := n1.createRun("tok-a", "agt_h", "x")["run_id"].(string)
		running = append(running, id)
		ch, _, cancel := n1.stream("tok-a", id)
		until(t, ch, core.EventToolCallRequested, 10*time.Second)
		cancel()
	}
	n1.close()

	// A node that never starts its workers: runs stay queued.
	n2 := newNodeAt(t, path, false)
	var queued []string
	for i := 0; i < 4; i++ {
		queued = append(queued, n2.createRun("tok-a", "agt_h", "q")["run_id"].(string))
	}
	n2.close()

	hook.Release()
	n3 := newNodeAt(t, path, true)
	for _, id := range append(append([]string{}, running...), queued...) {
		run := waitStatus(t, n3, "tok-a", id, "completed", 10*time.Second)
		evs, err := n3.svc.ListEvents(context.Background(), authFor("tnt_a", "usr_a"), id, 0)
		if err != nil {
			t.Fatal(err)
		}
		terminals := 0
		for i, ev := range evs {
			if ev.Sequence != int64(i+1) {
				t.Fatalf("run %s: sequence %d at position %d", id, ev.Sequence, i+1)
			}
			if core.EventTerminal(ev.Type) {
				terminals++
			}
		}
		if terminals != 1 || !core.EventTerminal(evs[len(evs)-1].Type) {
			t.Fatalf("run %s: %d terminal events", id, terminals)
		}
		_ = run
	}
	// The interrupted runs closed their lost tool step as an error and
	// retried it.
	evs, _ := n3.svc.ListEvents(context.Background(), authFor("tnt_a", "usr_a"), running[0], 0)
	sawLost := false
	for _, ev := range evs {
		if ev.Type == core.EventToolCallCompleted && string(ev.Payload) != "" && containsAll(string(ev.Payload), `"status":"error"`, "restart") {
			sawLost = true
		}
	}
	if !sawLost {
		t.Fatal("the interrupted tool call was not closed as an error")
	}
	if st, _ := n3.svc.Stats(context.Background()); st.QueueDepth != 0 {
		t.Fatalf("queue depth %d", st.QueueDepth)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
