// Package testkit is the one set of test helpers every package's tests
// use: JSON requests against a real listener (Send, Do, Call), event
// streams (OpenStream, ReadSSE, Stream), waiting (WaitFor, WaitEvery,
// Await) where no event can be awaited, races let go together (AtOnce),
// real servers to point a node at (Serve, ServeCounting, ServeAt, Webhook,
// HeldWebhook, SlowWebhook, MailSink), metrics read into samples (Scrape
// for a /metrics page, Gather for a registry, both as Metrics) and files
// a test writes (WriteFile). It imports nothing of ours but core, edge and
// the internal readers (sse, promtext), so
// any test package, app's included, can use it; testkit/testnode starts
// a whole node.
package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// Response is one HTTP answer, its body read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object, failing the test otherwise.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
	return m
}

// Decode decodes the body into v, failing the test when it does not fit.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
}

// ErrorCode is error.code of a contract error answer ("" for other JSON);
// a body that is not JSON fails the test.
func (r Response) ErrorCode(t testing.TB) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// Expect fails the test unless the answer has one of the statuses.
func (r Response) Expect(t testing.TB, what string, statuses ...int) Response {
	t.Helper()
	for _, s := range statuses {
		if r.Status == s {
			return r
		}
	}
	t.Fatalf("%s: status %d, want %v; body %s", what, r.Status, statuses, r.Body)
	return r
}

// Send makes one request with client (nil: http.DefaultClient) and reads
// the answer. body may be nil, a []byte or string (sent as is) or any
// other value (sent as JSON); a body is sent as application/json. key,
// when not empty, goes in Authorization as a bearer; hdr are extra
// name/value pairs (they may override Content-Type). The error is a
// transport error only: any status is an answer.
func Send(client *http.Client, method, url, key string, body any, hdr ...string) (Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return Response{}, fmt.Errorf("encode body: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	if rd != nil {
		hdr = append([]string{"Content-Type", "application/json"}, hdr...)
	}
	resp, err := send(context.Background(), client, method, url, key, rd, hdr)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}, nil
}

// send makes one request with client (nil: http.DefaultClient): key,
// when not empty, as a bearer, then hdr as name/value pairs.
func send(ctx context.Context, client *http.Client, method, url, key string, body io.Reader, hdr []string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if client == nil {
		client = http.DefaultClient
	}
	return client.Do(req)
}

// Do is Send with http.DefaultClient that fails the test on a transport
// error.
func Do(t testing.TB, method, url, key string, body any, hdr ...string) Response {
	t.Helper()
	return DoWith(t, nil, method, url, key, body, hdr...)
}

// DoWith is Do with client (a TLS client, one with a timeout).
func DoWith(t testing.TB, client *http.Client, method, url, key string, body any, hdr ...string) Response {
	t.Helper()
	r, err := Send(client, method, url, key, body, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Call sends a request accepting JSON, decodes a JSON answer into out
// (when out is not nil) and returns the status; a transport error or an
// answer that does not decode fails the test.
func Call(t testing.TB, method, url, key string, body, out any) int {
	t.Helper()
	status, err := TryCall(method, url, key, body, out)
	if err != nil {
		t.Fatal(err)
	}
	return status
}

// TryCall is Call returning the error instead of failing the test (for
// goroutines, which must not call t.Fatal).
func TryCall(method, url, key string, body, out any) (int, error) {
	r, err := Send(nil, method, url, key, body, "Accept", "application/json")
	if err != nil {
		return 0, err
	}
	if out != nil && len(r.Body) > 0 {
		if err := json.Unmarshal(r.Body, out); err != nil {
			return r.Status, fmt.Errorf("%s %s: decode %d %q: %v", method, url, r.Status, r.Body, err)
		}
	}
	return r.Status, nil
}
