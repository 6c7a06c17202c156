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

// The per-router connection cap: with the cap's worth of connections open
// (idle here), the next connection is answered at once with the JSON 429
// (kind connections, Retry-After) and closed; once one of the held
// connections closes, new connections are served again, and the count
// returns to what is open.
func TestHardening_ConnectionCapAnswers429AndRecovers(t *testing.T) {
	n := MustStartNode(t, func(c *app.Config) { c.MaxConnections = 3 })
	base := n.URL(app.StackA)
	var held []net.Conn
	for i := 1; i <= 3; i++ {
		held = append(held, rawConn(t, base))
		testkit.WaitFor(t, fmt.Sprintf("connection %d counted", i), 10*time.Second, func() bool { return n.OpenConnections(app.StackA) == int64(i) },
			func() string { return fmt.Sprintf("(%d counted)", n.OpenConnections(app.StackA)) })
	}
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
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}
