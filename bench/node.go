package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentos/agentos/internal/promtext"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// it is 100 on every Linux the binary targets.
const clockTicks = 100

// NodeStats is what the node spent over the measured window.
type NodeStats struct {
	// Source says where the figures came from: "/proc/<pid>" or the
	// /metrics URL; "" when neither could be read.
	Source string
	// CPUSeconds is user+system CPU time the node used in the window.
	CPUSeconds float64
	// RSS at the window's start and end, and the highest sampled in it.
	RSSStart, RSSEnd, RSSPeak int64
	// AnonPeak is the highest anonymous resident memory sampled (the heap,
	// stacks and runtime; RssAnon). VmRSS adds file pages on top — the
	// binary's text and the store's mapped pages — which the kernel can drop
	// and how many are mapped depends on its readahead and page-cache folio
	// sizes. Zero when the source cannot tell them apart (/metrics).
	AnonPeak int64
}

// memSample is one reading of resident memory: VmRSS, and RssAnon where
// known (0 otherwise).
type memSample struct{ rss, anon int64 }

// probe reads the node's cumulative CPU seconds and current memory.
type probe func(ctx context.Context) (cpu float64, mem memSample, err error)

// ProcProbe reads /proc/<pid>/stat and /proc/<pid>/status of a local node.
func ProcProbe(pid int) (probe, string, error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	p := func(context.Context) (float64, memSample, error) {
		raw, err := os.ReadFile(dir + "/stat")
		if err != nil {
			return 0, memSample{}, err
		}
		// The command name may hold spaces: fields start after its ")".
		s := string(raw)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			return 0, memSample{}, fmt.Errorf("%s/stat: unexpected format", dir)
		}
		f := strings.Fields(s[i+1:])
		// After ")": state(0) ... utime is field 14 of stat, index 11 here.
		if len(f) < 13 {
			return 0, memSample{}, fmt.Errorf("%s/stat: too few fields", dir)
		}
		ut, err1 := strconv.ParseFloat(f[11], 64)
		st, err2 := strconv.ParseFloat(f[12], 64)
		if err1 != nil || err2 != nil {
			return 0, memSample{}, fmt.Errorf("%s/stat: bad utime/stime", dir)
		}
		mem, err := statusMem(dir + "/status")
		return (ut + st) / clockTicks, mem, err
	}
	if _, _, err := p(context.Background()); err != nil {
		return nil, "", err
	}
	return p, dir, nil
}

// statusMem reads VmRSS and RssAnon (both in kB) from /proc/<pid>/status.
func statusMem(path string) (memSample, error) {
	f, err := os.Open(path)
	if err != nil {
		return memSample{}, err
	}
	defer f.Close()
	var m memSample
	seenRSS := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "RssAnon") {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) < 1 {
			continue
		}
		kb, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return memSample{}, fmt.Errorf("%s: %s: %w", path, name, err)
		}
		if name == "VmRSS" {
			m.rss, seenRSS = kb<<10, true
		} else {
			m.anon = kb << 10
		}
	}
	if !seenRSS {
		return memSample{}, fmt.Errorf("%s: no VmRSS", path)
	}
	return m, nil
}

// MetricsProbe scrapes process_cpu_seconds_total and
// process_resident_memory_bytes from a node's /metrics. A malformed line
// elsewhere on the page does not stop it; one of the two missing does.
func MetricsProbe(hc *http.Client, metricsURL string) (probe, string, error) {
	p := func(ctx context.Context) (float64, memSample, error) {
		page, err := promtext.Fetch(ctx, hc, metricsURL)
		var malformed *promtext.SyntaxError
		if err != nil && !errors.As(err, &malformed) {
			return 0, memSample{}, err
		}
		cpu, okCPU := page.Value("process_cpu_seconds_total")
		rss, okRSS := page.Value("process_resident_memory_bytes")
		if !okCPU || !okRSS {
			if malformed != nil {
				return 0, memSample{}, fmt.Errorf("%s: no process_cpu_seconds_total / process_resident_memory_bytes (%w)", metricsURL, malformed)
			}
			return 0, memSample{}, fmt.Errorf("%s: no process_cpu_seconds_total / process_resident_memory_bytes", metricsURL)
		}
		return cpu, memSample{rss: int64(rss)}, nil
	}
	if _, _, err := p(context.Background()); err != nil {
		return nil, "", err
	}
	return p, metricsURL, nil
}

// watcher samples a probe while a run is measured.
type watcher struct {
	probe  probe
	source string
	mu     sync.Mutex
	stats  NodeStats
	cpu0   float64
	stop   chan struct{}
	done   chan struct{}
}

func newWatcher(p probe, source string) *watcher {
	return &watcher{probe: p, source: source}
}

// start takes the window's first reading and samples RSS every 100 ms.
func (w *watcher) start() {
	if w == nil || w.probe == nil {
		return
	}
	cpu, mem, err := w.probe(context.Background())
	if err != nil {
		return
	}
	w.cpu0 = cpu
	w.stats = NodeStats{Source: w.source, RSSStart: mem.rss}
	w.note(mem)
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				if _, mem, err := w.probe(context.Background()); err == nil {
					w.mu.Lock()
					w.note(mem)
					w.mu.Unlock()
				}
			}
		}
	}()
}

// finish takes the last reading and returns the window's stats.
func (w *watcher) finish() NodeStats {
	if w == nil || w.stop == nil {
		return NodeStats{}
	}
	close(w.stop)
	<-w.done
	cpu, mem, err := w.probe(context.Background())
	if err != nil {
		return NodeStats{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.CPUSeconds = cpu - w.cpu0
	w.stats.RSSEnd = mem.rss
	w.note(mem)
	return w.stats
}

// note folds one memory reading into the peaks (callers hold mu once the
// sampler runs).
func (w *watcher) note(m memSample) {
	w.stats.RSSPeak = max(w.stats.RSSPeak, m.rss)
	w.stats.AnonPeak = max(w.stats.AnonPeak, m.anon)
}
