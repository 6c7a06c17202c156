package stacka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/agentos/agentos/core"
)

func validateRunOptions(o *core.RunOptions, prefix string) error {
	switch o.Priority {
	case "", "low", "normal", "high":
	default:
		return core.Invalid(prefix+".priority", "priority must be low, normal or high")
	}
	if o.TimeoutMS != nil && *o.TimeoutMS < 1 {
		return core.Invalid(prefix+".timeout_ms", "timeout_ms must be at least 1")
	}
	if o.MaxSteps != nil && *o.MaxSteps < 1 {
		return core.Invalid(prefix+".max_steps", "max_steps must be at least 1")
	}
	return nil
}

// validateRunRequest applies the checks of §3.3 and returns the effective
// idempotency key.
func validateRunRequest(req *core.RunRequest, header string) (string, error) {
	if req.Input.Type == "" {
		return "", core.Invalid("input.type", "input.type is required (\"text\")")
	}
	if req.Input.Type != "text" {
		return "", core.Invalid("input.type", "input.type must be \"text\"")
	}
	if strings.TrimSpace(req.Input.Text) == "" {
		return "", core.Invalid("input.text", "input.text is required")
	}
	key := req.IdempotencyKey
	header = strings.TrimSpace(header)
	switch {
	case key == "" && header == "":
		return "", core.Invalid("idempotency_key", "idempotency_key is required, in the body or the Idempotency-Key header")
	case key == "":
		key = header
	case header != "" && header != key:
		return "", core.Invalid("idempotency_key", "the Idempotency-Key header and the body's idempotency_key differ")
	}
	if len(key) > 256 {
		return "", core.Invalid("idempotency_key", "idempotency_key is longer than 256 characters")
	}
	if req.RunOptions != nil {
		if err := validateRunOptions(req.RunOptions, "run_options"); err != nil {
			return "", err
		}
	}
	if t := req.Tooling; t != nil {
		for i, id := range append(append([]string{}, t.ToolAllowlist...), t.ToolDenymap...) {
			if !validID(id) {
				return "", core.Invalid("tooling", "tooling entry %d (%q) is not a tool id", i, id)
			}
		}
	}
	return key, nil
}

// runTools is the agent's tool_ids ∩ the tenant's tool_ids_allowed ∩ the
// allowlist (when given) − the denymap.
func runTools(agent core.Agent, tenant core.Tenant, t *core.Tooling) []string {
	out := []string{}
	for _, id := range agent.ToolIDs {
		if !slices.Contains(tenant.Entitlements.ToolIDsAllowed, id) {
			continue
		}
		if t != nil && t.ToolAllowlist != nil && !slices.Contains(t.ToolAllowlist, id) {
			continue
		}
		if t != nil && slices.Contains(t.ToolDenymap, id) {
			continue
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func newTraceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

// CreateRun validates and stores a run of agentID for a's tenant and
// queues it (§3.3): not_found for an unknown agent, invalid_request for a
// bad body, conflict for a reused idempotency key with another body,
// rate_limited over QPS/burst, max_concurrent_runs or a full queue. A
// replay returns the original run with replayed=true.
func (s *Service) CreateRun(ctx context.Context, a core.Auth, agentID string, req core.RunRequest, idemKeyHeader string) (core.Run, bool, error) {
	if err := a.Require(core.ScopeRunsCreate); err != nil {
		return core.Run{}, false, err
	}
	key, err := validateRunRequest(&req, idemKeyHeader)
	if err != nil {
		return core.Run{}, false, err
	}
	req.IdempotencyKey = key
	agent, err := s.cachedAgent(ctx, a.TenantID, agentID)
	if err != nil {
		return core.Run{}, false, err
	}
	if agent.Status == "disabled" {
		return core.Run{}, false, core.Errorf(core.CodeConflict, "agent %s is disabled", agentID).With("agent_id", agentID)
	}
	tenant, err := s.cachedTenant(ctx, a.TenantID)
	if err != nil {
		if core.IsCode(err, core.CodeNotFound) {
			return core.Run{}, false, core.Errorf(core.CodeForbidden, "tenant %s does not exist", a.TenantID)
		}
		return core.Run{}, false, err
	}
	if tenant.Status == core.TenantDisabled {
		return core.Run{}, false, core.Errorf(core.CodeForbidden, "tenant %s is disabled", a.TenantID)
	}
	hash := core.BodyHash(req)
	if prev, ok, err := s.runs.FindIdempotent(ctx, a.TenantID, a.Principal.PrincipalID, agentID, key); err != nil {
		return core.Run{}, false, err
	} else if ok {
		if prev.BodyHash != hash {
			return core.Run{}, false, core.Errorf(core.CodeConflict, "idempotency key reused with a different body").
				With("idempotency_key", key).With("run_id", prev.RunID)
		}
		return prev.Run, true, nil
	}

	lim := tenant.EffectiveLimits()
	opts := core.RunOptions{Priority: "normal", TimeoutMS: core.Ptr(s.cfg.DefaultTimeoutMS), MaxSteps: core.Ptr(s.cfg.DefaultMaxSteps),
		StreamEvents: core.Ptr(true), DryRun: core.Ptr(false)}
	for _, o := range []*core.RunOptions{agent.DefaultRunOptions, req.RunOptions} {
		if o == nil {
			continue
		}
		if o.Priority != "" {
			opts.Priority = o.Priority
		}
		if o.TimeoutMS != nil {
			opts.TimeoutMS = o.TimeoutMS
		}
		if o.MaxSteps != nil {
			opts.MaxSteps = o.MaxSteps
		}
		if o.StreamEvents != nil {
			opts.StreamEvents = o.StreamEvents
		}
		if o.DryRun != nil {
			opts.DryRun = o.DryRun
		}
	}
	dry := *opts.DryRun
	if err := s.quotas.allowCreate(a.TenantID, lim); err != nil {
		return core.Run{}, false, err
	}
	if !dry {
		if s.sched.full() {
			return core.Run{}, false, core.RateLimited("queue_full", 1, "the run queue is full")
		}
		if !s.sched.reserve(a.TenantID, lim.MaxConcurrentRuns) {
			return core.Run{}, false, core.RateLimited("max_concurrent_runs", 1, "tenant has %d active runs (max_concurrent_runs)",
				lim.MaxConcurrentRuns).With("tenant_id", a.TenantID).With("limit", lim.MaxConcurrentRuns)
		}
	}

	now := core.Now()
	runID := core.NewID(core.PrefixRun)
	tp := core.Traceparent(ctx)
	if tp == "" {
		tp = newTraceparent()
	}
	cid := core.CorrelationID(ctx)
	if cid == "" {
		cid = core.NewID(core.PrefixCorrelation)
	}
	auth := a
	auth.TokenID = ""
	msgs := []core.ChatMessage{}
	if agent.Instructions != "" {
		msgs = append(msgs, core.ChatMessage{Role: "system", Content: agent.Instructions})
	}
	msgs = append(msgs, core.ChatMessage{Role: "user", Content: req.Input.Text})
	rec := core.RunRecord{
		Run: core.Run{TenantID: a.TenantID, AgentID: agentID, RunID: runID, Status: core.RunQueued, CreatedAt: now,
			EventsURL: "/v1/runs/" + runID + "/events", RunOptions: opts, CorrelationID: cid, Input: req.Input,
			Context: req.Context, Tools: runTools(agent, tenant, req.Tooling), PrincipalID: a.Principal.PrincipalID,
			Origin: core.RunOrigin(ctx)},
		Auth: auth, ModelRef: agent.ModelRef, Instructions: agent.Instructions, Traceparent: tp,
		IdempotencyKey: key, BodyHash: hash, Messages: msgs,
		MaxSteps: *opts.MaxSteps, TimeoutMS: *opts.TimeoutMS, Priority: opts.Priority,
	}
	drafts := []core.EventDraft{{Type: core.EventRunCreated, Payload: core.RunStatusPayload{Status: core.RunQueued}}}
	if dry {
		rec.Status, rec.StartedAt, rec.CompletedAt = core.RunCompleted, &now, &now
		rec.DropResumeState()
		drafts = append(drafts, core.EventDraft{Type: core.EventRunCompleted,
			Payload: dryRunCompletedPayload{Status: core.RunCompleted, DryRun: true}})
	}
	audit := core.NewAudit(a, "run.create", "run", runID, "success", map[string]any{"agent_id": agentID, "dry_run": dry,
		"origin": rec.Origin, "correlation_id": cid})
	var (
		stored            core.RunRecord
		evs               []core.Event
		replayed, claimed bool
	)
	cc, claimInCreate := s.createClaimer()
	if claimInCreate && !dry {
		stored, evs, replayed, claimed, err = cc.CreateRunClaimed(ctx, rec, drafts, &audit, s.cluster.NodeID, s.cluster.lease(),
			max(s.tenantRunCap(ctx, a.TenantID), 1))
	} else {
		stored, evs, replayed, err = s.runs.CreateRun(ctx, rec, drafts, &audit)
	}
	if err != nil || replayed {
		if !dry {
			s.sched.release(a.TenantID)
		}
		if err != nil {
			return core.Run{}, false, err
		}
		return stored.Run, true, nil
	}
	if dry {
		// Counted before its terminal event goes out.
		s.metrics.runs.WithLabelValues(core.RunCompleted).Inc()
		s.hub.publish(evs)
		return stored.Run, false, nil
	}
	s.hub.publish(evs)
	var ours bool
	switch {
	case s.cluster == nil:
		ours = true
	case claimInCreate:
		ours = claimed && s.sched.hold(stored.RunID, stored.TenantID)
	default:
		ours = s.claimCreated(ctx, stored)
	}
	if ours {
		s.sched.enqueue(stored, lim.MaxConcurrentRuns, false)
	} else {
		s.sched.release(a.TenantID)
	}
	return stored.Run, false, nil
}

// GetRun returns a run of a's tenant; not_found otherwise.
func (s *Service) GetRun(ctx context.Context, a core.Auth, runID string) (core.Run, error) {
	if err := a.Require(core.ScopeRunsRead); err != nil {
		return core.Run{}, err
	}
	rec, err := s.runs.GetRun(ctx, a.TenantID, runID)
	return rec.Run, err
}

// ListRuns lists a's tenant's runs, newest first, with the next cursor.
func (s *Service) ListRuns(ctx context.Context, a core.Auth, f core.RunFilter) ([]core.Run, string, error) {
	if err := a.Require(core.ScopeRunsRead); err != nil {
		return nil, "", err
	}
	switch f.Status {
	case "", core.RunQueued, core.RunRunning, core.RunCompleted, core.RunFailed, core.RunCanceled:
	default:
		return nil, "", core.Invalid("status", "status must be queued, running, completed, failed or canceled")
	}
	if f.Limit < 0 || f.Limit > 200 {
		return nil, "", core.Invalid("limit", "limit must be between 1 and 200")
	}
	if f.Cursor != "" && !core.HasPrefix(f.Cursor, core.PrefixRun) {
		return nil, "", core.Invalid("cursor", "cursor is not a cursor of this listing")
	}
	return s.runs.ListRuns(ctx, a.TenantID, f)
}

// CancelRun cancels a run of a's tenant: the terminal state commits first,
// then the executor's in-flight model or tool call is aborted. conflict
// when the run is already finished, not_found outside the tenant.
func (s *Service) CancelRun(ctx context.Context, a core.Auth, runID string) (core.Run, error) {
	if err := a.Require(core.ScopeRunsCancel); err != nil {
		return core.Run{}, err
	}
	audit := core.NewAudit(a, "run.cancel", "run", runID, "success", map[string]any{"correlation_id": core.CorrelationID(ctx)})
	rec, evs, err := s.runs.CancelRun(ctx, a.TenantID, runID, &audit)
	if err != nil {
		return core.Run{}, err
	}
	s.metrics.runs.WithLabelValues(core.RunCanceled).Inc()
	s.metrics.runLatency.Observe(float64(core.Now().Sub(rec.CreatedAt).Milliseconds()))
	s.hub.publish(evs)
	s.sched.abort(a.TenantID, runID)
	return rec.Run, nil
}
