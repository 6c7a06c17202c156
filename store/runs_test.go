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

func TestStore_AppendEvent_NoGapsUnderConcurrency(t *testing.T) {
	st := openRunStore(t)
	ctx := context.Background()
	rec, evs, _, err := st.CreateRun(ctx, newRun("tnt_a", "k"), []core.EventDraft{{Type: core.EventRunCreated, Payload: map[string]any{"status": "queued"}}}, nil)
	if err != nil || len(evs) != 1 || evs[0].Sequence != 1 {
		t.Fatalf("create: %v %v", err, evs)
	}
	const writers, each = 16, 25
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				_, _, err := st.AdvanceRun(ctx, "tnt_a", rec.RunID, func(r *core.RunRecord) ([]core.EventDraft, error) {
					return []core.EventDraft{{Type: core.EventStepStarted, StepID: "stp_x", Payload: map[string]any{"w": w, "i": i}},
						{Type: core.EventStepCompleted, StepID: "stp_x", Payload: map[string]any{"w": w, "i": i}}}, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	all, err := st.ListEvents(ctx, "tnt_a", rec.RunID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1+writers*each*2 {
		t.Fatalf("%d events", len(all))
	}
	seen := map[string]bool{}
	for i, ev := range all {
		if ev.Sequence != int64(i+1) || seen[ev.EventID] {
			t.Fatalf("event %d has sequence %d (or a duplicate id)", i, ev.Sequence)
		}
		seen[ev.EventID] = true
	}
	got, _ := st.GetRun(ctx, "tnt_a", rec.RunID)
	if got.LastSequence != int64(len(all)) {
		t.Fatalf("last_sequence %d", got.LastSequence)
	}
	if _, err := st.ListEvents(ctx, "tnt_b", rec.RunID, 0, 0); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("other tenant: %v", err)
	}
}

func TestStore_CreateRun_IdempotencyAndActiveIndex(t *testing.T) {
	st := openRunStore(t)
	ctx := context.Background()
	r1 := newRun("tnt_a", "k")
	first, _, replayed, err := st.CreateRun(ctx, r1, nil, nil)
	if err != nil || replayed {
		t.Fatal(err, replayed)
	}
	r2 := newRun("tnt_a", "k")
	again, _, replayed, err := st.CreateRun(ctx, r2, nil, nil)
	if err != nil || !replayed || again.RunID != first.RunID {
		t.Fatalf("replay: %v %v %s", err, replayed, again.RunID)
	}
	r3 := newRun("tnt_a", "k")
	r3.BodyHash = "other"
	if _, _, _, err := st.CreateRun(ctx, r3, nil, nil); !core.IsCode(err, core.CodeConflict) {
		t.Fatalf("different body: %v", err)
	}
	refs, _ := st.ActiveRuns(ctx)
	if len(refs) != 1 || refs[0].RunID != first.RunID || refs[0].Status != core.RunQueued {
		t.Fatalf("active %v", refs)
	}
	if _, _, err := st.CancelRun(ctx, "tnt_a", first.RunID, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CancelRun(ctx, "tnt_a", first.RunID, nil); !core.IsCode(err, core.CodeConflict) {
		t.Fatalf("second cancel: %v", err)
	}
	if refs, _ := st.ActiveRuns(ctx); len(refs) != 0 {
		t.Fatalf("terminal run still active: %v", refs)
	}
	_, _, err = st.AdvanceRun(ctx, "tnt_a", first.RunID, func(r *core.RunRecord) ([]core.EventDraft, error) {
		if core.RunTerminal(r.Status) {
			return nil, core.ErrRunFinished
		}
		return nil, nil
	})
	if err != core.ErrRunFinished {
		t.Fatalf("advance of a canceled run: %v", err)
	}
}

func TestStore_ListRuns_NewestFirstSkipsEvents(t *testing.T) {
	st := openRunStore(t)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 7; i++ {
		r := newRun("tnt_a", fmt.Sprint(i))
		if i%2 == 1 {
			r.AgentID = "agt_y"
		}
		rec, _, _, err := st.CreateRun(ctx, r, []core.EventDraft{{Type: core.EventRunCreated, Payload: map[string]any{}}, {Type: core.EventRunStarted, Payload: map[string]any{}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]string{rec.RunID}, ids...)
	}
	_, _, _, _ = st.CreateRun(ctx, newRun("tnt_b", "0"), nil, nil)
	var got []string
	cursor := ""
	for {
		page, next, err := st.ListRuns(ctx, "tnt_a", core.RunFilter{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			got = append(got, r.RunID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("got %v\nwant %v", got, ids)
	}
	ys, _, _ := st.ListRuns(ctx, "tnt_a", core.RunFilter{AgentID: "agt_y"})
	if len(ys) != 3 {
		t.Fatalf("agent filter: %d", len(ys))
	}
}

func TestStore_Memory_QuotaAccounting(t *testing.T) {
	st := openRunStore(t)
	ctx := context.Background()
	it := core.MemoryItem{Namespace: "ns", Key: "k", Value: []byte(`"hello"`)}
	if _, err := st.PutMemory(ctx, "tnt_a", it, 10_000); err != nil {
		t.Fatal(err)
	}
	used, _ := st.MemoryUsage(ctx, "tnt_a")
	// Replacing the item does not count it twice.
	if _, err := st.PutMemory(ctx, "tnt_a", it, 10_000); err != nil {
		t.Fatal(err)
	}
	if again, _ := st.MemoryUsage(ctx, "tnt_a"); again-used > 8 || used-again > 8 || used == 0 {
		t.Fatalf("usage %d then %d", used, again)
	}
	big := core.MemoryItem{Namespace: "ns", Key: "big", Value: []byte(`"` + string(make([]byte, 0)) + fmt.Sprintf("%0100d", 0) + `"`)}
	if _, err := st.PutMemory(ctx, "tnt_a", big, used+50); !core.IsCode(err, core.CodeQuotaExceeded) {
		t.Fatalf("over quota: %v", err)
	}
	if _, err := st.GetMemory(ctx, "tnt_b", "ns", "k"); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("other tenant: %v", err)
	}
}

func TestStore_Agents_VersionBumps(t *testing.T) {
	st := openRunStore(t)
	ctx := context.Background()
	a1, err := st.PutAgent(ctx, core.Agent{TenantID: "tnt_a", AgentID: "agt_x", ModelRef: "tier:fast"})
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := st.PutAgent(ctx, core.Agent{TenantID: "tnt_a", AgentID: "agt_x", ModelRef: "tier:balanced"})
	if a1.Version != 1 || a2.Version != 2 || !a2.CreatedAt.Equal(a1.CreatedAt) {
		t.Fatalf("versions %d %d", a1.Version, a2.Version)
	}
	if _, err := st.GetAgent(ctx, "tnt_b", "agt_x"); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("other tenant: %v", err)
	}
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
