package fed_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/agentos/agentos/internal/testkit"
)

// benchPair starts A and B for benchmarks; B's runs have steps step pairs.
func benchPair(b *testing.B, runs *memRuns) (*testNode, *testNode) {
	b.Helper()
	a := startNode(b, nodeOpts{stackID: "stk_a"})
	nb := startNode(b, nodeOpts{stackID: "stk_b", runs: runs})
	a.trust(nb, nb.url, tenantDemo)
	nb.trust(a, a.url, tenantDemo)
	return a, nb
}

func benchForward(b *testing.B, a *testNode, idem string) string {
	b.Helper()
	r := a.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo,
		forwardBody(map[string]any{"stack_id": "stk_b"}, "agt_sample_echo_v1", idem, "bench"))
	return forwarded(b, r)["remote_run_id"].(string)
}

// benchThroughput streams one finished run of about b.N events from via
// (A relaying B, or B itself) and reports events per second.
func benchThroughput(b *testing.B, relay bool) {
	runs := newMemRuns(b.N/8+1, 0)
	a, nb := benchPair(b, runs)
	runID := benchForward(b, a, "idem_bench_"+strconv.Itoa(b.N))
	total := len(runs.plan()) + 1
	waitFor(b, "run to finish on B", func() bool {
		evs, _ := runs.ListEvents(b.Context(), testKeys[keyDemo], runID, 0)
		return len(evs) == total
	})
	via := nb
	if relay {
		via = a
	}
	b.ResetTimer()
	start := time.Now()
	resp := via.stream(runID, keyDemo, 0)
	evs, _ := readSSE(b, resp.Body, nil)
	resp.Body.Close()
	elapsed := time.Since(start)
	b.StopTimer()
	if len(evs) != total {
		b.Fatalf("%d events, want %d", len(evs), total)
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(total), "ns/event")
}

// BenchmarkRelay_Throughput: events per second from B through A's relay
// to a client (the run is finished, so this is the relay's top speed).
func BenchmarkRelay_Throughput(b *testing.B) { benchThroughput(b, true) }

// BenchmarkDirect_Throughput: the same stream read from B directly, the
// baseline the relay adds to.
func BenchmarkDirect_Throughput(b *testing.B) { benchThroughput(b, false) }

// BenchmarkRelay_AddedLatency emits live events on B one at a time and
// times their arrival at a client of B's stream and at a client of A's
// relay of it; added-ns/event is the relay's cost per event.
func BenchmarkRelay_AddedLatency(b *testing.B) {
	runs := newMemRuns(b.N/8+1, 0)
	runs.manual = true
	a, nb := benchPair(b, runs)
	runID := benchForward(b, a, "idem_latency_"+strconv.Itoa(b.N))
	direct, relayed := make(chan time.Time, 1), make(chan time.Time, 1)
	// Each stream starts before the run's first event: that event
	// arriving says the stream (and A's relay of it) is connected; the
	// timed events come after it.
	follow := func(tn *testNode, ch chan time.Time) {
		resp := tn.stream(runID, keyDemo, 0)
		connected := make(chan struct{})
		go func() {
			defer resp.Body.Close()
			readSSE(b, resp.Body, func(ev sseEvent) {
				if ev.Event.Sequence == 1 {
					close(connected)
					return
				}
				ch <- time.Now()
			})
		}()
		testkit.Await(b, "the stream's first event", 10*time.Second, connected)
	}
	follow(nb, direct)
	follow(a, relayed)
	var sumDirect, sumRelay time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		runs.emit(runID)
		sumDirect += (<-direct).Sub(t0)
		sumRelay += (<-relayed).Sub(t0)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(sumDirect.Nanoseconds())/n, "direct-ns/event")
	b.ReportMetric(float64(sumRelay.Nanoseconds())/n, "relay-ns/event")
	b.ReportMetric(float64((sumRelay-sumDirect).Nanoseconds())/n, "added-ns/event")
	for runs.emit(runID) {
	}
}
