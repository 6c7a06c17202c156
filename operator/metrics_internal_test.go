package operator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// sumMetrics folds labels and adds each metric name over the nodes; a
// malformed line costs only its own sample, a node after the first that
// does not answer is left out, and the first one not answering is an
// error.
func TestSumMetrics_FoldsLabelsOverNodes(t *testing.T) {
	page := func(text string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(text))
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/metrics"
	}
	a := page(`# TYPE agentos_runs_total counter
agentos_runs_total{status="completed",note="a b} c"} 2
agentos_runs_total{status="failed"} 1 1700000000000
agentos_broken{ 5
agentos_http_requests_total 4 # {trace_id="x"} 9
`)
	b := page("agentos_runs_total{status=\"completed\"} 10\n")
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	got, err := sumMetrics(context.Background(), nil, []string{a, b, down.URL + "/metrics"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"agentos_runs_total": 13, "agentos_http_requests_total": 4}
	if len(got) != len(want) || got["agentos_runs_total"] != 13 || got["agentos_http_requests_total"] != 4 {
		t.Fatalf("sumMetrics = %v, want %v", got, want)
	}
	if _, err := sumMetrics(context.Background(), nil, []string{down.URL + "/metrics", a}); err == nil {
		t.Fatal("the target's own /metrics did not answer, and sumMetrics said nothing")
	}
}
