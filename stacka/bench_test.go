package stacka_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/store"
	"github.com/agentos/agentos/store/postgres"
	"github.com/agentos/agentos/store/postgres/pgtest"
)

func benchTenants(c *stackaConfig, ts tenants) {
	c.Workers = 512
	c.MaxQueued = 1 << 20
	for _, tn := range ts {
		tn.Quotas.Runs = &core.RunQuotas{MaxConcurrentRuns: core.Ptr(1 << 20), RunCreateQPS: core.Ptr(1e9), RunCreateBurst: core.Ptr(1 << 30)}
		tn.Quotas.Tools = &core.ToolQuotas{ToolCallsPerMinute: core.Ptr(1 << 30)}
	}
}

func waitIdle(tb testing.TB, n *testNode) {
	tb.Helper()
	testkit.WaitEvery(tb, "an empty queue and no active run", 2*time.Minute, 2*time.Millisecond, func() bool {
		st, _ := n.svc.Stats(context.Background())
		return st.QueueDepth == 0 && st.ActiveRuns == 0
	})
}

// createRuns creates count runs of agent from conc goroutines.
func createRuns(tb testing.TB, n *testNode, agent string, count, conc int) []time.Duration {
	a := authFor("tnt_a", "usr_a")
	var wg sync.WaitGroup
	var mu sync.Mutex
	lat := make([]time.Duration, 0, count)
	next := make(chan int, count)
	for i := 0; i < count; i++ {
		next <- i
	}
	close(next)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				_, _, err := n.svc.CreateRun(context.Background(), a, agent, core.RunRequest{
					Input: core.RunInput{Type: "text", Text: "benchmark run " + strconv.Itoa(i)}, IdempotencyKey: core.NewID("idem")}, "")
				if err != nil {
					tb.Error(err)
					return
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lat
}

// BenchmarkRuns_CompletedPerSecond measures runs created and driven to
// completion (model step, one tool call, model step: 15 durable events per
// run, fsync on) through the real executor and store.
func BenchmarkRuns_CompletedPerSecond(b *testing.B) {
	benchRunsCompleted(b, newNode(b, benchTenants))
}

// BenchmarkRuns_CompletedPerSecondPostgres is the same benchmark with the
// store on PostgreSQL (AGENTOS_TEST_POSTGRES_URL).
func BenchmarkRuns_CompletedPerSecondPostgres(b *testing.B) {
	st, err := postgres.Open(context.Background(), pgtest.URL(b), postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	n := startNode(b, st, true, benchTenants)
	b.Cleanup(func() { n.close(); st.Close() })
	benchRunsCompleted(b, n)
}

func benchRunsCompleted(b *testing.B, n *testNode) {
	n.putAgent("tok-a", "agt_bench", "tool.echo")
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	lat := createRuns(b, n, "agt_bench", b.N, 512)
	waitIdle(b, n)
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "runs/s")
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "create_p50_ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "create_p99_ms")
	}
	// CPU per run says what the machine could do when it is not shared.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu_us/run")
	b.ReportMetric(0, "ns/op")
	runs, _, _ := n.st.ListRuns(context.Background(), "tnt_a", core.RunFilter{Limit: 1, Status: core.RunCompleted})
	if b.N > 0 && len(runs) != 1 {
		b.Fatal("no completed run")
	}
}

// BenchmarkSSE_DeliveryLatency1000Streams follows one run with 1,000
// concurrent SSE clients (plain line readers, so the client side costs
// little) and measures, per delivered live event, the time from the event
// being handed to the hub after its commit (seen by an in-process probe
// stream) to its arrival at each client; commit_p99_ms measures from the
// event's creation, i.e. including the durable commit.
func BenchmarkSSE_DeliveryLatency1000Streams(b *testing.B) {
	const streams = 1000
	release := make(chan struct{})
	var relMu sync.Mutex
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		relMu.Lock()
		ch := release
		relMu.Unlock()
		<-ch
		_, _ = w.Write([]byte(`{"output":{"ok":true}}`))
	}))
	defer hook.Close()
	n := newNode(b, benchTenants)
	n.do("PUT", "/v1/tools/tool.hook", "tok-a", map[string]any{"tool": map[string]any{"kind": "http", "config": map[string]any{"url": hook.URL}}})
	n.putAgent("tok-a", "agt_h", "tool.hook")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams}}
	var (
		fromPublish, fromCreate []time.Duration
		drainCPU                time.Duration
	)
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		relMu.Lock()
		release = make(chan struct{})
		ch := release
		relMu.Unlock()
		id := n.createRun("tok-a", "agt_h", "x")["run_id"].(string)
		testkit.WaitEvery(b, "the run to hold in its tool call", time.Minute, time.Millisecond, func() bool {
			r, _ := n.st.GetRun(context.Background(), "tnt_a", id)
			return r.Open != nil && r.Open.Kind == "tool"
		})
		r, _ := n.st.GetRun(context.Background(), "tnt_a", id)
		liveFrom := r.LastSequence
		var (
			mu       sync.Mutex
			arrivals []map[int64]time.Time
			wg       sync.WaitGroup
			ready    sync.WaitGroup
		)
		ready.Add(streams)
		for s := 0; s < streams; s++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mine := map[int64]time.Time{}
				defer func() {
					mu.Lock()
					arrivals = append(arrivals, mine)
					mu.Unlock()
				}()
				req, _ := http.NewRequest("GET", n.srv.URL+"/v1/runs/"+id+"/events", nil)
				req.Header.Set("Authorization", "Bearer tok-a")
				resp, err := client.Do(req)
				if err != nil {
					ready.Done()
					b.Error(err)
					return
				}
				defer resp.Body.Close()
				rd := bufio.NewReaderSize(resp.Body, 64<<10)
				signaled := false
				for {
					line, err := rd.ReadSlice('\n')
					if err != nil {
						break
					}
					if len(line) < 4 || string(line[:4]) != "id: " {
						continue
					}
					seq, _ := strconv.ParseInt(strings.TrimSpace(string(line[4:])), 10, 64)
					if seq > liveFrom {
						mine[seq] = time.Now()
					} else if seq == liveFrom && !signaled {
						signaled = true
						ready.Done()
					}
				}
				if !signaled {
					ready.Done()
				}
			}()
		}
		ready.Wait()
		published := map[int64]time.Time{}
		probeDone, probeReady := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(probeDone)
			// From liveFrom-1: the stream subscribes before it replays, so
			// the replayed liveFrom says the probe is live.
			_ = n.svc.StreamEvents(context.Background(), authFor("tnt_a", "usr_a"), id, liveFrom-1, func(ev core.Event) error {
				if ev.Sequence == liveFrom {
					close(probeReady)
				} else {
					published[ev.Sequence] = time.Now()
				}
				return nil
			})
		}()
		select {
		case <-probeReady:
		case <-probeDone:
			b.Fatal("the probe stream ended before it replayed the last event")
		}
		cpu0 := cpuTime()
		close(ch)
		wg.Wait()
		<-probeDone
		drainCPU += cpuTime() - cpu0
		evs, _ := n.st.ListEvents(context.Background(), "tnt_a", id, liveFrom, 0)
		created := map[int64]time.Time{}
		for _, ev := range evs {
			created[ev.Sequence] = ev.Time
		}
		for _, m := range arrivals {
			for seq, at := range m {
				fromPublish = append(fromPublish, at.Sub(published[seq]))
				fromCreate = append(fromCreate, at.Sub(created[seq]))
			}
		}
	}
	b.StopTimer()
	if len(fromPublish) == 0 {
		b.Fatal("no live events delivered")
	}
	pct := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(fromPublish, 0.50), "p50_ms")
	b.ReportMetric(pct(fromPublish, 0.99), "p99_ms")
	b.ReportMetric(pct(fromCreate, 0.99), "commit_p99_ms")
	b.ReportMetric(float64(len(fromPublish))/float64(b.N), "deliveries/op")
	// CPU of the whole process (server, executor and the 1,000 clients)
	// per stream per event batch, from release to the last stream's end.
	b.ReportMetric(float64(drainCPU.Microseconds())/float64(b.N*streams), "cpu_us/stream")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssKB() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

// BenchmarkMemory_10kStoredRuns completes 10,000 runs (150,000 stored
// events) and reports the heap and resident set afterwards.
func BenchmarkMemory_10kStoredRuns(b *testing.B) {
	for i := 0; i < b.N; i++ {
		n := newNode(b, benchTenants)
		n.putAgent("tok-a", "agt_bench", "tool.echo")
		createRuns(b, n, "agt_bench", 10000, 512)
		waitIdle(b, n)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap_MiB")
		b.ReportMetric(float64(rssKB())/1024, "rss_MiB")
		fi, _ := os.Stat(n.st.(*store.Store).Path())
		b.ReportMetric(float64(fi.Size())/(1<<20), "db_MiB")
		b.ReportMetric(0, "ns/op")
		n.close()
	}
	_ = fmt.Sprint
}
