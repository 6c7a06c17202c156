package fed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/agentos/agentos/core"
)

// TargetSelector picks the peer of a forward (§5.2).
type TargetSelector struct {
	StackID              string   `json:"stack_id,omitempty"`
	Region               string   `json:"region,omitempty"`
	RequiredCapabilities []string `json:"required_capabilities,omitempty"`
	PreferredModelTier   string   `json:"preferred_model_tier,omitempty"`
}

// ForwardRunRequest is a run request plus the agent it is for.
type ForwardRunRequest struct {
	AgentID string `json:"agent_id"`
	core.RunRequest
}

// ForwardRequest is the `forward` object of POST /v1/federation/runs:forward.
type ForwardRequest struct {
	TargetSelector TargetSelector    `json:"target_selector"`
	Auth           *core.Auth        `json:"auth,omitempty"`
	RunRequest     ForwardRunRequest `json:"run_request"`
	Traceparent    string            `json:"traceparent,omitempty"`
}

// Forwarded is the `forwarded` answer of a forward.
type Forwarded struct {
	TenantID        string `json:"tenant_id"`
	RemoteStackID   string `json:"remote_stack_id"`
	RemoteRunID     string `json:"remote_run_id"`
	RemoteEventsURL string `json:"remote_events_url"`
	Status          string `json:"status"`
	// Replayed is true when the idempotency key matched an earlier forward.
	Replayed bool `json:"replayed"`
}

func forwardedOf(r core.ForwardRecord) Forwarded {
	return Forwarded{TenantID: r.TenantID, RemoteStackID: r.RemoteStackID, RemoteRunID: r.RemoteRunID,
		RemoteEventsURL: r.RemoteEventsURL, Status: r.Status}
}

// knownCapabilities are the names a selector may require.
var knownCapabilities = []string{core.CapRunsForward, core.CapEventsStream, core.CapTenantIsolation, core.CapToolHosting}

// Forward runs req on a peer, or here when this node is the final hop: the
// call came with a peer assertion, or the selector names this node.
// replayed is true when the idempotency key had already made the run.
// Errors: forbidden (scope, or auth of another tenant without act_as),
// invalid_request, conflict (no peer fits: details.missing; the key reused
// with another body), dependency_unavailable or timeout (peer down), and
// whatever the final hop's Stack A answers.
func (n *Node) Forward(ctx context.Context, a core.Auth, req ForwardRequest, idemHeader string) (Forwarded, bool, error) {
	if err := a.Require(core.ScopeRunsForward); err != nil {
		return Forwarded{}, false, err
	}
	eff, err := effectiveAuth(a, req.Auth)
	if err != nil {
		return Forwarded{}, false, err
	}
	rr := req.RunRequest
	if rr.IdempotencyKey == "" {
		rr.IdempotencyKey = idemHeader
	}
	if err := validateRunRequest(rr); err != nil {
		return Forwarded{}, false, err
	}
	if req.Traceparent != "" {
		ctx = core.WithTraceparent(ctx, req.Traceparent)
	}
	sel := req.TargetSelector
	if err := validateSelector(sel); err != nil {
		return Forwarded{}, false, err
	}
	if src, viaPeer := peerOf(a); viaPeer || sel.StackID == n.d.StackID {
		if sel.StackID != "" && sel.StackID != n.d.StackID {
			return Forwarded{}, false, core.Errorf(core.CodeConflict, "this node is %s: forwards from a peer are not forwarded again", n.d.StackID).
				With("missing", []string{"stack_id:" + sel.StackID})
		}
		return n.runHere(ctx, eff, rr, src)
	}
	return n.forwardToPeer(ctx, eff, sel, rr)
}

// effectiveAuth is the Auth a forward acts for: the caller's own, or the
// body's when the caller may act for other tenants.
func effectiveAuth(a core.Auth, body *core.Auth) (core.Auth, error) {
	samePrincipal := body != nil && (body.Principal.PrincipalID == "" || body.Principal.PrincipalID == a.Principal.PrincipalID)
	if body == nil || (body.TenantID == "" || body.TenantID == a.TenantID) && samePrincipal {
		return a, nil
	}
	if !a.CanActAs() {
		return core.Auth{}, core.Errorf(core.CodeForbidden, "forward.auth names another tenant or principal; that needs tenants:act_as").
			With("field", "forward.auth.tenant_id")
	}
	eff := *body
	if eff.Principal.PrincipalID == "" {
		return core.Auth{}, core.Invalid("forward.auth.principal.principal_id", "forward.auth.principal.principal_id is required")
	}
	eff.Roles = nil // roles never come from a request body
	return eff, nil
}

func validateRunRequest(rr ForwardRunRequest) error {
	switch {
	case rr.AgentID == "":
		return core.Invalid("forward.run_request.agent_id", "agent_id is required")
	case rr.Input.Type != "text":
		return core.Invalid("forward.run_request.input.type", `input.type must be "text"`)
	case rr.Input.Text == "":
		return core.Invalid("forward.run_request.input.text", "input.text is required")
	case rr.IdempotencyKey == "":
		return core.Invalid("forward.run_request.idempotency_key", "idempotency_key is required (body or Idempotency-Key header)")
	case len(rr.IdempotencyKey) > 256:
		return core.Invalid("forward.run_request.idempotency_key", "idempotency_key is longer than 256 characters")
	}
	return nil
}

func validateSelector(sel TargetSelector) error {
	for i, c := range sel.RequiredCapabilities {
		if !slices.Contains(knownCapabilities, c) {
			return core.Invalid(fmt.Sprintf("forward.target_selector.required_capabilities[%d]", i),
				"unknown capability %q (known: %v)", c, knownCapabilities)
		}
	}
	return nil
}

// runHere creates the run on this node's Stack A: its own tenant rules,
// entitlements and quotas apply to the asserted Auth. Forwarding is run
// creation on the caller's behalf (§5.2): the caller passed the
// runs:forward check, so runs:create is implied for this one run, as for
// an upstream-shaped auth that carries runs:forward alone. A run a peer
// forwarded records that peer as its origin.
func (n *Node) runHere(ctx context.Context, a core.Auth, rr ForwardRunRequest, source string) (Forwarded, bool, error) {
	log := n.log.With().Str("tenant_id", a.TenantID).Str("correlation_id", core.CorrelationID(ctx)).Str("source_stack_id", source).Logger()
	if !a.Can(core.ScopeRunsCreate) {
		a.Scopes = append(slices.Clone(a.Scopes), core.ScopeRunsCreate)
	}
	if source != "" {
		ctx = core.WithRunOrigin(ctx, source)
	}
	run, replayed, err := n.d.Runs.CreateRun(ctx, a, rr.AgentID, rr.RunRequest, "")
	if err != nil {
		code := core.ErrorCode(err)
		n.m.forwards.WithLabelValues("received", code).Inc()
		n.audit(ctx, core.NewAudit(a, "federation.forward.receive", "run", "", "error",
			map[string]any{"source_stack_id": source, "agent_id": rr.AgentID, "error_code": code}))
		return Forwarded{}, false, err
	}
	n.m.forwards.WithLabelValues("received", "ok").Inc()
	if !replayed {
		n.audit(ctx, core.NewAudit(a, "federation.forward.receive", "run", run.RunID, "success",
			map[string]any{"source_stack_id": source, "agent_id": rr.AgentID}))
	}
	log.Info().Str("run_id", run.RunID).Bool("replayed", replayed).Msg("forwarded run created")
	return Forwarded{
		TenantID:        run.TenantID,
		RemoteStackID:   n.d.StackID,
		RemoteRunID:     run.RunID,
		RemoteEventsURL: n.d.FedURL() + "/v1/federation/runs/" + url.PathEscape(run.RunID) + "/events",
		Status:          run.Status,
		Replayed:        replayed,
	}, replayed, nil
}

func requestHash(rr ForwardRunRequest) string {
	rr.IdempotencyKey = ""
	return core.BodyHash(rr)
}

// forwardToPeer picks a peer, creates the run there and records it. The
// key lock and the forward index make one idempotency key one remote run:
// a retry (here or after a restart) finds the record, and a forward that
// died before recording sends the same key again, which the peer's Stack A
// answers with the run it already made.
func (n *Node) forwardToPeer(ctx context.Context, a core.Auth, sel TargetSelector, rr ForwardRunRequest) (Forwarded, bool, error) {
	log := n.log.With().Str("tenant_id", a.TenantID).Str("correlation_id", core.CorrelationID(ctx)).Logger()
	unlock := n.lockKey(a.TenantID + "\x00" + rr.IdempotencyKey)
	defer unlock()
	hash := requestHash(rr)
	if rec, found, err := n.d.Forward.GetForward(ctx, a.TenantID, rr.IdempotencyKey); err != nil {
		return Forwarded{}, false, fmt.Errorf("read forward index: %w", err)
	} else if found {
		if rec.RequestHash != hash {
			return Forwarded{}, false, core.Errorf(core.CodeConflict, "idempotency_key was used with a different run_request").
				With("field", "forward.run_request.idempotency_key")
		}
		n.m.forwards.WithLabelValues("sent", "replayed").Inc()
		f := forwardedOf(rec)
		f.Replayed = true
		return f, true, nil
	}
	peer, err := n.selectPeer(ctx, a, sel)
	if err != nil {
		n.m.forwards.WithLabelValues("sent", core.ErrorCode(err)).Inc()
		n.audit(ctx, core.NewAudit(a, "federation.forward", "run", "", "error",
			map[string]any{"error_code": core.ErrorCode(err), "agent_id": rr.AgentID}))
		return Forwarded{}, false, err
	}
	wire := a
	wire.Scopes, wire.Roles, wire.Session = exportScopes(a), nil, nil
	if wire.Principal.PrincipalType != "user" {
		wire.Principal.PrincipalType = "service"
	}
	if wire.PolicyContext.Region == "" || wire.PolicyContext.Purpose == "" || wire.PolicyContext.DataClassification == "" {
		wire.PolicyContext = core.DefaultPolicyContext(n.d.Region)
	}
	body, err := json.Marshal(map[string]any{"forward": ForwardRequest{
		TargetSelector: TargetSelector{StackID: peer.StackID},
		Auth:           &wire,
		RunRequest:     rr,
		Traceparent:    core.Traceparent(ctx),
	}})
	if err != nil {
		return Forwarded{}, false, fmt.Errorf("encode forward: %w", err)
	}
	var out struct {
		Forwarded Forwarded `json:"forwarded"`
	}
	if err := n.callPeer(ctx, a, peer, "forward", http.MethodPost, "/v1/federation/runs:forward", body, &out); err != nil {
		n.m.forwards.WithLabelValues("sent", core.ErrorCode(err)).Inc()
		n.audit(ctx, core.NewAudit(a, "federation.forward", "run", "", "error",
			map[string]any{"error_code": core.ErrorCode(err), "remote_stack_id": peer.StackID, "agent_id": rr.AgentID}))
		log.Warn().Err(err).Str("peer", peer.StackID).Msg("forward failed")
		return Forwarded{}, false, err
	}
	f := out.Forwarded
	if f.RemoteRunID == "" {
		return Forwarded{}, false, core.Errorf(core.CodeDependencyUnavailable, "peer %s answered without a run id", peer.StackID)
	}
	rec := core.ForwardRecord{
		TenantID: a.TenantID, IdempotencyKey: rr.IdempotencyKey, RequestHash: hash,
		PrincipalID: a.Principal.PrincipalID, AgentID: rr.AgentID,
		RemoteStackID: peer.StackID, RemoteRunID: f.RemoteRunID, RemoteEventsURL: f.RemoteEventsURL,
		Status: f.Status, CreatedAt: n.d.Now(),
	}
	audit := core.NewAudit(a, "federation.forward", "run", f.RemoteRunID, "success",
		map[string]any{"remote_stack_id": peer.StackID, "agent_id": rr.AgentID})
	stored, err := n.d.Forward.PutForward(ctx, rec, &audit)
	if err != nil {
		return Forwarded{}, false, fmt.Errorf("record forward: %w", err)
	}
	n.m.forwards.WithLabelValues("sent", "ok").Inc()
	log.Info().Str("run_id", f.RemoteRunID).Str("peer", peer.StackID).Msg("run forwarded")
	return forwardedOf(stored), false, nil
}

// selectPeer resolves the selector: stack_id, then region, then the live
// capabilities each candidate reports (required ones must all be there;
// the preferred model tier ranks candidates that have it first).
func (n *Node) selectPeer(ctx context.Context, a core.Auth, sel TargetSelector) (core.Peer, error) {
	peers, err := n.d.Peers.ListPeers(ctx)
	if err != nil {
		return core.Peer{}, fmt.Errorf("list peers: %w", err)
	}
	var candidates []core.Peer
	for _, p := range peers {
		if sel.StackID != "" && p.StackID != sel.StackID {
			continue
		}
		if sel.StackID == "" && sel.Region != "" && p.Region != sel.Region {
			continue
		}
		candidates = append(candidates, p)
	}
	if len(candidates) == 0 {
		missing := []string{"peer"}
		switch {
		case sel.StackID != "":
			missing = []string{"stack_id:" + sel.StackID}
		case sel.Region != "":
			missing = []string{"region:" + sel.Region}
		}
		return core.Peer{}, core.Errorf(core.CodeConflict, "no registered peer matches the target selector").
			With("missing", missing)
	}
	required := []string{core.CapRunsForward}
	for _, c := range sel.RequiredCapabilities {
		if !slices.Contains(required, c) {
			required = append(required, c)
		}
	}
	missingBy := map[string][]string{}
	unreachable := 0
	var fits []core.Peer
	var lastErr error
	for _, p := range candidates {
		caps, err := n.peerCapabilities(ctx, a, p)
		if err != nil {
			lastErr = err
			code := core.ErrorCode(err)
			if code == core.CodeDependencyUnavailable || code == core.CodeTimeout {
				unreachable++
				missingBy[p.StackID] = []string{"reachable"}
			} else {
				missingBy[p.StackID] = []string{"access:" + code}
			}
			continue
		}
		var missing []string
		for _, c := range required {
			if !caps.Supports.Has(c) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			missingBy[p.StackID] = missing
			continue
		}
		if sel.PreferredModelTier != "" && slices.Contains(caps.Models.Tiers, sel.PreferredModelTier) {
			return p, nil
		}
		fits = append(fits, p)
	}
	if len(fits) > 0 {
		return fits[0], nil
	}
	if unreachable == len(candidates) {
		return core.Peer{}, peerDown(candidates[len(candidates)-1], lastErr)
	}
	if len(candidates) == 1 && lastErr != nil {
		// The only candidate refused us (e.g. 403: the tenant is not
		// trusted there): its own answer says more than a 409.
		return core.Peer{}, lastErr
	}
	flat := []string{}
	for _, m := range missingBy {
		for _, c := range m {
			if !slices.Contains(flat, c) {
				flat = append(flat, c)
			}
		}
	}
	slices.Sort(flat)
	return core.Peer{}, core.Errorf(core.CodeConflict, "no peer offers what the forward requires").
		With("missing", flat).With("missing_by_peer", missingBy).With("required_capabilities", required)
}
