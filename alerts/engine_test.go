package alerts

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// ---------- rule engine: state machine with a fake clock ----------

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// switchRule is a rule whose condition the test turns on and off.
type switchRule struct {
	mu  sync.Mutex
	on  map[string]bool // label value → holds
	err error
}

func (s *switchRule) set(label string, on bool) {
	s.mu.Lock()
	s.on[label] = on
	s.mu.Unlock()
}

func (s *switchRule) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *switchRule) eval(context.Context, *Engine) ([]finding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	var out []finding
	for l, on := range s.on {
		if on {
			out = append(out, finding{labels: map[string]string{"backend": l}, value: 1, summary: l + " is down"})
		}
	}
	return out, nil
}

type sentMail struct{ subject, body string }

func newTestEngine(t *testing.T, cfg Config, sw *switchRule, sendErr *error) (*Engine, *fakeClock, *[]sentMail) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)}
	rule := &Rule{Name: "TestBackendDown", Severity: "warning", eval: sw.eval}
	e := newEngine(cfg, zerolog.Nop(), prometheus.NewRegistry(), []*Rule{rule})
	e.now = clock.Now
	var mails []sentMail
	var mu sync.Mutex
	e.send = func(_ context.Context, subject, body string) error {
		if sendErr != nil && *sendErr != nil {
			return *sendErr
		}
		mu.Lock()
		mails = append(mails, sentMail{subject, body})
		mu.Unlock()
		return nil
	}
	return e, clock, &mails
}

// evaluateLater moves the clock on one evaluation interval (30 s) and
// evaluates.
func evaluateLater(e *Engine, clock *fakeClock) {
	clock.Advance(30 * time.Second)
	e.Evaluate(context.Background())
}

func subjects(ms []sentMail) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.subject)
	}
	return out
}

func TestAlertEngine_Lifecycle(t *testing.T) {
	type step struct {
		advance   time.Duration
		on        map[string]bool
		wantState map[string]string // label → pending|firing ("" = absent)
		wantMails []string          // subject fragments of mails sent by this step
	}
	cases := []struct {
		name   string
		repeat time.Duration
		steps  []step
	}{
		{name: "pending, firing after for, one mail, resolved notice", steps: []step{
			{on: map[string]bool{"b1": true}, wantState: map[string]string{"b1": "pending"}},
			{advance: 30 * time.Second, on: map[string]bool{"b1": true}, wantState: map[string]string{"b1": "pending"}},
			{advance: 30 * time.Second, on: map[string]bool{"b1": true}, wantState: map[string]string{"b1": "firing"}, wantMails: []string{"[AgentOS FIRING] TestBackendDown backend=b1"}},
			{advance: 30 * time.Second, on: map[string]bool{"b1": true}, wantState: map[string]string{"b1": "firing"}},
			{advance: 10 * time.Minute, on: map[string]bool{"b1": true}, wantState: map[string]string{"b1": "firing"}},
			{advance: 30 * time.Second, on: map[string]bool{"b1": false}, wantState: map[string]string{"b1": ""}, wantMails: []string{"[AgentOS RESOLVED] TestBackendDown backend=b1"}},
			{advance: 30 * time.Second, on: map[string]bool{"b1": false}, wantState: map[string]string{"b1": ""}},
		}},
		{name: "a blip shorter than for never mails", steps: []step{
			{on: map[string]bool{"b1": true}, wantState: map[string]string{"b1": "pending"}},
			{advance: 30 * time.Second, on: map[string]bool{"b1": false}, wantState: map[string]string{"b1": ""}},
			{advance: 30 * time.Second, on: map[string]bool{"b1": true}, wantState: map[string]string{"b1": "pending"}},
		}},
		{name: "repeat interval re-sends while firing", repeat: 5 * time.Minute, steps: []step{
			{on: map[string]bool{"b1": true}},
			{advance: time.Minute, on: map[string]bool{"b1": true}, wantState: map[string]string{"b1": "firing"}, wantMails: []string{"FIRING"}},
			{advance: 4 * time.Minute, on: map[string]bool{"b1": true}},
			{advance: time.Minute, on: map[string]bool{"b1": true}, wantMails: []string{"FIRING"}},
		}},
		{name: "instances are per label set", steps: []step{
			{on: map[string]bool{"b1": true}},
			{advance: time.Minute, on: map[string]bool{"b1": true, "b2": true}, wantState: map[string]string{"b1": "firing", "b2": "pending"}, wantMails: []string{"backend=b1"}},
			{advance: time.Minute, on: map[string]bool{"b1": false, "b2": true}, wantState: map[string]string{"b1": "", "b2": "firing"}, wantMails: []string{"RESOLVED] TestBackendDown backend=b1", "FIRING] TestBackendDown backend=b2"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sw := &switchRule{on: map[string]bool{}}
			e, clock, mails := newTestEngine(t, Config{For: map[string]time.Duration{"TestBackendDown": time.Minute}, RepeatInterval: tc.repeat}, sw, nil)
			for i, st := range tc.steps {
				clock.Advance(st.advance)
				for l, on := range st.on {
					sw.set(l, on)
				}
				before := len(*mails)
				e.Evaluate(context.Background())
				got := (*mails)[before:]
				if len(got) != len(st.wantMails) {
					t.Fatalf("step %d: mails %q, want %d matching %q", i, subjects(got), len(st.wantMails), st.wantMails)
				}
				for _, want := range st.wantMails {
					found := false
					for _, m := range got {
						found = found || strings.Contains(m.subject, want)
					}
					if !found {
						t.Fatalf("step %d: no mail matching %q in %q", i, want, subjects(got))
					}
				}
				states := map[string]string{}
				for _, a := range e.Status() {
					states[a.Labels["backend"]] = a.State
				}
				for l, want := range st.wantState {
					if states[l] != want {
						t.Fatalf("step %d: %s state %q, want %q (all %v)", i, l, states[l], want, states)
					}
				}
			}
		})
	}
}

func TestAlertEngine_FailedMailIsRetried(t *testing.T) {
	sw := &switchRule{on: map[string]bool{"b1": true}}
	var sendErr error = errors.New("451 try again")
	e, clock, mails := newTestEngine(t, Config{For: map[string]time.Duration{"TestBackendDown": 0}}, sw, &sendErr)
	e.Evaluate(context.Background())
	if len(*mails) != 0 || e.Status()[0].Notified != nil {
		t.Fatalf("a refused mail must not count as notified: %+v", e.Status())
	}
	sendErr = nil
	evaluateLater(e, clock)
	if got := subjects(*mails); len(got) != 1 || !strings.Contains(got[0], "FIRING") {
		t.Fatalf("firing mail not retried: %q", got)
	}
	// The resolved notice is retried too, and the alert leaves the list at once.
	sw.set("b1", false)
	sendErr = errors.New("451 try again")
	evaluateLater(e, clock)
	if len(e.Status()) != 0 {
		t.Fatalf("cleared alert still listed: %+v", e.Status())
	}
	sendErr = nil
	evaluateLater(e, clock)
	if got := subjects(*mails); len(got) != 2 || !strings.Contains(got[1], "RESOLVED") {
		t.Fatalf("resolved mail not retried: %q", got)
	}
	evaluateLater(e, clock)
	if len(*mails) != 2 {
		t.Fatalf("resolved mail sent twice: %q", subjects(*mails))
	}
}

func TestAlertEngine_RuleErrorKeepsState(t *testing.T) {
	sw := &switchRule{on: map[string]bool{"b1": true}}
	e, clock, mails := newTestEngine(t, Config{For: map[string]time.Duration{"TestBackendDown": 0}}, sw, nil)
	e.Evaluate(context.Background())
	sw.setErr(errors.New("store timeout"))
	evaluateLater(e, clock)
	if st := e.Status(); len(st) != 1 || st[0].State != "firing" {
		t.Fatalf("an erroring rule must keep its alerts: %+v", st)
	}
	if len(*mails) != 1 {
		t.Fatalf("mails %q, want only the firing one", subjects(*mails))
	}
}

func TestQuantileFromBuckets(t *testing.T) {
	cases := []struct {
		name    string
		buckets map[float64]float64
		count   float64
		q, want float64
	}{
		{"all in first bucket", map[float64]float64{10: 100, 100: 100, math.Inf(1): 100}, 100, 0.95, 9.5},
		{"interpolated in second bucket", map[float64]float64{10: 50, 100: 100, math.Inf(1): 100}, 100, 0.95, 91},
		{"over every finite bound", map[float64]float64{10: 0, 100: 0, math.Inf(1): 10}, 10, 0.95, 100},
		{"no observations", map[float64]float64{10: 0}, 0, 0.95, math.NaN()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := quantileFromBuckets(tc.q, tc.buckets, tc.count)
			if math.IsNaN(tc.want) != math.IsNaN(got) || !math.IsNaN(got) && math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("quantile %g = %g, want %g", tc.q, got, tc.want)
			}
		})
	}
}

// ---------- the node: a model backend goes away and comes back ----------

// TestAlertRules_RatesFromMetrics drives the rate and quantile rules with
// the node's own metric families on a real registry and a fake clock.
func TestAlertRules_RatesFromMetrics(t *testing.T) {
	type series struct {
		http    *prometheus.CounterVec
		quota   *prometheus.CounterVec
		latency prometheus.Histogram
	}
	cases := []struct {
		name string
		rule func() *Rule
		// each step advances 30s, then applies its traffic, then evaluates
		steps     []func(s series)
		wantFire  bool
		wantLabel map[string]string
	}{
		{name: "5xx over 5% of enough requests fires", rule: func() *Rule { return &Rule{Name: AlertHigh5xxRate, eval: ruleHigh5xx} },
			steps: []func(series){
				func(s series) { s.http.WithLabelValues("stack-b", "2xx").Add(1) },
				func(s series) {
					s.http.WithLabelValues("stack-b", "2xx").Add(80)
					s.http.WithLabelValues("stack-b", "5xx").Add(20)
					s.http.WithLabelValues("stack-a", "2xx").Add(100)
				},
			}, wantFire: true, wantLabel: map[string]string{"stack": "stack-b"}},
		{name: "5xx under the minimum request count stays quiet", rule: func() *Rule { return &Rule{Name: AlertHigh5xxRate, eval: ruleHigh5xx} },
			steps: []func(series){
				func(s series) { s.http.WithLabelValues("stack-b", "2xx").Add(1) },
				func(s series) { s.http.WithLabelValues("stack-b", "5xx").Add(5) },
			}},
		{name: "5xx outside the rate window is forgotten", rule: func() *Rule { return &Rule{Name: AlertHigh5xxRate, eval: ruleHigh5xx} },
			steps: append([]func(series){
				func(s series) { s.http.WithLabelValues("stack-b", "2xx").Add(1) },
				func(s series) { s.http.WithLabelValues("stack-b", "5xx").Add(50) },
			}, repeatStep(11, func(s series) { s.http.WithLabelValues("stack-b", "2xx").Add(10) })...)},
		{name: "slow runs push p95 over the threshold", rule: func() *Rule { return &Rule{Name: AlertRunLatencyP95High, eval: ruleRunLatency} },
			steps: []func(series){
				func(s series) { s.latency.Observe(10) },
				func(s series) {
					for i := 0; i < 20; i++ {
						s.latency.Observe(200_000)
					}
				},
			}, wantFire: true},
		{name: "fast runs keep p95 low", rule: func() *Rule { return &Rule{Name: AlertRunLatencyP95High, eval: ruleRunLatency} },
			steps: []func(series){
				func(s series) { s.latency.Observe(10) },
				func(s series) {
					for i := 0; i < 50; i++ {
						s.latency.Observe(400)
					}
				},
			}},
		{name: "concurrency refusals at every evaluation fire", rule: func() *Rule {
			return &Rule{Name: AlertTenantConcurrencySustained, eval: ruleConcurrencySustained}
		},
			steps: repeatStep(4, func(s series) { s.quota.WithLabelValues("max_concurrent_runs").Inc() }), wantFire: true,
			wantLabel: map[string]string{"kind": "max_concurrent_runs"}},
		{name: "other quota kinds do not count", rule: func() *Rule {
			return &Rule{Name: AlertTenantConcurrencySustained, eval: ruleConcurrencySustained}
		},
			steps: repeatStep(4, func(s series) { s.quota.WithLabelValues("run_create_qps").Inc() })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			s := series{
				http:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentos_http_requests_total"}, []string{"stack", "code_class"}),
				quota: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentos_quota_rejections_total"}, []string{"kind"}),
				latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "agentos_run_latency_ms",
					Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000}}),
			}
			reg.MustRegister(s.http, s.quota, s.latency)
			clock := &fakeClock{now: time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)}
			cfg := Config{Interval: 30 * time.Second, RunP95LatencyMS: 30_000,
				For: map[string]time.Duration{AlertHigh5xxRate: 0, AlertRunLatencyP95High: 0, AlertTenantConcurrencySustained: 90 * time.Second}}
			e := newEngine(cfg, zerolog.Nop(), prometheus.NewRegistry(), []*Rule{tc.rule()})
			e.now, e.src.Metrics = clock.Now, reg
			e.Evaluate(context.Background())
			for _, step := range tc.steps {
				clock.Advance(30 * time.Second)
				step(s)
				e.Evaluate(context.Background())
			}
			var firing []Status
			for _, a := range e.Status() {
				if a.State == "firing" {
					firing = append(firing, a)
				}
			}
			if tc.wantFire != (len(firing) == 1) {
				t.Fatalf("firing %+v, want firing=%v", firing, tc.wantFire)
			}
			for k, v := range tc.wantLabel {
				if firing[0].Labels[k] != v {
					t.Fatalf("labels %v, want %s=%s", firing[0].Labels, k, v)
				}
			}
		})
	}
}

func repeatStep[T any](n int, f func(T)) []func(T) {
	out := make([]func(T), n)
	for i := range out {
		out[i] = f
	}
	return out
}
