package app

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
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
