// Package fed is the federation router: peer info and capabilities, the
// peer registry and node identity (Ed25519), the run forwarder, the event
// relay and the event ingest of CONTRACT.md §5. It reaches Stack A only
// through LocalRuns and the store only through the ports of core.
package fed

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// LocalRuns is the slice of Stack A the federation router calls. Every
// method enforces the tenant of a: another tenant's run is not_found.
type LocalRuns interface {
	// CreateRun creates (or, for a known idempotency key, returns) a run
	// under a's entitlements and quotas.
	CreateRun(ctx context.Context, a core.Auth, agentID string, req core.RunRequest, idemKeyHeader string) (run core.Run, replayed bool, err error)
	// GetRun returns not_found unless the run is in a.TenantID.
	GetRun(ctx context.Context, a core.Auth, runID string) (core.Run, error)
	// ListEvents returns the stored events with sequence > afterSeq.
	ListEvents(ctx context.Context, a core.Auth, runID string, afterSeq int64) ([]core.Event, error)
	// StreamEvents replays the events after afterSeq, then follows live
	// ones until the terminal event or ctx is done.
	StreamEvents(ctx context.Context, a core.Auth, runID string, afterSeq int64, fn func(core.Event) error) error
}

// Deps is what app wires into a Node.
type Deps struct {
	// DataDir holds the node's Ed25519 key (node_ed25519.key, 0600),
	// created on first start and reused after.
	DataDir string
	// Key, when set, is the Ed25519 key this node signs with instead of
	// the data dir's: the nodes of a cluster share the one in their store.
	Key         ed25519.PrivateKey
	StackID     string
	Region      string
	Environment string
	Version     string
	GitSHA      string
	BuildTime   string
	// StackAURL, StackBURL and FedURL return base URLs once bound.
	StackAURL func() string
	StackBURL func() string
	FedURL    func() string

	Peers   core.PeerRegistryPort
	Forward core.ForwardIndexPort
	JTIs    core.ReplayGuard
	Events  core.IngestedEventsPort
	Tenants core.TenantPort
	Audit   core.AuditPort
	Runs    LocalRuns

	// PeersFile, when set, is loaded into Peers at start; a bad file
	// makes New fail with a message naming the field.
	PeersFile string

	// Models lists what this node's Stack B can route to (capabilities).
	Models func(ctx context.Context) ([]core.ModelInfo, error)
	// MaxConcurrentRuns and MaxEventStreams are advertised as limits;
	// MaxEventStreams also caps this router's open streams (0: 1000).
	MaxConcurrentRuns int
	MaxEventStreams   int
	// ToolHosting says whether forwarded runs may call this node's tools.
	ToolHosting bool

	// ClientTLS configures outbound calls to peers (mTLS); ignored when
	// HTTPClient is set.
	ClientTLS  *tls.Config
	HTTPClient *http.Client

	// PingInterval between SSE ": ping" comments (0: 15 s).
	PingInterval time.Duration
	// RetryBase is the first backoff of peer call retries (0: 100 ms);
	// Retries is how many times a failed call is retried (0: 3).
	RetryBase time.Duration
	Retries   int
	// RelayGiveUp ends a relay after this long without progress (0: 60 s).
	RelayGiveUp time.Duration

	Log     zerolog.Logger
	Metrics prometheus.Registerer
	Now     func() time.Time
}

// Node is a federation router.
type Node struct {
	d      Deps
	key    ed25519.PrivateKey
	pub    ed25519.PublicKey
	client *http.Client
	log    zerolog.Logger
	m      metrics

	keyLocks sync.Mutex
	locks    map[string]*keyLock

	streams chan struct{}

	// life ends every open stream on Close; active counts them, and
	// closed (under closeMu) stops new ones from joining.
	life    context.Context
	stop    context.CancelFunc
	active  sync.WaitGroup
	closeMu sync.Mutex
	closed  bool
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// New builds a Node: it loads (or creates) the node key and loads the
// peers file into the registry.
func New(d Deps) (*Node, error) {
	if d.StackID == "" {
		return nil, errors.New("federation: StackID is required")
	}
	if d.DataDir == "" {
		return nil, errors.New("federation: DataDir is required")
	}
	if d.Peers == nil || d.Forward == nil || d.JTIs == nil || d.Events == nil || d.Tenants == nil || d.Audit == nil {
		return nil, errors.New("federation: Peers, Forward, JTIs, Events, Tenants and Audit ports are required")
	}
	if d.Runs == nil {
		return nil, errors.New("federation: Runs (Stack A) is required")
	}
	if d.Now == nil {
		d.Now = core.Now
	}
	d.PingInterval = core.PositiveOr(d.PingInterval, 15*time.Second)
	d.RetryBase = core.PositiveOr(d.RetryBase, 100*time.Millisecond)
	d.Retries = core.PositiveOr(d.Retries, 3)
	d.RelayGiveUp = core.PositiveOr(d.RelayGiveUp, 60*time.Second)
	d.MaxEventStreams = core.PositiveOr(d.MaxEventStreams, 1000)
	d.MaxConcurrentRuns = core.PositiveOr(d.MaxConcurrentRuns, 100)
	if d.Region == "" {
		d.Region = "local"
	}
	for _, f := range []*func() string{&d.StackAURL, &d.StackBURL, &d.FedURL} {
		if *f == nil {
			*f = func() string { return "" }
		}
	}
	key := d.Key
	var err error
	if key == nil {
		if key, err = loadOrCreateKey(d.DataDir); err != nil {
			return nil, err
		}
	}
	client := d.HTTPClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = d.ClientTLS
		tr.MaxIdleConnsPerHost = 64
		client = &http.Client{Transport: tr}
	}
	n := &Node{
		d:       d,
		key:     key,
		pub:     key.Public().(ed25519.PublicKey),
		client:  client,
		log:     d.Log.With().Str("component", "federation").Str("stack_id", d.StackID).Logger(),
		locks:   map[string]*keyLock{},
		streams: make(chan struct{}, d.MaxEventStreams),
	}
	n.life, n.stop = context.WithCancel(context.Background())
	if n.m, err = newMetrics(d.Metrics); err != nil {
		return nil, err
	}
	if d.PeersFile != "" {
		if err := n.LoadPeersFile(context.Background(), d.PeersFile); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Close ends every open event stream (clients resume with Last-Event-ID
// elsewhere or after a restart) and waits for them, so the HTTP server's
// shutdown is not held up by long-lived streams. Call it before shutting
// the federation router down.
func (n *Node) Close() error {
	n.closeMu.Lock()
	n.closed = true
	n.closeMu.Unlock()
	n.stop()
	n.active.Wait()
	return nil
}

// StackID is this node's stack_id.
func (n *Node) StackID() string { return n.d.StackID }

// PublicKey is this node's signing key as peer info shows it
// ("ed25519:<base64>").
func (n *Node) PublicKey() string { return EncodePublicKey(n.pub) }

// Info is this node's peer object.
func (n *Node) Info() core.PeerInfo {
	return core.PeerInfo{
		StackID:     n.d.StackID,
		Environment: n.d.Environment,
		Region:      n.d.Region,
		APIVersions: []string{"v1"},
		Endpoints:   core.PeerEndpoints{StackABaseURL: n.d.StackAURL(), StackBBaseURL: n.d.StackBURL(), FederationBaseURL: n.d.FedURL()},
		Build:       core.PeerBuild{Version: n.d.Version, GitSHA: n.d.GitSHA, Timestamp: n.d.BuildTime},
		PublicKey:   n.PublicKey(),
	}
}

// Capabilities computes this node's capabilities from live state: the
// models Stack B routes to and the configured limits. When the model list
// fails, the error comes with capabilities that list no models.
func (n *Node) Capabilities(ctx context.Context) (core.Capabilities, error) {
	c := core.Capabilities{
		Supports: core.CapabilitySupports{RunsForward: true, EventsStream: true, TenantIsolation: true, ToolHosting: n.d.ToolHosting},
		Limits:   core.CapabilityLimits{MaxConcurrentRuns: n.d.MaxConcurrentRuns, MaxEventStreams: n.d.MaxEventStreams},
		Models:   core.CapabilityModels{Tiers: []string{}, Backends: []string{}},
	}
	if n.d.Models == nil {
		return c, nil
	}
	models, err := n.d.Models(ctx)
	if err != nil {
		return c, fmt.Errorf("list models: %w", err)
	}
	seenTier, seenBackend := map[string]bool{}, map[string]bool{}
	for _, m := range models {
		if m.Tier != "" && !seenTier[m.Tier] {
			seenTier[m.Tier] = true
			c.Models.Tiers = append(c.Models.Tiers, m.Tier)
		}
		if m.Provider != "" && !seenBackend[m.Provider] {
			seenBackend[m.Provider] = true
			c.Models.Backends = append(c.Models.Backends, m.Provider)
		}
		if m.ContextWindowTokens > c.Models.MaxContextTokens {
			c.Models.MaxContextTokens = m.ContextWindowTokens
		}
	}
	return c, nil
}

// joinStream registers an open stream; false once the node is closing.
func (n *Node) joinStream() bool {
	n.closeMu.Lock()
	defer n.closeMu.Unlock()
	if n.closed {
		return false
	}
	n.active.Add(1)
	return true
}

// lockKey serialises work on one key (a tenant's idempotency key) within
// this process; the returned func releases it.
func (n *Node) lockKey(k string) func() {
	n.keyLocks.Lock()
	l := n.locks[k]
	if l == nil {
		l = &keyLock{}
		n.locks[k] = l
	}
	l.refs++
	n.keyLocks.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		n.keyLocks.Lock()
		l.refs--
		if l.refs == 0 {
			delete(n.locks, k)
		}
		n.keyLocks.Unlock()
	}
}

// audit appends rec; a failed audit is logged, never hidden.
func (n *Node) audit(ctx context.Context, rec core.AuditRecord) {
	if _, err := n.d.Audit.AppendAudit(ctx, rec); err != nil {
		n.log.Error().Err(err).Str("tenant_id", rec.TenantID).Str("action", rec.Action).Msg("append audit")
	}
}
