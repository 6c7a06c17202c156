package conformance

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentos/agentos/core"
)

// limitsSuite: budget reservations start from the ledger, refuse what
// would pass a limit, end by settle or release, and hold under concurrent
// callers; windowed counters stop at their limit. Per tenant throughout.
func limitsSuite(t *testing.T, s core.Storage) {
	ctx := context.Background()
	hold := func(tenant, period string, tokens int64, cost float64) core.BudgetHold {
		return core.BudgetHold{HoldID: core.NewID("hold"), TenantID: tenant, Window: core.WindowDay, Period: period, Tokens: tokens, CostUSD: cost}
	}
	t.Run("BudgetStartsFromTheLedger", func(t *testing.T) {
		if err := s.RecordUsage(ctx, []core.UsageDelta{{TenantID: "tnt_lim_a", Window: core.WindowDay, Period: "2026-01-01",
			Requests: 1, InputTokens: 30, OutputTokens: 10, CostUSD: 0.5}}, nil); err != nil {
			t.Fatal(err)
		}
		h := hold("tnt_lim_a", "2026-01-01", 61, 0.1)
		use, ok, err := s.ReserveBudget(ctx, h, 100, 0)
		if err != nil || ok || use.UsedTokens != 40 || use.UsedCostUSD != 0.5 {
			t.Fatalf("40 used + 61 against 100: ok=%v use=%+v err=%v (want refused, used 40 from the ledger)", ok, use, err)
		}
		if use, ok, err = s.ReserveBudget(ctx, hold("tnt_lim_a", "2026-01-01", 60, 0.1), 100, 0); err != nil || !ok || use.ReservedTokens != 0 {
			t.Fatalf("40 used + 60 against 100: ok=%v use=%+v err=%v", ok, use, err)
		}
	})
	t.Run("ReserveSettleRelease", func(t *testing.T) {
		p := "2026-01-02"
		h1 := hold("tnt_lim_b", p, 60, 0)
		if _, ok, err := s.ReserveBudget(ctx, h1, 100, 0); err != nil || !ok {
			t.Fatalf("first reservation: %v %v", ok, err)
		}
		use, ok, err := s.ReserveBudget(ctx, hold("tnt_lim_b", p, 50, 0), 100, 0)
		if err != nil || ok || use.ReservedTokens != 60 {
			t.Fatalf("60 reserved + 50 against 100: ok=%v use=%+v err=%v (want refused naming 60 reserved)", ok, use, err)
		}
		// Another tenant's budget is its own.
		if _, ok, err := s.ReserveBudget(ctx, hold("tnt_lim_c", p, 90, 0), 100, 0); err != nil || !ok {
			t.Fatalf("another tenant: %v %v", ok, err)
		}
		if err := s.ReleaseBudget(ctx, h1); err != nil {
			t.Fatal(err)
		}
		h2 := hold("tnt_lim_b", p, 50, 0)
		if _, ok, err := s.ReserveBudget(ctx, h2, 100, 0); err != nil || !ok {
			t.Fatalf("after the release: %v %v", ok, err)
		}
		if err := s.SettleBudget(ctx, h2, 30, 0.25); err != nil {
			t.Fatal(err)
		}
		use, ok, err = s.ReserveBudget(ctx, hold("tnt_lim_b", p, 71, 0), 100, 0)
		if err != nil || ok || use.UsedTokens != 30 || use.ReservedTokens != 0 || use.UsedCostUSD != 0.25 {
			t.Fatalf("30 settled + 71 against 100: ok=%v use=%+v err=%v", ok, use, err)
		}
		if _, ok, err := s.ReserveBudget(ctx, hold("tnt_lim_b", p, 70, 0), 100, 0); err != nil || !ok {
			t.Fatalf("30 settled + 70 against 100: %v %v", ok, err)
		}
		// A cost limit refuses on its own.
		if use, ok, err := s.ReserveBudget(ctx, hold("tnt_lim_b", p, 0, 0.8), 0, 1.0); err != nil || ok || use.UsedCostUSD != 0.25 {
			t.Fatalf("0.25 USD settled + 0.8 against 1.0: ok=%v use=%+v err=%v", ok, use, err)
		}
	})
	t.Run("ConcurrentReservationsNeverOvershoot", func(t *testing.T) {
		var wg sync.WaitGroup
		var granted atomic.Int64
		start := make(chan struct{})
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, ok, err := s.ReserveBudget(ctx, hold("tnt_lim_d", "2026-01-03", 10, 0), 100, 0); err != nil {
					t.Error(err)
				} else if ok {
					granted.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if granted.Load() != 10 {
			t.Fatalf("32 concurrent reservations of 10 against 100: %d granted, want exactly 10", granted.Load())
		}
	})
	t.Run("WindowCounters", func(t *testing.T) {
		for i := 1; i <= 3; i++ {
			if n, ok, err := s.CountInWindow(ctx, "tnt_lim_e", "tool_calls", "2026-01-01T10:00", 3); err != nil || !ok || n != i {
				t.Fatalf("count %d of 3: n=%d ok=%v err=%v", i, n, ok, err)
			}
		}
		if _, ok, err := s.CountInWindow(ctx, "tnt_lim_e", "tool_calls", "2026-01-01T10:00", 3); err != nil || ok {
			t.Fatalf("fourth of 3: ok=%v err=%v, want refused", ok, err)
		}
		if _, ok, _ := s.CountInWindow(ctx, "tnt_lim_f", "tool_calls", "2026-01-01T10:00", 3); !ok {
			t.Fatal("another tenant's window is its own")
		}
		if n, ok, _ := s.CountInWindow(ctx, "tnt_lim_e", "tool_calls", "2026-01-01T10:01", 3); !ok || n != 1 {
			t.Fatalf("next window starts at 1: n=%d ok=%v", n, ok)
		}
		var wg sync.WaitGroup
		var counted atomic.Int64
		start := make(chan struct{})
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, ok, err := s.CountInWindow(ctx, "tnt_lim_g", "tool_calls", "2026-01-01T10:00", 7); err != nil {
					t.Error(err)
				} else if ok {
					counted.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if counted.Load() != 7 {
			t.Fatalf("20 concurrent counts against 7: %d counted", counted.Load())
		}
	})
}
