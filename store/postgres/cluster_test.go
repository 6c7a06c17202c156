package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/conformance"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
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
	// Leases that must hold while the test looks are long, so a loaded
	// machine cannot expire them between two statements; only the lease
	// n1 dies with is short.
	lease, short := time.Minute, 300*time.Millisecond
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
	if lost, err := a.RenewLeases(ctx, "n1", []string{rec.RunID}, short); err != nil || len(lost) != 0 {
		t.Fatalf("renew: lost %v (%v)", lost, err)
	}
	// n1 stops renewing (it died): after its short lease n2 takes the run
	// over (with a long lease of its own).
	var refs []core.RunRef
	testkit.WaitFor(t, "n2 to take the run over", 5*time.Second, func() bool {
		var err error
		if refs, err = b.ClaimRuns(ctx, "n2", lease, 10, false, nil); err != nil {
			t.Fatal(err)
		}
		return len(refs) > 0
	})
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
	got := &claims{held: map[string]string{}}
	asNodes(6, a, b, func(_ int, s *postgres.Store, node string) {
		for {
			refs, err := s.ClaimRuns(ctx, node, time.Minute, 3, false, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if len(refs) == 0 {
				return
			}
			got.add(t, node, refs)
		}
	})
	if len(got.held) != n {
		t.Fatalf("%d runs claimed, want %d", len(got.held), n)
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
	claimed := &claims{held: map[string]string{}, again: true}
	asNodes(8, a, b, func(w int, s *postgres.Store, node string) {
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
			claimed.add(t, node, refs)
		}
	})
	perTenant := map[string]int{}
	var one string
	held := claimed.held
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

// asNodes runs work concurrently as nodes n0…n(count-1), the even ones on
// store a and the odd ones on b, all let go at once, and waits for them.
func asNodes(count int, a, b *postgres.Store, work func(w int, s *postgres.Store, node string)) {
	testkit.AtOnce(count, func(w int) {
		s := a
		if w%2 == 1 {
			s = b
		}
		work(w, s, fmt.Sprintf("n%d", w))
	})
}

// claims records which node holds each claimed run and reports a run
// claimed by two nodes (or twice at all, unless again allows a node to
// claim a run it holds once more).
type claims struct {
	mu    sync.Mutex
	held  map[string]string
	again bool
}

func (c *claims) add(t *testing.T, node string, refs []core.RunRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range refs {
		if prev, dup := c.held[r.RunID]; dup && (prev != node || !c.again) {
			t.Errorf("run %s claimed by %s and %s", r.RunID, prev, node)
		}
		c.held[r.RunID] = node
	}
}

// A run created claimed is held by its creator exactly as ClaimRun would
// hold it: other nodes cannot claim it while the lease lives, it is taken
// over once the lease expires, a replay of the create claims nothing, and
// creates claimed at once on two nodes (with ClaimRun racing them) never
// hold more of the tenant's runs than the cap.
func TestPostgres_CreateRunClaimed(t *testing.T) {
	a, b := openTwo(t)
	ctx := context.Background()
	created := []core.EventDraft{{Type: core.EventRunCreated, Payload: core.RunStatusPayload{Status: core.RunQueued}}}
	lease := 300 * time.Millisecond
	rec, evs, replayed, claimed, err := a.CreateRunClaimed(ctx, conformance.NewRunRecord("tnt_a", "c1"), created, nil, "n1", lease, 0)
	if err != nil || replayed || !claimed || len(evs) != 1 {
		t.Fatalf("create claimed: claimed %v replayed %v, %d events, %v", claimed, replayed, len(evs), err)
	}
	if ok, err := b.ClaimRun(ctx, "n2", "tnt_a", rec.RunID, lease, 0); err != nil || ok {
		t.Fatalf("n2 claimed a run created claimed by n1: %v %v", ok, err)
	}
	if refs, err := b.ClaimRuns(ctx, "n2", lease, 10, false, nil); err != nil || len(refs) != 0 {
		t.Fatalf("n2 claimed %v (%v) while n1's lease is live", refs, err)
	}
	if lost, err := a.RenewLeases(ctx, "n1", []string{rec.RunID}, lease); err != nil || len(lost) != 0 {
		t.Fatalf("n1 renew of its created claim: lost %v (%v)", lost, err)
	}
	// A replay returns the stored run and claims nothing.
	again, _, replayed, claimed, err := b.CreateRunClaimed(ctx, conformance.NewRunRecord("tnt_a", "c1"), created, nil, "n2", lease, 0)
	if err != nil || !replayed || claimed || again.RunID != rec.RunID {
		t.Fatalf("replay: %s replayed %v claimed %v, %v", again.RunID, replayed, claimed, err)
	}
	// Once the lease expires, another node takes the run over.
	testkit.WaitFor(t, "the created claim to expire into a takeover", 5*time.Second, func() bool {
		ok, err := b.ClaimRun(ctx, "n2", "tnt_a", rec.RunID, time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	})

	// The tenant cap, across concurrent claimed creates and claims.
	const capA = 3
	var (
		mu   sync.Mutex
		held = map[string]string{}
	)
	unclaimed := createRun(t, a, "free-1") // queued without a claim, for ClaimRun to race for
	testkit.AtOnce(6, func(w int) {
		s, node := a, fmt.Sprintf("w%d", w)
		if w%2 == 1 {
			s = b
		}
		for i := 0; i < 4; i++ {
			r, _, _, ok, err := s.CreateRunClaimed(ctx, conformance.NewRunRecord("tnt_cap", fmt.Sprintf("%s-%d", node, i)), created, nil, node, time.Minute, capA)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			if ok {
				held[r.RunID] = node
			}
			mu.Unlock()
		}
		if ok, err := s.ClaimRun(ctx, node, "tnt_a", unclaimed.RunID, time.Minute, 0); err != nil {
			t.Error(err)
		} else if ok {
			mu.Lock()
			if prev, dup := held[unclaimed.RunID]; dup && prev != node {
				t.Errorf("run claimed by %s and %s", prev, node)
			}
			held[unclaimed.RunID] = node
			mu.Unlock()
		}
	})
	n := 0
	for id := range held {
		if id != unclaimed.RunID {
			n++
		}
	}
	if n != capA {
		t.Fatalf("claimed creates of a tenant with cap %d: %d held", capA, n)
	}
	// The 21 created over the cap are queued unclaimed: the claim loops
	// find them once a slot frees (here: no cap).
	refs, err := a.ClaimRuns(ctx, "late", time.Minute, 100, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	over := 0
	for _, r := range refs {
		if r.TenantID == "tnt_cap" {
			if _, dup := held[r.RunID]; dup {
				t.Fatalf("run %s claimed at create was claimed again", r.RunID)
			}
			over++
		}
	}
	if over != 6*4-capA {
		t.Fatalf("%d of the runs created over the cap were claimable, want %d", over, 6*4-capA)
	}
}
