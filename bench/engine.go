// Package bench is the open-loop load generator behind `agentos bench`: it
// sends requests to a running node on a fixed schedule, measures each one's
// latency from the time it was scheduled (so a slow server cannot hide its
// queueing by slowing the sender down: no coordinated omission), and reports
// throughput, latency percentiles, errors by code and what the node spent
// (CPU per request, RSS) while serving them.
//
// It sends only to the base URLs it is given: it follows no redirects and
// refuses an events_url on another host. Every run is bounded by its
// duration plus a drain timeout, so it always stops by itself.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Limits of one run; a run outside them is refused before anything is sent.
const (
	MaxRate     = 100_000
	MaxDuration = 30 * time.Minute
)

// Options schedule a run.
type Options struct {
	// Rate is requests per second, sent at even intervals.
	Rate float64
	// Duration is how long requests are sent for (after Warmup).
	Duration time.Duration
	// Warmup is sent at the same rate first and left out of every figure
	// (connections, caches, the node's pools warm up).
	Warmup time.Duration
	// Timeout bounds each request, including following a run to its end;
	// a request still open then counts as error "timeout".
	Timeout time.Duration
}

// Validate names the bad option.
func (o Options) Validate() error {
	switch {
	case !(o.Rate > 0) || o.Rate > MaxRate:
		return fmt.Errorf("rate: must be > 0 and ≤ %d per second", MaxRate)
	case o.Duration <= 0 || o.Duration > MaxDuration:
		return fmt.Errorf("duration: must be > 0 and ≤ %s", MaxDuration)
	case o.Warmup < 0 || o.Warmup > MaxDuration:
		return fmt.Errorf("warmup: must be ≥ 0 and ≤ %s", MaxDuration)
	case o.Timeout <= 0 || o.Timeout > 10*time.Minute:
		return errors.New("timeout: must be > 0 and ≤ 10m")
	}
	return nil
}

// Outcome is what one request ended with. Code is "ok" for success, or
// the HTTP status and the error code of the answer ("429 rate_limited"),
// or "timeout", or "transport" for a failure to talk to the node.
type Outcome struct {
	Code string
	// Done is when the request finished (the terminal event for a run).
	Done time.Time
	// First is, when set, when the first answer arrived (a run's 201), so
	// a report can show create latency apart from completion.
	First time.Time
}

// Request performs request number seq; it must return when ctx ends.
type Request func(ctx context.Context, seq int) Outcome

// Sample is one measured request.
type Sample struct {
	Scheduled time.Time
	Outcome
}

// Result is every measured sample of a run plus its timing.
type Result struct {
	Options Options
	// Start and End bound the measured window: the first measured send and
	// the moment the last measured request finished.
	Start, End time.Time
	Samples    []Sample
	// Late is how many sends left more than 1 ms after their scheduled time
	// (the generator itself could not keep up: the machine is saturated).
	Late int
}

// Run sends Rate requests a second for Warmup+Duration and waits for each
// to finish or time out. onWindow is called (when not nil) as the measured
// window opens, so the caller can sample the node's counters.
func Run(ctx context.Context, o Options, do Request, onWindow func()) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	interval := time.Duration(float64(time.Second) / o.Rate)
	warm := int(math.Round(o.Warmup.Seconds() * o.Rate))
	total := warm + int(math.Round(o.Duration.Seconds()*o.Rate))
	if total-warm < 1 {
		return Result{}, errors.New("rate × duration is less than one request")
	}
	samples := make([]Sample, total)
	var wg sync.WaitGroup
	var mu sync.Mutex
	late := 0
	begin := time.Now().Add(5 * time.Millisecond)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i := 0; i < total; i++ {
		at := begin.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				wg.Wait()
				return Result{}, ctx.Err()
			}
		} else if -d > time.Millisecond && i >= warm {
			late++
		}
		if i == warm && onWindow != nil {
			onWindow()
		}
		wg.Add(1)
		go func(i int, at time.Time) {
			defer wg.Done()
			rctx, cancel := context.WithDeadline(ctx, at.Add(o.Timeout))
			out := do(rctx, i)
			cancel()
			if out.Done.IsZero() {
				out.Done = time.Now()
			}
			if out.Code == "transport" && rctx.Err() != nil && ctx.Err() == nil {
				out.Code = "timeout"
			}
			mu.Lock()
			samples[i] = Sample{Scheduled: at, Outcome: out}
			mu.Unlock()
		}(i, at)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	res := Result{Options: o, Samples: samples[warm:], Late: late}
	res.Start = res.Samples[0].Scheduled
	for _, s := range res.Samples {
		if s.Done.After(res.End) {
			res.End = s.Done
		}
	}
	return res, nil
}

// Percentiles of a latency distribution.
type Percentiles struct {
	P50, P90, P99, P999, Max time.Duration
}

// percentiles sorts d in place and reads the nearest-rank percentiles.
func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return d[max(0, min(i, len(d)-1))]
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: d[len(d)-1]}
}
