package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// MetricsProbe reads the two process series through promtext: a
// timestamp or an exemplar after the value (which the old prefix scanner
// failed on) and a malformed line elsewhere do not get in its way; a page
// without them, or a status other than 200, is an error.
func TestMetricsProbe_ReadsProcessSeries(t *testing.T) {
	var page atomic.Value
	page.Store("")
	status := atomic.Int32{}
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Accept"), "text/plain") {
			t.Errorf("Accept %q, want the text format", r.Header.Get("Accept"))
		}
		w.WriteHeader(int(status.Load()))
		w.Write([]byte(page.Load().(string)))
	}))
	t.Cleanup(srv.Close)

	page.Store(`# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.25 1700000000000
process_cpu_seconds_total{mode="x y"} 99
agentos_broken{a="b"} not-a-number
process_resident_memory_bytes 4.2e+07 # {trace_id="t 1"} 1
`)
	p, src, err := MetricsProbe(srv.Client(), srv.URL+"/metrics")
	if err != nil || src != srv.URL+"/metrics" {
		t.Fatalf("MetricsProbe: %q, %v", src, err)
	}
	cpu, mem, err := p(context.Background())
	if err != nil || cpu != 1.25 || mem.rss != 42_000_000 || mem.anon != 0 {
		t.Fatalf("probe = %v, %+v, %v; want 1.25 s, 42000000 B", cpu, mem, err)
	}

	page.Store("process_cpu_seconds_total 2\n")
	if _, _, err := p(context.Background()); err == nil || !strings.Contains(err.Error(), "process_resident_memory_bytes") {
		t.Fatalf("page without RSS: %v", err)
	}
	page.Store("process_cpu_seconds_total 2\nprocess_resident_memory_bytes 1\n")
	status.Store(503)
	if _, _, err := p(context.Background()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("503: %v", err)
	}
	if _, _, err := MetricsProbe(srv.Client(), srv.URL+"/metrics"); err == nil {
		t.Fatal("MetricsProbe accepted a node whose /metrics answers 503")
	}
}
