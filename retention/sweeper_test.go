package retention_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentos/agentos/conformance"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/retention"
	"github.com/agentos/agentos/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// sharedStore is a store several nodes share: the sweep lock is held by
// another node while held is true.
type sharedStore struct {
	*store.Store
	held     bool
	released int
}

func (s *sharedStore) TrySweepLock(ctx context.Context) (func(), bool, error) {
	if s.held {
		return nil, false, nil
	}
	return func() { s.released++ }, true, nil
}

// On a shared store only the node holding the sweep lock sweeps: the
// others skip the pass (counted), remove nothing, and the holder gives
// the lock back when its pass ends.
func TestSweeper_SkipsWhileAnotherNodeSweeps(t *testing.T) {
	bs, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	ctx := context.Background()
	if err := bs.CreateTenant(ctx, core.Tenant{TenantID: "tnt_a", Name: "a", Status: core.TenantActive, PlanTier: "free",
		Quotas: core.Quotas{Retention: &core.RetentionQuotas{RunsDays: core.Ptr(3)}}}, nil); err != nil {
		t.Fatal(err)
	}
	old := conformance.OldRun(t, bs, "tnt_a", "k", time.Now().Add(-5*24*time.Hour), core.RunCompleted)
	st := &sharedStore{Store: bs, held: true}
	reg := prometheus.NewRegistry()
	sw, err := retention.New(retention.Config{Defaults: core.DefaultRetention}, st, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := sw.Sweep(ctx)
	if err != nil || !rep.Skipped || rep.Removed.Total() != 0 {
		t.Fatalf("pass while another node holds the lock: %+v %v", rep, err)
	}
	if _, err := bs.GetRun(ctx, "tnt_a", old.RunID); err != nil {
		t.Fatalf("a skipped pass removed a run: %v", err)
	}
	st.held = false
	rep, err = sw.Sweep(ctx)
	if err != nil || rep.Skipped || rep.Removed.Runs != 1 || st.released != 1 {
		t.Fatalf("pass with the lock: %+v %v (released %d)", rep, err, st.released)
	}
	m := testkit.Gather(t, reg)
	if ok, skipped := m.Sum("agentos_retention_sweeps_total", `outcome="ok"`), m.Sum("agentos_retention_sweeps_total", `outcome="skipped"`); ok != 1 || skipped != 1 {
		t.Fatalf("sweeps: ok %v, skipped %v; want 1 and 1", ok, skipped)
	}
}

// Start sweeps after FirstDelay and Stop ends the loop.
func TestSweeper_StartSweepsThenStops(t *testing.T) {
	bs, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	ctx := context.Background()
	if err := bs.CreateTenant(ctx, core.Tenant{TenantID: "tnt_a", Name: "a", Status: core.TenantActive, PlanTier: "free"}, nil); err != nil {
		t.Fatal(err)
	}
	old := conformance.OldRun(t, bs, "tnt_a", "k", time.Now().Add(-40*24*time.Hour), core.RunCompleted)
	reg := prometheus.NewRegistry()
	sw, err := retention.New(retention.Config{Defaults: core.DefaultRetention, Interval: time.Hour, FirstDelay: time.Millisecond}, bs, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	sw.Start()
	testkit.WaitFor(t, "the started sweeper to sweep", 10*time.Second, func() bool {
		_, err := bs.GetRun(ctx, "tnt_a", old.RunID)
		return core.IsCode(err, core.CodeNotFound)
	})
	sw.Stop()
	if n := testkit.Gather(t, reg).Sum("agentos_retention_removed_total", `kind="runs"`); n != 1 {
		t.Fatalf("runs removed metric: %v", n)
	}
}
