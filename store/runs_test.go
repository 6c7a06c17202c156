package store_test

import (
	"context"
	"errors"
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
	st := mustOpen(t, filepath.Join(t.TempDir(), "s.db"), store.Options{})
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

// Many runs commit at once through shared transactions while some are
// canceled mid-way and audit records join the same commits: every run's
// events are 1..last_sequence with no gap or duplicate, a canceled run
// ends with its canceled event and its writer is told ErrRunFinished, and
// a writer refused by a cancel costs no other run its commit.
func TestRuns_ConcurrentAppendsAndCancelsGapless(t *testing.T) {
	st := openRunStore(t)
	ctx := context.Background()
	const runs, commits = 40, 12
	drafts := []core.EventDraft{{Type: core.EventStepStarted, StepID: "stp_1", Payload: map[string]any{"step_kind": "tool"}},
		{Type: core.EventStepCompleted, StepID: "stp_1", Payload: map[string]any{"status": "ok"}}}
	recs := make([]core.RunRecord, runs)
	for i := range recs {
		rec, _, _, err := st.CreateRun(ctx, newRun("tnt_a", fmt.Sprint(i)), []core.EventDraft{{Type: core.EventRunCreated,
			Payload: map[string]any{"status": core.RunQueued}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = rec
	}
	var wg sync.WaitGroup
	finished := make([]bool, runs)
	for i := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := recs[i]
			for c := 0; c < commits; c++ {
				out, _, err := st.AppendRun(ctx, rec, drafts)
				if errors.Is(err, core.ErrRunFinished) {
					finished[i] = true
					return
				}
				if err != nil {
					t.Errorf("run %d commit %d: %v", i, c, err)
					return
				}
				rec = out
			}
		}()
		if i%3 == 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := core.AuditRecord{TenantID: "tnt_a", AuditID: core.NewID("aud"), Action: "run.cancel", Time: core.Now()}
				if _, _, err := st.CancelRun(ctx, "tnt_a", recs[i].RunID, &a); err != nil && !core.IsCode(err, core.CodeConflict) {
					t.Errorf("cancel run %d: %v", i, err)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := st.AppendAudits(ctx, []core.AuditRecord{{TenantID: "tnt_a", AuditID: core.NewID("aud"), Action: "x", Time: core.Now()}}); err != nil {
				t.Errorf("audit: %v", err)
			}
		}()
	}
	wg.Wait()
	for i, r := range recs {
		rec, err := st.GetRun(ctx, "tnt_a", r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := st.ListEvents(ctx, "tnt_a", r.RunID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(evs)) != rec.LastSequence {
			t.Fatalf("run %d: %d events, last_sequence %d", i, len(evs), rec.LastSequence)
		}
		for j, ev := range evs {
			if ev.Sequence != int64(j+1) {
				t.Fatalf("run %d: event %d has sequence %d (gap or duplicate)", i, j+1, ev.Sequence)
			}
		}
		last := evs[len(evs)-1].Type
		switch {
		case rec.Status == core.RunCanceled:
			if last != core.EventRunCanceled {
				t.Fatalf("run %d canceled, last event %s", i, last)
			}
			if !finished[i] && len(evs) != 1+2*commits+1 {
				t.Fatalf("run %d: canceled after its writer ended, yet %d events", i, len(evs))
			}
		case finished[i]:
			t.Fatalf("run %d: writer told finished, status %s", i, rec.Status)
		case len(evs) != 1+2*commits:
			t.Fatalf("run %d: %d events, want %d", i, len(evs), 1+2*commits)
		}
	}
}
