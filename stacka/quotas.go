package stacka

import (
	"context"
	"math"
	"sync"

	"github.com/agentos/agentos/core"
	"golang.org/x/time/rate"
)

// quotas keeps one token bucket per tenant for run creation (QPS, burst)
// and one for tool calls (per minute); a bucket is rebuilt when the
// tenant's limits change.
type quotas struct {
	mu     sync.Mutex
	create map[string]*bucket
	tools  map[string]*bucket
}

type bucket struct {
	lim   *rate.Limiter
	r     rate.Limit
	burst int
}

func newQuotas() *quotas {
	return &quotas{create: map[string]*bucket{}, tools: map[string]*bucket{}}
}

func take(m map[string]*bucket, mu *sync.Mutex, tenantID string, r rate.Limit, burst int) (bool, int) {
	if burst < 1 {
		burst = 1
	}
	mu.Lock()
	b := m[tenantID]
	if b == nil || b.r != r || b.burst != burst {
		b = &bucket{lim: rate.NewLimiter(r, burst), r: r, burst: burst}
		m[tenantID] = b
	}
	mu.Unlock()
	res := b.lim.Reserve()
	if !res.OK() {
		return false, 1
	}
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return false, int(math.Ceil(d.Seconds()))
	}
	return true, 0
}

// allowCreate answers rate_limited when the tenant's run-create bucket is
// empty.
func (q *quotas) allowCreate(tenantID string, l core.Limits) error {
	if ok, after := take(q.create, &q.mu, tenantID, rate.Limit(l.RunCreateQPS), l.RunCreateBurst); !ok {
		return core.RateLimited("run_create_qps", after, "run create rate over %g/s (burst %d)", l.RunCreateQPS, l.RunCreateBurst).
			With("tenant_id", tenantID).With("limit", l.RunCreateQPS)
	}
	return nil
}

// allowTool answers rate_limited when the tenant's tool calls per minute
// are spent.
func (q *quotas) allowTool(tenantID string, l core.Limits) error {
	per := l.ToolCallsPerMinute
	if ok, after := take(q.tools, &q.mu, tenantID, rate.Limit(float64(per)/60), per); !ok {
		return core.RateLimited("tool_calls_per_minute", after, "tool calls over %d per minute", per).
			With("tenant_id", tenantID).With("limit", per)
	}
	return nil
}

// allowTool counts one tool call against the tenant's tool calls per
// minute: in the limits port's minute window when one is wired (the
// store's, shared by every node of a cluster), else in this process's
// token bucket.
func (s *Service) allowTool(ctx context.Context, tenantID string, l core.Limits) error {
	if s.limits == nil {
		return s.quotas.allowTool(tenantID, l)
	}
	per := l.ToolCallsPerMinute
	now := core.Now().UTC()
	_, ok, err := s.limits.CountInWindow(ctx, tenantID, "tool_calls", core.UsagePeriod(core.WindowMinute, now), per)
	if err != nil {
		return core.Errorf(core.CodeDependencyUnavailable, "tool call limit unavailable").With("tenant_id", tenantID)
	}
	if !ok {
		after := 60 - now.Second()
		return core.RateLimited("tool_calls_per_minute", after, "tool calls over %d per minute", per).
			With("tenant_id", tenantID).With("limit", per)
	}
	return nil
}

func (s *Service) tenantLimits(ctx context.Context, tenantID string) core.Limits {
	t, err := s.cachedTenant(ctx, tenantID)
	if err != nil {
		return core.PlanDefaults("")
	}
	return t.EffectiveLimits()
}

// streamSlots counts the open SSE event streams, per node and per tenant.
type streamSlots struct {
	mu        sync.Mutex
	max       int
	perTenant int
	total     int
	byTenant  map[string]int
}

func newStreamSlots(max, perTenant int) *streamSlots {
	return &streamSlots{max: max, perTenant: perTenant, byTenant: map[string]int{}}
}

// acquire takes a slot for tenantID, or answers rate_limited naming the
// cap that is full; release gives it back.
func (s *streamSlots) acquire(tenantID string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byTenant[tenantID] >= s.perTenant {
		return nil, core.RateLimited("event_streams", 1, "tenant %s has %d event streams open, the most allowed per tenant", tenantID, s.perTenant).
			With("limit", s.perTenant).With("applies_to", "tenant")
	}
	if s.total >= s.max {
		return nil, core.RateLimited("event_streams", 1, "this node has %d event streams open, the most it allows", s.max).
			With("limit", s.max).With("applies_to", "node")
	}
	s.total++
	s.byTenant[tenantID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.total--
			if s.byTenant[tenantID]--; s.byTenant[tenantID] <= 0 {
				delete(s.byTenant, tenantID)
			}
			s.mu.Unlock()
		})
	}, nil
}
