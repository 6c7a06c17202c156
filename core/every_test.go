package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// Every waits first (or interval when first is not set) before the first
// call and interval after each call returns, and stops when fn says so.
func TestEvery_WaitsThenRepeatsUntilFnStops(t *testing.T) {
	for _, c := range []struct {
		name            string
		first, interval time.Duration
		wantFirst       time.Duration
	}{
		{"first set", 5 * time.Millisecond, 20 * time.Millisecond, 5 * time.Millisecond},
		{"first unset", 0, 15 * time.Millisecond, 15 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			var at []time.Duration
			core.Every(context.Background(), c.first, c.interval, func(context.Context) bool {
				at = append(at, time.Since(start))
				return len(at) < 3
			})
			if len(at) != 3 {
				t.Fatalf("fn called %d times, want 3 (it returned false on the third)", len(at))
			}
			if at[0] < c.wantFirst {
				t.Fatalf("first call after %v, want at least %v", at[0], c.wantFirst)
			}
			for i := 1; i < len(at); i++ {
				if gap := at[i] - at[i-1]; gap < c.interval {
					t.Fatalf("call %d came %v after the one before, want at least %v", i, gap, c.interval)
				}
			}
		})
	}
}

// Every returns once ctx ends, without calling fn again.
func TestEvery_ReturnsWhenCtxEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	core.Every(ctx, time.Millisecond, time.Hour, func(context.Context) bool {
		calls++
		cancel()
		return true
	})
	if calls != 1 {
		t.Fatalf("fn called %d times, want 1: Every must stop when ctx ends", calls)
	}
	done := make(chan struct{})
	go func() {
		core.Every(ctx, time.Hour, time.Hour, func(context.Context) bool { t.Error("called after ctx ended"); return true })
		close(done)
	}()
	<-done
}
