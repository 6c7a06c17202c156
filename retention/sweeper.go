// Package retention runs the node's online retention sweep: periodically,
// for every tenant, it removes what passed the tenant's retention through
// core.RetentionPort, in small transactions with a pause between them so
// requests never wait long behind it, then audits what it removed into
// the tenant's own chain and counts it in metrics. It imports core only;
// app wires it to the store.
package retention

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Store is what the sweeper needs of the storage.
type Store interface {
	core.RetentionPort
	core.AuditPort
	ListTenants(ctx context.Context) ([]core.Tenant, error)
}

// Config tunes the sweeper.
type Config struct {
	// Defaults is the node's retention; a tenant's quotas.retention
	// overrides it field by field.
	Defaults core.Retention
	// Interval is the time between sweeps (the first one starts one
	// Interval after Start, or FirstDelay when set).
	Interval   time.Duration
	FirstDelay time.Duration
	// Batch is how many records one transaction removes at most.
	Batch int
	// Pause is the wait between two transactions of a sweep.
	Pause time.Duration
	// PrincipalID names the sweeper in its audit records.
	PrincipalID string
}

// Report is what one sweep did.
type Report struct {
	Tenants int
	Removed core.SweepResult
	// Skipped is set when another node held the sweep lock.
	Skipped bool
	Took    time.Duration
}

// Sweeper is the periodic sweep. Build it with New; Start runs it until
// Stop; Sweep runs one pass now.
type Sweeper struct {
	cfg     Config
	store   Store
	locker  core.SweepLocker
	log     zerolog.Logger
	now     func() time.Time
	mu      sync.Mutex // one pass at a time
	removed *prometheus.CounterVec
	sweeps  *prometheus.CounterVec
	took    prometheus.Histogram
	last    prometheus.Gauge

	stop chan struct{}
	done chan struct{}
}

// New builds a sweeper. When st also implements core.SweepLocker (a
// store several nodes share), a pass runs only on the node that gets the
// lock. reg receives the sweeper's metrics (nil: none registered).
func New(cfg Config, st Store, reg prometheus.Registerer, log zerolog.Logger) (*Sweeper, error) {
	cfg.Interval = core.PositiveOr(cfg.Interval, time.Hour)
	cfg.Batch = core.PositiveOr(cfg.Batch, 500)
	if cfg.PrincipalID == "" {
		cfg.PrincipalID = "svc_agentos_retention"
	}
	s := &Sweeper{cfg: cfg, store: st, log: log.With().Str("component", "retention").Logger(), now: time.Now,
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentos_retention_removed_total",
			Help: "Records the retention sweep removed, by kind (runs, events, audit, usage, replays)."}, []string{"kind"}),
		sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentos_retention_sweeps_total",
			Help: "Retention sweeps by outcome: ok, error, or skipped (another node of the cluster held the sweep lock)."}, []string{"outcome"}),
		took: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "agentos_retention_sweep_seconds",
			Help: "Duration of a retention sweep (all tenants, pauses included).", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "agentos_retention_last_sweep_timestamp_seconds",
			Help: "Unix time the last retention sweep finished (0: none yet)."}),
	}
	if l, ok := st.(core.SweepLocker); ok {
		s.locker = l
	}
	for _, k := range []string{"runs", "events", "audit", "usage", "replays"} {
		s.removed.WithLabelValues(k)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.removed, s.sweeps, s.took, s.last} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Start runs a pass every Interval until Stop.
func (s *Sweeper) Start() {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-s.stop
			cancel()
		}()
		core.Every(ctx, s.cfg.FirstDelay, s.cfg.Interval, func(ctx context.Context) bool {
			if _, err := s.Sweep(ctx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error().Err(err).Msg("retention sweep failed; the next one retries")
			}
			return true
		})
	}()
}

// Stop ends the loop, cutting a pass short between two transactions.
func (s *Sweeper) Stop() {
	if s.stop == nil {
		return
	}
	close(s.stop)
	<-s.done
	s.stop = nil
}

// Sweep runs one pass over every tenant (and the node's own audit chain,
// core.SystemTenantID, under the node's defaults).
func (s *Sweeper) Sweep(ctx context.Context) (Report, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	var rep Report
	if s.locker != nil {
		release, ok, err := s.locker.TrySweepLock(ctx)
		if err != nil {
			s.sweeps.WithLabelValues("error").Inc()
			return rep, err
		}
		if !ok {
			s.sweeps.WithLabelValues("skipped").Inc()
			rep.Skipped = true
			return rep, nil
		}
		defer release()
	}
	tenants, err := s.store.ListTenants(ctx)
	if err != nil {
		s.sweeps.WithLabelValues("error").Inc()
		return rep, err
	}
	tenants = append(tenants, core.Tenant{TenantID: core.SystemTenantID})
	now := s.now()
	var errs []error
	for _, t := range tenants {
		got, err := s.sweepTenant(ctx, t, now)
		rep.Removed = rep.Removed.Add(got)
		rep.Tenants++
		if err != nil {
			if ctx.Err() != nil {
				errs = append(errs, ctx.Err())
				break
			}
			errs = append(errs, err)
		}
	}
	rep.Removed.More = false
	rep.Took = time.Since(start)
	s.took.Observe(rep.Took.Seconds())
	s.last.Set(float64(time.Now().Unix()))
	err = errors.Join(errs...)
	if err != nil {
		s.sweeps.WithLabelValues("error").Inc()
	} else {
		s.sweeps.WithLabelValues("ok").Inc()
	}
	if rep.Removed.Total() > 0 {
		s.log.Info().Int("tenants", rep.Tenants).Int("runs", rep.Removed.Runs).Int("events", rep.Removed.Events).
			Int("audit", rep.Removed.Audit).Int("usage", rep.Removed.Usage).Int("replays", rep.Removed.Replays).
			Dur("took", rep.Took).Msg("retention sweep")
	}
	return rep, err
}

// sweepTenant removes one tenant's due records batch by batch. Each batch
// appends its own retention.sweep audit record (counts, cutoffs) in the
// transaction that removes the records, so a sweep killed mid-way has
// audited exactly what went.
func (s *Sweeper) sweepTenant(ctx context.Context, t core.Tenant, now time.Time) (core.SweepResult, error) {
	ret := t.EffectiveRetention(s.cfg.Defaults)
	cut := ret.Cutoffs(now)
	audit := func(r core.SweepResult) *core.AuditRecord {
		details := map[string]any{"runs": r.Runs, "events": r.Events, "audit": r.Audit, "usage": r.Usage, "replays": r.Replays,
			"retention": ret, "more": r.More}
		for k, at := range map[string]time.Time{"audit_before": cut.Audit, "runs_before": cut.Runs, "usage_detail_before": cut.UsageDetail} {
			if !at.IsZero() {
				details[k] = at.UTC().Format(time.RFC3339)
			}
		}
		return &core.AuditRecord{TenantID: t.TenantID, PrincipalID: s.cfg.PrincipalID, Action: "retention.sweep",
			ObjectType: "tenant", ObjectID: t.TenantID, Outcome: "success", Details: details}
	}
	var sum core.SweepResult
	for {
		res, err := s.store.SweepTenant(ctx, t.TenantID, cut, s.cfg.Batch, audit)
		if err != nil {
			return sum, err
		}
		sum = sum.Add(res)
		s.count(res)
		// A call that removed nothing cannot make progress by repeating.
		if !res.More || res.Total() == 0 {
			return sum, nil
		}
		if s.cfg.Pause > 0 {
			select {
			case <-ctx.Done():
				return sum, ctx.Err()
			case <-time.After(s.cfg.Pause):
			}
		}
	}
}

func (s *Sweeper) count(r core.SweepResult) {
	for k, n := range map[string]int{"runs": r.Runs, "events": r.Events, "audit": r.Audit, "usage": r.Usage, "replays": r.Replays} {
		if n > 0 {
			s.removed.WithLabelValues(k).Add(float64(n))
		}
	}
}
