package edge

import (
	"context"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/agentos/agentos/core"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

var traceContext = propagation.TraceContext{}

// traceparentOf renders the W3C traceparent of ctx's current span ("" when
// it has no valid span context), as the TraceContext propagator writes it
// (version 00; the sampled and random flags), without its carrier map.
func traceparentOf(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))})
	return string(b[:])
}

// TraceRequests opens a server span per request, continuing the caller's
// trace (traceparent header), and makes the span's traceparent the one
// every outbound call of this request propagates.
func (e *Edge) TraceRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if e.Tracer == nil {
			return next(c)
		}
		r := c.Request()
		ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		ctx, span := e.Tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("agentos.stack", e.Stack), attribute.String("http.request.method", r.Method),
				attribute.String("http.route", route), attribute.String("agentos.correlation_id", core.CorrelationID(ctx))))
		defer span.End()
		tp := traceparentOf(ctx)
		if tp != "" {
			// The canonical form: Set would allocate it from "traceparent"
			// on every request.
			c.Response().Header().Set("Traceparent", tp)
		} else if tp = r.Header.Get("traceparent"); !validTraceparent(tp) {
			// A tracer whose spans carry no context (a no-op one): the
			// request still gets a traceparent, as IDs gives without one.
			tp = NewTraceparent()
		}
		ctx = core.WithTraceparent(ctx, tp)
		c.SetRequest(r.WithContext(ctx))
		err := next(c)
		// One SetAttributes call: each call grows the span's attribute
		// slice on its own.
		attrs := make([]attribute.KeyValue, 0, 4)
		if a, ok := core.AuthFrom(c.Request().Context()); ok {
			attrs = append(attrs, attribute.String("tenant_id", a.TenantID))
		}
		for _, p := range []string{"run_id", "agent_id"} {
			if v := c.Param(p); v != "" {
				attrs = append(attrs, attribute.String(p, strings.SplitN(v, ":", 2)[0]))
			}
		}
		status := c.Response().Status
		if err != nil {
			status = e.ToCoreError(err).HTTPStatus()
		}
		attrs = append(attrs, attribute.String("http.response.status_code", strconv.Itoa(status)))
		span.SetAttributes(attrs...)
		if status >= 500 {
			span.SetStatus(codes.Error, "server error")
		}
		return err
	}
}
