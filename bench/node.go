package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
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
}

// probe reads the node's cumulative CPU seconds and current RSS bytes.
type probe func(ctx context.Context) (cpu float64, rss int64, err error)

// ProcProbe reads /proc/<pid>/stat and /proc/<pid>/status of a local node.
func ProcProbe(pid int) (probe, string, error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	p := func(context.Context) (float64, int64, error) {
		raw, err := os.ReadFile(dir + "/stat")
		if err != nil {
			return 0, 0, err
		}
		// The command name may hold spaces: fields start after its ")".
		s := string(raw)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			return 0, 0, fmt.Errorf("%s/stat: unexpected format", dir)
		}
		f := strings.Fields(s[i+1:])
		// After ")": state(0) ... utime is field 14 of stat, index 11 here.
		if len(f) < 13 {
			return 0, 0, fmt.Errorf("%s/stat: too few fields", dir)
		}
		ut, err1 := strconv.ParseFloat(f[11], 64)
		st, err2 := strconv.ParseFloat(f[12], 64)
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("%s/stat: bad utime/stime", dir)
		}
		rss, err := statusRSS(dir + "/status")
		return (ut + st) / clockTicks, rss, err
	}
	if _, _, err := p(context.Background()); err != nil {
		return nil, "", err
	}
	return p, dir, nil
}

func statusRSS(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fs := strings.Fields(rest)
			if len(fs) < 1 {
				break
			}
			kb, err := strconv.ParseInt(fs[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS", path)
}

// MetricsProbe scrapes process_cpu_seconds_total and
// process_resident_memory_bytes from a node's /metrics.
func MetricsProbe(hc *http.Client, metricsURL string) (probe, string, error) {
	p := func(ctx context.Context) (float64, int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
		if err != nil {
			return 0, 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("%s: status %d", metricsURL, resp.StatusCode)
		}
		cpu, rss, seen := 0.0, int64(0), 0
		sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() && seen < 2 {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
				cpu, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
				seen++
			} else if v, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
				var f float64
				f, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
				rss = int64(f)
				seen++
			}
			if err != nil {
				return 0, 0, fmt.Errorf("%s: %w", metricsURL, err)
			}
		}
		if seen < 2 {
			return 0, 0, fmt.Errorf("%s: no process_cpu_seconds_total / process_resident_memory_bytes", metricsURL)
		}
		return cpu, rss, nil
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
	cpu, rss, err := w.probe(context.Background())
	if err != nil {
		return
	}
	w.cpu0 = cpu
	w.stats = NodeStats{Source: w.source, RSSStart: rss, RSSPeak: rss}
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
				if _, rss, err := w.probe(context.Background()); err == nil {
					w.mu.Lock()
					w.stats.RSSPeak = max(w.stats.RSSPeak, rss)
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
	cpu, rss, err := w.probe(context.Background())
	if err != nil {
		return NodeStats{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.CPUSeconds = cpu - w.cpu0
	w.stats.RSSEnd = rss
	w.stats.RSSPeak = max(w.stats.RSSPeak, rss)
	return w.stats
}
