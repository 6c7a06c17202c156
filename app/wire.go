package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
	"github.com/agentos/agentos/fed"
	"github.com/agentos/agentos/retention"
	"github.com/agentos/agentos/stacka"
	"github.com/agentos/agentos/stacka/a2aserver"
	"github.com/agentos/agentos/stacka/admin"
	"github.com/agentos/agentos/stacka/mcpserver"
	"github.com/agentos/agentos/stackb"
	stackbclient "github.com/agentos/agentos/stackb/client"
)

// BuiltinToolIDs are the tools every node hosts (stacka owns the list).
var BuiltinToolIDs = stacka.BuiltinToolIDs()

// defaultTenantToolIDs are granted to a tenant created without a tool
// list: the builtin tools that reach no network.
var defaultTenantToolIDs = slices.DeleteFunc(stacka.BuiltinToolIDs(), stacka.NetworkTool)

// stacks holds the wired services of a node.
type stacks struct {
	admin   *admin.AdminAPI
	gateway *stackb.Gateway
	runs    *stacka.Service
	fed     *fed.Node
	models  core.ModelPort

	closers []func(context.Context) error
	starts  []func(context.Context) error
}

// stackAServiceScopes is what Stack A's identity holds when it calls a
// remote Stack B: model calls on behalf of any tenant.
var stackAServiceScopes = []string{core.ScopeModelsInvoke, core.ScopeModelsList, core.ScopePolicyCheck, core.ScopeTenantsActAs}

// wireStacks builds Stack B, Stack A and federation on the node's store
// and mounts each on its router. Stack A reaches Stack B in-process unless
// --stack-b-url names a remote one.
func wireStacks(ctx context.Context, n *Node) (*stacks, error) {
	s := &stacks{}
	cfg := n.Config
	// Every component writes through st, which publishes each committed
	// change of a tenant, token, agent or tool to the caches (see
	// publishingStore); a cluster would swap the feed for one that also
	// notifies the other nodes.
	st := publishingStore{Storage: n.store, feed: n.changes}
	// Secrets the node itself holds are audited when read (the value never).
	for ref, value := range map[string]string{"config:AGENTOS_SMTP_PASSWORD": cfg.SMTP.Password, "config:AGENTOS_STACK_B_API_KEY": cfg.StackBAPIKey} {
		if value == "" {
			continue
		}
		rec := core.SecretReadAudit(core.SystemTenantID, "svc_agentos", ref, "node configuration")
		if _, err := st.AppendAudit(ctx, rec); err != nil {
			return nil, fmt.Errorf("audit secret read: %w", err)
		}
	}

	// The retention sweep works on the store itself (not the publishing
	// wrapper: it changes no cached object, and a shared store's sweep
	// lock is a method of the adapter).
	// The first sweep waits a minute (startup stays cheap) but not a whole
	// interval, so a node restarted more often than that still sweeps.
	sw, err := retention.New(retention.Config{Defaults: cfg.Retention, Interval: cfg.RetentionInterval,
		FirstDelay: min(cfg.RetentionInterval, time.Minute), Batch: cfg.RetentionBatch, Pause: 10 * time.Millisecond},
		n.store, n.registry, n.Log)
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	n.sweeper = sw
	s.starts = append(s.starts, func(context.Context) error { sw.Start(); return nil })
	s.closers = append(s.closers, func(context.Context) error { sw.Stop(); return nil })

	gw, err := stackb.New(stackb.Deps{Tenants: st, Audit: st, Usage: st, ProvidersFile: cfg.ProvidersFile,
		StackID: n.stackID, Log: n.Log.With().Str("component", StackB).Logger(), Metrics: n.registry,
		Tracer: n.TracerProvider.Tracer("agentos/stack-b"), Changes: n.changes, TenantCacheTTL: cfg.CacheTTL, Limits: st})
	if err != nil {
		return nil, fmt.Errorf("stack b: %w", err)
	}
	s.gateway = gw
	s.closers = append(s.closers, func(context.Context) error { return gw.Close() })
	gw.Register(n.routers[StackB].echo)

	s.models = gw
	if cfg.StackBURL != "" {
		bearer := cfg.StackBAPIKey
		if bearer == "" {
			// Same-secret deployments (Stack B split off onto another
			// process of this node) authenticate with a service JWT.
			bearer, err = edge.MintServiceJWT(n.secret, "tnt_system", "svc_stack_a", stackAServiceScopes, []string{core.RoleTenantService}, 365*24*time.Hour)
			if err != nil {
				return nil, fmt.Errorf("stack a service credential: %w", err)
			}
		}
		remote := stackbclient.New(cfg.StackBURL, bearer, &http.Client{Timeout: 5 * time.Minute})
		s.models = remote
		n.AddReadyCheck(StackA, "stack_b", func(ctx context.Context) error { return probe(ctx, cfg.StackBURL+"/healthz") })
	} else {
		n.AddReadyCheck(StackA, "stack_b", func(ctx context.Context) error { return probe(ctx, n.URL(StackB)+"/healthz") })
	}

	acfg := stacka.DefaultConfig()
	acfg.Workers = cfg.Workers
	acfg.ToolEgressAllow = cfg.ToolEgressAllow
	acfg.AllowLoopbackEgress = cfg.Mode != ModeProd
	acfg.Mode = cfg.Mode
	acfg.TenantSecretsDir = cfg.TenantSecretsDir
	acfg.MaxEventStreams = eventStreamCap(cfg)
	acfg.MaxEventStreamsPerTenant = cfg.MaxEventStreamsPerTenant
	acfg.CacheTTL = cfg.CacheTTL
	// The tenant secret store is optional for a storage engine (bbolt has
	// one, the PostgreSQL adapter not yet): without it the admin secrets
	// routes are not mounted and secret:<name> reads --tenant-secrets-dir.
	var secrets core.SecretPort
	if sp, ok := n.store.(core.SecretPort); ok {
		secrets = sp
	}
	svc, err := stacka.New(stacka.Deps{Agents: st, Runs: st, Queue: st, Tools: st, Memory: st, Tenants: st, Audit: st,
		Secrets: secrets, Limits: st, Models: s.models, Log: n.Log.With().Str("component", StackA).Logger(), Metrics: n.registry, Config: acfg, StackID: n.stackID,
		NodeID: n.nodeID, Cluster: n.clusterConfig(),
		Tracer: n.TracerProvider.Tracer("agentos/stack-a"), Changes: n.changes})
	if err != nil {
		return nil, fmt.Errorf("stack a: %w", err)
	}
	s.runs = svc
	svc.Register(n.routers[StackA].echo)
	// The agents as A2A agents and as MCP tools, on Stack A's port.
	a2aserver.New(svc, core.APIVersion).Register(n.routers[StackA].echo)
	mcpserver.New(svc, core.APIVersion).Register(n.routers[StackA].echo)
	s.starts = append(s.starts, svc.Start)
	s.closers = append(s.closers, svc.Close)

	s.admin = &admin.AdminAPI{Tenants: st, Tokens: st, Audit: st, Secrets: secrets, DefaultToolIDs: defaultTenantToolIDs}
	s.admin.Register(n.routers[StackA].echo)

	build := n.Build.Resolved()
	fcfg := fed.Deps{DataDir: cfg.DataDir, Key: n.fedKey, StackID: n.stackID, Region: cfg.Region, Environment: cfg.Environment,
		Version: build.Version, GitSHA: build.GitSHA, BuildTime: build.BuildTime,
		StackAURL: func() string { return n.URL(StackA) }, StackBURL: func() string { return n.URL(StackB) },
		FedURL: func() string { return n.URL(StackFed) },
		Peers:  st, Forward: st, JTIs: st, Events: st, Tenants: st, Audit: st, Runs: svc, PeersFile: cfg.PeersFile,
		Models:            func(context.Context) ([]core.ModelInfo, error) { return s.gateway.Catalog(), nil },
		MaxConcurrentRuns: cfg.Workers, ToolHosting: true, MaxEventStreams: eventStreamCap(cfg),
		Log: n.Log.With().Str("component", StackFed).Logger(), Metrics: n.registry}
	if cfg.FedTLSCert != "" {
		if fcfg.ClientTLS, err = fed.ClientTLSConfig(cfg.FedTLSCert, cfg.FedTLSKey, cfg.FedTLSCA); err != nil {
			return nil, err
		}
	}
	fn, err := fed.New(fcfg)
	if err != nil {
		return nil, fmt.Errorf("federation: %w", err)
	}
	s.fed = fn
	// Closing federation first ends its relays and streams so the router's
	// graceful shutdown is not held up by them.
	s.closers = append(s.closers, func(context.Context) error { return fn.Close() })
	fn.Register(n.routers[StackFed].echo)
	n.edges[StackFed].PeerAuth = fn.AuthenticatePeer
	return s, nil
}

// eventStreamCap is the node's cap on open event streams per router: the
// configured value, or the smaller of 1000 and a quarter of the process's
// descriptor limit, so streams alone cannot take the descriptors that
// probes, the store and other clients need.
func eventStreamCap(cfg Config) int {
	if cfg.MaxEventStreams > 0 {
		return cfg.MaxEventStreams
	}
	n := 1000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur > 0 && lim.Cur/4 < uint64(n) {
		n = int(lim.Cur / 4)
	}
	if n < 16 {
		n = 16
	}
	return n
}

// probe GETs url and wants a 2xx.
func probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unreachable: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	return nil
}

func (s *stacks) start(ctx context.Context) error {
	for _, f := range s.starts {
		if err := f(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s *stacks) close(ctx context.Context) error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// backends lists the configured model backends (the demo tenant is
// entitled to all of them).
func (s *stacks) backends() []string {
	out := []string{}
	for b := range s.gateway.BackendHealth() {
		out = append(out, b)
	}
	if len(out) == 0 {
		out = append(out, "builtin")
	}
	sort.Strings(out)
	return out
}

// seedSamples creates the sample agent and tool through Stack A.
func (s *stacks) seedSamples(ctx context.Context, tenantID string) error {
	if err := s.runs.EnsureTool(ctx, tenantID, core.ToolDescriptor{ToolID: SampleToolID, Name: "echo", Kind: "builtin",
		Description: "Returns its input.", InputSchema: map[string]any{"type": "object"}}); err != nil {
		return fmt.Errorf("seed tool: %w", err)
	}
	err := s.runs.EnsureAgent(ctx, core.Agent{TenantID: tenantID, AgentID: SampleAgentID, Name: "Sample echo agent",
		Description: "Calls tool.echo once, then answers from its result (builtin/echo-1).", ModelRef: "tier:fast",
		Instructions: "You are a helpful echo agent.", ToolIDs: []string{SampleToolID}, Status: "active"})
	if err != nil {
		return fmt.Errorf("seed agent: %w", err)
	}
	return nil
}
