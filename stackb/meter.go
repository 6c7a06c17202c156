package stackb

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// meter enforces a tenant's model budgets and request rate, and meters
// usage into the ledger. Budgets work by reservation: before a call the
// request's maximum (input estimate + max output tokens, and its price) is
// reserved against the window; after it the reservation is replaced by
// what was used. Concurrent requests therefore cannot overshoot together.
// The reservations are held by the limits port: in process on a single
// node, in the database when nodes share it, so the whole cluster holds
// one budget. Settled usage and replayable answers reach the ledger in
// batches, off the request path.
type meter struct {
	usage  core.UsagePort
	limits core.LimitsPort
	now    func() time.Time
	log    zerolog.Logger

	mu       sync.Mutex
	limiters map[string]*tenantLimiter

	bufMu    sync.Mutex
	deltas   map[string]*core.UsageDelta
	replays  []core.ModelReplay
	pending  map[string]core.ModelReplay // tenant|request_id, until stored
	flushMu  sync.Mutex
	inflight map[string]chan struct{} // tenant|request_id being computed

	flusher *core.Flusher
}

type tenantLimiter struct {
	rpm int
	lim *rate.Limiter
}

// reservation is what one request holds against its tenant's budget.
type reservation struct {
	hold   core.BudgetHold
	tokens int64
}

// limitsTimeout bounds settling or releasing a reservation, which happens
// after the caller's request may be over.
const limitsTimeout = 5 * time.Second

func newMeter(usage core.UsagePort, limits core.LimitsPort, now func() time.Time, log zerolog.Logger, interval time.Duration) *meter {
	if limits == nil {
		limits = core.NewLocalLimits(usage)
	}
	m := &meter{usage: usage, limits: limits, now: now, log: log, limiters: map[string]*tenantLimiter{},
		deltas: map[string]*core.UsageDelta{}, pending: map[string]core.ModelReplay{}, inflight: map[string]chan struct{}{}}
	m.flusher = core.StartFlusher(interval, m.flush)
	return m
}

// allow takes one request from the tenant's per-minute allowance, or
// answers rate_limited with the seconds until one is free.
func (m *meter) allow(tenantID string, rpm int) error {
	if rpm <= 0 {
		return nil
	}
	m.mu.Lock()
	tl := m.limiters[tenantID]
	if tl == nil || tl.rpm != rpm {
		tl = &tenantLimiter{rpm: rpm, lim: rate.NewLimiter(rate.Limit(float64(rpm)/60), rpm)}
		m.limiters[tenantID] = tl
	}
	m.mu.Unlock()
	now := m.now()
	r := tl.lim.ReserveN(now, 1)
	if !r.OK() {
		return core.RateLimited("requests_per_minute", 60, "model requests per minute exceeded").With("limit", rpm)
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return core.RateLimited("requests_per_minute", int(math.Ceil(d.Seconds())), "model requests per minute exceeded (%d/min)", rpm).With("limit", rpm)
	}
	return nil
}

// reserve holds tokens and cost against the tenant's budget window, or
// answers quota_exceeded naming the limit, the use so far and the window.
func (m *meter) reserve(ctx context.Context, tenantID string, l core.Limits, tokens int64, cost float64) (*reservation, error) {
	window := l.BudgetWindow
	h := core.BudgetHold{HoldID: core.NewID("hold"), TenantID: tenantID, Window: window, Period: core.UsagePeriod(window, m.now()),
		Tokens: tokens, CostUSD: cost}
	use, ok, err := m.limits.ReserveBudget(ctx, h, l.MaxTokens, l.MaxCostUSD)
	if err != nil {
		return nil, core.Errorf(core.CodeDependencyUnavailable, "usage ledger unavailable").With("tenant_id", tenantID)
	}
	if !ok && l.MaxTokens > 0 && use.UsedTokens+use.ReservedTokens+tokens > l.MaxTokens {
		return nil, core.Errorf(core.CodeQuotaExceeded, "token budget of the %s exhausted", window).
			With("tenant_id", tenantID).With("limit", l.MaxTokens).With("used", use.UsedTokens).
			With("reserved", use.ReservedTokens).With("requested", tokens).With("window", window)
	}
	if !ok {
		return nil, core.Errorf(core.CodeQuotaExceeded, "cost budget of the %s exhausted", window).
			With("tenant_id", tenantID).With("limit_usd", l.MaxCostUSD).With("used_usd", use.UsedCostUSD).
			With("requested_usd", cost).With("window", window)
	}
	return &reservation{hold: h, tokens: tokens}, nil
}

// release gives a reservation back unused (the call failed).
func (m *meter) release(r *reservation) {
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), limitsTimeout)
	defer cancel()
	if err := m.limits.ReleaseBudget(ctx, r.hold); err != nil {
		m.log.Warn().Err(err).Str("tenant_id", r.hold.TenantID).Msg("budget release failed; the hold expires by itself")
	}
}

// settle replaces the reservation by the actual use, queues the ledger
// deltas, and queues the answer for replay when replay is not nil.
func (m *meter) settle(r *reservation, u core.Usage, cost float64, replay *core.ModelReplay) {
	ctx, cancel := context.WithTimeout(context.Background(), limitsTimeout)
	if err := m.limits.SettleBudget(ctx, r.hold, int64(u.InputTokens+u.OutputTokens), cost); err != nil {
		m.log.Warn().Err(err).Str("tenant_id", r.hold.TenantID).Msg("budget settle failed; the ledger still records the use")
	}
	cancel()
	now := m.now()
	m.bufMu.Lock()
	add := func(window, period string) {
		k := r.hold.TenantID + "|" + window + "|" + period
		d := m.deltas[k]
		if d == nil {
			d = &core.UsageDelta{TenantID: r.hold.TenantID, Window: window, Period: period}
			m.deltas[k] = d
		}
		d.Requests++
		d.InputTokens += int64(u.InputTokens)
		d.OutputTokens += int64(u.OutputTokens)
		d.CostUSD += cost
		d.At = now
	}
	add(r.hold.Window, r.hold.Period)
	if r.hold.Window != core.WindowDay {
		add(core.WindowDay, core.UsagePeriod(core.WindowDay, now))
	}
	if replay != nil {
		m.replays = append(m.replays, *replay)
		m.pending[replay.TenantID+"|"+replay.RequestID] = *replay
	}
	m.bufMu.Unlock()
}

// replay returns a stored answer of requestID, looking at answers not yet
// flushed first.
func (m *meter) replay(ctx context.Context, tenantID, requestID string) (core.ModelReplay, bool, error) {
	m.bufMu.Lock()
	r, ok := m.pending[tenantID+"|"+requestID]
	m.bufMu.Unlock()
	if ok {
		return r, true, nil
	}
	r, err := m.usage.GetReplay(ctx, tenantID, requestID)
	if core.IsCode(err, core.CodeNotFound) {
		return r, false, nil
	}
	return r, err == nil, err
}

// begin makes concurrent requests with one request_id run one at a time:
// it returns a func to call when done. A second caller waits for the first,
// then finds its answer through replay.
func (m *meter) begin(ctx context.Context, tenantID, requestID string) (func(), error) {
	key := tenantID + "|" + requestID
	for {
		m.bufMu.Lock()
		ch, busy := m.inflight[key]
		if !busy {
			ch = make(chan struct{})
			m.inflight[key] = ch
			m.bufMu.Unlock()
			return func() {
				m.bufMu.Lock()
				delete(m.inflight, key)
				m.bufMu.Unlock()
				close(ch)
			}, nil
		}
		m.bufMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// flush writes the queued deltas and replays in one store transaction.
func (m *meter) flush() {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.bufMu.Lock()
	if len(m.deltas) == 0 && len(m.replays) == 0 {
		m.bufMu.Unlock()
		return
	}
	deltas := make([]core.UsageDelta, 0, len(m.deltas))
	for _, d := range m.deltas {
		deltas = append(deltas, *d)
	}
	replays := m.replays
	m.deltas = map[string]*core.UsageDelta{}
	m.replays = nil
	m.bufMu.Unlock()
	if err := m.usage.RecordUsage(context.Background(), deltas, replays); err != nil {
		m.log.Error().Err(err).Int("deltas", len(deltas)).Msg("usage flush failed; will retry")
		m.bufMu.Lock()
		for _, d := range deltas {
			k := d.TenantID + "|" + d.Window + "|" + d.Period
			if cur := m.deltas[k]; cur != nil {
				cur.Requests += d.Requests
				cur.InputTokens += d.InputTokens
				cur.OutputTokens += d.OutputTokens
				cur.CostUSD += d.CostUSD
			} else {
				dd := d
				m.deltas[k] = &dd
			}
		}
		m.replays = append(replays, m.replays...)
		m.bufMu.Unlock()
		return
	}
	m.bufMu.Lock()
	for _, r := range replays {
		delete(m.pending, r.TenantID+"|"+r.RequestID)
	}
	m.bufMu.Unlock()
}

func (m *meter) close() { m.flusher.Stop() }
