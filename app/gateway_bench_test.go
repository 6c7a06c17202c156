package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/bench"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/internal/testkit/testnode"
	"github.com/rs/zerolog"
)

// BenchmarkEdgeGatewayChat explains the black-box figure of `agentos bench
// gateway` in process: a real node (every edge guarantee on: auth, body
// rules, OpenAPI validation, spans, metrics, access log at info into a
// discarding writer, metering, audit) proxies chat completions to bench's
// fake upstream, and the same requests go straight to the upstream. It
// reports the process CPU and allocations the gateway adds per request
// (gateway minus direct), which do not depend on how loaded the machine is
// the way latency does. Concurrency is -cpu style: 8 senders.
func BenchmarkEdgeGatewayChat(b *testing.B) {
	up, err := bench.ListenUpstream("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = up.Serve() }()
	b.Cleanup(func() { _ = up.Close() })
	cfg := testnode.Config(b)
	cfg.ProvidersFile = testkit.WriteFile(b, filepath.Join(b.TempDir(), "providers.json"), `{"providers":[{"name":"fake","kind":"openai","base_url":"`+up.URL()+
		`","timeout_ms":30000,"models":[{"model_id":"bench-1","capabilities":["chat"],"tier":"balanced"}]}]}`, 0o600)
	n, creds := startBenchNode(b, cfg)
	hc := bench.NewClient(64)
	base, _ := url.Parse(n.URL(app.StackA))
	fx, err := bench.Setup(context.Background(), hc, base, creds.PlatformAdmin.APIKey, 5000, "fake")
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"model":"fake/bench-1","messages":[{"role":"user","content":"bench request 1"}],"max_tokens":16}`)
	direct := []byte(`{"model":"bench-1","messages":[{"role":"user","content":"bench request 1"}],"max_tokens":16}`)
	send := func(url, key string, body []byte) {
		r, err := testkit.Send(hc, http.MethodPost, url, key, body)
		if err != nil {
			b.Error(err)
			return
		}
		var out struct {
			Choices []json.RawMessage `json:"choices"`
		}
		err = json.Unmarshal(r.Body, &out)
		if r.Status != http.StatusOK || err != nil || len(out.Choices) != 1 {
			b.Errorf("%s: status %d, %v", url, r.Status, err)
		}
	}
	// run sends count requests from 8 senders and returns the process CPU
	// and mallocs it took.
	run := func(count int, url, key string, body []byte) (cpu time.Duration, mallocs uint64) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		m0, c0 := ms.Mallocs, processCPU()
		var wg sync.WaitGroup
		next := make(chan struct{}, count)
		for range count {
			next <- struct{}{}
		}
		close(next)
		for range 8 {
			wg.Go(func() {
				for range next {
					send(url, key, body)
				}
			})
		}
		wg.Wait()
		c1 := processCPU()
		runtime.ReadMemStats(&ms)
		return c1 - c0, ms.Mallocs - m0
	}
	gw, dr := n.URL(app.StackB)+"/openai/v1/chat/completions", up.URL()+"/chat/completions"
	run(500, gw, fx.APIKey, body) // warm: connections, caches
	run(500, dr, "", direct)
	b.ResetTimer()
	var gwCPU, drCPU time.Duration
	var gwAllocs, drAllocs uint64
	// Alternate in slices so both see the same machine.
	for done := 0; done < b.N; {
		k := min(b.N-done, 500)
		c, m := run(k, gw, fx.APIKey, body)
		gwCPU, gwAllocs = gwCPU+c, gwAllocs+m
		c, m = run(k, dr, "", direct)
		drCPU, drAllocs = drCPU+c, drAllocs+m
		done += k
	}
	b.StopTimer()
	b.ReportMetric(float64(gwCPU.Microseconds())/float64(b.N), "gw-cpu-µs/req")
	b.ReportMetric(float64(drCPU.Microseconds())/float64(b.N), "direct-cpu-µs/req")
	b.ReportMetric(float64((gwCPU-drCPU).Microseconds())/float64(b.N), "added-cpu-µs/req")
	b.ReportMetric(float64(int64(gwAllocs)-int64(drAllocs))/float64(b.N), "added-allocs/req")
}

// processCPU is this process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startBenchNode opens and seeds a node for an in-process benchmark, with
// the access log formatted as in production but discarded, and returns it
// with the seeded credentials.
func startBenchNode(b *testing.B, cfg app.Config) (*app.Node, app.Credentials) {
	b.Helper()
	return testnode.StartLogging(b, cfg, zerolog.New(io.Discard).Level(zerolog.InfoLevel).With().Timestamp().Logger()).Parts()
}
