package app

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/agentos/agentos/core"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// newTracerProvider builds the node's tracer provider. Spans always exist
// (so trace context is real and propagates across stacks and peers); they
// are exported over OTLP/HTTP only when an endpoint is configured.
func newTracerProvider(ctx context.Context, cfg Config, stackID string) (*sdktrace.TracerProvider, error) {
	res := sdkresource.NewSchemaless(
		attribute.String("service.name", "agentos"),
		attribute.String("service.instance.id", stackID),
		attribute.String("deployment.environment", cfg.Environment),
	)
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample()))}
	if cfg.OTLPEndpoint != "" {
		var eopts []otlptracehttp.Option
		if strings.Contains(cfg.OTLPEndpoint, "://") {
			eopts = append(eopts, otlptracehttp.WithEndpointURL(cfg.OTLPEndpoint))
		} else {
			eopts = append(eopts, otlptracehttp.WithEndpoint(cfg.OTLPEndpoint), otlptracehttp.WithInsecure())
		}
		exp, err := otlptracehttp.New(ctx, eopts...)
		if err != nil {
			return nil, fmt.Errorf("otlp exporter %s: %w", cfg.OTLPEndpoint, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

var traceContext = propagation.TraceContext{}

// traceparentOf renders the W3C traceparent of ctx's current span.
func traceparentOf(ctx context.Context) string {
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	return carrier.Get("traceparent")
}

// traceRequests opens a server span per request, continuing the caller's
// trace (traceparent header), and makes the span's traceparent the one
// every outbound call of this request propagates.
func (e *edge) traceRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if e.tracer == nil {
			return next(c)
		}
		r := c.Request()
		ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		ctx, span := e.tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("agentos.stack", e.stack), attribute.String("http.request.method", r.Method),
				attribute.String("http.route", route), attribute.String("agentos.correlation_id", core.CorrelationID(ctx))))
		defer span.End()
		if tp := traceparentOf(ctx); tp != "" {
			ctx = core.WithTraceparent(ctx, tp)
			c.Response().Header().Set("traceparent", tp)
		}
		c.SetRequest(r.WithContext(ctx))
		err := next(c)
		if a, ok := core.AuthFrom(c.Request().Context()); ok {
			span.SetAttributes(attribute.String("tenant_id", a.TenantID))
		}
		for _, p := range []string{"run_id", "agent_id"} {
			if v := c.Param(p); v != "" {
				span.SetAttributes(attribute.String(p, strings.SplitN(v, ":", 2)[0]))
			}
		}
		status := c.Response().Status
		if err != nil {
			status = e.toCoreError(err).HTTPStatus()
		}
		span.SetAttributes(attribute.String("http.response.status_code", strconv.Itoa(status)))
		if status >= 500 {
			span.SetStatus(codes.Error, "server error")
		}
		return err
	}
}
