// Package stackb is Stack B, the governed model gateway: the canonical
// model API (models, models:invoke, policy:check, usage), an
// OpenAI-compatible surface, and the in-process core.ModelPort that Stack A
// calls. Every call goes through the same pipeline: tenant and
// entitlements, request rate, policy, token limits, budget reservation,
// routing with fallback, metering, audit.
package stackb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stackb/policy"
	"github.com/agentos/agentos/stackb/provider"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Deps is what app/ wires into the gateway.
type Deps struct {
	Tenants core.TenantPort
	Audit   core.AuditPort
	Usage   core.UsagePort
	// ProvidersFile is the --providers-file path; "" means the builtin
	// provider serves every tier.
	ProvidersFile string
	// StackID is this node's stack id, reported as route.node.
	StackID string
	Log     zerolog.Logger
	// Metrics is where the gateway registers its collectors; nil means a
	// private registry.
	Metrics prometheus.Registerer
	// HTTPClient calls the upstream backends; nil means a pooled default.
	HTTPClient *http.Client
	// Now is the clock; nil means core.Now.
	Now func() time.Time
	// Tracer opens a span per model call; nil means no spans.
	Tracer trace.Tracer
	// FlushInterval is how often usage and audit batches reach the store
	// (default 50ms).
	FlushInterval time.Duration
	// HealthFailures consecutive unavailable/timeout answers take a backend
	// out of routing (default 2); it is probed again after HealthCooldown
	// (default 10s).
	HealthFailures int
	HealthCooldown time.Duration
	// TenantCacheTTL is how long a tenant read from Tenants is reused on
	// the request path (default 1s; negative disables the cache). Without
	// Changes, a change to a tenant (disable, quotas) takes effect within
	// it; with Changes, at once.
	TenantCacheTTL time.Duration
	// Limits holds budget reservations (the node's store: in process on
	// bbolt, in the database on PostgreSQL, so a cluster keeps one budget);
	// nil means in process over Usage.
	Limits core.LimitsPort
	// Changes, when set, drops a cached tenant as soon as it is written
	// (quotas, entitlements, status), so the next call sees the change.
	Changes core.ChangeFeed
}

// Gateway is Stack B. It implements core.ModelPort.
type Gateway struct {
	deps    Deps
	log     zerolog.Logger
	now     func() time.Time
	cat     *catalog
	policy  *policy.Engine
	health  *backendHealth
	meter   *meter
	audit   *auditWriter
	metrics *gatewayMetrics
	// tenants keeps tenants read on the request path for TenantCacheTTL,
	// so a model call does not decode the tenant from the store every time.
	tenants *core.Cache[string, core.Tenant]
	// responses keeps Responses API conversations for previous_response_id.
	responses *responseStore
	// started is when the gateway came up (the "created" of listed models).
	started time.Time
	// unsubscribe ends the change feed subscription.
	unsubscribe func()
	// ownClient: the upstream client is the gateway's own (its idle
	// connections close with it).
	ownClient bool
}

var _ core.ModelPort = (*Gateway)(nil)

// New builds the gateway and validates the providers file; its errors name
// the offending field. Call Close to flush pending usage and audit records.
func New(deps Deps) (*Gateway, error) {
	if deps.Tenants == nil || deps.Usage == nil {
		return nil, errors.New("stackb: Deps.Tenants and Deps.Usage are required")
	}
	if deps.Now == nil {
		deps.Now = core.Now
	}
	ownClient := deps.HTTPClient == nil
	if ownClient {
		// Plain-HTTP upstreams are called on the request's goroutine
		// (directTransport); https and proxied calls go through the pool.
		deps.HTTPClient = &http.Client{Transport: newDirectTransport(upstreamTransport())}
	}
	if deps.Metrics == nil {
		deps.Metrics = prometheus.NewRegistry()
	}
	deps.FlushInterval = core.PositiveOr(deps.FlushInterval, 50*time.Millisecond)
	deps.HealthFailures = core.PositiveOr(deps.HealthFailures, 2)
	if deps.TenantCacheTTL == 0 {
		deps.TenantCacheTTL = time.Second
	}
	deps.HealthCooldown = core.PositiveOr(deps.HealthCooldown, 10*time.Second)
	cat, err := loadCatalog(deps.ProvidersFile, deps.HTTPClient)
	if err != nil {
		return nil, err
	}
	eng, err := policy.NewEngine(cat.rulesets)
	if err != nil {
		return nil, err
	}
	if deps.Audit != nil {
		// Each provider key read is audited in the node's system chain.
		for _, r := range cat.secretReads {
			rec := core.SecretReadAudit(core.SystemTenantID, "svc_stack_b", r.ref, "provider "+r.provider+" api key")
			if _, err := deps.Audit.AppendAudit(context.Background(), rec); err != nil {
				return nil, fmt.Errorf("audit secret read: %w", err)
			}
		}
	}
	met, err := newGatewayMetrics(deps.Metrics)
	if err != nil {
		return nil, fmt.Errorf("register stack b metrics: %w", err)
	}
	log := deps.Log.With().Str("component", "stackb").Logger()
	g := &Gateway{deps: deps, log: log, now: deps.Now, cat: cat, policy: eng, metrics: met, ownClient: ownClient,
		tenants: core.NewCache[string, core.Tenant](deps.TenantCacheTTL, tenantCacheMax, nil)}
	g.health = newBackendHealth(cat.backends, deps.HealthFailures, deps.HealthCooldown, deps.Now, func(b string, up bool) {
		v := 0.0
		if up {
			v = 1
		}
		met.backendUp.WithLabelValues(b).Set(v)
		if !up {
			log.Warn().Str("backend", b).Msg("backend left routing")
		} else {
			log.Debug().Str("backend", b).Msg("backend in routing")
		}
	})
	g.responses = newResponseStore(10000, time.Hour)
	g.started = deps.Now()
	if deps.Changes != nil {
		g.unsubscribe = deps.Changes.Subscribe(func(ch core.Change) {
			switch ch.Kind {
			case core.ChangeTenant:
				g.tenants.Forget(ch.TenantID)
			case core.ChangeAll:
				g.tenants.ForgetAll()
			}
		})
	}
	g.meter = newMeter(deps.Usage, deps.Limits, deps.Now, log, deps.FlushInterval)
	g.audit = newAuditWriter(deps.Audit, log, deps.FlushInterval)
	return g, nil
}

// tenantCacheMax bounds the cached tenants; past it the cache starts over.
const tenantCacheMax = 10000

// upstreamTransport is the pool the gateway calls backends through. With
// 64 idle connections per host (and the default 100 in all), past that many
// calls in flight every call dialed a new connection and closed it after, which under load meant dial storms, thousands of sockets
// in TIME-WAIT and several percent of CPU in connect. Every connection a
// burst opened stays reusable here instead; the pool shrinks again after
// IdleConnTimeout.
func upstreamTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0 // no cap across hosts; per host below
	t.MaxIdleConnsPerHost = 4096
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// Close flushes queued usage and audit records and stops the flushers.
func (g *Gateway) Close() error {
	if g.unsubscribe != nil {
		g.unsubscribe()
	}
	g.meter.close()
	g.audit.close()
	if g.ownClient {
		g.deps.HTTPClient.CloseIdleConnections()
	}
	return nil
}

// Flush writes queued usage, replays and audit records now.
func (g *Gateway) Flush() {
	g.meter.flush()
	g.audit.flush()
}

// BackendHealth reports, per backend, whether it is in routing (metrics
// agentos_backend_up and alerts read it).
func (g *Gateway) BackendHealth() map[string]bool { return g.health.snapshot() }

// tenant loads the governing tenant: not_found when unknown, forbidden
// when disabled.
func (g *Gateway) tenant(ctx context.Context, tenantID string) (core.Tenant, error) {
	t, err := g.tenants.Load(tenantID, func() (core.Tenant, error) { return g.deps.Tenants.GetTenant(ctx, tenantID) })
	if err != nil {
		if core.IsCode(err, core.CodeNotFound) {
			return t, core.NotFound("tenant", tenantID)
		}
		return t, fmt.Errorf("get tenant: %w", err)
	}
	if t.Status == core.TenantDisabled {
		return t, core.Errorf(core.CodeForbidden, "tenant %s is disabled", tenantID).With("tenant_id", tenantID)
	}
	return t, nil
}

// ruleset picks the tenant's ruleset: metadata "policy_ruleset", then
// default_policy_id, then pol_default.
func (g *Gateway) ruleset(t core.Tenant, explicit string) (*policy.Ruleset, error) {
	if explicit != "" {
		rs, ok := g.policy.Ruleset(explicit, t.TenantID)
		if !ok {
			return nil, core.Invalid("policy_check.ruleset", "unknown ruleset %q", explicit)
		}
		return rs, nil
	}
	id, _ := t.Metadata["policy_ruleset"].(string)
	if id == "" {
		id = t.DefaultPolicyID
	}
	if rs, ok := g.policy.Ruleset(id, t.TenantID); ok {
		return rs, nil
	}
	rs, _ := g.policy.Ruleset(policy.DefaultRulesetID, "")
	return rs, nil
}

var validRoles = []string{"system", "user", "assistant", "tool"}

func validate(req *core.ModelRequest) error {
	if req.ModelRef == "" {
		return core.Invalid("request.model_ref", "model_ref is required")
	}
	switch req.Operation {
	case core.OpChat:
		if len(req.Input.Messages) == 0 {
			return core.Invalid("request.input.messages", "at least one message is required")
		}
		for i, m := range req.Input.Messages {
			if !slices.Contains(validRoles, m.Role) {
				return core.Invalid(fmt.Sprintf("request.input.messages[%d].role", i), "unknown role %q (want system, user, assistant or tool)", m.Role)
			}
		}
		switch req.Input.ToolChoice {
		case "", "auto", "none", "required":
		default:
			if !slices.ContainsFunc(req.Input.Tools, func(t core.ModelTool) bool {
				return t.Name == req.Input.ToolChoice || t.ToolID == req.Input.ToolChoice
			}) {
				return core.Invalid("request.input.tool_choice", "tool_choice %q names no offered tool", req.Input.ToolChoice)
			}
		}
	case core.OpEmbed:
		if len(req.Input.Texts) == 0 {
			return core.Invalid("request.input.texts", "at least one text is required")
		}
		switch req.Input.EncodingFormat {
		case "", "float", "base64":
		default:
			return core.Invalid("request.input.encoding_format", "unknown encoding_format %q (want float or base64)", req.Input.EncodingFormat)
		}
	default:
		return core.Invalid("request.operation", "unknown operation %q (want chat or embed)", req.Operation)
	}
	if g := req.Generation; g != nil {
		if g.MaxOutputTokens != nil && *g.MaxOutputTokens < 1 {
			return core.Invalid("request.generation.max_output_tokens", "max_output_tokens must be ≥ 1")
		}
		if g.Temperature != nil && (*g.Temperature < 0 || *g.Temperature > 2) {
			return core.Invalid("request.generation.temperature", "temperature must be between 0 and 2")
		}
		if g.TopP != nil && (*g.TopP < 0 || *g.TopP > 1) {
			return core.Invalid("request.generation.top_p", "top_p must be between 0 and 1")
		}
	}
	return nil
}

// Chat implements core.ModelPort (operation chat).
func (g *Gateway) Chat(ctx context.Context, a core.Auth, req core.ModelRequest) (core.ModelResponse, error) {
	return g.invokeAs(ctx, a, req, core.OpChat, "Chat")
}

// Embed implements core.ModelPort (operation embed).
func (g *Gateway) Embed(ctx context.Context, a core.Auth, req core.ModelRequest) (core.ModelResponse, error) {
	return g.invokeAs(ctx, a, req, core.OpEmbed, "Embed")
}

// invokeAs is Invoke for a port method that takes one operation: an unset
// operation becomes op, another one is invalid_request.
func (g *Gateway) invokeAs(ctx context.Context, a core.Auth, req core.ModelRequest, op, method string) (core.ModelResponse, error) {
	if req.Operation == "" {
		req.Operation = op
	}
	if req.Operation != op {
		return core.ModelResponse{}, core.Invalid("request.operation", "%s takes operation %s", method, op)
	}
	return g.Invoke(ctx, a, req)
}

// Invoke runs one model request for the tenant of a through the whole
// pipeline. The same request_id for the same tenant replays the stored
// answer and is metered once.
func (g *Gateway) Invoke(ctx context.Context, a core.Auth, req core.ModelRequest) (resp core.ModelResponse, err error) {
	if g.deps.Tracer != nil {
		var span trace.Span
		ctx, span = g.deps.Tracer.Start(ctx, "model."+req.Operation, trace.WithAttributes(attribute.String("tenant_id", a.TenantID),
			attribute.String("model_ref", req.ModelRef), attribute.String("request_id", req.RequestID)))
		defer func() {
			span.SetAttributes(attribute.String("route.backend", resp.Route.Backend), attribute.String("route.model", resp.Route.Model),
				attribute.Bool("route.fallback_used", resp.Route.FallbackUsed), attribute.String("policy.decision", resp.PolicyOutcome.Decision))
			if err != nil {
				span.SetStatus(codes.Error, core.ErrorCode(err))
			}
			span.End()
		}()
	}
	if err := validate(&req); err != nil {
		return core.ModelResponse{}, err
	}
	t, err := g.tenant(ctx, a.TenantID)
	if err != nil {
		return core.ModelResponse{}, err
	}
	if req.RequestID == "" {
		req.RequestID = core.NewID(core.PrefixRequest)
		return g.invoke(ctx, a, t, req, false)
	}
	if req.Once {
		return g.invoke(ctx, a, t, req, false)
	}
	done, err := g.meter.begin(ctx, t.TenantID, req.RequestID)
	if err != nil {
		return core.ModelResponse{}, err
	}
	defer done()
	if r, ok, err := g.meter.replay(ctx, t.TenantID, req.RequestID); err != nil {
		return core.ModelResponse{}, fmt.Errorf("read replay: %w", err)
	} else if ok {
		var resp core.ModelResponse
		if err := json.Unmarshal(r.Response, &resp); err != nil {
			return resp, fmt.Errorf("decode replay: %w", err)
		}
		return resp, nil
	}
	return g.invoke(ctx, a, t, req, true)
}

// attempt is one try of one model, for audit.
type attempt struct {
	Ref  string `json:"route"`
	Code string `json:"error_code,omitempty"`
}

// invocation is one model request on its way through the pipeline; each
// stage of invoke reads what the earlier ones left in it.
type invocation struct {
	a     core.Auth
	t     core.Tenant
	req   core.ModelRequest
	store bool // keep the answer for replay (the caller gave a request id)
	start time.Time
	// base and corr make the request's logger when something is logged
	// (warn): most requests log nothing, so none is built up front.
	base zerolog.Logger
	corr string

	limits   core.Limits
	tier     string
	cands    []*model // resolve: the models that may answer, in chain order
	inTokens int
	maxOut   int // limits: the output tokens asked of the backend
	// reported is the usage the backend reported, before billable.
	reported core.Usage
	rs       *policy.Ruleset
	outcome  core.PolicyOutcome // policy: the decision on the input
	msgs     []core.ChatMessage // policy: the input to send (redacted)
	texts    []string           // policy: the texts to embed (redacted)
	res      *reservation       // budget: what the call may cost
	attempts []attempt          // call: the failed tries, in order
	used     *model             // call: the model that answered
	out      core.ModelOutput   // call
	usage    core.Usage         // call
	resp     core.ModelResponse // meter
}

// warn starts a warning about this request, carrying its tenant, request
// and correlation ids.
func (iv *invocation) warn() *zerolog.Event {
	return iv.base.Warn().Str("tenant_id", iv.t.TenantID).Str("request_id", iv.req.RequestID).Str("correlation_id", iv.corr)
}

// invoke runs the pipeline of one request, stage by stage: resolve the
// candidates (capability, entitlements, requirements), limits (request
// rate, tokens per request), policy over the input, budget reservation,
// route (healthy candidates first), call with fallback, meter, audit.
func (g *Gateway) invoke(ctx context.Context, a core.Auth, t core.Tenant, req core.ModelRequest, store bool) (core.ModelResponse, error) {
	iv := &invocation{a: a, t: t, req: req, store: store, start: time.Now(), limits: t.EffectiveLimits(),
		base: g.log, corr: core.CorrelationID(ctx)}
	for _, stage := range stages {
		if err := stage(g, ctx, iv); err != nil {
			code := core.ErrorCode(err)
			g.metrics.requests.WithLabelValues("none", code).Inc()
			g.metrics.errors.WithLabelValues(code).Inc()
			return core.ModelResponse{}, err
		}
	}
	if err := g.callChain(ctx, iv, g.route(iv)); err != nil {
		return core.ModelResponse{}, g.failed(ctx, iv, err)
	}
	g.meterAnswer(iv)
	g.auditAnswer(iv)
	return iv.resp, nil
}

// stages are invoke's steps before the call, in order (method
// expressions: a list of bound methods would be built per request).
var stages = [...]func(*Gateway, context.Context, *invocation) error{(*Gateway).resolve, (*Gateway).limit, (*Gateway).screen, (*Gateway).budget}

// resolve finds the candidates: the model_ref's chain (a canary first when
// the request falls in its share), kept to what can do the operation, what
// the tenant is entitled to and what meets the requirements.
func (g *Gateway) resolve(_ context.Context, iv *invocation) error {
	t, req := iv.t, &iv.req
	tier, chain, err := g.cat.resolve(req.ModelRef)
	if err != nil {
		return err
	}
	iv.tier = tier
	if c := g.cat.canaryFor(t.TenantID, req.AgentID, tier, req.RequestID); c != nil {
		chain = append([]*model{c}, slices.DeleteFunc(slices.Clone(chain), func(m *model) bool { return m == c })...)
	}
	if tier != "" && t.Entitlements.ModelTiersAllowed != nil && !slices.Contains(t.Entitlements.ModelTiersAllowed, tier) {
		return core.Errorf(core.CodeForbidden, "tier %s is not entitled to tenant %s", tier, t.TenantID).
			With("tenant_id", t.TenantID).With("tier", tier)
	}
	iv.inTokens = inputTokens(req)
	iv.cands = make([]*model, 0, len(chain))
	notEntitled, missed := 0, 0
	for _, m := range chain {
		switch {
		case !m.can(req.Operation):
		case !entitled(t, tier, m):
			notEntitled++
		case !meets(req.Requirements, m, iv.inTokens, g.health.latency(m.backend)):
			missed++
		default:
			iv.cands = append(iv.cands, m)
		}
	}
	if len(iv.cands) > 0 {
		return nil
	}
	switch {
	case notEntitled > 0 && missed == 0:
		return core.Errorf(core.CodeForbidden, "no model of %s is entitled to tenant %s", req.ModelRef, t.TenantID).
			With("tenant_id", t.TenantID).With("model_ref", req.ModelRef)
	case missed > 0:
		return core.Invalid("request.requirements", "no model of %s meets the requirements", req.ModelRef)
	default:
		return core.Invalid("request.model_ref", "no model of %s supports %s", req.ModelRef, req.Operation)
	}
}

// limit applies the tenant's request rate and tokens per request, and
// settles how many output tokens to ask for (the model's default, the
// request's, then capped by the per-request limit).
func (g *Gateway) limit(_ context.Context, iv *invocation) error {
	t, req, lim := iv.t, &iv.req, iv.limits.MaxTokensPerRequest
	if err := g.meter.allow(t.TenantID, iv.limits.MaxRequestsPerMinute); err != nil {
		return err
	}
	in := iv.inTokens
	if req.Operation == core.OpChat {
		iv.maxOut = iv.cands[0].cfg.MaxOutputTokens
		if iv.maxOut <= 0 {
			iv.maxOut = 1024
		}
		if gen := req.Generation; gen != nil && gen.MaxOutputTokens != nil {
			if lim > 0 && in+*gen.MaxOutputTokens > lim {
				return core.Errorf(core.CodeQuotaExceeded, "request asks for %d tokens, over max_tokens_per_request %d", in+*gen.MaxOutputTokens, lim).
					With("tenant_id", t.TenantID).With("limit", lim).With("requested", in+*gen.MaxOutputTokens)
			}
			iv.maxOut = *gen.MaxOutputTokens
		}
	}
	if lim > 0 {
		if in > lim || (req.Operation == core.OpChat && in >= lim) {
			return core.Errorf(core.CodeQuotaExceeded, "input of %d tokens is over max_tokens_per_request %d", in, lim).
				With("tenant_id", t.TenantID).With("limit", lim).With("requested", in)
		}
		if in+iv.maxOut > lim {
			iv.maxOut = lim - in
		}
	}
	return nil
}

// screen runs the tenant's ruleset over the input: a block ends the
// request (audited), a redaction changes what is sent on (audited).
func (g *Gateway) screen(_ context.Context, iv *invocation) error {
	rs, err := g.ruleset(iv.t, "")
	if err != nil {
		return err
	}
	iv.rs = rs
	var pres policy.Result
	iv.msgs, iv.texts = g.applyPolicy(rs, &iv.req, iv.inTokens+iv.maxOut, &pres)
	iv.outcome = pres.Outcome()
	o, req := iv.outcome, &iv.req
	for _, r := range o.Redactions {
		g.metrics.redactions.WithLabelValues(r.Kind).Inc()
	}
	switch o.Decision {
	case core.DecisionBlocked:
		g.metrics.blocks.Inc()
		g.audit.add(core.NewAudit(iv.a, "policy.decision", "model_request", req.RequestID, "blocked",
			map[string]any{"ruleset": rs.ID, "reasons": o.Reasons, "model_ref": req.ModelRef}))
		return core.Errorf(core.CodePolicyBlocked, "policy %s blocked the request", rs.ID).
			With("ruleset", rs.ID).With("reasons", o.Reasons).With("request_id", req.RequestID)
	case core.DecisionRedacted:
		g.audit.add(core.NewAudit(iv.a, "policy.decision", "model_request", req.RequestID, "redacted",
			map[string]any{"ruleset": rs.ID, "reasons": o.Reasons, "redactions": len(o.Redactions)}))
	}
	return nil
}

// budget reserves the most this call can cost on any candidate.
func (g *Gateway) budget(ctx context.Context, iv *invocation) error {
	var maxCost float64
	for _, m := range iv.cands {
		maxCost = math.Max(maxCost, m.cost(iv.inTokens, iv.maxOut))
	}
	res, err := g.meter.reserve(ctx, iv.t.TenantID, iv.limits, int64(iv.inTokens+iv.maxOut), maxCost)
	iv.res = res
	return err
}

// route orders the candidates: healthy backends first, in chain order,
// then those out of routing (tried last rather than never).
func (g *Gateway) route(iv *invocation) []*model {
	ordered := make([]*model, 0, len(iv.cands))
	var parked []*model
	for _, m := range iv.cands {
		if g.health.usable(m.backend) {
			ordered = append(ordered, m)
		} else {
			parked = append(parked, m)
		}
	}
	return append(ordered, parked...)
}

// callChain tries the models in order, falling back on unavailable and
// timeout. A streamed answer cannot be taken back: once text went out, a
// failure ends the request instead of falling back to another backend.
func (g *Gateway) callChain(ctx context.Context, iv *invocation, ordered []*model) error {
	req := iv.req // the stream hook below is this call's own
	streamed := false
	var current *model
	if onDelta := req.OnDelta; onDelta != nil {
		req.OnDelta = func(d core.ModelDelta) error {
			if !streamed {
				d.First, d.RequestID, d.Policy = true, req.RequestID, iv.outcome
				d.Route = core.Route{Backend: current.backend, Model: current.cfg.ModelID, Node: g.deps.StackID, FallbackUsed: len(iv.attempts) > 0}
			}
			streamed = true
			return onDelta(d)
		}
	}
	var lastErr error
	for _, m := range ordered {
		current = m
		callStart := time.Now()
		out, usage, err := g.call(ctx, m, &req, iv.msgs, iv.texts, iv.maxOut)
		if err == nil {
			g.health.success(m.backend, time.Since(callStart))
			g.metrics.latency.WithLabelValues(m.backend).Observe(time.Since(callStart).Seconds())
			iv.used, iv.out, iv.usage = m, out, usage
			return nil
		}
		code := core.ErrorCode(err)
		iv.attempts = append(iv.attempts, attempt{Ref: m.ref, Code: code})
		lastErr = err
		g.metrics.requests.WithLabelValues(m.backend, code).Inc()
		if code != core.CodeDependencyUnavailable && code != core.CodeTimeout || ctx.Err() != nil || streamed {
			break
		}
		g.health.failure(m.backend)
		iv.warn().Str("backend", m.backend).Str("model", m.cfg.ModelID).Str("code", code).Msg("backend failed; falling back")
	}
	return lastErr
}

// failed ends a request no model answered: the reservation released, the
// attempts audited, the error counted once.
func (g *Gateway) failed(ctx context.Context, iv *invocation, lastErr error) error {
	g.meter.release(iv.res)
	backend := "none"
	if len(iv.attempts) > 0 {
		backend = strings.SplitN(iv.attempts[len(iv.attempts)-1].Ref, "/", 2)[0]
	}
	g.audit.add(core.NewAudit(iv.a, "model.invoke", "model_request", iv.req.RequestID, "error",
		map[string]any{"model_ref": iv.req.ModelRef, "attempts": iv.attempts, "error_code": core.ErrorCode(lastErr)}))
	if ctx.Err() != nil && !errors.Is(lastErr, context.DeadlineExceeded) && core.ErrorCode(lastErr) != core.CodeTimeout {
		return lastErr
	}
	// Each attempt was counted under its backend in callChain.
	e := core.AsError(lastErr)
	g.metrics.errors.WithLabelValues(e.Code).Inc()
	iv.warn().Str("backend", backend).Str("code", e.Code).Msg("model call failed")
	return e
}

// meterAnswer builds the answer and settles its usage and cost against the
// reservation (with the answer kept for replay when asked).
func (g *Gateway) meterAnswer(iv *invocation) {
	used, usage := iv.used, iv.usage
	// A backend may report more than the request allowed; the caller is
	// billed the allowance (see billable) and the audit keeps the report.
	iv.reported = usage
	usage = billable(usage, iv.maxOut, iv.res.tokens, iv.req.Operation)
	cost := used.cost(usage.InputTokens, usage.OutputTokens)
	iv.resp = core.ModelResponse{
		RequestID: iv.req.RequestID, Status: "ok", Output: iv.out, Usage: usage,
		LatencyMS:     time.Since(iv.start).Milliseconds(),
		PolicyOutcome: iv.outcome,
		Route:         core.Route{Backend: used.backend, Model: used.cfg.ModelID, Node: g.deps.StackID, FallbackUsed: len(iv.attempts) > 0},
		CostUSD:       cost,
	}
	var replay *core.ModelReplay
	if iv.store {
		if raw, err := json.Marshal(iv.resp); err == nil {
			replay = &core.ModelReplay{TenantID: iv.t.TenantID, RequestID: iv.req.RequestID, Operation: iv.req.Operation, Response: raw, CreatedAt: g.now()}
		}
	}
	g.meter.settle(iv.res, usage, cost, replay)
	g.metrics.requests.WithLabelValues(used.backend, "ok").Inc()
	g.metrics.tokens.WithLabelValues("input").Add(float64(usage.InputTokens))
	g.metrics.tokens.WithLabelValues("output").Add(float64(usage.OutputTokens))
	g.metrics.cost.Add(cost)
}

// auditAnswer records the answered call (and the fallback, when one
// served it).
func (g *Gateway) auditAnswer(iv *invocation) {
	resp, used, req := &iv.resp, iv.used, &iv.req
	details := map[string]any{"operation": req.Operation, "model_ref": req.ModelRef, "backend": used.backend, "model": used.cfg.ModelID,
		"fallback_used": resp.Route.FallbackUsed, "policy_decision": iv.outcome.Decision, "input_tokens": resp.Usage.InputTokens,
		"output_tokens": resp.Usage.OutputTokens, "cost_usd": resp.CostUSD}
	if r := iv.reported; r.InputTokens != resp.Usage.InputTokens || r.OutputTokens != resp.Usage.OutputTokens {
		details["backend_input_tokens"], details["backend_output_tokens"] = r.InputTokens, r.OutputTokens
		iv.warn().Str("backend", used.backend).Int("output_tokens", r.OutputTokens).Int("max_output_tokens", iv.maxOut).
			Msg("backend answered over the request's token maximum; billed the maximum")
	}
	if len(iv.attempts) > 0 {
		details["attempts"] = iv.attempts
		g.audit.add(core.NewAudit(iv.a, "model.route", "model_request", req.RequestID, "fallback",
			map[string]any{"model_ref": req.ModelRef, "attempts": iv.attempts, "served_by": used.ref}))
	}
	g.audit.add(core.NewAudit(iv.a, "model.invoke", "model_request", req.RequestID, "ok", details))
}

// billable is the usage a call is charged: what the backend reported, but
// never more output than the request's maximum (maxOut, chat) nor more in
// total than was reserved against the budget. A backend that overproduces
// (ignores max_tokens, counts differently) therefore cannot push recorded
// usage past the budget that admitted the call.
func billable(u core.Usage, maxOut int, reserved int64, op string) core.Usage {
	if op == core.OpChat && maxOut > 0 && u.OutputTokens > maxOut {
		u.OutputTokens = maxOut
	}
	if reserved >= 0 && int64(u.InputTokens) > reserved {
		u.InputTokens = int(reserved)
	}
	if reserved >= 0 && int64(u.InputTokens+u.OutputTokens) > reserved {
		u.OutputTokens = int(reserved) - u.InputTokens
	}
	u.TotalTokens = u.InputTokens + u.OutputTokens
	return u
}

// call runs one model with its timeout.
func (g *Gateway) call(ctx context.Context, m *model, req *core.ModelRequest, msgs []core.ChatMessage, texts []string, maxOut int) (core.ModelOutput, core.Usage, error) {
	if m.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.timeout)
		defer cancel()
	}
	if req.Operation == core.OpEmbed {
		r, err := m.prov.Embed(ctx, m.cfg.ModelID, texts)
		if err != nil {
			return core.ModelOutput{}, core.Usage{}, err
		}
		out := core.ModelOutput{Type: "embedding", Embeddings: make([]core.Embedding, len(r.Vectors))}
		for i, v := range r.Vectors {
			out.Embeddings[i] = core.Embedding{Index: i, Vector: v}
		}
		return out, r.Usage, nil
	}
	call := provider.ChatCall{Model: m.cfg.ModelID, Messages: msgs, Tools: req.Input.Tools, ToolChoice: req.Input.ToolChoice, MaxTokens: maxOut}
	if onDelta := req.OnDelta; onDelta != nil {
		call.OnDelta = func(text string) error { return onDelta(core.ModelDelta{Text: text}) }
	}
	if gen := req.Generation; gen != nil {
		call.Temperature, call.TopP = gen.Temperature, gen.TopP
	}
	r, err := m.prov.Chat(ctx, call)
	if err != nil {
		return core.ModelOutput{}, core.Usage{}, err
	}
	msg := r.Message
	msg.Role = "assistant"
	return core.ModelOutput{Type: "chat", Message: &msg, ToolCalls: r.ToolCalls}, r.Usage, nil
}

// applyPolicy checks the request's input against rs and returns the input
// to send on (redacted where the ruleset says so).
func (g *Gateway) applyPolicy(rs *policy.Ruleset, req *core.ModelRequest, tokens int, res *policy.Result) ([]core.ChatMessage, []string) {
	rs.CheckTokens(tokens, res)
	if req.Operation == core.OpEmbed {
		texts := req.Input.Texts
		for i, tx := range req.Input.Texts {
			if red := rs.CheckText(tx, res); red != tx {
				if &texts[0] == &req.Input.Texts[0] {
					texts = slices.Clone(req.Input.Texts)
				}
				texts[i] = red
			}
		}
		return nil, texts
	}
	ids := make([]string, 0, len(req.Input.Tools))
	for _, t := range req.Input.Tools {
		ids = append(ids, t.ToolID)
	}
	rs.CheckTools(ids, res)
	msgs := req.Input.Messages
	for i, m := range req.Input.Messages {
		if red := rs.CheckText(m.Content, res); red != m.Content {
			if &msgs[0] == &req.Input.Messages[0] {
				msgs = slices.Clone(req.Input.Messages)
			}
			msgs[i].Content = red
		}
	}
	return msgs, nil
}

// inputTokens estimates the request's input as ceil(bytes/4) per message
// or text.
func inputTokens(req *core.ModelRequest) int {
	n := 0
	for _, m := range req.Input.Messages {
		n += provider.TokensOf(m.Content)
	}
	for _, t := range req.Input.Texts {
		n += provider.TokensOf(t)
	}
	return n
}

// meets reports whether m satisfies the routing requirements.
func meets(r *core.Requirements, m *model, inTokens int, latencyMS float64) bool {
	if r == nil {
		return true
	}
	if r.MinContextTokens != nil && m.cfg.ContextWindowTokens > 0 && m.cfg.ContextWindowTokens < *r.MinContextTokens {
		return false
	}
	if r.MaxCostUSD != nil {
		out := m.cfg.MaxOutputTokens
		if out <= 0 {
			out = 1024
		}
		if m.cost(inTokens, out) > *r.MaxCostUSD {
			return false
		}
	}
	if r.MaxLatencyMS != nil && latencyMS > float64(*r.MaxLatencyMS) {
		return false
	}
	return true
}

// PolicyCheck implements core.ModelPort: it applies the tenant's ruleset
// (or the one named) to the content and reports the decision; a blocked
// decision is an answer, not an error.
func (g *Gateway) PolicyCheck(ctx context.Context, a core.Auth, req core.PolicyCheckRequest) (core.PolicyResult, error) {
	if req.Content.Type != "" && req.Content.Type != "text" {
		return core.PolicyResult{}, core.Invalid("policy_check.content.type", "unknown content type %q (want text)", req.Content.Type)
	}
	t, err := g.tenant(ctx, a.TenantID)
	if err != nil {
		return core.PolicyResult{}, err
	}
	rs, err := g.ruleset(t, req.Ruleset)
	if err != nil {
		return core.PolicyResult{}, err
	}
	if req.RequestID == "" {
		req.RequestID = core.NewID(core.PrefixRequest)
	}
	var res policy.Result
	rs.CheckText(req.Content.Text, &res)
	o := res.Outcome()
	for _, r := range o.Redactions {
		g.metrics.redactions.WithLabelValues(r.Kind).Inc()
	}
	if o.Decision == core.DecisionBlocked {
		g.metrics.blocks.Inc()
	}
	g.audit.add(core.NewAudit(a, "policy.check", "policy_check", req.RequestID, o.Decision,
		map[string]any{"ruleset": rs.ID, "reasons": o.Reasons, "redactions": len(o.Redactions)}))
	return core.PolicyResult{RequestID: req.RequestID, Decision: o.Decision, Reasons: o.Reasons, Redactions: o.Redactions}, nil
}

// ListModels implements core.ModelPort: the models the tenant is entitled
// to, in providers-file order.
func (g *Gateway) ListModels(ctx context.Context, a core.Auth) ([]core.ModelInfo, error) {
	t, err := g.tenant(ctx, a.TenantID)
	if err != nil {
		return nil, err
	}
	out := []core.ModelInfo{}
	for _, m := range g.cat.order {
		if !entitled(t, "", m) {
			continue
		}
		out = append(out, m.info())
	}
	return out, nil
}

// Catalog lists what the node can route to, whatever any tenant is
// entitled to, for federation capabilities and operators: each model once
// per tier whose chain includes it (Tier set to that tier), then models in
// no tier. Tenant-facing listings go through ListModels.
func (g *Gateway) Catalog() []core.ModelInfo {
	out := []core.ModelInfo{}
	inTier := map[*model]bool{}
	for _, tier := range core.ModelTiers() {
		for _, m := range g.cat.tiers[tier] {
			info := m.info()
			info.Tier = tier
			out = append(out, info)
			inTier[m] = true
		}
	}
	for _, m := range g.cat.order {
		if !inTier[m] {
			out = append(out, m.info())
		}
	}
	return out
}

func (m *model) info() core.ModelInfo {
	return core.ModelInfo{ModelID: m.cfg.ModelID, Provider: m.backend, Capabilities: m.cfg.Capabilities,
		MaxOutputTokens: m.cfg.MaxOutputTokens, ContextWindowTokens: m.cfg.ContextWindowTokens, Tier: m.cfg.Tier}
}

// UsageFilter selects ledger entries for Usage.
type UsageFilter struct {
	Window string    // "" = every window size
	Since  time.Time // zero = no bound
	Limit  int       // 0 = 100
}

// Usage returns the tenant's ledger entries, newest first within each
// window size; it flushes queued usage first so the answer is current.
func (g *Gateway) Usage(ctx context.Context, a core.Auth, f UsageFilter) ([]core.UsageRecord, error) {
	t, err := g.tenant(ctx, a.TenantID)
	if err != nil {
		return nil, err
	}
	g.meter.flush()
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	all, err := g.deps.Usage.ListUsage(ctx, t.TenantID, 3000)
	if err != nil {
		return nil, err
	}
	out := []core.UsageRecord{}
	for _, r := range all {
		if f.Window != "" && r.Window != f.Window {
			continue
		}
		if !f.Since.IsZero() && r.Period < core.UsagePeriod(r.Window, f.Since) {
			continue
		}
		out = append(out, r)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// CurrentUsage returns the ledger entry of the tenant's budget window now.
func (g *Gateway) CurrentUsage(ctx context.Context, a core.Auth) (core.UsageRecord, error) {
	t, err := g.tenant(ctx, a.TenantID)
	if err != nil {
		return core.UsageRecord{}, err
	}
	g.meter.flush()
	l := t.EffectiveLimits()
	return g.deps.Usage.GetUsage(ctx, t.TenantID, l.BudgetWindow, core.UsagePeriod(l.BudgetWindow, g.now()))
}
