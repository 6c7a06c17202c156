package stackb_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stackb"
	"github.com/agentos/agentos/stackb/internal/fakeup"
)

// BenchmarkDropInOpenLoop measures the latency the drop-in surfaces add
// over calling the upstream directly, at a fixed arrival rate (open loop:
// request i is sent at start + i/rate whether or not earlier ones have
// answered, and its latency counts from that scheduled time, so a stall
// shows up as queueing instead of slowing the load down). Pairs:
//
//	POST /openai/v1/chat/completions → openai-kind upstream, vs that upstream
//	POST /anthropic/v1/messages      → anthropic-kind upstream, vs that upstream
//
// DROPIN_RATE (default 1000 req/s) and DROPIN_SECONDS (default 5) set the
// load; each phase is warmed for a second first. One run regardless of
// b.N: the figures are the reported metrics.
func BenchmarkDropInOpenLoop(b *testing.B) {
	rate := envInt("DROPIN_RATE", 1000)
	secs := envInt("DROPIN_SECONDS", 5)
	oa, err := fakeup.OpenAI("up-openai")
	if err != nil {
		b.Fatal(err)
	}
	defer oa.Close()
	an, err := fakeup.Anthropic("up-anthropic")
	if err != nil {
		b.Fatal(err)
	}
	defer an.Close()
	tn := demoTenant("tnt_demo")
	tn.Quotas.Models = &core.ModelQuotas{MaxRequestsPerMinute: core.Ptr(1 << 30),
		TokenBudget: &core.TokenBudget{Window: "day", MaxTokens: core.Ptr[int64](1 << 50)}}
	providers := fmt.Sprintf(`{"providers": [
	  {"name": "up-openai", "kind": "openai", "base_url": %q, "models": [{"model_id": "m-oa", "capabilities": ["chat"]}]},
	  {"name": "up-anthropic", "kind": "anthropic", "base_url": %q, "models": [{"model_id": "m-an", "capabilities": ["chat"]}]}]}`,
		oa.URL, strings.TrimSuffix(an.URL, "/v1"))
	e := newEnv(b, envOpt{tenant: &tn, providers: providers, deps: func(d *stackb.Deps) { d.FlushInterval = 50 * time.Millisecond }})
	gw := e.serve(b)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}}

	chat := `{"model":%q,"max_tokens":64,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Summarize the quarterly report for the growth team."}]}`
	messages := `{"model":%q,"max_tokens":64,"system":"You are terse.","messages":[{"role":"user","content":"Summarize the quarterly report for the growth team."}]}`
	pairs := []struct {
		name         string
		direct, via  string
		dBody, vBody string
		dAuth        func(*http.Request)
	}{
		{"openai-chat", oa.URL + "/chat/completions", gw + "/openai/v1/chat/completions", fmt.Sprintf(chat, "m-oa"), fmt.Sprintf(chat, "up-openai/m-oa"),
			func(r *http.Request) {}},
		{"anthropic-messages", an.URL + "/messages", gw + "/anthropic/v1/messages", fmt.Sprintf(messages, "m-an"), fmt.Sprintf(messages, "up-anthropic/m-an"),
			func(r *http.Request) { r.Header.Set("anthropic-version", "2023-06-01") }},
	}
	b.ResetTimer()
	for _, p := range pairs {
		send := func(url, body string, auth func(*http.Request)) func() error {
			return func() error {
				req, _ := http.NewRequestWithContext(context.Background(), "POST", url, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer user")
				auth(req)
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			}
		}
		direct := send(p.direct, p.dBody, p.dAuth)
		via := send(p.via, p.vBody, p.dAuth)
		openLoop(b, rate, time.Second, direct)
		openLoop(b, rate, time.Second, via)
		d := openLoop(b, rate, time.Duration(secs)*time.Second, direct)
		v := openLoop(b, rate, time.Duration(secs)*time.Second, via)
		for _, q := range []float64{0.5, 0.9, 0.99} {
			name := "p" + strconv.Itoa(int(q*100))
			b.ReportMetric(float64(pct(d, q))/1e3, p.name+"-"+name+"-direct-µs")
			b.ReportMetric(float64(pct(v, q))/1e3, p.name+"-"+name+"-via-µs")
			b.ReportMetric(float64(pct(v, q)-pct(d, q))/1e3, p.name+"-"+name+"-added-µs")
		}
	}
}

// openLoop sends at rate per second for dur and returns the sorted
// latencies, each from its request's scheduled send time.
func openLoop(b *testing.B, rate int, dur time.Duration, do func() error) []time.Duration {
	n := int(dur.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d) // pacing the arrivals is the point of an open loop
		}
		wg.Add(1)
		go func(i int, at time.Time) {
			defer wg.Done()
			if err := do(); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			lat[i] = time.Since(at)
		}(i, at)
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	slices.Sort(lat)
	return lat
}

func pct(s []time.Duration, p float64) time.Duration { return s[int(float64(len(s)-1)*p)] }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
