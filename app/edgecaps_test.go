package app_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
)

// The edge's admission caps, per router (open connections) and per node
// (requests in flight): at the cap the next one is refused at once with
// 429 and Retry-After, and the node recovers when the held ones end.

// The per-router connection cap: with the cap's worth of connections open
// (idle here), the next connection is answered at once with the JSON 429
// (kind connections, Retry-After) and closed; once one of the held
// connections closes, new connections are served again, and the count
// returns to what is open.
func TestHardening_ConnectionCapAnswers429AndRecovers(t *testing.T) {
	n := MustStartNode(t, func(c *app.Config) { c.MaxConnections = 3 })
	base := n.URL(app.StackA)
	held := holdAtCap(t, base, 3, 10*time.Second, "connection", func() int64 { return n.OpenConnections(app.StackA) }, nil)
	c := rawConn(t, base)
	start := time.Now()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("connection over the cap: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), `"kind":"connections"`) || !strings.Contains(string(body), `"code":"rate_limited"`) {
		t.Fatalf("over the cap: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("refusal took %v", took)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection over the cap left open")
	}
	if got := n.OpenConnections(app.StackA); got != 3 {
		t.Fatalf("refused connection counted: %d open, want 3", got)
	}
	held[0].Close()
	testkit.WaitFor(t, "the cap released after a connection closed", 10*time.Second, func() bool {
		// Until the server has seen the close, a new connection is refused
		// and may be reset while the request is written: that is "not yet",
		// not a failure.
		r, err := testkit.Send(nil, "GET", base+"/healthz", "", nil)
		return err == nil && r.Status == 200
	})
}

// The node-wide in-flight cap: with the cap's worth of requests in flight
// (slow uploads here), the next request is refused at once with 429
// requests_in_flight and Retry-After, on a connection that stays usable;
// probes and event subscriptions are not counted; once the held requests
// end, requests go through again.
func TestHardening_InFlightCapRefusesAtOnceAndRecovers(t *testing.T) {
	n := MustStartNode(t, func(c *app.Config) {
		c.MaxRequestsInFlight = 3
		c.BodyReadTimeout = 20 * time.Second
	})
	base := n.URL(app.StackA)
	key := n.creds.TenantAdmin.APIKey
	r := do(t, "POST", base+"/v1/agents/agt_sample_echo_v1/runs", key, map[string]any{"input": map[string]any{"type": "text", "text": "x"}, "idempotency_key": "k1"})
	expectStatus(t, r, 201, "create run")
	runID := r.JSON(t)["run"].(map[string]any)["run_id"].(string)
	held := holdAtCap(t, base, 3, 20*time.Second, "request in flight", n.RequestsInFlight, func(c net.Conn) {
		fmt.Fprintf(c, "PUT /v1/memory/ns/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", key)
	})

	// The fourth: refused at once, connection kept (its small body was
	// read and dropped), and the same connection answers the next request.
	c := rawConn(t, base)
	body := `{"value":"v"}`
	start := time.Now()
	fmt.Fprintf(c, "PUT /v1/memory/ns/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", key, len(body), body)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, resp.ContentLength)
	if _, err := io.ReadFull(br, raw); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(raw), `"requests_in_flight"`) || !strings.Contains(string(raw), `"applies_to":"node"`) {
		t.Fatalf("over the cap: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), raw)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the refusal took %v; it must not queue", took)
	}
	if resp.Close {
		t.Fatal("a refused small request closed its connection")
	}
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("probe on the same connection at the cap: %v %v", resp, err)
	}
	expectStatus(t, do(t, "GET", base+"/readyz", "", nil), 200, "readyz at the cap")
	expectStatus(t, do(t, "GET", base+"/v1/agents", key, nil), 429, "plain request at the cap")
	sse := rawConn(t, base)
	fmt.Fprintf(sse, "GET /v1/runs/%s/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n", runID, key)
	if st, err := readStatus(t, sse, 10*time.Second); st != 200 {
		t.Fatalf("event subscription at the cap: %d %v, want 200 (not counted)", st, err)
	}

	for _, c := range held {
		c.Close()
	}
	testkit.WaitFor(t, "the cap released", 10*time.Second, func() bool {
		return do(t, "GET", base+"/v1/agents", key, nil).Status == 200
	})
	// Every held request ends once its connection is gone (the server
	// notices each cut on its own schedule): the count returns to zero.
	testkit.WaitFor(t, "no request counted in flight", 10*time.Second, func() bool { return n.RequestsInFlight() == 0 },
		func() string { return fmt.Sprintf("(%d still counted)", n.RequestsInFlight()) })
}
