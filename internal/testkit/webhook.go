package testkit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
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

// WebhookCall is one call an http tool endpoint received.
type WebhookCall struct {
	Header http.Header
	Body   []byte
}

// readCall reads r's body (the server notices a gone caller only once
// the body is read) into a WebhookCall.
func readCall(r *http.Request) WebhookCall {
	raw, _ := io.ReadAll(r.Body)
	return WebhookCall{Header: r.Header.Clone(), Body: raw}
}

// JSON is the call's body as a JSON object (nil when it is not one).
func (c WebhookCall) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(c.Body, &m)
	return m
}

// Field is a top-level string field of the body ("run_id",
// "tool_call_id"); "" when absent.
func (c WebhookCall) Field(name string) string {
	s, _ := c.JSON()[name].(string)
	return s
}

// Input is the body's "input" object.
func (c WebhookCall) Input() map[string]any {
	in, _ := c.JSON()["input"].(map[string]any)
	return in
}

// SignedWith says whether the call's X-AgentOS-Signature is
// "sha256=" and the hex HMAC-SHA256 of its body under secret.
func (c WebhookCall) SignedWith(secret string) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(c.Body)
	return hmac.Equal([]byte(c.Header.Get("X-AgentOS-Signature")), []byte("sha256="+hex.EncodeToString(m.Sum(nil))))
}

// Webhook is an http tool endpoint (127.0.0.1:0) that answers every call
// at once with what answer returns for it (nil answer: 200
// {"output":{"ok":true}}), keeps every call for Calls and signals it on
// Got (64 buffered; calls past that are kept but not signalled). It is
// closed when the test ends.
type Webhook struct {
	*httptest.Server
	Got   chan WebhookCall
	mu    sync.Mutex
	calls []WebhookCall
}

// StartWebhook starts a Webhook.
func StartWebhook(t testing.TB, answer func(WebhookCall) (status int, body string)) *Webhook {
	t.Helper()
	h := &Webhook{Got: make(chan WebhookCall, 64)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := readCall(r)
		h.mu.Lock()
		h.calls = append(h.calls, c)
		h.mu.Unlock()
		signal(h.Got, c)
		status, body := http.StatusOK, `{"output":{"ok":true}}`
		if answer != nil {
			status, body = answer(c)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(h.Close)
	return h
}

// Calls lists the calls received so far, in order.
func (h *Webhook) Calls() []WebhookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// HeldWebhook is an http tool endpoint (127.0.0.1:0) that holds every call
// until Release: each call reads its body, is signalled on Hit, and is
// answered {"output":{"held":true}} once released, or dropped when its
// caller leaves first, which is signalled on Gone with the time. Hit and
// Gone hold 64 signals each; calls past that are not signalled. It is
// released and closed when the test ends.
type HeldWebhook struct {
	*httptest.Server
	Hit     chan WebhookCall
	Gone    chan time.Time
	release chan struct{}
	once    sync.Once
}

// StartHeldWebhook starts a HeldWebhook.
func StartHeldWebhook(t testing.TB) *HeldWebhook {
	t.Helper()
	h := &HeldWebhook{Hit: make(chan WebhookCall, 64), Gone: make(chan time.Time, 64), release: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signal(h.Hit, readCall(r))
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
