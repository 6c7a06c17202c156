package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/store"
)

func openRunStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newRun(tenant, key string) core.RunRecord {
	id := core.NewID(core.PrefixRun)
	return core.RunRecord{Run: core.Run{TenantID: tenant, AgentID: "agt_x", RunID: id, Status: core.RunQueued,
		CreatedAt: core.Now(), PrincipalID: "usr_1"}, IdempotencyKey: key, BodyHash: "h-" + key}
}

// BenchmarkStore_AppendRunParallel measures durable executor commits (run
// record + 4 events each) from 256 concurrent writers sharing group commits.
func BenchmarkStore_AppendRunParallel(b *testing.B) {
	st := openRunStore(b)
	ctx := context.Background()
	const writers = 256
	recs := make([]core.RunRecord, writers)
	for i := range recs {
		r := newRun("tnt_a", fmt.Sprint(i))
		r.Messages = []core.ChatMessage{{Role: "user", Content: strings.Repeat("m", 600)}}
		rec, _, _, err := st.CreateRun(ctx, r, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = rec
	}
	drafts := []core.EventDraft{{Type: core.EventStepStarted, StepID: "stp_1", Payload: map[string]any{"step_kind": "tool", "name": "tool.echo"}},
		{Type: core.EventToolCallRequested, StepID: "stp_1", Payload: map[string]any{"tool_call_id": "tcall_1", "input": map[string]any{"text": "hello"}}},
		{Type: core.EventToolCallCompleted, StepID: "stp_1", Payload: map[string]any{"tool_call_id": "tcall_1", "output": map[string]any{"text": "hello"}}},
		{Type: core.EventStepCompleted, StepID: "stp_1", Payload: map[string]any{"status": "ok"}}}
	var wg sync.WaitGroup
	per := b.N/writers + 1
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rec := recs[w]
			for i := 0; i < per; i++ {
				out, _, err := st.AppendRun(ctx, rec, drafts)
				if err != nil {
					b.Error(err)
					return
				}
				rec = out
			}
		}(w)
	}
	wg.Wait()
	b.ReportMetric(float64(per*writers)/time.Since(start).Seconds(), "commits/s")
}
