package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestTracing_RunSharesTraceAcrossStacks runs Stack A on one node calling
// a remote Stack B over HTTP (--stack-b-url), both exporting to one
// in-memory exporter, and checks the run's create request, its model
// calls on Stack B and the run's events carry one trace id.
func TestTracing_RunSharesTraceAcrossStacks(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())

	// Stack B runs on its own node; Stack A of a second node calls it over
	// HTTP. Both export to the same in-memory exporter.
	nodeB2cfg := testConfig(t)
	nodeB2 := app.NewNode(nodeB2cfg, app.BuildInfo{Version: "test"}, zerolog.Nop())
	nodeB2.TracerProvider = tp
	if err := nodeB2.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer nodeB2.Close()
	b2creds, _ := app.ReadCredentials(nodeB2cfg.DataDir)
	cfg2 := testConfig(t)
	cfg2.StackBURL = nodeB2.URL(app.StackB)
	cfg2.StackBAPIKey = b2creds.PlatformAdmin.APIKey
	nodeA2 := app.NewNode(cfg2, app.BuildInfo{Version: "test"}, zerolog.Nop())
	nodeA2.TracerProvider = tp
	if err := nodeA2.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer nodeA2.Close()
	creds, _ := app.ReadCredentials(cfg2.DataDir)

	traceparent := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := do(t, "POST", nodeA2.URL(app.StackA)+"/v1/agents/agt_sample_echo_v1/runs", creds.TenantAdmin.APIKey,
		map[string]any{"input": map[string]any{"type": "text", "text": "trace me"}, "idempotency_key": "idem_trace"}, "traceparent", traceparent)
	expectStatus(t, r, 201, "create run")
	runID := r.JSON(t)["run"].(map[string]any)["run_id"].(string)
	if run := testkit.WaitRun(t, nodeA2.URL(app.StackA), creds.TenantAdmin.APIKey, runID, 10*time.Second); run["status"] != "completed" {
		t.Fatalf("run ended %v", run)
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	var createSpan, invokeSpans int
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID().String() != traceID {
			continue
		}
		switch {
		case strings.HasPrefix(s.Name, "POST /v1/agents/"):
			createSpan++
		case s.Name == "POST /v1/models:invoke" || strings.HasPrefix(s.Name, "POST /v1/models"):
			invokeSpans++
			if s.Parent.TraceID().String() != traceID || !s.Parent.IsRemote() {
				t.Errorf("Stack B span %s is not a remote child in the trace", s.Name)
			}
		}
	}
	if createSpan != 1 || invokeSpans < 2 {
		var names []string
		for _, s := range exp.GetSpans() {
			names = append(names, s.Name+"@"+s.SpanContext.TraceID().String()[:8])
		}
		t.Fatalf("want the run create span and >=2 Stack B model spans in trace %s; got create=%d invoke=%d; spans: %v", traceID, createSpan, invokeSpans, names)
	}
	ev := do(t, "GET", nodeA2.URL(app.StackA)+"/v1/runs/"+runID+"/events", creds.TenantAdmin.APIKey, nil, "Accept", "application/json")
	if !strings.Contains(string(ev.Body), traceID) {
		t.Fatalf("events do not carry the trace id: %.300s", ev.Body)
	}
}
