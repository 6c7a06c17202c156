package app

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// Alert rule names. They match the alert names of
// docs/ops/agentos-rules.yml, so mail from the node and pages from
// Prometheus say the same thing.
const (
	AlertServiceDown                = "AgentOSServiceDown"
	AlertHigh5xxRate                = "AgentOSHigh5xxRate"
	AlertRunLatencyP95High          = "AgentOSRunLatencyP95High"
	AlertModelBackendUnreachable    = "AgentOSModelBackendUnreachable"
	AlertQueueBacklog               = "AgentOSQueueBacklog"
	AlertDiskNearlyFull             = "AgentOSDiskNearlyFull"
	AlertStoreUnavailable           = "AgentOSStoreUnavailable"
	AlertTenantBudgetExceeded       = "AgentOSTenantBudgetExceeded"
	AlertTenantConcurrencySustained = "AgentOSTenantConcurrencyLimitSustained"
)

// Alert states as AlertStatus reports them.
const (
	alertStatePending = "pending"
	alertStateFiring  = "firing"
)

// AlertConfig tunes the node's built-in alert rules. Zero fields take the
// defaults of DefaultAlertConfig.
type AlertConfig struct {
	// Interval is how often the rules are evaluated (default 30s).
	Interval time.Duration
	// For overrides, per rule name, how long a condition must hold before
	// the alert fires (defaults in DefaultAlertConfig; 0 fires at once).
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

// DefaultAlertConfig is the built-in alerting layer.
func DefaultAlertConfig() AlertConfig {
	return AlertConfig{
		Interval:          30 * time.Second,
		RateWindow:        5 * time.Minute,
		HTTP5xxRatio:      0.05,
		HTTPMinRequests:   20,
		RunP95LatencyMS:   120_000,
		LatencyMinRuns:    10,
		QueueDepth:        100,
		DiskFreeRatio:     0.10,
		ConcurrencyWindow: time.Minute,
		For: map[string]time.Duration{
			AlertServiceDown:                1 * time.Minute,
			AlertHigh5xxRate:                5 * time.Minute,
			AlertRunLatencyP95High:          10 * time.Minute,
			AlertModelBackendUnreachable:    2 * time.Minute,
			AlertQueueBacklog:               5 * time.Minute,
			AlertDiskNearlyFull:             5 * time.Minute,
			AlertStoreUnavailable:           1 * time.Minute,
			AlertTenantBudgetExceeded:       0,
			AlertTenantConcurrencySustained: 5 * time.Minute,
		},
	}
}

// withDefaults fills zero fields from DefaultAlertConfig.
func (c AlertConfig) withDefaults() AlertConfig {
	d := DefaultAlertConfig()
	if c.Interval <= 0 {
		c.Interval = d.Interval
	}
	if c.RateWindow <= 0 {
		c.RateWindow = d.RateWindow
	}
	if c.HTTP5xxRatio <= 0 {
		c.HTTP5xxRatio = d.HTTP5xxRatio
	}
	if c.HTTPMinRequests <= 0 {
		c.HTTPMinRequests = d.HTTPMinRequests
	}
	if c.RunP95LatencyMS <= 0 {
		c.RunP95LatencyMS = d.RunP95LatencyMS
	}
	if c.LatencyMinRuns <= 0 {
		c.LatencyMinRuns = d.LatencyMinRuns
	}
	if c.QueueDepth <= 0 {
		c.QueueDepth = d.QueueDepth
	}
	if c.DiskFreeRatio <= 0 {
		c.DiskFreeRatio = d.DiskFreeRatio
	}
	if c.ConcurrencyWindow <= 0 {
		c.ConcurrencyWindow = d.ConcurrencyWindow
	}
	merged := map[string]time.Duration{}
	for k, v := range d.For {
		merged[k] = v
	}
	for k, v := range c.For {
		merged[k] = v
	}
	c.For = merged
	return c
}

// AlertStatus is one pending or firing alert, as the console and
// `agentos status` show it.
type AlertStatus struct {
	Name        string            `json:"name"`
	Severity    string            `json:"severity"`
	State       string            `json:"state"` // pending | firing
	Labels      map[string]string `json:"labels"`
	Summary     string            `json:"summary"`
	Value       float64           `json:"value"`
	Since       time.Time         `json:"since"`
	FiringSince *time.Time        `json:"firing_since"`
	// Notified is when the last firing mail was accepted (nil: none yet,
	// or no SMTP configured).
	Notified *time.Time `json:"notified_at"`
	TenantID string     `json:"tenant_id,omitempty"`
}

// finding is one instance of a rule's condition holding now.
type finding struct {
	labels  map[string]string
	value   float64
	summary string
}

// alertRule is one condition over the node.
type alertRule struct {
	name     string
	severity string
	// tenantLabel names the label that carries a tenant id (tenant alerts
	// are shown only to that tenant and platform admins).
	tenantLabel string
	eval        func(ctx context.Context, e *alertEngine) ([]finding, error)
}

// alertInstance is one alert (rule + labels) through its episode.
type alertInstance struct {
	rule        *alertRule
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

// alertEngine evaluates the rules every interval and mails state changes.
type alertEngine struct {
	cfg   AlertConfig
	log   zerolog.Logger
	rules []*alertRule
	now   func() time.Time
	// send delivers one mail; nil means no delivery (state only).
	send func(ctx context.Context, subject, body string) error
	// node is what the built-in rules read; nil in rule-engine unit tests.
	node *Node
	// gatherer is the registry the rate rules sample (the node's).
	gatherer prometheus.Gatherer

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

func newAlertEngine(cfg AlertConfig, log zerolog.Logger, reg prometheus.Registerer, rules []*alertRule) *alertEngine {
	e := &alertEngine{cfg: cfg.withDefaults(), log: log.With().Str("component", "alerts").Logger(), rules: rules,
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

// run evaluates every interval until ctx ends.
func (e *alertEngine) run(ctx context.Context) {
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		e.evaluate(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func labelKey(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	for _, k := range keys {
		b.WriteString("|" + k + "=" + labels[k])
	}
	return b.String()
}

// evaluate runs every rule once, moves each alert through pending, firing
// and resolved, and sends the mails those moves call for.
func (e *alertEngine) evaluate(ctx context.Context) {
	evalCtx, cancel := context.WithTimeout(ctx, max(e.cfg.Interval, 5*time.Second))
	defer cancel()
	if e.gatherer != nil {
		e.sample()
	}
	type result struct {
		rule     *alertRule
		findings []finding
		err      error
	}
	results := make([]result, 0, len(e.rules))
	for _, r := range e.rules {
		fs, err := r.eval(evalCtx, e)
		results = append(results, result{r, fs, err})
	}

	now := e.now()
	var mails []mailItem
	e.mu.Lock()
	e.evals++
	seen := map[string]bool{}
	for _, res := range results {
		if res.err != nil {
			// A rule that cannot tell keeps its alerts as they are.
			e.log.Warn().Err(res.err).Str("alert", res.rule.name).Msg("alert rule evaluation failed")
			for k, in := range e.active {
				if in.rule == res.rule {
					seen[k] = true
				}
			}
			continue
		}
		for _, f := range res.findings {
			key := labelKey(res.rule.name, f.labels)
			seen[key] = true
			in := e.active[key]
			if in == nil || !in.cleared.IsZero() {
				if in != nil && !in.cleared.IsZero() {
					// It came back before its resolved mail went out: same
					// episode, no new mail.
					in.cleared, in.resolveTries = time.Time{}, 0
				} else {
					in = &alertInstance{rule: res.rule, key: key, labels: f.labels, since: now}
					e.active[key] = in
				}
			}
			in.value, in.summary = f.value, f.summary
			if in.firingSince.IsZero() && now.Sub(in.since) >= e.cfg.For[res.rule.name] {
				in.firingSince = now
				e.log.Warn().Str("alert", in.rule.name).Interface("labels", in.labels).Str("summary", in.summary).Msg("alert firing")
			}
			if !in.firingSince.IsZero() && e.send != nil &&
				(in.notifiedAt.IsZero() || e.cfg.RepeatInterval > 0 && now.Sub(in.notifiedAt) >= e.cfg.RepeatInterval) {
				mails = append(mails, e.mail(in, false))
			}
		}
	}
	for key, in := range e.active {
		if seen[key] {
			continue
		}
		switch {
		case in.firingSince.IsZero():
			delete(e.active, key) // pending that never fired: forget it
		case in.notifiedAt.IsZero() || e.send == nil:
			e.log.Info().Str("alert", in.rule.name).Interface("labels", in.labels).Msg("alert resolved")
			delete(e.active, key) // nobody was told it fired
		default:
			if in.cleared.IsZero() {
				in.cleared = now
				e.log.Info().Str("alert", in.rule.name).Interface("labels", in.labels).Msg("alert resolved")
			}
			mails = append(mails, e.mail(in, true))
		}
	}
	e.updateFiringGauge()
	e.mu.Unlock()

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
			e.log.Error().Err(err).Str("alert", m.inst.rule.name).Str("kind", kind).Msg("alert mail not sent")
			continue
		}
		e.notifications.WithLabelValues(kind, "sent").Inc()
	}
}

func (e *alertEngine) updateFiringGauge() {
	e.firing.Reset()
	for _, r := range e.rules {
		e.firing.WithLabelValues(r.name).Set(0)
	}
	for _, in := range e.active {
		if !in.firingSince.IsZero() && in.cleared.IsZero() {
			e.firing.WithLabelValues(in.rule.name).Add(1)
		}
	}
}

func (e *alertEngine) mail(in *alertInstance, resolved bool) mailItem {
	var labels []string
	for k, v := range in.labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	where := "this node"
	var console string
	if e.node != nil {
		where = e.node.stackID
		if u := e.node.URL(StackA); u != "" {
			console = u + "/console/"
		}
	}
	state := "FIRING"
	if resolved {
		state = "RESOLVED"
	}
	subject := fmt.Sprintf("[AgentOS %s] %s %s on %s", state, in.rule.name, strings.Join(labels, " "), where)
	var b strings.Builder
	fmt.Fprintf(&b, "Alert:     %s\nState:     %s\nSeverity:  %s\n", in.rule.name, strings.ToLower(state), in.rule.severity)
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
func (e *alertEngine) Status() []AlertStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]AlertStatus, 0, len(e.active))
	for _, in := range e.active {
		if !in.cleared.IsZero() {
			continue // resolved, only its mail is outstanding
		}
		st := AlertStatus{Name: in.rule.name, Severity: in.rule.severity, State: alertStatePending,
			Labels: maps2(in.labels), Summary: in.summary, Value: in.value, Since: in.since}
		if !in.firingSince.IsZero() {
			st.State = alertStateFiring
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
	slices.SortFunc(out, func(a, b AlertStatus) int {
		if a.State != b.State {
			return strings.Compare(a.State, b.State) // firing < pending
		}
		return strings.Compare(labelKey(a.Name, a.Labels), labelKey(b.Name, b.Labels))
	})
	return out
}

func maps2(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ---------- metric samples for rate and quantile rules ----------

// metricSample is a flat snapshot of the counters the rate rules read.
type metricSample struct {
	at     time.Time
	values map[string]float64
}

// sampledFamilies are the metric families kept between evaluations.
var sampledFamilies = map[string]bool{
	"agentos_http_requests_total":    true,
	"agentos_quota_rejections_total": true,
	"agentos_run_latency_ms":         true,
}

func seriesKey(name string, m *dto.Metric, extra ...string) string {
	pairs := make([]string, 0, len(m.GetLabel())+1)
	for _, l := range m.GetLabel() {
		pairs = append(pairs, l.GetName()+"="+l.GetValue())
	}
	pairs = append(pairs, extra...)
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// sample gathers the node's registry and keeps what the rate rules need,
// for the longest window any rule looks back.
func (e *alertEngine) sample() {
	mfs, err := e.gatherer.Gather()
	if err != nil && len(mfs) == 0 {
		e.log.Warn().Err(err).Msg("gather metrics for alerts")
		return
	}
	s := metricSample{at: e.now(), values: map[string]float64{}}
	for _, mf := range mfs {
		if !sampledFamilies[mf.GetName()] {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				s.values[seriesKey(mf.GetName(), m)] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				h := m.GetHistogram()
				s.values[seriesKey(mf.GetName()+"_count", m)] = float64(h.GetSampleCount())
				for _, b := range h.GetBucket() {
					s.values[seriesKey(mf.GetName()+"_bucket", m, fmt.Sprintf("le=%g", b.GetUpperBound()))] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.samples = append(e.samples, s)
	keep := max(e.cfg.RateWindow, e.cfg.ConcurrencyWindow) + e.cfg.Interval
	cut := 0
	for cut < len(e.samples)-1 && s.at.Sub(e.samples[cut].at) > keep {
		cut++
	}
	e.samples = e.samples[cut:]
}

// increase returns, per series key with the given prefix, how much the
// counter grew over window (a reset counts from zero). With fewer than two
// samples there is no increase yet.
func (e *alertEngine) increase(prefix string, window time.Duration) map[string]float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]float64{}
	if len(e.samples) < 2 {
		return out
	}
	last := e.samples[len(e.samples)-1]
	base := e.samples[len(e.samples)-2]
	for _, s := range e.samples[:len(e.samples)-1] {
		if last.at.Sub(s.at) <= window {
			base = s
			break
		}
	}
	for k, v := range last.values {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		b := base.values[k]
		if v < b {
			b = 0
		}
		out[k] = v - b
	}
	return out
}

// labelOf extracts label's value from a series key.
func labelOf(key, label string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return ""
	}
	for _, p := range strings.Split(strings.TrimSuffix(key[i+1:], "}"), ",") {
		if k, v, ok := strings.Cut(p, "="); ok && k == label {
			return v
		}
	}
	return ""
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

// ---------- the built-in rules ----------

func builtinAlertRules() []*alertRule {
	return []*alertRule{
		{name: AlertServiceDown, severity: "critical", eval: ruleServiceDown},
		{name: AlertStoreUnavailable, severity: "critical", eval: ruleStoreUnavailable},
		{name: AlertModelBackendUnreachable, severity: "warning", eval: ruleBackendUnreachable},
		{name: AlertHigh5xxRate, severity: "warning", eval: ruleHigh5xx},
		{name: AlertRunLatencyP95High, severity: "warning", eval: ruleRunLatency},
		{name: AlertQueueBacklog, severity: "warning", eval: ruleQueueBacklog},
		{name: AlertDiskNearlyFull, severity: "warning", eval: ruleDiskNearlyFull},
		{name: AlertTenantBudgetExceeded, severity: "info", tenantLabel: "tenant", eval: ruleTenantBudget},
		{name: AlertTenantConcurrencySustained, severity: "warning", eval: ruleConcurrencySustained},
	}
}

// ruleServiceDown: a router's readiness checks fail, or its listener no
// longer accepts connections.
func ruleServiceDown(ctx context.Context, e *alertEngine) ([]finding, error) {
	var out []finding
	for _, name := range []string{StackA, StackB, StackFed} {
		r := e.node.routers[name]
		if r == nil {
			continue
		}
		var failed []string
		if conn, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", r.listener.Addr().String()); err != nil {
			failed = append(failed, "listener: "+err.Error())
		} else {
			conn.Close()
		}
		checks, ok := e.node.Ready(ctx, name)
		if !ok {
			for k, v := range checks {
				if v != "ok" {
					failed = append(failed, k+": "+v)
				}
			}
		}
		ready := 1.0
		if len(failed) > 0 {
			ready = 0
		}
		e.routerReady.WithLabelValues(name).Set(ready)
		if len(failed) > 0 {
			sort.Strings(failed)
			out = append(out, finding{labels: map[string]string{"stack": name}, value: float64(len(failed)),
				summary: fmt.Sprintf("%s is not ready: %s", name, strings.Join(failed, "; "))})
		}
	}
	return out, nil
}

func ruleStoreUnavailable(ctx context.Context, e *alertEngine) ([]finding, error) {
	if err := e.node.store.Ping(ctx); err != nil {
		e.storeUp.Set(0)
		return []finding{{labels: map[string]string{}, value: 1, summary: "the store does not answer: " + err.Error()}}, nil
	}
	e.storeUp.Set(1)
	return nil, nil
}

func ruleBackendUnreachable(_ context.Context, e *alertEngine) ([]finding, error) {
	if e.node.stacks == nil || e.node.stacks.gateway == nil {
		return nil, nil
	}
	var out []finding
	for b, up := range e.node.stacks.gateway.BackendHealth() {
		if !up {
			out = append(out, finding{labels: map[string]string{"backend": b}, value: 0,
				summary: fmt.Sprintf("model backend %s is out of routing: its calls fail or time out", b)})
		}
	}
	return out, nil
}

func ruleHigh5xx(_ context.Context, e *alertEngine) ([]finding, error) {
	inc := e.increase("agentos_http_requests_total{", e.cfg.RateWindow)
	total, bad := map[string]float64{}, map[string]float64{}
	for k, v := range inc {
		stack := labelOf(k, "stack")
		total[stack] += v
		if labelOf(k, "code_class") == "5xx" {
			bad[stack] += v
		}
	}
	var out []finding
	for stack, n := range total {
		if n < e.cfg.HTTPMinRequests || n == 0 {
			continue
		}
		if r := bad[stack] / n; r > e.cfg.HTTP5xxRatio {
			out = append(out, finding{labels: map[string]string{"stack": stack}, value: r,
				summary: fmt.Sprintf("%.1f%% of %s answers over the last %s were 5xx (%g of %g)", r*100, stack, e.cfg.RateWindow, bad[stack], n)})
		}
	}
	return out, nil
}

func ruleRunLatency(_ context.Context, e *alertEngine) ([]finding, error) {
	count := 0.0
	for _, v := range e.increase("agentos_run_latency_ms_count{", e.cfg.RateWindow) {
		count += v
	}
	if count < e.cfg.LatencyMinRuns {
		return nil, nil
	}
	buckets := map[float64]float64{}
	for k, v := range e.increase("agentos_run_latency_ms_bucket{", e.cfg.RateWindow) {
		var le float64
		if _, err := fmt.Sscanf(labelOf(k, "le"), "%g", &le); err == nil {
			buckets[le] += v
		}
	}
	p95 := quantileFromBuckets(0.95, buckets, count)
	if p95 > e.cfg.RunP95LatencyMS {
		return []finding{{labels: map[string]string{}, value: p95,
			summary: fmt.Sprintf("p95 run latency over the last %s is %.0f ms (threshold %.0f ms, %g runs)", e.cfg.RateWindow, p95, e.cfg.RunP95LatencyMS, count)}}, nil
	}
	return nil, nil
}

func ruleQueueBacklog(ctx context.Context, e *alertEngine) ([]finding, error) {
	if e.node.stacks == nil || e.node.stacks.runs == nil {
		return nil, nil
	}
	st, err := e.node.stacks.runs.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("run stats: %w", err)
	}
	if st.QueueDepth > e.cfg.QueueDepth {
		return []finding{{labels: map[string]string{}, value: float64(st.QueueDepth),
			summary: fmt.Sprintf("%d runs wait in the queue (threshold %d, %d active on %d workers)", st.QueueDepth, e.cfg.QueueDepth, st.ActiveRuns, st.Workers)}}, nil
	}
	return nil, nil
}

// diskFree returns the share of path's filesystem available to the node.
func diskFree(path string) (float64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	if st.Blocks == 0 {
		return 1, nil
	}
	return float64(st.Bavail) / float64(st.Blocks), nil
}

func ruleDiskNearlyFull(_ context.Context, e *alertEngine) ([]finding, error) {
	free, err := diskFree(e.node.Config.DataDir)
	if err != nil {
		return nil, err
	}
	e.diskFree.Set(free)
	if free < e.cfg.DiskFreeRatio {
		return []finding{{labels: map[string]string{"path": e.node.Config.DataDir}, value: free,
			summary: fmt.Sprintf("only %.1f%% of the data dir's filesystem is free (threshold %.0f%%)", free*100, e.cfg.DiskFreeRatio*100)}}, nil
	}
	return nil, nil
}

func ruleTenantBudget(ctx context.Context, e *alertEngine) ([]finding, error) {
	if e.node.stacks == nil || e.node.stacks.gateway == nil {
		return nil, nil
	}
	tenants, err := e.node.store.ListTenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	e.tenantGauges.Reset()
	var out []finding
	for _, t := range tenants {
		u, err := tenantUsage(ctx, e.node, t.TenantID)
		if err != nil {
			return nil, err
		}
		g := func(measure string, v float64) { e.tenantGauges.WithLabelValues(t.TenantID, measure).Set(v) }
		g("tokens_used", float64(u.TotalTokens))
		g("tokens_limit", float64(u.MaxTokens))
		g("cost_usd_used", u.CostUSD)
		g("cost_usd_limit", u.MaxCostUSD)
		g("requests", float64(u.Requests))
		if t.Status == core.TenantDisabled {
			continue
		}
		tokensOver := u.MaxTokens > 0 && u.TotalTokens >= u.MaxTokens
		costOver := u.MaxCostUSD > 0 && u.CostUSD >= u.MaxCostUSD
		if tokensOver || costOver {
			ratio := 0.0
			if u.MaxTokens > 0 {
				ratio = float64(u.TotalTokens) / float64(u.MaxTokens)
			}
			if u.MaxCostUSD > 0 {
				ratio = max(ratio, u.CostUSD/u.MaxCostUSD)
			}
			out = append(out, finding{labels: map[string]string{"tenant": t.TenantID}, value: ratio,
				summary: fmt.Sprintf("tenant %s used %d of %d tokens and $%.4f of $%.2f in its %s window %s; model calls are refused until it resets",
					t.TenantID, u.TotalTokens, u.MaxTokens, u.CostUSD, u.MaxCostUSD, u.Window, u.Period)})
		}
	}
	return out, nil
}

func ruleConcurrencySustained(_ context.Context, e *alertEngine) ([]finding, error) {
	n := 0.0
	for k, v := range e.increase("agentos_quota_rejections_total{", e.cfg.ConcurrencyWindow) {
		if labelOf(k, "kind") == "max_concurrent_runs" {
			n += v
		}
	}
	if n > 0 {
		return []finding{{labels: map[string]string{"kind": "max_concurrent_runs"}, value: n,
			summary: fmt.Sprintf("%g run creates were refused by a tenant's max_concurrent_runs in the last %s, and refusals keep coming", n, e.cfg.ConcurrencyWindow)}}, nil
	}
	return nil, nil
}

// ---------- node hooks ----------

// startAlerts evaluates the built-in rules on n every interval and mails
// firing and resolved alerts through n.Config.SMTP when it is enabled;
// without SMTP the state is still kept for the console and `agentos
// status`. stop ends the loop and waits for it.
func startAlerts(n *Node) (stop func()) {
	cfg := DefaultAlertConfig()
	if n.Config.AlertInterval > 0 {
		cfg.Interval = n.Config.AlertInterval
	}
	cfg.RepeatInterval = n.Config.AlertRepeat
	return startAlertsWith(n, cfg)
}

// startAlertsWith is startAlerts with explicit settings.
func startAlertsWith(n *Node, cfg AlertConfig) (stop func()) {
	e := newAlertEngine(cfg, n.Log, n.registry, builtinAlertRules())
	e.node, e.gatherer = n, n.registry
	if n.Config.SMTP.Enabled() {
		smtp := n.Config.SMTP
		e.send = func(ctx context.Context, subject, body string) error {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			return SendMail(ctx, smtp, subject, body)
		}
	}
	n.alertsMu.Lock()
	n.alerts = e
	n.alertsMu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.run(ctx)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
			n.alertsMu.Lock()
			if n.alerts == e {
				n.alerts = nil
			}
			n.alertsMu.Unlock()
		})
	}
}

// Alerts lists the node's pending and firing alerts (nil when the alert
// engine is not running).
func (n *Node) Alerts() []AlertStatus {
	n.alertsMu.Lock()
	e := n.alerts
	n.alertsMu.Unlock()
	if e == nil {
		return nil
	}
	return e.Status()
}
