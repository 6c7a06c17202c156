package edge_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
	"github.com/labstack/echo/v4"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Every request carries a traceparent for its outbound calls, whether the
// edge traces (the span's, continuing a valid incoming one) or not (the
// incoming one, or a fresh one), and with a tracer whose spans carry no
// context.
func TestTraceparent_EveryRequestHasOne(t *testing.T) {
	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct {
		name   string
		tracer trace.Tracer
	}{
		{"no tracer", nil},
		{"sdk tracer", sdktrace.NewTracerProvider().Tracer("t")},
		{"no-op tracer", noop.NewTracerProvider().Tracer("t")},
	} {
		for _, in := range []string{"", incoming, "00-garbage"} {
			e := echo.New()
			ed := &edge.Edge{Tracer: c.tracer}
			e.Use(ed.IDs, ed.TraceRequests)
			var got string
			e.GET("/x", func(ec echo.Context) error {
				got = core.Traceparent(ec.Request().Context())
				return ec.NoContent(http.StatusNoContent)
			})
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			if in != "" {
				req.Header.Set("traceparent", in)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if len(got) != 55 || !strings.HasPrefix(got, "00-") {
				t.Errorf("%s, incoming %q: request traceparent %q", c.name, in, got)
				continue
			}
			if in == incoming && got[3:35] != incoming[3:35] {
				t.Errorf("%s: traceparent %q does not continue the incoming trace", c.name, got)
			}
			if in == incoming && c.name != "sdk tracer" && got != incoming {
				t.Errorf("%s: traceparent %q, want the incoming one", c.name, got)
			}
			if c.name == "sdk tracer" && rec.Header().Get("traceparent") != got {
				t.Errorf("sdk tracer: answered traceparent %q, request's %q", rec.Header().Get("traceparent"), got)
			}
		}
	}
}
