package testkit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// SlowWebhook is an http tool endpoint (127.0.0.1:0) that takes its time:
// each call reads its body, is counted in Calls, and is answered
// {"output":{"slow":true}} after Delay, or dropped when the caller leaves
// first. It is closed when the test ends.
type SlowWebhook struct {
	*httptest.Server
	Delay time.Duration
	Calls atomic.Int64
}

// StartSlowWebhook starts a SlowWebhook answering after delay.
func StartSlowWebhook(t testing.TB, delay time.Duration) *SlowWebhook {
	t.Helper()
	h := &SlowWebhook{Delay: delay}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server notices a gone caller only once the body is read
		h.Calls.Add(1)
		select {
		case <-time.After(h.Delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"output":{"slow":true}}`)
	}))
	t.Cleanup(h.Close)
	return h
}

// HeldWebhook is an http tool endpoint (127.0.0.1:0) that holds every call
// until Release: each call reads its body, is signalled on Hit, and is
// answered {"output":{"held":true}} once released, or dropped when its
// caller leaves first, which is signalled on Gone with the time. Hit and
// Gone hold 64 signals each; calls past that are not signalled. It is
// released and closed when the test ends.
type HeldWebhook struct {
	*httptest.Server
	Hit     chan struct{}
	Gone    chan time.Time
	release chan struct{}
	once    sync.Once
}

// StartHeldWebhook starts a HeldWebhook.
func StartHeldWebhook(t testing.TB) *HeldWebhook {
	t.Helper()
	h := &HeldWebhook{Hit: make(chan struct{}, 64), Gone: make(chan time.Time, 64), release: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server notices a gone caller only once the body is read
		signal(h.Hit, struct{}{})
		select {
		case <-h.release:
		case <-r.Context().Done():
			signal(h.Gone, time.Now())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"output":{"held":true}}`)
	}))
	t.Cleanup(func() {
		h.Release()
		h.Close()
	})
	return h
}

// Release answers the held calls and every later one at once. It may be
// called more than once.
func (h *HeldWebhook) Release() { h.once.Do(func() { close(h.release) }) }

func signal[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}
