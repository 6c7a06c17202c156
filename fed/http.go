package fed

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
	"github.com/labstack/echo/v4"
)

// Register mounts the federation routes on e. app installs recovery,
// correlation ids, body limits, authentication (AuthenticatePeer first,
// then API keys and JWTs) and the error mapper before them; routes with
// one scope name it (edge.RequireScope). Ingest checks its peer assertion
// first (401 without one), then its scope, so it checks in the handler.
func (n *Node) Register(e *echo.Echo) {
	e.GET("/v1/federation/health", n.handleHealth)
	e.GET("/v1/federation/peer", n.handlePeerInfo)
	e.GET("/v1/peer/info", n.handlePeerInfo)
	e.GET("/v1/federation/peer/capabilities", n.handleCapabilities)
	e.GET("/v1/peer/capabilities", n.handleCapabilities)
	// A backslash keeps echo from reading ":forward" as a path parameter.
	e.POST(`/v1/federation/runs\:forward`, n.handleForward, edge.RequireScope(core.ScopeRunsForward))
	e.GET("/v1/federation/runs/:run_id/events", n.handleEvents, edge.RequireScope(core.ScopeRunsRead))
	e.POST(`/v1/federation/events\:ingest`, n.handleIngest)
	// The peer registry is node-wide trust: it takes the platform's admin
	// powers (scope tenants:admin, which role platform_admin holds).
	registry := edge.RequireScope(core.ScopeTenantsAdmin)
	e.GET("/v1/federation/peers", n.handleListPeers, registry)
	e.POST("/v1/federation/peers", n.handlePutPeer, registry)
	e.DELETE("/v1/federation/peers/:stack_id", n.handleDeletePeer, registry)
}

func authOf(ctx context.Context) (core.Auth, error) {
	a, ok := core.AuthFrom(ctx)
	if !ok {
		return core.Auth{}, core.Errorf(core.CodeUnauthorized, "credential required")
	}
	return a, nil
}

func (n *Node) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "service": "federation", "version": core.APIVersion,
		"correlation_id": core.CorrelationID(c.Request().Context())})
}

func (n *Node) handlePeerInfo(c echo.Context) error {
	ctx := c.Request().Context()
	if _, err := authOf(ctx); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"peer": n.Info(), "correlation_id": core.CorrelationID(ctx)})
}

func (n *Node) handleCapabilities(c echo.Context) error {
	ctx := c.Request().Context()
	if _, err := authOf(ctx); err != nil {
		return err
	}
	caps, err := n.Capabilities(ctx)
	if err != nil {
		// The federation features stand without Stack B's catalogue: say
		// what we know (no model tiers) rather than refuse every forward.
		n.log.Warn().Err(err).Str("correlation_id", core.CorrelationID(ctx)).Msg("capabilities without models")
	}
	return c.JSON(http.StatusOK, map[string]any{"capabilities": caps, "correlation_id": core.CorrelationID(ctx)})
}

func (n *Node) handleForward(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := authOf(ctx)
	if err != nil {
		return err
	}
	fr, err := edge.DecodeEnvelope[ForwardRequest](c, "forward")
	if err != nil {
		return err
	}
	f, replayed, err := n.Forward(ctx, a, fr, c.Request().Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	if replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	return c.JSON(http.StatusOK, map[string]any{"forwarded": f, "correlation_id": core.CorrelationID(ctx)})
}

// afterSequence reads ?after_sequence= or, when absent, Last-Event-ID.
func afterSequence(c echo.Context) (int64, error) {
	field, raw := "after_sequence", c.QueryParam("after_sequence")
	if raw == "" {
		field, raw = "Last-Event-ID", c.Request().Header.Get("Last-Event-ID")
	}
	if raw == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil || v < 0 {
		return 0, core.Invalid(field, "%s must be a non-negative integer", field)
	}
	return v, nil
}

func wantsJSON(r *http.Request) bool {
	acc := r.Header.Get("Accept")
	return strings.Contains(acc, "application/json") && !strings.Contains(acc, "text/event-stream")
}

func (n *Node) handleEvents(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := authOf(ctx)
	if err != nil {
		return err
	}
	runID := c.Param("run_id")
	after, err := afterSequence(c)
	if err != nil {
		return err
	}
	if wantsJSON(c.Request()) {
		evs, err := n.ListRunEvents(ctx, a, runID, after)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"events": evs, "correlation_id": core.CorrelationID(ctx)})
	}
	src, err := n.resolveRun(ctx, a, runID)
	if err != nil {
		return err
	}
	select {
	case n.streams <- struct{}{}:
		defer func() { <-n.streams }()
	default:
		return core.RateLimited("event_streams", 1, "too many open event streams on this node")
	}
	if !n.joinStream() {
		return core.Errorf(core.CodeDependencyUnavailable, "the federation router is shutting down")
	}
	defer n.active.Done()
	n.m.streams.Inc()
	defer n.m.streams.Dec()

	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	c.Response().WriteHeader(http.StatusOK)
	c.Response().Flush()

	w := newSSEWriter(c.Response())
	ctx, cancel := context.WithCancel(ctx)
	stopOnClose := context.AfterFunc(n.life, cancel)
	defer stopOnClose()
	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		n.pingLoop(ctx, cancel, w)
	}()
	// The response must not be touched once the handler returns.
	defer func() {
		cancel()
		<-pingDone
	}()
	write, flush := w.event, func() {}
	if src.kind == sourceForwarded {
		write, flush = w.eventNoFlush, w.flush
	}
	if err := n.streamSource(ctx, a, runID, src, after, write, flush); err != nil && ctx.Err() == nil {
		// The status line is out: the stream just ends and the client
		// resumes with Last-Event-ID.
		n.log.Warn().Err(err).Str("tenant_id", a.TenantID).Str("run_id", runID).
			Str("correlation_id", core.CorrelationID(ctx)).Msg("event stream ended early")
	}
	return nil
}

func (n *Node) pingLoop(ctx context.Context, cancel context.CancelFunc, w *sseWriter) {
	core.Every(ctx, 0, n.d.PingInterval, func(context.Context) bool {
		if err := w.ping(); err != nil {
			cancel()
			return false
		}
		return true
	})
}

// IngestRequest is the body of POST /v1/federation/events:ingest, in either
// accepted form.
type IngestRequest struct {
	Peer        *core.PeerInfo    `json:"peer,omitempty"`
	Events      []json.RawMessage `json:"events"`
	Ingest      *IngestOptions    `json:"ingest,omitempty"`
	Traceparent string            `json:"traceparent,omitempty"`
}

// IngestOptions is the `ingest` object of the second body form.
type IngestOptions struct {
	SourceStackID string `json:"source_stack_id"`
	Dedupe        *struct {
		Mode string `json:"mode"`
	} `json:"dedupe,omitempty"`
}

func (n *Node) handleIngest(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := authOf(ctx)
	if err != nil {
		return err
	}
	var req IngestRequest
	if err := edge.DecodeJSON(c, &req); err != nil {
		return err
	}
	accepted, rejected, err := n.Ingest(ctx, a, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"accepted": accepted, "rejected": rejected, "correlation_id": core.CorrelationID(ctx)})
}

func (n *Node) handleListPeers(c echo.Context) error {
	ctx := c.Request().Context()
	peers, err := n.d.Peers.ListPeers(ctx)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"peers": peers, "correlation_id": core.CorrelationID(ctx)})
}

func (n *Node) handlePutPeer(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := authOf(ctx)
	if err != nil {
		return err
	}
	peer, err := edge.DecodeEnvelope[core.Peer](c, "peer")
	if err != nil {
		return err
	}
	p, err := n.RegisterPeer(ctx, a, peer)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"peer": p, "correlation_id": core.CorrelationID(ctx)})
}

func (n *Node) handleDeletePeer(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := authOf(ctx)
	if err != nil {
		return err
	}
	p, err := n.d.Peers.DeletePeer(ctx, c.Param("stack_id"))
	if err != nil {
		return err
	}
	n.audit(ctx, core.NewAudit(a, "federation.peer.delete", "peer", p.StackID, "success", nil))
	return c.JSON(http.StatusOK, map[string]any{"peer": p, "correlation_id": core.CorrelationID(ctx)})
}

// RegisterPeer validates and adds a registry entry (admin API), auditing
// it in the admin's tenant. invalid_request names the bad field; a stack_id
// already registered is conflict (delete it first, so a pinned key is never
// swapped by accident).
func (n *Node) RegisterPeer(ctx context.Context, a core.Auth, p core.Peer) (core.Peer, error) {
	if err := ValidatePeer(p, "peer"); err != nil {
		return p, err
	}
	if p.StackID == n.d.StackID {
		return p, core.Invalid("peer.stack_id", "peer.stack_id %s is this node's own stack_id", p.StackID)
	}
	if p.TrustedTenants == nil {
		p.TrustedTenants = []string{}
	}
	unlock := n.lockKey("peer\x00" + p.StackID)
	defer unlock()
	if _, err := n.d.Peers.GetPeer(ctx, p.StackID); err == nil {
		return p, core.Errorf(core.CodeConflict, "peer %s is already registered; delete it first to replace it", p.StackID).
			With("stack_id", p.StackID)
	} else if !core.IsCode(err, core.CodeNotFound) {
		return p, err
	}
	if _, err := n.d.Peers.PutPeer(ctx, p); err != nil {
		return p, err
	}
	stored, err := n.d.Peers.GetPeer(ctx, p.StackID)
	if err != nil {
		return p, err
	}
	n.audit(ctx, core.NewAudit(a, "federation.peer.register", "peer", p.StackID, "success",
		map[string]any{"trusted_tenants": p.TrustedTenants}))
	return stored, nil
}
