package edge

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/agentos/agentos/core"
	"github.com/labstack/echo/v4"
)

// InflightGate is the node-wide cap on requests being answered at once
// (--max-requests-in-flight). Past the cap a request is answered at once
// with 429 rate_limited (kind requests_in_flight, Retry-After: 1) instead of
// queueing: an overloaded node keeps answering quickly and its memory stays
// bounded, where before every request past what the CPU could serve held a
// goroutine, a connection's buffers and its half-done work until the client
// gave up (703 MiB at 3,000 req/s on two cores).
//
// Not counted: probes, scrapes and documents (public paths), and event
// subscriptions (GET with Accept: text/event-stream), which wait rather
// than work and have their own caps (--max-event-streams*).
type InflightGate struct {
	limit int64
	n     atomic.Int64
}

// DefaultMaxRequestsInFlight is the default of --max-requests-in-flight:
// far above what two cores serve at their saturation rate (a few hundred
// at once), yet a bound on memory (a request in flight costs tens of KiB).
const DefaultMaxRequestsInFlight = 1024

// NewInflightGate returns a cap of limit requests; nil (no cap) when
// limit is not positive.
func NewInflightGate(limit int) *InflightGate {
	if limit <= 0 {
		return nil
	}
	return &InflightGate{limit: int64(limit)}
}

func (g *InflightGate) tryAcquire() bool {
	if g.n.Add(1) > g.limit {
		g.n.Add(-1)
		return false
	}
	return true
}

func (g *InflightGate) release() { g.n.Add(-1) }

// InFlight is the number of requests counted now.
func (g *InflightGate) InFlight() int64 { return g.n.Load() }

// eventSubscription reports a request that opens an event stream and then
// mostly waits.
func eventSubscription(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// drainBodyLimit is the largest refused body read to its end so the
// connection stays usable; larger ones close the connection unread.
const drainBodyLimit = 64 << 10

// Admit applies the in-flight cap. It runs after authenticate (a refused
// unauthenticated request never gets here) and before the body is read.
func (e *Edge) Admit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if e.Inflight == nil || PublicPath(r.URL.Path) || eventSubscription(r) {
			return next(c)
		}
		if !e.Inflight.tryAcquire() {
			// A small body is read and dropped so the client keeps its
			// connection (a refusal that closes it would cost the client
			// and the node a new connection on retry, and under overload
			// turn into a dial storm); the body read timeout bounds it.
			if r.ContentLength >= 0 && r.ContentLength <= drainBodyLimit && r.Body != nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, drainBodyLimit+1))
			}
			return core.RateLimited("requests_in_flight", 1, "the node is answering as many requests as it allows at once (%d); retry shortly", e.Inflight.limit).
				With("applies_to", "node")
		}
		defer e.Inflight.release()
		return next(c)
	}
}
