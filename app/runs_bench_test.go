package app_test

import (
	"context"
	"net/url"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/bench"
	"github.com/agentos/agentos/internal/testkit/testnode"
	"github.com/agentos/agentos/store"
	bolt "go.etcd.io/bbolt"
)

// BenchmarkEdgeRuns explains the black-box figure of `agentos bench runs`
// in process: a real node (bbolt with fsync, every edge guarantee on,
// access log at info into a discarding writer, Stack B in process with
// metering and audit) gets runs of the bench echo agent created over HTTP
// and followed over their SSE streams to the terminal event, 32 at a time,
// by bench's own driver. It reports per completed run what depends little
// on how loaded the machine is: the process CPU and allocations (node and
// driver together), the bytes of pages bbolt wrote (its page allocations:
// what each commit's pwrite and fdatasync carry), and the key and value
// bytes the run left in the store.
func BenchmarkEdgeRuns(b *testing.B) {
	cfg := testnode.Config(b)
	cfg.MaxEventStreams, cfg.MaxEventStreamsPerTenant = 1000, 1000
	n, creds := startBenchNode(b, cfg)
	st, ok := n.Store().(*store.Store)
	if !ok {
		b.Fatalf("store is %T, want bbolt", n.Store())
	}
	hc := bench.NewClient(64)
	base, _ := url.Parse(n.URL(app.StackA))
	fx, err := bench.Setup(context.Background(), hc, base, creds.PlatformAdmin.APIKey, 5000, "")
	if err != nil {
		b.Fatal(err)
	}
	runs := &bench.Runs{Client: hc, Base: base, APIKey: fx.APIKey, Agent: bench.AgentID, Tag: "edge"}
	seq := 0
	run := func(count int) {
		var wg sync.WaitGroup
		next := make(chan int, count)
		for range count {
			next <- seq
			seq++
		}
		close(next)
		for range 32 {
			wg.Go(func() {
				for i := range next {
					if o := runs.Do(context.Background(), i); o.Code != "ok" {
						b.Errorf("run %d: %s", i, o.Code)
					}
				}
			})
		}
		wg.Wait()
	}
	run(300) // warm: connections, caches, the store's first pages
	stored0 := storedBytes(b, st.DB())
	pages0 := pageAlloc(st.DB())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m0, c0 := ms.Mallocs, processCPU()
	b.ResetTimer()
	start := time.Now()
	run(b.N)
	el := time.Since(start)
	b.StopTimer()
	c1 := processCPU()
	runtime.ReadMemStats(&ms)
	pages1 := pageAlloc(st.DB())
	stored1 := storedBytes(b, st.DB())
	b.ReportMetric(float64(b.N)/el.Seconds(), "runs/s")
	b.ReportMetric(float64((c1-c0).Microseconds())/float64(b.N), "cpu-µs/run")
	b.ReportMetric(float64(ms.Mallocs-m0)/float64(b.N), "allocs/run")
	b.ReportMetric(float64(pages1-pages0)/float64(b.N), "page-bytes/run")
	b.ReportMetric(float64(stored1-stored0)/float64(b.N), "stored-bytes/run")
	b.ReportMetric(0, "ns/op")
}

// storedBytes sums the key and value bytes of every bucket of db.
func storedBytes(tb testing.TB, db *bolt.DB) int64 {
	var n int64
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, bk *bolt.Bucket) error {
			return bk.ForEach(func(k, v []byte) error {
				n += int64(len(k) + len(v))
				return nil
			})
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// pageAlloc is the bytes of pages bbolt has allocated (written) in
// committed transactions so far.
func pageAlloc(db *bolt.DB) int64 {
	s := db.Stats()
	return s.TxStats.GetPageAlloc()
}
