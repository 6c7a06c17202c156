package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/store"
	bolt "go.etcd.io/bbolt"
)

// storedEvents returns the stored bytes of a run's events, in order.
func storedEvents(t *testing.T, st *store.Store, tenantID, runID string) [][]byte {
	t.Helper()
	var out [][]byte
	prefix := store.TenantKey(tenantID, "runs", runID, "events", "")
	err := st.DB().View(func(tx *bolt.Tx) error {
		c := store.Data(tx).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			out = append(out, bytes.Clone(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameEvents fails unless got and want encode to the same JSON, one by one.
func sameEvents(t *testing.T, what string, got, want []core.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, _ := json.Marshal(got[i])
		w, _ := json.Marshal(want[i])
		if !bytes.Equal(g, w) {
			t.Fatalf("%s: event %d reads back as\n %s\nwant\n %s", what, i, g, w)
		}
	}
}

// TestEvents_StoredRelativeToTheirRun: new events are stored without the
// fields their run and key hold (sequence, tenant, agent, run, traceparent)
// and read back whole, from any position.
func TestEvents_StoredRelativeToTheirRun(t *testing.T) {
	st := openRunStore(t)
	ctx := context.Background()
	rec := newRun("tnt_a", "k1")
	rec.Traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	created, evs, _, err := st.CreateRun(ctx, rec, []core.EventDraft{{Type: core.EventRunCreated, Payload: map[string]any{"status": "queued"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	created.Status = core.RunRunning
	_, more, err := st.AppendRun(ctx, created, []core.EventDraft{
		{Type: core.EventRunStarted, Payload: map[string]any{"status": "running"}},
		{Type: core.EventStepStarted, StepID: "stp_1", Payload: map[string]any{"step_kind": "model", "name": "tier:fast"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	all := append(evs, more...)
	for i, raw := range storedEvents(t, st, "tnt_a", rec.RunID) {
		for _, field := range []string{`"tenant_id"`, `"agent_id"`, `"run_id"`, `"sequence"`, `"traceparent"`, rec.RunID, rec.Traceparent} {
			if bytes.Contains(raw, []byte(field)) {
				t.Fatalf("stored event %d repeats %s: %s", i, field, raw)
			}
		}
		whole, _ := all[i].AppendJSON(nil)
		if len(raw) >= len(whole)*3/4 {
			t.Fatalf("stored event %d is %d bytes, the whole event %d", i, len(raw), len(whole))
		}
	}
	for after := int64(0); after <= 3; after++ {
		got, err := st.ListEvents(ctx, "tnt_a", rec.RunID, after, 0)
		if err != nil {
			t.Fatal(err)
		}
		sameEvents(t, "after "+string(rune('0'+after)), got, all[after:])
	}
	if got, err := st.ListEvents(ctx, "tnt_a", rec.RunID, 0, 2); err != nil || len(got) != 2 || got[1].Sequence != 2 {
		t.Fatalf("limit 2: %+v, %v", got, err)
	}
	// Another tenant sees no such run, whatever the events hold.
	if _, err := st.ListEvents(ctx, "tnt_b", rec.RunID, 0, 0); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("other tenant: err = %v, want not_found", err)
	}
}

// TestEvents_WholeEventsOfOlderStoresStillRead: a store written before
// events were stored relative to their run holds whole events; they read
// as they were, and a run begun then and continued now (both forms in one
// run) reads whole too, across a reopen of the file.
func TestEvents_WholeEventsOfOlderStoresStillRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	st := mustOpen(t, path, store.Options{})
	ctx := context.Background()
	rec := newRun("tnt_a", "old")
	rec.Status = core.RunRunning
	rec.Traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	step := "stp_old"
	old := []core.Event{
		{EventID: core.NewID(core.PrefixEvent), Sequence: 1, Time: core.Now(), Type: core.EventRunCreated, TenantID: "tnt_a",
			AgentID: rec.AgentID, RunID: rec.RunID, Trace: core.EventTrace{Traceparent: rec.Traceparent, SpanID: core.NewSpanID()},
			Payload: json.RawMessage(`{"status":"queued"}`)},
		{EventID: core.NewID(core.PrefixEvent), Sequence: 2, Time: core.Now(), Type: core.EventStepStarted, TenantID: "tnt_a",
			AgentID: rec.AgentID, RunID: rec.RunID, StepID: &step, Trace: core.EventTrace{Traceparent: rec.Traceparent, SpanID: core.NewSpanID()},
			Payload: json.RawMessage(`{"name":"tier:fast","step_kind":"model"}`)},
	}
	rec.LastSequence = 2
	// The older binaries' bytes: json.Marshal of the whole event.
	err := st.DB().Update(func(tx *bolt.Tx) error {
		for _, ev := range old {
			raw, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if err := store.Data(tx).Put(store.TenantKey("tnt_a", "runs", rec.RunID, "events", store.SeqKey(ev.Sequence)), raw); err != nil {
				return err
			}
		}
		raw, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return store.Data(tx).Put(store.TenantKey("tnt_a", "runs", rec.RunID), raw)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.ListEvents(ctx, "tnt_a", rec.RunID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "older store", got, old)
	// This binary continues the run: its new events are relative.
	_, more, err := st.AppendRun(ctx, rec, []core.EventDraft{{Type: core.EventStepCompleted, StepID: step,
		Payload: map[string]any{"step_kind": "model", "name": "tier:fast", "status": "ok", "duration_ms": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	raws := storedEvents(t, st, "tnt_a", rec.RunID)
	if len(raws) != 3 || !bytes.Contains(raws[0], []byte(`"tenant_id"`)) || bytes.Contains(raws[2], []byte(`"tenant_id"`)) {
		t.Fatalf("stored forms: want two whole events then a relative one:\n%s", bytes.Join(raws, []byte("\n")))
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = mustOpen(t, path, store.Options{})
	defer st.Close()
	for after := int64(0); after <= 2; after++ {
		got, err = st.ListEvents(ctx, "tnt_a", rec.RunID, after, 0)
		if err != nil {
			t.Fatal(err)
		}
		sameEvents(t, "mixed run", got, append(append([]core.Event{}, old...), more...)[after:])
	}
}
