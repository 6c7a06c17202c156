package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/conformance"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/store/postgres"
	"github.com/agentos/agentos/store/postgres/pgtest"
)

// openTwo opens two stores (two nodes) on one fresh schema.
func openTwo(t *testing.T) (*postgres.Store, *postgres.Store) {
	t.Helper()
	url := pgtest.URL(t)
	var out [2]*postgres.Store
	for i := range out {
		s, err := postgres.Open(context.Background(), url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out[0], out[1]
}

func createRun(t *testing.T, s *postgres.Store, key string) core.RunRecord {
	t.Helper()
	rec, _, _, err := s.CreateRun(context.Background(), conformance.NewRunRecord("tnt_a", key),
		[]core.EventDraft{{Type: core.EventRunCreated, Payload: core.RunStatusPayload{Status: core.RunQueued}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestPostgres_LeaseClaimRenewTakeover(t *testing.T) {
	a, b := openTwo(t)
	ctx := context.Background()
	lease := 300 * time.Millisecond
	rec := createRun(t, a, "k1")
	if ok, err := a.ClaimRun(ctx, "n1", "tnt_a", rec.RunID, lease, 0); err != nil || !ok {
		t.Fatalf("n1 claim: %v %v", ok, err)
	}
	if ok, err := b.ClaimRun(ctx, "n2", "tnt_a", rec.RunID, lease, 0); err != nil || ok {
		t.Fatalf("n2 claimed a run n1 holds: %v %v", ok, err)
	}
	if ok, _ := b.ClaimRun(ctx, "n2", "tnt_b", rec.RunID, lease, 0); ok {
		t.Fatal("a claim with the wrong tenant succeeded")
	}
	if refs, err := b.ClaimRuns(ctx, "n2", lease, 10, false, nil); err != nil || len(refs) != 0 {
		t.Fatalf("n2 claimed %v (%v) while n1's lease is live", refs, err)
	}
	if lost, err := a.RenewLeases(ctx, "n1", []string{rec.RunID}, lease); err != nil || len(lost) != 0 {
		t.Fatalf("renew: lost %v (%v)", lost, err)
	}
	// n1 stops renewing (it died): after the lease n2 takes the run over.
	deadline := time.Now().Add(5 * time.Second)
	var refs []core.RunRef
	for len(refs) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("n2 never took the run over")
		}
		var err error
		if refs, err = b.ClaimRuns(ctx, "n2", lease, 10, false, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(refs) != 1 || refs[0].RunID != rec.RunID || refs[0].TenantID != "tnt_a" {
		t.Fatalf("took over %+v", refs)
	}
	if lost, err := a.RenewLeases(ctx, "n1", []string{rec.RunID}, lease); err != nil || len(lost) != 1 {
		t.Fatalf("n1's renewal after the takeover: lost %v (%v), want the run", lost, err)
	}
	nodes := []core.NodeInfo{{NodeID: "n1"}, {NodeID: "n2"}}
	for _, n := range nodes {
		if err := a.BeatNode(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	live, err := b.LiveNodes(ctx, time.Minute)
	if err != nil || len(live) != 2 || live[1].NodeID != "n2" || live[1].RunsInFlight != 1 || live[0].RunsInFlight != 0 {
		t.Fatalf("live nodes %+v (%v)", live, err)
	}
	// A released run is claimable at once; a restarted node reclaims its own.
	if err := b.ReleaseRuns(ctx, "n2", []string{rec.RunID}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := a.ClaimRun(ctx, "n1", "tnt_a", rec.RunID, time.Minute, 0); !ok {
		t.Fatal("a released run could not be claimed")
	}
	if refs, _ := b.ClaimRuns(ctx, "n2", lease, 10, true, nil); len(refs) != 0 {
		t.Fatalf("n2 (own=true) took n1's live run: %+v", refs)
	}
	if refs, _ := a.ClaimRuns(ctx, "n1", lease, 10, true, nil); len(refs) != 1 {
		t.Fatalf("n1 restarting did not reclaim its own run: %+v", refs)
	}
	// A terminal run leaves the queue: nobody can claim it, renewals lose it.
	if _, _, err := a.CancelRun(ctx, "tnt_a", rec.RunID, nil); err != nil {
		t.Fatal(err)
	}
	if lost, _ := a.RenewLeases(ctx, "n1", []string{rec.RunID}, lease); len(lost) != 1 {
		t.Fatalf("renewal of a canceled run: lost %v", lost)
	}
}

// Nodes claiming at the same time never get the same run, and together
// get every run.
func TestPostgres_ConcurrentClaimsAreDisjoint(t *testing.T) {
	a, b := openTwo(t)
	ctx := context.Background()
	const n = 60
	for i := 0; i < n; i++ {
		createRun(t, a, fmt.Sprintf("k%d", i))
	}
	var mu sync.Mutex
	got := map[string]string{}
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		s, node := a, fmt.Sprintf("n%d", w)
		if w%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				refs, err := s.ClaimRuns(ctx, node, time.Minute, 3, false, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if len(refs) == 0 {
					return
				}
				mu.Lock()
				for _, r := range refs {
					if prev, dup := got[r.RunID]; dup {
						t.Errorf("run %s claimed by %s and %s", r.RunID, prev, node)
					}
					got[r.RunID] = node
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("%d runs claimed, want %d", len(got), n)
	}
}

// Commits and cancels on one node are announced to the others after the
// data is committed.
func TestPostgres_RunNotices(t *testing.T) {
	a, b := openTwo(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notes := make(chan core.RunNotice, 16)
	ready := make(chan struct{}, 4)
	go b.ListenRuns(ctx, func(n core.RunNotice) { notes <- n }, func() { ready <- struct{}{} })
	<-ready
	rec := createRun(t, a, "k1")
	want := func(kind string, seq int64) {
		t.Helper()
		for {
			select {
			case n := <-notes:
				if n.RunID != rec.RunID || n.TenantID != "tnt_a" {
					t.Fatalf("notice for another run: %+v", n)
				}
				if n.Kind != kind {
					continue
				}
				if n.Sequence != seq {
					t.Fatalf("%s notice at %d, want %d", kind, n.Sequence, seq)
				}
				// The data is there when the notice arrives.
				evs, err := b.ListEvents(context.Background(), "tnt_a", rec.RunID, 0, 0)
				if err != nil || int64(len(evs)) < seq {
					t.Fatalf("notice %d before its events (%d, %v)", seq, len(evs), err)
				}
				return
			case <-time.After(5 * time.Second):
				t.Fatalf("no %s notice", kind)
			}
		}
	}
	want(core.NoticeEvents, 1)
	if _, _, err := a.CancelRun(context.Background(), "tnt_a", rec.RunID, nil); err != nil {
		t.Fatal(err)
	}
	want(core.NoticeCancel, 2)
}

// A tenant's claimed runs never pass its cap, however many nodes claim at
// once and by whichever call; other tenants are not held back by it, and a
// slot given back is claimable again.
func TestPostgres_ClaimCapHoldsAcrossNodes(t *testing.T) {
	a, b := openTwo(t)
	ctx := context.Background()
	const capA = 4
	var runs []core.RunRecord
	for i := 0; i < 24; i++ {
		rec, _, _, err := a.CreateRun(ctx, conformance.NewRunRecord("tnt_a", fmt.Sprintf("k%d", i)),
			[]core.EventDraft{{Type: core.EventRunCreated, Payload: core.RunStatusPayload{Status: core.RunQueued}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, rec)
	}
	for i := 0; i < 3; i++ {
		if _, _, _, err := b.CreateRun(ctx, conformance.NewRunRecord("tnt_b", fmt.Sprintf("k%d", i)),
			[]core.EventDraft{{Type: core.EventRunCreated, Payload: core.RunStatusPayload{Status: core.RunQueued}}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	capOf := func(tenant string) int {
		if tenant == "tnt_a" {
			return capA
		}
		return 100
	}
	var mu sync.Mutex
	held := map[string]string{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < 8; w++ {
		s, node := a, fmt.Sprintf("n%d", w)
		if w%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < 6; i++ {
				var refs []core.RunRef
				if (w+i)%2 == 0 {
					r, err := s.ClaimRuns(ctx, node, time.Minute, 5, false, capOf)
					if err != nil {
						t.Error(err)
						return
					}
					refs = r
				} else {
					run := runs[(w*7+i*5)%len(runs)]
					ok, err := s.ClaimRun(ctx, node, "tnt_a", run.RunID, time.Minute, capA)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						refs = []core.RunRef{{TenantID: "tnt_a", RunID: run.RunID}}
					}
				}
				mu.Lock()
				for _, r := range refs {
					if prev, dup := held[r.RunID]; dup && prev != node {
						t.Errorf("run %s claimed by %s and %s", r.RunID, prev, node)
					}
					held[r.RunID] = node
				}
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	perTenant := map[string]int{}
	var one string
	for id := range held {
		tenant := "tnt_b"
		for _, r := range runs {
			if r.RunID == id {
				tenant, one = "tnt_a", id
			}
		}
		perTenant[tenant]++
	}
	if perTenant["tnt_a"] != capA || perTenant["tnt_b"] != 3 {
		t.Fatalf("claimed per tenant %v, want tnt_a exactly %d (its cap) and all 3 of tnt_b", perTenant, capA)
	}
	// One of tnt_a's runs is given back: exactly one more may be claimed.
	if err := a.ReleaseRuns(ctx, held[one], []string{one}); err != nil {
		t.Fatal(err)
	}
	refs, err := b.ClaimRuns(ctx, "n-late", time.Minute, 10, false, capOf)
	if err != nil || len(refs) != 1 {
		t.Fatalf("after one slot was given back: claimed %v (%v), want exactly 1", refs, err)
	}
	held[refs[0].RunID] = "n-late"
	for _, r := range runs {
		if _, taken := held[r.RunID]; taken {
			continue
		}
		if ok, err := a.ClaimRun(ctx, "n-late", "tnt_a", r.RunID, time.Minute, capA); err != nil || ok {
			t.Fatalf("a claim of an unheld run past the cap: ok=%v err=%v", ok, err)
		}
		break
	}
}
