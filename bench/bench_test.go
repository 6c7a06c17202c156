package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestOptions_Validate_RefusesUnboundedRuns(t *testing.T) {
	ok := Options{Rate: 10, Duration: time.Second, Timeout: time.Second}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
	for name, o := range map[string]Options{
		"zero rate":        {Rate: 0, Duration: time.Second, Timeout: time.Second},
		"negative rate":    {Rate: -1, Duration: time.Second, Timeout: time.Second},
		"rate too high":    {Rate: MaxRate + 1, Duration: time.Second, Timeout: time.Second},
		"zero duration":    {Rate: 10, Timeout: time.Second},
		"endless duration": {Rate: 10, Duration: MaxDuration + time.Second, Timeout: time.Second},
		"negative warmup":  {Rate: 10, Duration: time.Second, Warmup: -time.Second, Timeout: time.Second},
		"no timeout":       {Rate: 10, Duration: time.Second},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPercentiles_NearestRank(t *testing.T) {
	d := make([]time.Duration, 1000)
	for i := range d {
		d[len(d)-1-i] = time.Duration(i+1) * time.Millisecond // reversed: percentiles must sort
	}
	p := percentiles(d)
	if p.P50 != 500*time.Millisecond || p.P90 != 900*time.Millisecond || p.P99 != 990*time.Millisecond ||
		p.P999 != 999*time.Millisecond || p.Max != 1000*time.Millisecond {
		t.Fatalf("percentiles of 1..1000 ms: %+v", p)
	}
	if (percentiles(nil) != Percentiles{}) {
		t.Fatal("empty input must give zero percentiles")
	}
}

// A server that stalls must show up in the latency of the requests
// scheduled behind it (measured from their scheduled time), and the
// schedule must not slow down to match it: that is open loop.
func TestRun_OpenLoop_LatencyFromScheduledTime(t *testing.T) {
	var calls atomic.Int64
	stall := make(chan struct{})
	do := func(ctx context.Context, seq int) Outcome {
		if calls.Add(1) == 40 {
			close(stall) // most of the schedule has been sent: release the first request
		}
		if seq == 0 {
			select {
			case <-stall:
			case <-ctx.Done():
				return Outcome{Code: "transport"}
			}
		}
		return Outcome{Code: "ok"}
	}
	res, err := Run(context.Background(), Options{Rate: 200, Duration: 250 * time.Millisecond, Timeout: 5 * time.Second}, do, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Samples) != 50 {
		t.Fatalf("sent %d, want 50 (rate × duration)", len(res.Samples))
	}
	first := res.Samples[0].Done.Sub(res.Samples[0].Scheduled)
	if first < 150*time.Millisecond {
		t.Fatalf("the stalled request's latency is %s; it was held until 40 others were sent (≥ 195 ms of schedule)", first)
	}
	rep := Summarize("t", res, NodeStats{})
	if rep.OK != 50 || len(rep.Errors) != 0 || rep.Latency.Max < 150*time.Millisecond {
		t.Fatalf("report: %+v", rep)
	}
}

func TestRun_TimeoutsAndErrorsAreCountedByCode(t *testing.T) {
	do := func(ctx context.Context, seq int) Outcome {
		switch seq % 3 {
		case 0:
			<-ctx.Done()
			return Outcome{Code: "transport"}
		case 1:
			return Outcome{Code: "429 rate_limited"}
		}
		return Outcome{Code: "ok"}
	}
	res, err := Run(context.Background(), Options{Rate: 300, Duration: 100 * time.Millisecond, Timeout: 50 * time.Millisecond}, do, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := Summarize("t", res, NodeStats{})
	if rep.Errors["timeout"] != 10 || rep.Errors["429 rate_limited"] != 10 || rep.OK != 10 {
		t.Fatalf("want 10 timeouts, 10 rate limits, 10 ok: %+v", rep)
	}
}

func TestRun_StopsWhenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	do := func(ctx context.Context, seq int) Outcome {
		if n.Add(1) == 5 {
			cancel()
		}
		return Outcome{Code: "ok"}
	}
	start := time.Now()
	_, err := Run(ctx, Options{Rate: 100, Duration: time.Minute, Timeout: time.Second}, do, nil)
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("canceled run: err %v after %s", err, time.Since(start))
	}
}

// The gateway driver against the bench upstream directly (the baseline
// mode), with the node figures read from this process's /proc entry.
func TestExecute_GatewayDirectAgainstUpstream(t *testing.T) {
	u, err := ListenUpstream("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go u.Serve()
	defer u.Close()
	rep, err := Execute(context.Background(), Plan{Kind: "gateway", Direct: u.URL(), Model: "bench-1", PID: os.Getpid(),
		Options: Options{Rate: 100, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 30 || rep.OK != 30 || u.Served() != 40 {
		t.Fatalf("sent %d ok %d served %d, want 30/30/40 (warmup is sent but not counted): %+v", rep.Sent, rep.OK, u.Served(), rep)
	}
	if rep.Node.Source == "" || rep.Node.RSSPeak <= 0 || rep.Latency.P50 <= 0 || rep.Throughput <= 0 {
		t.Fatalf("report lacks figures: %+v", rep)
	}
	// /proc tells anonymous memory apart from file pages.
	if rep.Node.AnonPeak <= 0 || rep.Node.AnonPeak > rep.Node.RSSPeak {
		t.Fatalf("anonymous peak %d, VmRSS peak %d", rep.Node.AnonPeak, rep.Node.RSSPeak)
	}
	var b strings.Builder
	rep.Print(&b)
	for _, want := range []string{"throughput", "p99.9", "node cpu", "node rss", "anonymous peak"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("printed report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestListenUpstream_LoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "10.0.0.1:0", ":0", "example.com:80"} {
		if u, err := ListenUpstream(addr); err == nil {
			u.Close()
			t.Errorf("%s: accepted", addr)
		}
	}
}

// A bench sends only where it was told: no redirect is followed and an
// events_url on another host is refused.
func TestClient_SendsOnlyToGivenAddresses(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/runs") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"run":{"run_id":"run_x","status":"queued","events_url":"` + other.URL + `/v1/runs/run_x/events"}}`))
			return
		}
		http.Redirect(w, r, other.URL+"/v1/chat/completions", http.StatusTemporaryRedirect)
	}))
	defer node.Close()
	base, err := BaseURL(node.URL)
	if err != nil {
		t.Fatal(err)
	}
	hc := NewClient(4)
	g := &Gateway{Client: hc, Base: base.JoinPath("v1"), Model: "m"}
	if out := g.Do(context.Background(), 0); out.Code == "ok" {
		t.Fatalf("a redirect was followed: %+v", out)
	}
	r := &Runs{Client: hc, Base: base, APIKey: "k", Agent: "agt_x", Tag: "t"}
	if out := r.Do(context.Background(), 0); out.Code != "refused events_url" {
		t.Fatalf("events_url on another host: %+v", out)
	}
	if elsewhere.Load() != 0 {
		t.Fatalf("%d requests reached an address the bench was not given", elsewhere.Load())
	}
	for _, bad := range []string{"ftp://x", "http://", "http://u:p@h", "http://h/?q=1", "/relative"} {
		if _, err := BaseURL(bad); err == nil {
			t.Errorf("BaseURL(%q) accepted", bad)
		}
	}
}

// Over several nodes, run seq is created on node seq%n and followed from
// the next node; nothing is sent anywhere else.
func TestRuns_SpreadOverNodesFollowsFromTheNext(t *testing.T) {
	type hit struct{ node, path string }
	hits := make(chan hit, 16)
	var nodes []*httptest.Server
	for i := range 3 {
		name := string(rune('a' + i))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits <- hit{name, r.URL.Path}
			if strings.HasSuffix(r.URL.Path, "/runs") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				_, _ = w.Write([]byte(`{"run":{"run_id":"run_` + name + `","status":"queued","events_url":"/v1/runs/run_` + name + `/events"}}`))
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("data: {\"event\":{\"type\":\"agentos.run.completed\"}}\n\n"))
		}))
		defer srv.Close()
		nodes = append(nodes, srv)
	}
	r := &Runs{Client: NewClient(4), APIKey: "k", Agent: "agt_x", Tag: "t"}
	for _, s := range nodes {
		u, err := BaseURL(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		r.Nodes = append(r.Nodes, u)
	}
	r.Base = r.Nodes[0]
	want := [][2]hit{
		{{"a", "/v1/agents/agt_x/runs"}, {"b", "/v1/runs/run_a/events"}},
		{{"b", "/v1/agents/agt_x/runs"}, {"c", "/v1/runs/run_b/events"}},
		{{"c", "/v1/agents/agt_x/runs"}, {"a", "/v1/runs/run_c/events"}},
	}
	for seq, w := range want {
		if out := r.Do(context.Background(), seq); out.Code != "ok" {
			t.Fatalf("run %d: %+v", seq, out)
		}
		for _, h := range w {
			if got := <-hits; got != h {
				t.Fatalf("run %d: request %+v, want %+v", seq, got, h)
			}
		}
	}
}
