package core

import (
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
