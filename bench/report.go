package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is what `agentos bench` prints (and, with --json, encodes).
type Report struct {
	Target string `json:"target"`
	// Rate and Duration are what was asked; Sent is how many measured
	// requests went out, OK how many succeeded.
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration_ns"`
	Sent     int           `json:"sent"`
	OK       int           `json:"ok"`
	// Throughput is successes per second over the measured window (first
	// scheduled send to last completion).
	Throughput float64 `json:"throughput_per_s"`
	// Latency is from each request's scheduled send time to its end, for
	// successful requests.
	Latency Percentiles `json:"latency_ns"`
	// FirstAnswer, for runs, is scheduled send → the 201 of the create.
	FirstAnswer *Percentiles `json:"first_answer_ns,omitempty"`
	// Errors counts failed requests by code ("429 rate_limited", "timeout").
	Errors map[string]int `json:"errors"`
	// Late is how many sends the generator itself started over 1 ms late.
	Late int       `json:"late_sends"`
	Node NodeStats `json:"node"`
	// CPUPerRequest is the node's CPU over the window divided by Sent.
	CPUPerRequest time.Duration `json:"cpu_per_request_ns"`
}

// Summarize turns a run's samples and the node's figures into a Report.
func Summarize(target string, r Result, node NodeStats) Report {
	rep := Report{Target: target, Rate: r.Options.Rate, Duration: r.Options.Duration, Sent: len(r.Samples),
		Errors: map[string]int{}, Late: r.Late, Node: node}
	lat := make([]time.Duration, 0, len(r.Samples))
	var first []time.Duration
	for _, s := range r.Samples {
		if s.Code != "ok" {
			rep.Errors[s.Code]++
			continue
		}
		rep.OK++
		lat = append(lat, s.Done.Sub(s.Scheduled))
		if !s.First.IsZero() {
			first = append(first, s.First.Sub(s.Scheduled))
		}
	}
	rep.Latency = percentiles(lat)
	if len(first) > 0 {
		p := percentiles(first)
		rep.FirstAnswer = &p
	}
	if win := r.End.Sub(r.Start); win > 0 {
		rep.Throughput = float64(rep.OK) / win.Seconds()
	}
	if node.Source != "" && rep.Sent > 0 {
		rep.CPUPerRequest = time.Duration(node.CPUSeconds / float64(rep.Sent) * float64(time.Second))
	}
	return rep
}

// Print writes the report for a person.
func (r Report) Print(w io.Writer) {
	fmt.Fprintf(w, "target      %s\n", r.Target)
	fmt.Fprintf(w, "schedule    %.0f/s for %s (open loop, latency from scheduled send)\n", r.Rate, r.Duration)
	fmt.Fprintf(w, "sent        %d   ok %d   errors %d   late sends %d\n", r.Sent, r.OK, r.Sent-r.OK, r.Late)
	fmt.Fprintf(w, "throughput  %.1f ok/s\n", r.Throughput)
	pl := func(name string, p Percentiles) {
		fmt.Fprintf(w, "%-11s p50 %s   p90 %s   p99 %s   p99.9 %s   max %s\n", name,
			fmtDur(p.P50), fmtDur(p.P90), fmtDur(p.P99), fmtDur(p.P999), fmtDur(p.Max))
	}
	if r.FirstAnswer != nil {
		pl("created", *r.FirstAnswer)
		pl("completed", r.Latency)
	} else {
		pl("latency", r.Latency)
	}
	if len(r.Errors) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, r.Errors[k]))
		}
		fmt.Fprintf(w, "errors      %s\n", strings.Join(parts, ", "))
	}
	if r.Node.Source == "" {
		fmt.Fprintf(w, "node        not measured (no pid and no readable /metrics)\n")
		return
	}
	fmt.Fprintf(w, "node cpu    %.2f s in the window = %s per request (%s)\n", r.Node.CPUSeconds, fmtDur(r.CPUPerRequest), r.Node.Source)
	fmt.Fprintf(w, "node rss    start %s   peak %s   end %s", fmtMiB(r.Node.RSSStart), fmtMiB(r.Node.RSSPeak), fmtMiB(r.Node.RSSEnd))
	if r.Node.AnonPeak > 0 {
		fmt.Fprintf(w, "   (anonymous peak %s; the rest is file pages: the binary, the store's mapped pages)", fmtMiB(r.Node.AnonPeak))
	}
	fmt.Fprintln(w)
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func fmtMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
