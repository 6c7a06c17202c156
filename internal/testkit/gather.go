package testkit

import (
	"bytes"
	"testing"

	"github.com/agentos/agentos/internal/promtext"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Gather reads g (a stack's own registry, in a test without a listener)
// as /metrics would show it, failing the test when it cannot.
func Gather(t testing.TB, g prometheus.Gatherer) Metrics {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatalf("gather metrics: %v", err)
		}
	}
	m, err := promtext.Parse(b.Bytes())
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	return m
}
