package edge

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceparentOf writes what the W3C TraceContext propagator writes, for
// sampled and unsampled span contexts, and nothing without one.
func TestTraceparentOf_MatchesThePropagator(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	for _, flags := range []trace.TraceFlags{0, trace.FlagsSampled, trace.FlagsRandom, 0xff} {
		ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags}))
		carrier := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(ctx, carrier)
		if got, want := traceparentOf(ctx), carrier.Get("traceparent"); got != want {
			t.Fatalf("flags %x: %q, propagator %q", flags, got, want)
		}
	}
	if got := traceparentOf(context.Background()); got != "" {
		t.Fatalf("no span: %q", got)
	}
}
