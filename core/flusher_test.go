package core_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// The flusher flushes on its clock, flushes once more on Stop and has
// returned from that flush when Stop returns; a second Stop is a no-op.
func TestFlusher_FlushesOnTheClockAndOnStop(t *testing.T) {
	ticks := make(chan struct{}, 1)
	var calls atomic.Int64
	f := core.StartFlusher(time.Millisecond, func() {
		calls.Add(1)
		select {
		case ticks <- struct{}{}:
		default:
		}
	})
	for range 2 {
		select {
		case <-ticks:
		case <-time.After(10 * time.Second):
			t.Fatal("no flush on the clock")
		}
	}
	f.Stop()
	after := calls.Load()
	if after < 3 {
		t.Fatalf("%d flushes, want two on the clock and one on Stop", after)
	}
	f.Stop() // the goroutine has ended: a second Stop neither flushes nor blocks
	if n := calls.Load(); n != after {
		t.Fatalf("flushes after Stop: %d, then %d", after, n)
	}
}

// Stop's last flush sees everything queued before Stop.
func TestFlusher_StopFlushesWhatWasQueued(t *testing.T) {
	var queued, stored atomic.Int64
	f := core.StartFlusher(time.Hour, func() { stored.Store(queued.Load()) })
	queued.Store(42)
	f.Stop()
	if stored.Load() != 42 {
		t.Fatalf("stored %d after Stop, want 42", stored.Load())
	}
}
