// Package alerts is the node's built-in alerting layer: rules over narrow
// readers (metrics, readiness, store, backends, queue, disk, tenant usage)
// that app wires from the node, an engine that moves each alert through
// pending, firing and resolved, and the mails those moves call for.
//
// Adding a rule: name it, write its eval func and list it (with its
// severity and default For) in BuiltinRules, all in rules.go; its
// Prometheus twin goes in docs/ops/agentos-rules.yml.
package alerts

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// Config tunes the node's built-in alert rules. Zero fields take the
// defaults of DefaultConfig.
type Config struct {
	// Interval is how often the rules are evaluated (default 30s).
	Interval time.Duration
	// For overrides, per rule name, how long a condition must hold before
	// the alert fires (defaults: each rule's For; 0 fires at once).
	For map[string]time.Duration
	// RepeatInterval re-sends the firing mail of an alert that is still
	// firing; 0 sends one mail per firing episode.
	RepeatInterval time.Duration
	// RateWindow is the window of the 5xx ratio and the run latency
	// quantile (default 5m).
	RateWindow time.Duration
	// HTTP5xxRatio fires when 5xx answers exceed this share of a stack's
	// requests over RateWindow (default 0.05), given at least
	// HTTPMinRequests requests (default 20).
	HTTP5xxRatio    float64
	HTTPMinRequests float64
	// RunP95LatencyMS fires when the p95 of agentos_run_latency_ms over
	// RateWindow exceeds it (default 120000), given at least LatencyMinRuns
	// finished runs (default 10).
	RunP95LatencyMS float64
	LatencyMinRuns  float64
	// QueueDepth fires when more runs than this wait (default 100).
	QueueDepth int
	// DiskFreeRatio fires when the data dir's filesystem has less than
	// this share free (default 0.10).
	DiskFreeRatio float64
	// ConcurrencyWindow: the concurrency alert's condition is "rejections
	// of kind max_concurrent_runs rose within the last ConcurrencyWindow"
	// (default 1m); its For (default 5m) makes it "sustained".
	ConcurrencyWindow time.Duration
}

// DefaultConfig is the built-in alerting layer.
func DefaultConfig() Config {
	c := Config{
		Interval:          30 * time.Second,
		RateWindow:        5 * time.Minute,
		HTTP5xxRatio:      0.05,
		HTTPMinRequests:   20,
		RunP95LatencyMS:   120_000,
		LatencyMinRuns:    10,
		QueueDepth:        100,
		DiskFreeRatio:     0.10,
		ConcurrencyWindow: time.Minute,
		For:               map[string]time.Duration{},
	}
	for _, r := range BuiltinRules() {
		c.For[r.Name] = r.For
	}
	return c
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Interval = core.PositiveOr(c.Interval, d.Interval)
	c.RateWindow = core.PositiveOr(c.RateWindow, d.RateWindow)
	c.HTTP5xxRatio = core.PositiveOr(c.HTTP5xxRatio, d.HTTP5xxRatio)
	c.HTTPMinRequests = core.PositiveOr(c.HTTPMinRequests, d.HTTPMinRequests)
	c.RunP95LatencyMS = core.PositiveOr(c.RunP95LatencyMS, d.RunP95LatencyMS)
	c.LatencyMinRuns = core.PositiveOr(c.LatencyMinRuns, d.LatencyMinRuns)
	c.QueueDepth = core.PositiveOr(c.QueueDepth, d.QueueDepth)
	c.DiskFreeRatio = core.PositiveOr(c.DiskFreeRatio, d.DiskFreeRatio)
	c.ConcurrencyWindow = core.PositiveOr(c.ConcurrencyWindow, d.ConcurrencyWindow)
	merged := map[string]time.Duration{}
	maps.Copy(merged, d.For)
	maps.Copy(merged, c.For)
	c.For = merged
	return c
}

// Status is one pending or firing alert (the console's core.Alert) and
// when its firing mail went out.
type Status struct {
	core.Alert
	// Notified is when the last firing mail was accepted (nil: none yet,
	// or no SMTP configured).
	Notified *time.Time `json:"notified_at"`
}

// finding is one instance of a rule's condition holding now.
type finding struct {
	labels  map[string]string
	value   float64
	summary string
}

// Rule is one condition over the node.
type Rule struct {
	// Name is the alert name (one of the Alert* constants for built-ins).
	Name     string
	Severity string
	// For is how long the condition must hold before the alert fires,
	// unless Config.For names the rule.
	For time.Duration
	// tenantLabel names the label that carries a tenant id (tenant alerts
	// are shown only to that tenant and platform admins).
	tenantLabel string
	eval        func(ctx context.Context, e *Engine) ([]finding, error)
}

// alertInstance is one alert (rule + labels) through its episode.
type alertInstance struct {
	rule        *Rule
	key         string
	labels      map[string]string
	value       float64
	summary     string
	since       time.Time
	firingSince time.Time
	notifiedAt  time.Time
	// cleared is set when the condition went away while firing; the
	// instance stays until the resolved mail is accepted (or given up).
	cleared      time.Time
	resolveTries int
}

type mailItem struct {
	inst     *alertInstance
	resolved bool
	subject  string
	body     string
}

// Engine evaluates the rules every interval and mails state changes.
type Engine struct {
	cfg   Config
	log   zerolog.Logger
	rules []*Rule
	now   func() time.Time
	// send delivers one mail; nil means no delivery (state only).
	send func(ctx context.Context, subject, body string) error
	// src is what the built-in rules read; zero in rule-engine unit tests.
	src Sources

	mu      sync.Mutex
	active  map[string]*alertInstance
	samples []metricSample
	evals   int

	firing        *prometheus.GaugeVec
	notifications *prometheus.CounterVec
	tenantGauges  *prometheus.GaugeVec
	diskFree      prometheus.Gauge
	routerReady   *prometheus.GaugeVec
	storeUp       prometheus.Gauge
}

// maxResolveTries bounds retries of a resolved mail the server refuses.
const maxResolveTries = 5

func newEngine(cfg Config, log zerolog.Logger, reg prometheus.Registerer, rules []*Rule) *Engine {
	e := &Engine{cfg: cfg.withDefaults(), log: log.With().Str("component", "alerts").Logger(), rules: rules,
		now: core.Now, active: map[string]*alertInstance{}}
	e.firing = registerOrReuse(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "agentos_alerts_firing",
		Help: "1 while an alert of the node's built-in rules fires, by alert name (instances summed)."}, []string{"alert"}))
	e.notifications = registerOrReuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentos_alert_notifications_total",
		Help: "Alert mails attempted, by kind (firing|resolved) and outcome (sent|failed)."}, []string{"kind", "outcome"}))
	e.tenantGauges = registerOrReuse(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "agentos_tenant_budget_usage",
		Help: "Each tenant's model usage in its current budget window and its limit, by tenant and measure (tokens_used, tokens_limit, cost_usd_used, cost_usd_limit, requests)."},
		[]string{"tenant", "measure"}))
	e.diskFree = registerOrReuse(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "agentos_disk_free_ratio",
		Help: "Share of the data dir's filesystem still available (0..1)."}))
	e.routerReady = registerOrReuse(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "agentos_router_ready",
		Help: "1 when the router's readiness checks pass and its listener accepts, by stack."}, []string{"stack"}))
	e.storeUp = registerOrReuse(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "agentos_store_up",
		Help: "1 when the store answers a ping."}))
	return e
}

// New is the engine over the built-in rules reading src. send delivers
// one mail; nil keeps state only (no delivery). Its gauges and counters
// are registered on reg.
func New(cfg Config, log zerolog.Logger, reg prometheus.Registerer, src Sources, send func(ctx context.Context, subject, body string) error) *Engine {
	e := newEngine(cfg, log, reg, BuiltinRules())
	e.src, e.send = src, send
	return e
}

// registerOrReuse registers c, or returns the collector already
// registered under the same name (a node opened twice on one registry).
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

// Run evaluates now and then every interval until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	e.Evaluate(ctx)
	core.Every(ctx, 0, e.cfg.Interval, func(ctx context.Context) bool {
		e.Evaluate(ctx)
		return true
	})
}

func labelKey(name string, labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	var b strings.Builder
	b.WriteString(name)
	for _, k := range keys {
		b.WriteString("|" + k + "=" + labels[k])
	}
	return b.String()
}

// ruleResult is one rule's answer in one evaluation.
type ruleResult struct {
	rule     *Rule
	findings []finding
	err      error
}

// Evaluate runs every rule once, moves each alert through pending, firing
// and resolved, and sends the mails those moves call for. Its stages:
// sample the metrics, run the rules, advance the alert states, deliver.
func (e *Engine) Evaluate(ctx context.Context) {
	if e.src.Metrics != nil {
		e.sample()
	}
	results := e.runRules(ctx)
	now := e.now()
	mails := e.advance(results, now)
	e.deliver(ctx, mails, now)
}

// runRules asks every rule whether its condition holds, bounded by one
// interval (at least 5s).
func (e *Engine) runRules(ctx context.Context) []ruleResult {
	ctx, cancel := context.WithTimeout(ctx, max(e.cfg.Interval, 5*time.Second))
	defer cancel()
	results := make([]ruleResult, 0, len(e.rules))
	for _, r := range e.rules {
		fs, err := r.eval(ctx, e)
		results = append(results, ruleResult{r, fs, err})
	}
	return results
}

// advance moves the alerts through pending, firing and resolved for the
// rules' answers at now, and returns the mails those moves call for.
func (e *Engine) advance(results []ruleResult, now time.Time) []mailItem {
	var mails []mailItem
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evals++
	seen := map[string]bool{}
	for _, res := range results {
		if res.err != nil {
			// A rule that cannot tell keeps its alerts as they are.
			e.log.Warn().Err(res.err).Str("alert", res.rule.Name).Msg("alert rule evaluation failed")
			for k, in := range e.active {
				if in.rule == res.rule {
					seen[k] = true
				}
			}
			continue
		}
		for _, f := range res.findings {
			key := labelKey(res.rule.Name, f.labels)
			seen[key] = true
			if in := e.observe(res.rule, key, f, now); in != nil {
				mails = append(mails, e.mail(in, false))
			}
		}
	}
	for key, in := range e.active {
		if !seen[key] {
			if m, ok := e.clear(key, in, now); ok {
				mails = append(mails, m)
			}
		}
	}
	e.updateFiringGauge()
	return mails
}

// observe records that rule's condition holds for f at now; it returns the
// instance when a firing mail is due. Caller holds e.mu.
func (e *Engine) observe(rule *Rule, key string, f finding, now time.Time) *alertInstance {
	in := e.active[key]
	switch {
	case in != nil && !in.cleared.IsZero():
		// It came back before its resolved mail went out: same episode,
		// no new mail.
		in.cleared, in.resolveTries = time.Time{}, 0
	case in == nil:
		in = &alertInstance{rule: rule, key: key, labels: f.labels, since: now}
		e.active[key] = in
	}
	in.value, in.summary = f.value, f.summary
	if in.firingSince.IsZero() && now.Sub(in.since) >= e.cfg.For[rule.Name] {
		in.firingSince = now
		e.log.Warn().Str("alert", rule.Name).Interface("labels", in.labels).Str("summary", in.summary).Msg("alert firing")
	}
	if !in.firingSince.IsZero() && e.send != nil &&
		(in.notifiedAt.IsZero() || e.cfg.RepeatInterval > 0 && now.Sub(in.notifiedAt) >= e.cfg.RepeatInterval) {
		return in
	}
	return nil
}

// clear handles an alert whose condition no longer holds; ok reports a
// resolved mail to send. Caller holds e.mu.
func (e *Engine) clear(key string, in *alertInstance, now time.Time) (m mailItem, ok bool) {
	switch {
	case in.firingSince.IsZero():
		delete(e.active, key) // pending that never fired: forget it
	case in.notifiedAt.IsZero() || e.send == nil:
		e.log.Info().Str("alert", in.rule.Name).Interface("labels", in.labels).Msg("alert resolved")
		delete(e.active, key) // nobody was told it fired
	default:
		if in.cleared.IsZero() {
			in.cleared = now
			e.log.Info().Str("alert", in.rule.Name).Interface("labels", in.labels).Msg("alert resolved")
		}
		return e.mail(in, true), true
	}
	return mailItem{}, false
}

// deliver sends the mails outside the lock and records each outcome: a
// sent firing mail marks the alert notified, a sent resolved mail ends it,
// a refused resolved mail is retried up to maxResolveTries.
func (e *Engine) deliver(ctx context.Context, mails []mailItem, now time.Time) {
	for _, m := range mails {
		err := e.send(ctx, m.subject, m.body)
		kind := "firing"
		if m.resolved {
			kind = "resolved"
		}
		e.mu.Lock()
		switch {
		case err == nil && m.resolved:
			delete(e.active, m.inst.key)
		case err == nil:
			m.inst.notifiedAt = now
		case m.resolved:
			m.inst.resolveTries++
			if m.inst.resolveTries >= maxResolveTries {
				delete(e.active, m.inst.key)
			}
		}
		e.mu.Unlock()
		if err != nil {
			e.notifications.WithLabelValues(kind, "failed").Inc()
			e.log.Error().Err(err).Str("alert", m.inst.rule.Name).Str("kind", kind).Msg("alert mail not sent")
			continue
		}
		e.notifications.WithLabelValues(kind, "sent").Inc()
	}
}

func (e *Engine) updateFiringGauge() {
	e.firing.Reset()
	for _, r := range e.rules {
		e.firing.WithLabelValues(r.Name).Set(0)
	}
	for _, in := range e.active {
		if !in.firingSince.IsZero() && in.cleared.IsZero() {
			e.firing.WithLabelValues(in.rule.Name).Add(1)
		}
	}
}

func (e *Engine) mail(in *alertInstance, resolved bool) mailItem {
	var labels []string
	for k, v := range in.labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	where := "this node"
	if e.src.Node != "" {
		where = e.src.Node
	}
	var console string
	if e.src.ConsoleURL != "" {
		console = e.src.ConsoleURL + "/console/"
	}
	state := "FIRING"
	if resolved {
		state = "RESOLVED"
	}
	subject := fmt.Sprintf("[AgentOS %s] %s %s on %s", state, in.rule.Name, strings.Join(labels, " "), where)
	var b strings.Builder
	fmt.Fprintf(&b, "Alert:     %s\nState:     %s\nSeverity:  %s\n", in.rule.Name, strings.ToLower(state), in.rule.Severity)
	if len(labels) > 0 {
		fmt.Fprintf(&b, "Labels:    %s\n", strings.Join(labels, ", "))
	}
	fmt.Fprintf(&b, "Summary:   %s\nValue:     %g\nSince:     %s\n", in.summary, in.value, in.since.UTC().Format(time.RFC3339))
	if !in.firingSince.IsZero() {
		fmt.Fprintf(&b, "Firing:    %s\n", in.firingSince.UTC().Format(time.RFC3339))
	}
	if resolved {
		fmt.Fprintf(&b, "Resolved:  %s\n", in.cleared.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "Node:      %s\n", where)
	if console != "" {
		fmt.Fprintf(&b, "Console:   %s\n", console)
	}
	if resolved {
		b.WriteString("\nThe condition cleared. No action needed.\n")
	} else {
		b.WriteString("\nYou get one mail per firing episode and one when it resolves.\n")
	}
	return mailItem{inst: in, resolved: resolved, subject: subject, body: b.String()}
}

// Status lists the pending and firing alerts, firing first, then by name.
func (e *Engine) Status() []Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Status, 0, len(e.active))
	for _, in := range e.active {
		if !in.cleared.IsZero() {
			continue // resolved, only its mail is outstanding
		}
		st := Status{Alert: core.Alert{Name: in.rule.Name, Severity: in.rule.Severity, State: core.AlertPending,
			Labels: maps.Clone(in.labels), Summary: in.summary, Value: in.value, Since: in.since}}
		if !in.firingSince.IsZero() {
			st.State = core.AlertFiring
			fs := in.firingSince
			st.FiringSince = &fs
		}
		if !in.notifiedAt.IsZero() {
			na := in.notifiedAt
			st.Notified = &na
		}
		if in.rule.tenantLabel != "" {
			st.TenantID = in.labels[in.rule.tenantLabel]
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int {
		if a.State != b.State {
			return strings.Compare(a.State, b.State) // firing < pending
		}
		return strings.Compare(labelKey(a.Name, a.Labels), labelKey(b.Name, b.Labels))
	})
	return out
}

// ---------- metric samples for rate and quantile rules ----------

// series is one sampled time series: its name (a histogram's _count and
// _bucket series are named so), its labels and, for a bucket, its upper
// bound. Rules read the labels directly; nothing is parsed back out of a
// string.
type series struct {
	name   string
	labels map[string]string
	le     float64
	value  float64
}

// metricSample is one snapshot of the series the rate rules read, keyed by
// a canonical series id.
type metricSample struct {
	at     time.Time
	values map[string]series
}

// sampledFamilies are the metric families kept between evaluations.
var sampledFamilies = map[string]bool{
	"agentos_http_requests_total":    true,
	"agentos_quota_rejections_total": true,
	"agentos_run_latency_ms":         true,
}

func newSeries(name string, m *dto.Metric, le float64, v float64) series {
	labels := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	return series{name: name, labels: labels, le: le, value: v}
}

// id is the series' canonical key within a sample.
func (s series) id() string {
	return labelKey(s.name, s.labels) + fmt.Sprintf("|le=%g", s.le)
}

// sample gathers the metrics reader and keeps what the rate rules need,
// for the longest window any rule looks back.
func (e *Engine) sample() {
	mfs, err := e.src.Metrics.Gather()
	if err != nil && len(mfs) == 0 {
		e.log.Warn().Err(err).Msg("gather metrics for alerts")
		return
	}
	snap := metricSample{at: e.now(), values: map[string]series{}}
	add := func(s series) { snap.values[s.id()] = s }
	for _, mf := range mfs {
		if !sampledFamilies[mf.GetName()] {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				add(newSeries(mf.GetName(), m, 0, m.GetCounter().GetValue()))
			case m.GetHistogram() != nil:
				h := m.GetHistogram()
				add(newSeries(mf.GetName()+"_count", m, 0, float64(h.GetSampleCount())))
				for _, b := range h.GetBucket() {
					add(newSeries(mf.GetName()+"_bucket", m, b.GetUpperBound(), float64(b.GetCumulativeCount())))
				}
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.samples = append(e.samples, snap)
	keep := max(e.cfg.RateWindow, e.cfg.ConcurrencyWindow) + e.cfg.Interval
	cut := 0
	for cut < len(e.samples)-1 && snap.at.Sub(e.samples[cut].at) > keep {
		cut++
	}
	e.samples = e.samples[cut:]
}

// increase returns, for every series named name, how much the counter grew
// over window (a reset counts from zero) as the series' value. With fewer
// than two samples there is no increase yet.
func (e *Engine) increase(name string, window time.Duration) []series {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.samples) < 2 {
		return nil
	}
	last := e.samples[len(e.samples)-1]
	base := e.samples[len(e.samples)-2]
	for _, s := range e.samples[:len(e.samples)-1] {
		if last.at.Sub(s.at) <= window {
			base = s
			break
		}
	}
	var out []series
	for k, v := range last.values {
		if v.name != name {
			continue
		}
		b := base.values[k].value
		if v.value < b {
			b = 0
		}
		v.value -= b
		out = append(out, v)
	}
	return out
}

// quantileFromBuckets estimates q from cumulative bucket increases, the
// way Prometheus' histogram_quantile does (linear within a bucket; the
// +Inf bucket answers the highest finite bound).
func quantileFromBuckets(q float64, buckets map[float64]float64, count float64) float64 {
	if count <= 0 {
		return math.NaN()
	}
	bounds := make([]float64, 0, len(buckets))
	for le := range buckets {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	rank := q * count
	prevLE, prevCount := 0.0, 0.0
	for _, le := range bounds {
		c := buckets[le]
		if c >= rank {
			if math.IsInf(le, 1) {
				return prevLE
			}
			if c == prevCount {
				return le
			}
			return prevLE + (le-prevLE)*(rank-prevCount)/(c-prevCount)
		}
		prevLE, prevCount = le, c
	}
	return prevLE
}
