// Package stacka is Stack A, the orchestration stack: agents, runs and their
// executor, the event hub behind the SSE streams, tools and tenant memory.
// It talks to storage and to Stack B only through the ports of core, which
// app wires in.
package stacka

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config tunes the service; zero values take the defaults of DefaultConfig.
type Config struct {
	// Workers is the global cap on runs executing at once.
	Workers int
	// MaxQueued caps the runs waiting in the queue (all tenants); over it,
	// run create answers 429 rate_limited.
	MaxQueued int
	// DefaultTimeoutMS and DefaultMaxSteps apply when neither the request
	// nor the agent sets them.
	DefaultTimeoutMS int64
	DefaultMaxSteps  int
	// ToolEgressAllow lists hosts ("api.example.com", "*.example.com") and
	// CIDRs ("10.1.0.0/16") tools may call.
	ToolEgressAllow []string
	// AllowLoopbackEgress lets tools call loopback addresses (demo, dev).
	AllowLoopbackEgress bool
	// Mode is demo, dev or prod.
	Mode string
	// HTTPClient, when set, replaces the egress-checked client of tools; for
	// tests only, since it bypasses the egress rules.
	HTTPClient *http.Client
	// HeartbeatInterval is the SSE ": ping" period (15 s).
	HeartbeatInterval time.Duration
	// FetchMaxBytes and FetchTimeout cap tool.http.fetch.
	FetchMaxBytes int64
	FetchTimeout  time.Duration
	// EmbedModelRef is the model memory's vector search embeds with.
	EmbedModelRef string
	// StepCommitDelay: the executor keeps a run's events in memory while
	// its steps are fast and commits them (with the run's state, in one
	// transaction) when a model or tool call is still running after this
	// delay, when the run ends, or every 64 events. Streams then see a slow
	// call as started while it runs, and a fast run costs two commits.
	// Negative commits before every call.
	StepCommitDelay time.Duration
	// MCPSessions bounds the MCP client sessions kept open for reuse across
	// tool calls (per tenant and server); MCPSessionIdle closes one unused
	// for that long.
	MCPSessions    int
	MCPSessionIdle time.Duration
	// TenantSecretsDir, when set, is a directory the operator fills with
	// tenants' secrets, one subdirectory per tenant id
	// (<dir>/<tenant_id>/<name>); a tool's secret:<name> falls back to it
	// when the tenant's secret store has no such name.
	TenantSecretsDir string
	// MaxEventStreams caps the SSE event streams open on this node, and
	// MaxEventStreamsPerTenant those of one tenant; beyond either, a new
	// stream answers 429 rate_limited (kind event_streams) with
	// Retry-After, so streams cannot use up the descriptors the probes
	// and other tenants need.
	MaxEventStreams          int
	MaxEventStreamsPerTenant int
	// CacheTTL is how long a tenant, agent or tool read on the hot path
	// is reused (default 1 s). With Deps.Changes every write drops its
	// copy at once; the TTL only bounds a change whose notice was lost.
	CacheTTL time.Duration
}

// DefaultConfig is the node's default configuration.
func DefaultConfig() Config {
	return Config{Workers: 64, MaxQueued: 10000, DefaultTimeoutMS: 180000, DefaultMaxSteps: 30,
		Mode: "demo", AllowLoopbackEgress: true, HeartbeatInterval: 15 * time.Second,
		FetchMaxBytes: 1 << 20, FetchTimeout: 10 * time.Second, EmbedModelRef: "builtin/hash-embed-1",
		StepCommitDelay: 10 * time.Millisecond, MCPSessions: 64, MCPSessionIdle: 5 * time.Minute,
		MaxEventStreams: 1000, MaxEventStreamsPerTenant: 100, CacheTTL: time.Second}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Workers = core.PositiveOr(c.Workers, d.Workers)
	c.MaxQueued = core.PositiveOr(c.MaxQueued, d.MaxQueued)
	c.DefaultTimeoutMS = core.PositiveOr(c.DefaultTimeoutMS, d.DefaultTimeoutMS)
	c.DefaultMaxSteps = core.PositiveOr(c.DefaultMaxSteps, d.DefaultMaxSteps)
	c.HeartbeatInterval = core.PositiveOr(c.HeartbeatInterval, d.HeartbeatInterval)
	c.FetchMaxBytes = core.PositiveOr(c.FetchMaxBytes, d.FetchMaxBytes)
	c.FetchTimeout = core.PositiveOr(c.FetchTimeout, d.FetchTimeout)
	if c.StepCommitDelay == 0 {
		c.StepCommitDelay = d.StepCommitDelay
	}
	c.CacheTTL = core.PositiveOr(c.CacheTTL, d.CacheTTL)
	c.MCPSessions = core.PositiveOr(c.MCPSessions, d.MCPSessions)
	c.MCPSessionIdle = core.PositiveOr(c.MCPSessionIdle, d.MCPSessionIdle)
	if c.EmbedModelRef == "" {
		c.EmbedModelRef = d.EmbedModelRef
	}
	c.MaxEventStreams = core.PositiveOr(c.MaxEventStreams, d.MaxEventStreams)
	c.MaxEventStreamsPerTenant = core.PositiveOr(c.MaxEventStreamsPerTenant, d.MaxEventStreamsPerTenant)
	if c.MaxEventStreamsPerTenant > c.MaxEventStreams {
		c.MaxEventStreamsPerTenant = c.MaxEventStreams
	}
	return c
}

// Deps are the ports and settings app wires in.
type Deps struct {
	Agents  core.AgentPort
	Runs    core.RunStatePort
	Queue   core.QueuePort
	Tools   core.ToolRegistryPort
	Memory  core.MemoryPort
	Tenants core.TenantPort
	Audit   core.AuditPort
	Models  core.ModelPort
	// Secrets is the per-tenant secret store that a tool's secret_ref
	// (secret:<name>) names; nil means only Config.TenantSecretsDir.
	Secrets core.SecretPort
	Log     zerolog.Logger
	Metrics prometheus.Registerer
	Config  Config
	StackID string
	// NodeID names this node in /v1/health and logs.
	NodeID string
	// Cluster, when set, makes this node one of several sharing the store
	// (runs claimed with leases, events and cancels from every node).
	Cluster *Cluster
	// Tracer opens the run, step, model-call and tool-call spans; nil means
	// no spans (trace context still propagates from the stored traceparent).
	Tracer trace.Tracer
	// Limits, when set, counts tool calls per minute per tenant (the
	// node's store: in process on bbolt, in the database on PostgreSQL, so
	// the limit holds across a cluster); nil keeps a token bucket in
	// this process.
	Limits core.LimitsPort
	// Changes, when set, tells the service which cached tenants, agents
	// and tools went stale (written through another component or node);
	// without it the cache TTL bounds staleness.
	Changes core.ChangeFeed
}

// Service is Stack A.
type Service struct {
	agents  core.AgentPort
	runs    core.RunStatePort
	queue   core.QueuePort
	tools   core.ToolRegistryPort
	memory  core.MemoryPort
	tenants core.TenantPort
	audit   core.AuditPort
	models  core.ModelPort
	secrets core.SecretPort
	limits  core.LimitsPort
	log     zerolog.Logger
	cfg     Config
	stackID string
	nodeID  string
	cluster *Cluster
	loops   *clusterLoops
	// claimC wakes the cluster's claim loop (nil on a single node).
	claimC chan struct{}
	tracer trace.Tracer

	metrics *metrics
	hub     *eventHub
	sched   *scheduler
	quotas  *quotas
	streams *streamSlots
	// unsubscribe ends the change feed subscription.
	unsubscribe func()
	cache       *readCache
	egress      *http.Client
	mcpPool     *mcpPool

	startOnce sync.Once
	closeOnce sync.Once
}

// Stats is a snapshot of the executor for operators.
type Stats struct {
	QueueDepth int `json:"queue_depth"`
	ActiveRuns int `json:"active_runs"`
	Workers    int `json:"workers"`
	Streams    int `json:"streams"`
}

// New builds the service; Start begins executing runs.
func New(d Deps) (*Service, error) {
	switch {
	case d.Agents == nil, d.Runs == nil, d.Queue == nil, d.Tools == nil, d.Memory == nil:
		return nil, errors.New("stacka: Agents, Runs, Queue, Tools and Memory ports are required")
	case d.Tenants == nil, d.Models == nil:
		return nil, errors.New("stacka: Tenants and Models ports are required")
	}
	if d.Cluster != nil && (d.Cluster.Leases == nil || d.Cluster.Notices == nil || d.Cluster.NodeID == "") {
		return nil, errors.New("stacka: a Cluster needs NodeID, Leases and Notices")
	}
	reg := d.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	cfg := d.Config.withDefaults()
	s := &Service{
		agents: d.Agents, runs: d.Runs, queue: d.Queue, tools: d.Tools, memory: d.Memory,
		tenants: d.Tenants, audit: d.Audit, models: d.Models, secrets: d.Secrets, limits: d.Limits,
		log: d.Log.With().Str("component", "stacka").Logger(), cfg: cfg, stackID: d.StackID, nodeID: d.NodeID, cluster: d.Cluster,
		metrics: m, hub: newEventHub(), quotas: newQuotas(), cache: newReadCache(cfg.CacheTTL), tracer: d.Tracer,
		streams: newStreamSlots(cfg.MaxEventStreams, cfg.MaxEventStreamsPerTenant),
	}
	if s.tracer == nil {
		s.tracer = noop.NewTracerProvider().Tracer("stacka")
	}
	if d.Changes != nil {
		s.unsubscribe = d.Changes.Subscribe(s.cache.invalidate)
	}
	eg, err := newEgressClient(cfg)
	if err != nil {
		return nil, err
	}
	s.egress = eg
	if cfg.HTTPClient != nil {
		s.egress = cfg.HTTPClient
	}
	s.mcpPool = newMCPPool(cfg.MCPSessions, cfg.MCPSessionIdle)
	s.sched = newScheduler(s, cfg.Workers)
	return s, nil
}

// Start runs crash recovery (queued runs are queued again, running runs
// resume from their last committed step) and starts the workers.
func (s *Service) Start(ctx context.Context) error {
	var err error
	s.startOnce.Do(func() {
		if s.cluster != nil {
			err = s.startCluster(ctx)
			return
		}
		refs, e := s.queue.ActiveRuns(ctx)
		if e != nil {
			err = e
			return
		}
		s.sched.start()
		for _, ref := range refs {
			rec, e := s.runs.GetRun(ctx, ref.TenantID, ref.RunID)
			if e != nil {
				s.log.Error().Err(e).Str("tenant_id", ref.TenantID).Str("run_id", ref.RunID).Msg("recovery: cannot load run")
				continue
			}
			s.sched.enqueue(rec, s.tenantRunCap(ctx, rec.TenantID), true)
		}
		if len(refs) > 0 {
			s.log.Info().Int("runs", len(refs)).Msg("recovery: resumed non-terminal runs")
		}
	})
	return err
}

// Close stops taking work, stops the workers (runs in flight stay running in
// the store and resume at the next Start), and ends every SSE stream.
func (s *Service) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		if s.unsubscribe != nil {
			s.unsubscribe()
		}
		s.hub.close()
		if s.loops != nil {
			s.loops.stop(ctx)
		}
		err = s.sched.stop(ctx)
		if s.cluster != nil {
			// Runs queued here go back to the cluster at once (a rolling
			// restart does not wait for their leases to expire).
			if ids := s.sched.heldIDs(); len(ids) > 0 {
				if e := s.cluster.Leases.ReleaseRuns(ctx, s.cluster.NodeID, ids); e != nil {
					s.log.Warn().Err(e).Msg("cluster: release of held runs failed; they are taken over when their leases expire")
				}
			}
		}
		s.mcpPool.close()
	})
	return err
}

// Stats reports queue depth and running runs.
func (s *Service) Stats(ctx context.Context) (Stats, error) {
	q, a := s.sched.counts()
	return Stats{QueueDepth: q, ActiveRuns: a, Workers: s.cfg.Workers, Streams: s.hub.streams()}, nil
}

func (s *Service) tenantRunCap(ctx context.Context, tenantID string) int {
	t, err := s.cachedTenant(ctx, tenantID)
	if err != nil {
		return core.PlanDefaults("").MaxConcurrentRuns
	}
	return t.EffectiveLimits().MaxConcurrentRuns
}

type metrics struct {
	runs       *prometheus.CounterVec
	runLatency prometheus.Histogram
	stepLat    *prometheus.HistogramVec
	toolLat    prometheus.Histogram
	toolErrs   prometheus.Counter
	queueDepth prometheus.Gauge
	active     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	ms := []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000}
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentos_runs_total",
			Help: "Runs that reached a terminal status, by status."}, []string{"status"}),
		runLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "agentos_run_latency_ms",
			Help: "Run duration from creation to terminal status, in ms.", Buckets: ms}),
		stepLat: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "agentos_step_latency_ms",
			Help: "Step duration in ms, by step kind.", Buckets: ms}, []string{"kind"}),
		toolLat: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "agentos_tool_latency_ms",
			Help: "Tool call duration in ms.", Buckets: ms}),
		toolErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "agentos_tool_errors_total",
			Help: "Tool calls that ended in an error."}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "agentos_queue_depth",
			Help: "Runs waiting for a worker."}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "agentos_active_runs",
			Help: "Runs executing now."}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.runLatency, m.stepLat, m.toolLat, m.toolErrs, m.queueDepth, m.active} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
