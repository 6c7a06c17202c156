package stackb_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stackb"
)

// BenchmarkGatewayOverhead measures what Stack B adds to a chat completion:
// the same OpenAI-compatible request is sent to a local upstream directly
// and through the gateway's /v1/chat/completions (auth stand-in, tenant
// lookup, rate and budget reservation, policy, routing, metering, audit
// queueing), alternating. It reports the added p50 and p99 latency and the
// gateway's extra allocations per request.
func BenchmarkGatewayOverhead(b *testing.B) {
	b.Run("audit=on", func(b *testing.B) { benchOverhead(b, true) })
	// Without the per-call audit record: what the gateway itself adds when
	// the store's audit hashing is not competing for the 2 cores.
	b.Run("audit=off", func(b *testing.B) { benchOverhead(b, false) })
}

func benchOverhead(b *testing.B, audit bool) {
	up := newFakeOpenAI(b)
	tn := demoTenant("tnt_demo")
	tn.Quotas.Models = &core.ModelQuotas{MaxRequestsPerMinute: core.Ptr(1 << 30),
		TokenBudget: &core.TokenBudget{Window: "day", MaxTokens: core.Ptr[int64](1 << 50)}}
	e := newEnv(b, envOpt{tenant: &tn, providers: providersJSON(up.srv.URL+"/v1", ""), deps: func(d *stackb.Deps) {
		d.FlushInterval = 50 * time.Millisecond
		if !audit {
			d.Audit = nil
		}
	}})
	gwURL := e.serve(b)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	body := []byte(`{"model":"tier:balanced","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Summarize the quarterly report for the growth team."}],"max_tokens":256}`)
	do := func(url, bearer string) time.Duration {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+bearer)
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != 200 {
			b.Fatalf("%s: status %d", url, resp.StatusCode)
		}
		return d
	}
	direct := up.srv.URL + "/v1/chat/completions"
	via := gwURL + "/v1/chat/completions"
	for i := 0; i < 200; i++ { // warm connections and caches
		do(direct, "k")
		do(via, "user")
	}
	var ms runtime.MemStats
	mallocs := func() uint64 { runtime.ReadMemStats(&ms); return ms.Mallocs }

	dLat := make([]time.Duration, 0, b.N)
	gLat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	m0 := mallocs()
	for i := 0; i < b.N; i++ {
		dLat = append(dLat, do(direct, "k"))
	}
	m1 := mallocs()
	for i := 0; i < b.N; i++ {
		gLat = append(gLat, do(via, "user"))
	}
	m2 := mallocs()
	b.StopTimer()
	// Interleave a second pass so drift hits both sides alike.
	for i := 0; i < b.N; i++ {
		dLat = append(dLat, do(direct, "k"))
		gLat = append(gLat, do(via, "user"))
	}
	slices.Sort(dLat)
	slices.Sort(gLat)
	pct := func(s []time.Duration, p float64) time.Duration { return s[int(float64(len(s)-1)*p)] }
	b.ReportMetric(float64(pct(gLat, 0.5)-pct(dLat, 0.5))/1e3, "p50-added-µs")
	b.ReportMetric(float64(pct(gLat, 0.99)-pct(dLat, 0.99))/1e3, "p99-added-µs")
	b.ReportMetric(float64(pct(dLat, 0.5))/1e3, "p50-direct-µs")
	b.ReportMetric(float64(pct(gLat, 0.5))/1e3, "p50-gateway-µs")
	added := int64(m2-m1) - int64(m1-m0)
	b.ReportMetric(float64(added)/float64(b.N), "added-allocs/req")
}

// BenchmarkGatewayChat_InProcess is the in-process ModelPort path Stack A
// takes (builtin echo-1): the gateway's own cost without HTTP.
func BenchmarkGatewayChat_InProcess(b *testing.B) {
	tn := demoTenant("tnt_demo")
	tn.Quotas.Models = &core.ModelQuotas{MaxRequestsPerMinute: core.Ptr(1 << 30),
		TokenBudget: &core.TokenBudget{Window: "day", MaxTokens: core.Ptr[int64](1 << 50)}}
	e := newEnv(b, envOpt{tenant: &tn})
	ctx := context.Background()
	req := chatReq("tier:fast", "Summarize the quarterly report for the growth team.")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.gw.Chat(ctx, e.auth, req); err != nil {
			b.Fatal(err)
		}
	}
}
