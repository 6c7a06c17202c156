package testkit

import (
	"io"
	"net/http"
	"net/http/httptest"
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
