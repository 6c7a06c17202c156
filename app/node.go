package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/agentos/agentos/alerts"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
	"github.com/agentos/agentos/fed"
	"github.com/agentos/agentos/openapi"
	"github.com/agentos/agentos/retention"
	"github.com/agentos/agentos/stacka/a2aserver"
	"github.com/agentos/agentos/stackb"
	"github.com/agentos/agentos/store"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Stack names, as they appear in health answers, metrics and logs.
const (
	StackA   = "stack-a"
	StackB   = "stack-b"
	StackFed = "federation"
)

// BuildInfo is stamped into the binary at link time.
type BuildInfo struct {
	Version   string `json:"version"`
	GitSHA    string `json:"git_sha"`
	BuildTime string `json:"build_time"`
}

// NodeFile is <data-dir>/node.json, written once all routers listen.
type NodeFile struct {
	PID       int    `json:"pid"`
	StackID   string `json:"stack_id"`
	NodeID    string `json:"node_id"`
	Cluster   bool   `json:"cluster,omitempty"`
	StackAURL string `json:"stack_a_url"`
	StackBURL string `json:"stack_b_url"`
	FedURL    string `json:"fed_url"`
	Mode      string `json:"mode"`
	Version   string `json:"version"`
	StartedAt string `json:"started_at"`
}

// router is one of the three HTTP servers.
type router struct {
	name     string
	echo     *echo.Echo
	listener net.Listener
	server   *http.Server
	url      string
}

// Node is one AgentOS process: a store, three routers and the stacks.
// Build it with NewNode, then Open; Close stops it gracefully.
type Node struct {
	Config Config
	Build  BuildInfo
	Log    zerolog.Logger
	// TracerProvider, when set before Open, receives the node's spans
	// (tests use an in-memory exporter); otherwise Open builds one.
	TracerProvider trace.TracerProvider
	// Seeded is what the demo/dev seed did when the node opened.
	Seeded Seeded

	store    core.Storage
	secret   []byte
	stackID  string
	nodeID   string
	fedKey   ed25519.PrivateKey
	started  time.Time
	registry *prometheus.Registry
	metrics  *edge.Metrics
	auth     *edge.Authenticator
	failures *edge.FailureLimiter
	bodies   *edge.BodyBudget
	// inflight is the node-wide cap on requests answered at once.
	inflight *edge.InflightGate
	// changes carries cache invalidations from writers to caches (and, in a
	// cluster, to and from the other nodes: stopChanges ends its listener).
	changes     core.ChangeFeed
	stopChanges func()
	routers     map[string]*router
	edges       map[string]*edge.Edge
	stacks      *stacks
	// readiness checks per router: name → check.
	ready map[string][]readyCheck

	// sweeper removes records past their retention (see retention/).
	sweeper *retention.Sweeper

	ownTracer *sdktrace.TracerProvider
	debug     *debugServer

	alertsMu   sync.Mutex
	alerts     *alerts.Engine
	stopAlerts func()

	closeOnce sync.Once
	closeErr  error
	serveErr  chan error
	// wroteNodeFile is set once this node wrote node.json: only the node
	// that holds the data dir's lock and announced itself removes it, so a
	// second start refused by the lock leaves the running node's file be.
	wroteNodeFile bool
}

type readyCheck struct {
	name string
	fn   func(ctx context.Context) error
}

// NewNode prepares a node; nothing is opened yet.
func NewNode(cfg Config, build BuildInfo, log zerolog.Logger) *Node {
	return &Node{Config: cfg, Build: build, Log: log, serveErr: make(chan error, 3)}
}

// Store exposes the node's storage (tests and CLI commands).
func (n *Node) Store() core.Storage { return n.store }

// StackID is this node's stable id (shared by the nodes of a cluster).
func (n *Node) StackID() string { return n.stackID }

// NodeID is this process's id among the nodes sharing its store.
func (n *Node) NodeID() string { return n.nodeID }

// Secret is the node's HS256 secret.
func (n *Node) Secret() []byte { return n.secret }

// URL is the base URL of a router (StackA, StackB or StackFed) once open.
func (n *Node) URL(name string) string {
	if r, ok := n.routers[name]; ok {
		return r.url
	}
	return ""
}

// OpenConnections is how many connections router name holds now (0 on
// the federation port with TLS, whose listener wraps the counted one).
func (n *Node) OpenConnections(name string) int64 {
	r := n.routers[name]
	if r == nil {
		return 0
	}
	return edge.OpenConnections(r.listener)
}

// RequestsInFlight is how many requests count against the node's
// in-flight cap right now.
func (n *Node) RequestsInFlight() int64 {
	if n.inflight == nil {
		return 0
	}
	return n.inflight.InFlight()
}

// Sweep runs one retention sweep now (tests and operators; the node
// also sweeps every RetentionInterval).
func (n *Node) Sweep(ctx context.Context) (retention.Report, error) {
	if n.sweeper == nil {
		return retention.Report{}, errors.New("node not open")
	}
	return n.sweeper.Sweep(ctx)
}

// BodyBytesBuffered is how many request body bytes are reserved against
// the node's body memory budget right now.
func (n *Node) BodyBytesBuffered() int64 {
	if n.bodies == nil {
		return 0
	}
	return n.bodies.InUse()
}

// Errors reports a router that stopped serving unexpectedly.
func (n *Node) Errors() <-chan error { return n.serveErr }

// Open validates the configuration, opens the store, wires the stacks,
// binds the three ports, and writes node.json. On error everything opened
// so far is closed again.
func (n *Node) Open(ctx context.Context) (err error) {
	if err := n.Config.Validate(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := os.MkdirAll(n.Config.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", n.Config.DataDir, err)
	}
	n.store, err = OpenStorage(ctx, n.Config, OpenOptions{ResetBroken: n.Config.ResetBrokenStore,
		OnReset: func(aside, reason string) {
			n.Log.Warn().Str("broken", aside).Str("reason", reason).Msg("--reset: moved the refused database aside; starting a new, empty node")
		},
		OnOpen: func(oc store.OpenCheck) {
			switch {
			case oc == store.OpenCheck{}:
				return // a new file
			case oc.Full:
				n.Log.Warn().Msg("store opened after an unclean stop: every page was walked")
			default:
				n.Log.Info().Int("pages_checked", oc.Pages).Msg("store opened after a clean stop: quick check")
			}
		}})
	if err != nil {
		return err
	}
	if n.stackID, err = n.resolveStackID(ctx); err != nil {
		return err
	}
	if n.Config.Mode == ModeProd {
		if err := n.refuseDemoKeys(ctx); err != nil {
			return err
		}
	}
	if n.secret, err = loadOrCreateSecret(n.Config.Path("node.secret")); err != nil {
		return err
	}
	if n.secret, err = n.clusterSecret(ctx, n.secret); err != nil {
		return err
	}
	if n.nodeID, err = resolveNodeID(n.Config); err != nil {
		return err
	}
	if n.fedKey, err = n.clusterFedKey(ctx); err != nil {
		return err
	}
	n.started = time.Now().UTC()
	n.Log = n.Log.With().Str("stack_id", n.stackID).Str("node_id", n.nodeID).Logger()
	if n.TracerProvider == nil {
		tp, err := newTracerProvider(ctx, n.Config, n.stackID)
		if err != nil {
			return err
		}
		n.TracerProvider = tp
		n.ownTracer = tp
	}
	n.registry = prometheus.NewRegistry()
	n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every series of this registry is the node's own; the info gauge says
	// which node of which stack (scrape each node as its own target).
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "agentos_node_info",
		Help: "Always 1; labels name this node, its stack and whether it shares its store with other nodes."}, []string{"stack_id", "node_id", "cluster"})
	info.WithLabelValues(n.stackID, n.nodeID, fmt.Sprint(n.clustered())).Set(1)
	n.registry.MustRegister(info)
	n.metrics = edge.NewMetrics(n.registry, n.Config.TenantLabelLimit)
	if n.auth, err = edge.NewAuthenticator(n.Config.authConfig(), n.secret, n.store, n.store); err != nil {
		return err
	}
	n.failures = edge.NewFailureLimiter(n.Config.AuthFailuresPerMinute)
	n.bodies = edge.NewBodyBudget(n.Config.BodyMemory)
	n.inflight = edge.NewInflightGate(n.Config.MaxRequestsInFlight)
	if err := n.openChanges(ctx); err != nil {
		return err
	}
	n.auth.Watch(n.changes, n.Config.CacheTTL)
	n.ready = map[string][]readyCheck{}
	n.routers = map[string]*router{}
	n.edges = map[string]*edge.Edge{}
	for _, name := range []string{StackA, StackB, StackFed} {
		if err := n.newRouter(name); err != nil {
			return err
		}
	}
	if n.stacks, err = wireStacks(ctx, n); err != nil {
		return err
	}
	mountConsole(n)
	if n.Config.DebugAddr != "" {
		if n.debug, err = startDebugServer(n.Config.DebugAddr); err != nil {
			return err
		}
		n.Log.Warn().Str("debug_url", n.debug.url+"/debug/pprof/").Msg("pprof debug listener on (--debug-addr)")
	}
	for _, r := range n.routers {
		n.serve(r)
	}
	if err := n.stacks.start(ctx); err != nil {
		return err
	}
	n.stopAlerts = startAlerts(n)
	// Seed before node.json appears, so whoever waits for node.json finds
	// the credentials file too.
	if n.Config.Mode != ModeProd {
		if n.Seeded, err = n.Seed(ctx); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	// Opening parsed three OpenAPI documents and compiled their schemas:
	// megabytes of garbage the runtime would otherwise keep mapped for
	// minutes. Hand it back once, off the start path, so an idle node's
	// memory is what it holds.
	go debug.FreeOSMemory()
	return n.writeNodeFile()
}

// refuseDemoKeys stops a prod start while the demo seed's keys still
// authenticate: a data dir that ran in demo mode keeps them in its store
// even after credentials.json is gone.
func (n *Node) refuseDemoKeys(ctx context.Context) error {
	toks, err := n.store.ListTokens(ctx, DemoTenantID)
	if err != nil {
		return fmt.Errorf("check demo keys: %w", err)
	}
	var live []string
	for _, t := range toks {
		if t.Active(time.Now()) && (t.PrincipalID == PlatformAdminID || t.PrincipalID == TenantAdminID) {
			live = append(live, t.TokenID+" ("+t.PrincipalID+")")
		}
	}
	if len(live) > 0 {
		return fmt.Errorf("prod mode refuses to start while demo keys are active in the store: %s; revoke them (agentos token revoke %s <token_id>) in demo mode, or start prod from a fresh data dir", strings.Join(live, ", "), DemoTenantID)
	}
	return nil
}

func (n *Node) resolveStackID(ctx context.Context) (string, error) {
	stored, err := n.store.GetMeta(ctx, core.MetaStackID)
	if err != nil {
		return "", fmt.Errorf("read stack id: %w", err)
	}
	id := n.Config.StackID
	if mi, ok := n.store.(core.MetaInitPort); ok && stored == "" && id == "" {
		// A shared store: nodes starting at once agree on the first id.
		if stored, err = mi.InitMeta(ctx, core.MetaStackID, core.NewID(core.PrefixStack)); err != nil {
			return "", fmt.Errorf("init stack id: %w", err)
		}
	}
	switch {
	case id != "" && id != stored:
		if err := n.store.SetMeta(ctx, core.MetaStackID, id); err != nil {
			return "", err
		}
	case id == "" && stored != "":
		id = stored
	case id == "":
		id = core.NewID(core.PrefixStack)
		if err := n.store.SetMeta(ctx, core.MetaStackID, id); err != nil {
			return "", err
		}
	}
	return id, nil
}

// loadOrCreateSecret reads the node's 32-byte HS256 secret, creating it
// (0600) on first start. An unreadable or short file stops startup.
func loadOrCreateSecret(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("node secret: %w", err)
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("node secret: %w", err)
		}
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node secret %s: %w", path, err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(b) < 32 {
		return nil, fmt.Errorf("node secret %s: want 64 hex characters", path)
	}
	return b, nil
}

func (n *Node) addrOf(name string) string {
	switch name {
	case StackA:
		return n.Config.StackAAddr
	case StackB:
		return n.Config.StackBAddr
	default:
		return n.Config.FedAddr
	}
}

// newRouter builds the echo instance with the shared edge and binds its
// port (":0" picks a free one).
func (n *Node) newRouter(name string) error {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	v, err := openapi.NewValidator(name)
	if err != nil {
		return fmt.Errorf("%s: openapi document: %w", name, err)
	}
	ed := &edge.Edge{Stack: name, Log: n.Log.With().Str("component", name).Logger(), Auth: n.auth,
		Failures: n.failures, BodyLimit: n.Config.BodyLimit, Bodies: n.bodies, Inflight: n.inflight, Metrics: n.metrics,
		Tracer: n.TracerProvider.Tracer("agentos/" + name), Validator: v,
		CompatError: stackb.CompatError, PublicRead: a2aserver.PublicCardPath}
	ed.Use(e)
	n.mountCommon(e, name)

	ln, err := net.Listen("tcp", n.addrOf(name))
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", name, n.addrOf(name), err)
	}
	scheme := "http://"
	tlsPort := name == StackFed && n.Config.FedTLSCert != ""
	ln = edge.LimitConnections(ln, n.Config.MaxConnections, !tlsPort)
	if tlsPort {
		// mTLS between peers: the federation port only talks to holders of
		// a certificate from the configured CA.
		tcfg, err := fed.ServerTLSConfig(n.Config.FedTLSCert, n.Config.FedTLSKey, n.Config.FedTLSCA)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, tcfg)
		scheme = "https://"
	}
	r := &router{name: name, echo: e, listener: ln, url: scheme + ln.Addr().String()}
	// No ReadTimeout: it would also cut long responses (net/http cancels
	// the request once the deadline passes); BodyDeadline bounds bodies.
	// Oversized headers get the contract's JSON 431 (edge/headerlimit.go).
	r.server = &http.Server{Handler: edge.LimitHeaders(edge.BodyDeadline(n.Config.BodyReadTimeout, e)), MaxHeaderBytes: edge.ServerHeaderCap,
		ReadHeaderTimeout: n.Config.ReadHeaderTimeout, IdleTimeout: n.Config.IdleTimeout}
	n.routers[name] = r
	n.edges[name] = ed
	return nil
}

func (n *Node) serve(r *router) {
	go func() {
		if err := r.server.Serve(r.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.Log.Error().Err(err).Str("component", r.name).Msg("router stopped")
			n.serveErr <- fmt.Errorf("%s: %w", r.name, err)
		}
	}()
}

// mountCommon serves what every port serves: liveness, readiness, metrics,
// the OpenAPI document and the golden examples.
func (n *Node) mountCommon(e *echo.Echo, name string) {
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]any{"status": "ok", "checks": map[string]string{"process": "ok"},
			"service": name, "correlation_id": core.CorrelationID(c.Request().Context())})
	})
	e.GET("/readyz", func(c echo.Context) error {
		checks, ok := n.Ready(c.Request().Context(), name)
		status, code := "ok", http.StatusOK
		if !ok {
			status, code = "unavailable", http.StatusServiceUnavailable
		}
		return c.JSON(code, map[string]any{"status": status, "checks": checks, "service": name,
			"correlation_id": core.CorrelationID(c.Request().Context())})
	})
	metrics := promhttp.HandlerFor(n.registry, promhttp.HandlerOpts{})
	e.GET("/metrics", echo.WrapHandler(metrics))
	mountDocuments(e, name)
}

// AddReadyCheck adds a readiness check to a router.
func (n *Node) AddReadyCheck(router, name string, fn func(ctx context.Context) error) {
	n.ready[router] = append(n.ready[router], readyCheck{name, fn})
}

// Ready runs the router's readiness checks: the store is writable, and
// what the router depends on answers.
func (n *Node) Ready(ctx context.Context, router string) (map[string]string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	checks := map[string]string{}
	ok := true
	if err := n.store.Ping(ctx); err != nil {
		checks["store"] = "unavailable: " + err.Error()
		ok = false
	} else {
		checks["store"] = "ok"
	}
	for _, rc := range n.ready[router] {
		if err := rc.fn(ctx); err != nil {
			checks[rc.name] = "unavailable: " + err.Error()
			ok = false
		} else {
			checks[rc.name] = "ok"
		}
	}
	return checks, ok
}

func (n *Node) writeNodeFile() error {
	nf := NodeFile{PID: os.Getpid(), StackID: n.stackID, NodeID: n.nodeID, Cluster: n.clustered(), StackAURL: n.URL(StackA), StackBURL: n.URL(StackB),
		FedURL: n.URL(StackFed), Mode: n.Config.Mode, Version: n.Build.Version, StartedAt: core.Now().Format(time.RFC3339)}
	raw, _ := json.MarshalIndent(nf, "", "  ")
	tmp := n.Config.Path("node.json.tmp")
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("write node.json: %w", err)
	}
	if err := os.Rename(tmp, n.Config.Path("node.json")); err != nil {
		return fmt.Errorf("write node.json: %w", err)
	}
	n.wroteNodeFile = true
	return nil
}

// removeNodeFile removes node.json when this node wrote it and it still
// names this process (an operator may have started another node since).
func (n *Node) removeNodeFile() {
	if !n.wroteNodeFile || n.Config.DataDir == "" {
		return
	}
	if nf, err := ReadNodeFile(n.Config.DataDir); err == nil && nf.PID != os.Getpid() {
		return
	}
	os.Remove(n.Config.Path("node.json"))
}

// ReadNodeFile reads <data-dir>/node.json.
func ReadNodeFile(dataDir string) (NodeFile, error) {
	var nf NodeFile
	raw, err := os.ReadFile(filepath.Join(dataDir, "node.json"))
	if err != nil {
		return nf, err
	}
	return nf, json.Unmarshal(raw, &nf)
}

// Close stops accepting requests, drains streams and in-flight work within
// the shutdown timeout, stops the stacks and closes the store.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), n.Config.ShutdownTimeout)
		defer cancel()
		var errs []error
		var wg sync.WaitGroup
		for _, r := range n.routers {
			if r.server == nil {
				continue
			}
			wg.Add(1)
			go func(r *router) {
				defer wg.Done()
				if err := r.server.Shutdown(ctx); err != nil {
					_ = r.server.Close()
				}
			}(r)
		}
		if n.stacks != nil {
			// Stopping the stacks ends SSE streams, so Shutdown can finish.
			if err := n.stacks.close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		wg.Wait()
		for _, r := range n.routers {
			if r.server == nil && r.listener != nil {
				r.listener.Close()
			}
		}
		if n.stopAlerts != nil {
			n.stopAlerts()
		}
		n.debug.close()
		if n.ownTracer != nil {
			if err := n.ownTracer.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("trace export: %w", err))
			}
		}
		if n.stopChanges != nil {
			n.stopChanges()
		}
		if n.store != nil {
			if err := n.store.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		n.removeNodeFile()
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// Handler is a router's HTTP handler, for in-memory tests and fuzzing.
func (n *Node) Handler(name string) http.Handler {
	if r, ok := n.routers[name]; ok {
		return r.echo
	}
	return nil
}
