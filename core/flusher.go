package core

import (
	"context"
	"sync"
	"time"
)

// Flusher runs flush every interval on a goroutine of its own: the clock
// of a write-behind buffer, which queues on the request path (usage,
// audit records, log lines) and stores off it. Stop runs flush one last
// time and returns once it has, so nothing queued before Stop is lost; a
// second Stop does nothing.
type Flusher struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// StartFlusher starts calling flush every interval (which must be
// positive).
func StartFlusher(interval time.Duration, flush func()) *Flusher {
	f := &Flusher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				flush()
			case <-f.stop:
				flush()
				return
			}
		}
	}()
	return f
}

// Stop flushes a last time and stops the clock.
func (f *Flusher) Stop() {
	f.once.Do(func() {
		close(f.stop)
		<-f.done
	})
}

// Every calls fn after first (zero or less: after interval), then again
// interval after each call returns, until ctx ends or fn returns false:
// the loop of a node's periodic work (a sweep, an evaluation, a keep-alive
// ping). It returns when it stops; interval must be positive.
func Every(ctx context.Context, first, interval time.Duration, fn func(ctx context.Context) bool) {
	t := time.NewTimer(PositiveOr(first, interval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !fn(ctx) {
			return
		}
		t.Reset(interval)
	}
}
