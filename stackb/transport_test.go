package stackb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentos/agentos/internal/testkit"
)

// newTestDirect returns a direct transport and a client on it; its idle
// connections are closed when the test ends.
func newTestDirect(t *testing.T) (*directTransport, *http.Client) {
	tr := newDirectTransport(upstreamTransport())
	t.Cleanup(tr.CloseIdleConnections)
	return tr, &http.Client{Transport: tr}
}

func post(t *testing.T, hc *http.Client, ctx context.Context, url, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return hc.Do(req)
}

// Calls in sequence share one connection; the server sees each request
// whole (method, path, headers, body) and the caller each answer whole.
func TestDirectTransport_ReusesOneConnection(t *testing.T) {
	srv, conns := testkit.ServeCounting(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo-Type", r.Header.Get("Content-Type"))
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	}))
	_, hc := newTestDirect(t)
	for i := range 20 {
		resp, err := post(t, hc, context.Background(), srv.URL+"/v1/chat/completions", fmt.Sprintf(`{"n":%d}`, i))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf(`POST /v1/chat/completions {"n":%d}`, i); string(got) != want || resp.Header.Get("X-Echo-Type") != "application/json" {
			t.Fatalf("answer %q (type %q), want %q", got, resp.Header.Get("X-Echo-Type"), want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 20 calls in sequence, want 1", n)
	}
}

// A connection the server closed while it was idle is noticed before use:
// the next call dials a new one and succeeds.
func TestDirectTransport_ServerClosedIdleConnection(t *testing.T) {
	srv, conns := testkit.ServeCounting(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	tr, hc := newTestDirect(t)
	for i := range 3 {
		resp, err := post(t, hc, context.Background(), srv.URL, "{}")
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		// The server drops every idle connection between calls.
		srv.CloseClientConnections()
		testkit.WaitFor(t, "the server's close seen on every idle connection", 5*time.Second, func() bool {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			for _, list := range tr.idle {
				for _, c := range list {
					if connAlive(c.conn) {
						return false
					}
				}
			}
			return true
		})
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (one per call, each closed by the server)", n)
	}
}

// A server that answers Connection: close gets a new connection per call.
func TestDirectTransport_ConnectionCloseIsNotReused(t *testing.T) {
	srv, conns := testkit.ServeCounting(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "ok")
	}))
	_, hc := newTestDirect(t)
	for range 3 {
		resp, err := post(t, hc, context.Background(), srv.URL, "{}")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

// Canceling a call interrupts it at once, waiting for the head or in the
// middle of a streamed body, and its connection is not reused.
func TestDirectTransport_CancelInterrupts(t *testing.T) {
	release := make(chan struct{})
	srv, conns := testkit.ServeCounting(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: first\n\n")
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	tr, hc := newTestDirect(t)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := post(t, hc, ctx, srv.URL+"/head", "{}")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for the head: err %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the cancel took %v", d)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	resp, err := post(t, hc, ctx2, srv.URL+"/stream", "{}")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := resp.Body.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "data: first") {
		t.Fatalf("first event: %q, %v", buf[:n], err)
	}
	cancel2()
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
		t.Fatalf("reading on after the cancel: %v, want context.Canceled", err)
	}
	resp.Body.Close()
	tr.mu.Lock()
	idle := 0
	for _, list := range tr.idle {
		idle += len(list)
	}
	tr.mu.Unlock()
	if idle != 0 || conns.Load() != 2 {
		t.Errorf("%d idle connections after two canceled calls on %d connections, want 0 on 2", idle, conns.Load())
	}
}

// A body closed before its end closes its connection; concurrent calls
// each get their own connection and their own answer.
func TestDirectTransport_ConcurrentAndEarlyClose(t *testing.T) {
	srv := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(bytes.Repeat(b, 1000))
	}), nil)
	_, hc := newTestDirect(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 10 {
				body := fmt.Sprintf("<%d.%d>", i, j)
				resp, err := post(t, hc, context.Background(), srv.URL, body)
				if err != nil {
					t.Error(err)
					return
				}
				if j%3 == 0 { // read a little and give up
					_, _ = resp.Body.Read(make([]byte, 10))
					resp.Body.Close()
					continue
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(got) != strings.Repeat(body, 1000) {
					t.Errorf("call %s: %d bytes, %v", body, len(got), err)
				}
			}
		})
	}
	wg.Wait()
}

// https (and anything else not plain HTTP) goes to the fallback.
func TestDirectTransport_OtherSchemesGoToTheFallback(t *testing.T) {
	var fell atomic.Int64
	tr := newDirectTransport(upstreamTransport())
	tr.Fallback = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		fell.Add(1)
		return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
	})
	hc := &http.Client{Transport: tr}
	for _, u := range []string{"https://example.invalid/v1", "http://example.invalid/v1"} {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader("{}"))
		if strings.HasPrefix(u, "http:") {
			req.Header.Set("Expect", "100-continue")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if fell.Load() != 2 {
		t.Errorf("%d calls went to the fallback, want 2", fell.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
