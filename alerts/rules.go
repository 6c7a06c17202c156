package alerts

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"time"
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

// ---------- the built-in rules ----------

// BuiltinRules are the node's rules, named after docs/ops/agentos-rules.yml
// (a test keeps the two in step). For is each rule's default.
func BuiltinRules() []*Rule {
	return []*Rule{
		{Name: AlertServiceDown, Severity: "critical", For: 1 * time.Minute, eval: ruleServiceDown},
		{Name: AlertStoreUnavailable, Severity: "critical", For: 1 * time.Minute, eval: ruleStoreUnavailable},
		{Name: AlertModelBackendUnreachable, Severity: "warning", For: 2 * time.Minute, eval: ruleBackendUnreachable},
		{Name: AlertHigh5xxRate, Severity: "warning", For: 5 * time.Minute, eval: ruleHigh5xx},
		{Name: AlertRunLatencyP95High, Severity: "warning", For: 10 * time.Minute, eval: ruleRunLatency},
		{Name: AlertQueueBacklog, Severity: "warning", For: 5 * time.Minute, eval: ruleQueueBacklog},
		{Name: AlertDiskNearlyFull, Severity: "warning", For: 5 * time.Minute, eval: ruleDiskNearlyFull},
		{Name: AlertTenantBudgetExceeded, Severity: "info", For: 0, tenantLabel: "tenant", eval: ruleTenantBudget},
		{Name: AlertTenantConcurrencySustained, Severity: "warning", For: 5 * time.Minute, eval: ruleConcurrencySustained},
	}
}

// ruleServiceDown: a router's readiness checks fail, or its listener no
// longer accepts connections.
func ruleServiceDown(ctx context.Context, e *Engine) ([]finding, error) {
	if e.src.Readiness == nil {
		return nil, nil
	}
	var out []finding
	for name, failed := range e.src.Readiness.NotReady(ctx) {
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

func ruleStoreUnavailable(ctx context.Context, e *Engine) ([]finding, error) {
	if e.src.Store == nil {
		return nil, nil
	}
	if err := e.src.Store.Ping(ctx); err != nil {
		e.storeUp.Set(0)
		return []finding{{labels: map[string]string{}, value: 1, summary: "the store does not answer: " + err.Error()}}, nil
	}
	e.storeUp.Set(1)
	return nil, nil
}

func ruleBackendUnreachable(_ context.Context, e *Engine) ([]finding, error) {
	if e.src.Backends == nil {
		return nil, nil
	}
	var out []finding
	for b, up := range e.src.Backends.BackendHealth() {
		if !up {
			out = append(out, finding{labels: map[string]string{"backend": b}, value: 0,
				summary: fmt.Sprintf("model backend %s is out of routing: its calls fail or time out", b)})
		}
	}
	return out, nil
}

func ruleHigh5xx(_ context.Context, e *Engine) ([]finding, error) {
	inc := e.increase("agentos_http_requests_total", e.cfg.RateWindow)
	total, bad := map[string]float64{}, map[string]float64{}
	for _, s := range inc {
		stack := s.labels["stack"]
		total[stack] += s.value
		if s.labels["code_class"] == "5xx" {
			bad[stack] += s.value
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

func ruleRunLatency(_ context.Context, e *Engine) ([]finding, error) {
	count := 0.0
	for _, s := range e.increase("agentos_run_latency_ms_count", e.cfg.RateWindow) {
		count += s.value
	}
	if count < e.cfg.LatencyMinRuns {
		return nil, nil
	}
	buckets := map[float64]float64{}
	for _, s := range e.increase("agentos_run_latency_ms_bucket", e.cfg.RateWindow) {
		buckets[s.le] += s.value
	}
	p95 := quantileFromBuckets(0.95, buckets, count)
	if p95 > e.cfg.RunP95LatencyMS {
		return []finding{{labels: map[string]string{}, value: p95,
			summary: fmt.Sprintf("p95 run latency over the last %s is %.0f ms (threshold %.0f ms, %g runs)", e.cfg.RateWindow, p95, e.cfg.RunP95LatencyMS, count)}}, nil
	}
	return nil, nil
}

func ruleQueueBacklog(ctx context.Context, e *Engine) ([]finding, error) {
	if e.src.Queue == nil {
		return nil, nil
	}
	st, err := e.src.Queue.QueueStats(ctx)
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

func ruleDiskNearlyFull(_ context.Context, e *Engine) ([]finding, error) {
	if e.src.DataDir == "" {
		return nil, nil
	}
	free, err := diskFree(e.src.DataDir)
	if err != nil {
		return nil, err
	}
	e.diskFree.Set(free)
	if free < e.cfg.DiskFreeRatio {
		return []finding{{labels: map[string]string{"path": e.src.DataDir}, value: free,
			summary: fmt.Sprintf("only %.1f%% of the data dir's filesystem is free (threshold %.0f%%)", free*100, e.cfg.DiskFreeRatio*100)}}, nil
	}
	return nil, nil
}

func ruleTenantBudget(ctx context.Context, e *Engine) ([]finding, error) {
	if e.src.Tenants == nil {
		return nil, nil
	}
	usages, err := e.src.Tenants.TenantUsages(ctx)
	if err != nil {
		return nil, err
	}
	e.tenantGauges.Reset()
	var out []finding
	for _, u := range usages {
		g := func(measure string, v float64) { e.tenantGauges.WithLabelValues(u.TenantID, measure).Set(v) }
		g("tokens_used", float64(u.TotalTokens))
		g("tokens_limit", float64(u.MaxTokens))
		g("cost_usd_used", u.CostUSD)
		g("cost_usd_limit", u.MaxCostUSD)
		g("requests", float64(u.Requests))
		if u.Disabled {
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
			out = append(out, finding{labels: map[string]string{"tenant": u.TenantID}, value: ratio,
				summary: fmt.Sprintf("tenant %s used %d of %d tokens and $%.4f of $%.2f in its %s window %s; model calls are refused until it resets",
					u.TenantID, u.TotalTokens, u.MaxTokens, u.CostUSD, u.MaxCostUSD, u.Window, u.Period)})
		}
	}
	return out, nil
}

func ruleConcurrencySustained(_ context.Context, e *Engine) ([]finding, error) {
	n := 0.0
	for _, s := range e.increase("agentos_quota_rejections_total", e.cfg.ConcurrencyWindow) {
		if s.labels["kind"] == "max_concurrent_runs" {
			n += s.value
		}
	}
	if n > 0 {
		return []finding{{labels: map[string]string{"kind": "max_concurrent_runs"}, value: n,
			summary: fmt.Sprintf("%g run creates were refused by a tenant's max_concurrent_runs in the last %s, and refusals keep coming", n, e.cfg.ConcurrencyWindow)}}, nil
	}
	return nil, nil
}
