package store_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/store"
)

func openFedStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "agentos.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, id := range []string{"tnt_a", "tnt_b"} {
		if err := s.CreateTenant(context.Background(), core.Tenant{TenantID: id, Status: core.TenantActive}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestStore_PeerRegistry(t *testing.T) {
	s := openFedStore(t)
	ctx := context.Background()
	p := core.Peer{StackID: "stk_b", FederationURL: "http://b", PublicKey: "ed25519:x", TrustedTenants: []string{"tnt_a"}}
	created, err := s.PutPeer(ctx, p)
	if err != nil || !created {
		t.Fatalf("first put: %v %v", created, err)
	}
	first, _ := s.GetPeer(ctx, "stk_b")
	p.Region = "eu"
	if created, err := s.PutPeer(ctx, p); err != nil || created {
		t.Fatalf("replace: %v %v", created, err)
	}
	got, err := s.GetPeer(ctx, "stk_b")
	if err != nil || got.Region != "eu" || !got.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.PutPeer(ctx, core.Peer{}); !core.IsCode(err, core.CodeInvalidRequest) {
		t.Fatalf("empty stack_id: %v", err)
	}
	s.PutPeer(ctx, core.Peer{StackID: "stk_a"})
	list, _ := s.ListPeers(ctx)
	if len(list) != 2 || list[0].StackID != "stk_a" {
		t.Fatalf("list: %+v", list)
	}
	if _, err := s.DeletePeer(ctx, "stk_b"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{func() error { _, err := s.DeletePeer(ctx, "stk_b"); return err }(),
		func() error { _, err := s.GetPeer(ctx, "stk_b"); return err }()} {
		if !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	}
}

func TestStore_ForwardIndex_FirstWriterWinsAndTenantScoped(t *testing.T) {
	s := openFedStore(t)
	ctx := context.Background()
	if _, found, err := s.GetForward(ctx, "tnt_a", "idem/1"); found || err != nil {
		t.Fatalf("empty index: %v %v", found, err)
	}
	rec := core.ForwardRecord{TenantID: "tnt_a", IdempotencyKey: "idem/1", RemoteStackID: "stk_b", RemoteRunID: "run_1", Status: "queued"}
	audit := core.AuditRecord{TenantID: "tnt_a", Action: "federation.forward", ObjectID: "run_1", Outcome: "success"}
	// Concurrent writers of one key: one record, the same answer for all.
	var wg sync.WaitGroup
	got := make([]core.ForwardRecord, 8)
	for i := range got {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := rec
			r.RemoteRunID = core.NewID(core.PrefixRun)
			if i == 0 {
				r.RemoteRunID = "run_1"
			}
			got[i], _ = s.PutForward(ctx, r, &audit)
		}(i)
	}
	wg.Wait()
	for _, g := range got[1:] {
		if g.RemoteRunID != got[0].RemoteRunID {
			t.Fatalf("writers disagree: %s vs %s", g.RemoteRunID, got[0].RemoteRunID)
		}
	}
	stored, found, err := s.GetForward(ctx, "tnt_a", "idem/1")
	if err != nil || !found || stored.RemoteRunID != got[0].RemoteRunID {
		t.Fatalf("get: %+v %v %v", stored, found, err)
	}
	if _, found, _ := s.GetForward(ctx, "tnt_b", "idem/1"); found {
		t.Fatal("another tenant sees the key")
	}
	if r, err := s.ForwardByRemoteRun(ctx, "tnt_a", stored.RemoteRunID); err != nil || r.IdempotencyKey != "idem/1" {
		t.Fatalf("by remote run: %+v %v", r, err)
	}
	if _, err := s.ForwardByRemoteRun(ctx, "tnt_b", stored.RemoteRunID); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("another tenant finds the run: %v", err)
	}
	if recs, _ := s.ListAudit(ctx, "tnt_a", core.AuditFilter{Action: "federation.forward"}); len(recs) != 1 {
		t.Fatalf("audit records %d, want 1 (only the winning write)", len(recs))
	}
}

func TestStore_MarkJTI(t *testing.T) {
	s := openFedStore(t)
	ctx := context.Background()
	exp := time.Now().Add(time.Minute)
	tests := []struct {
		iss, jti  string
		exp       time.Time
		wantFresh bool
	}{
		{"stk_a", "j1", exp, true},
		{"stk_a", "j1", exp, false},                          // replay
		{"stk_c", "j1", exp, true},                           // other issuer
		{"stk_a", "old", time.Now().Add(-time.Hour), true},   // recorded, already expired
		{"stk_a", "old", time.Now().Add(time.Minute), true},  // expired entry no longer blocks
		{"stk_a", "old", time.Now().Add(time.Minute), false}, // but the new one does
	}
	for i, tc := range tests {
		fresh, err := s.MarkJTI(ctx, tc.iss, tc.jti, tc.exp)
		if err != nil || fresh != tc.wantFresh {
			t.Fatalf("step %d (%s/%s): fresh %v err %v, want %v", i, tc.iss, tc.jti, fresh, err, tc.wantFresh)
		}
	}
}

func TestStore_IngestedEvents_DedupeConflictAndOrder(t *testing.T) {
	s := openFedStore(t)
	ctx := context.Background()
	ev := func(tenant, run, id string, seq int64) core.Event {
		return core.Event{EventID: id, Sequence: seq, Type: core.EventStepStarted, TenantID: tenant, RunID: run, Time: core.Now()}
	}
	batch := []core.Event{ev("tnt_a", "run_1", "evt_2", 2), ev("tnt_a", "run_1", "evt_1", 1), ev("tnt_a", "run_1", "evt_1", 1),
		ev("tnt_a", "run_1", "evt_other", 2), ev("tnt_b", "run_1", "evt_1", 1)}
	out, err := s.PutEvents(ctx, "stk_b", batch)
	if err != nil {
		t.Fatal(err)
	}
	want := []core.IngestOutcome{core.IngestStored, core.IngestStored, core.IngestDuplicate, core.IngestConflict, core.IngestStored}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("outcome %d = %v, want %v", i, out[i], want[i])
		}
	}
	got, _ := s.ListIngestedEvents(ctx, "tnt_a", "run_1", 0)
	if len(got) != 2 || got[0].EventID != "evt_1" || got[1].EventID != "evt_2" {
		t.Fatalf("list: %+v", got)
	}
	if got, _ := s.ListIngestedEvents(ctx, "tnt_a", "run_1", 1); len(got) != 1 || got[0].Sequence != 2 {
		t.Fatalf("after 1: %+v", got)
	}
	if got, _ := s.ListIngestedEvents(ctx, "tnt_b", "run_1", 0); len(got) != 1 {
		t.Fatalf("tnt_b: %+v", got)
	}
	// A run id that is a prefix of another does not leak into it.
	s.PutEvents(ctx, "stk_b", []core.Event{ev("tnt_a", "run_10", "evt_10", 1)})
	if got, _ := s.ListIngestedEvents(ctx, "tnt_a", "run_1", 0); len(got) != 2 {
		t.Fatalf("prefix leak: %+v", got)
	}
}
