package operator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/promtext"
)

// IsolationProbeTenantID is the second tenant `validate` uses to prove
// isolation; it is created once and reused, and its probe key is revoked
// after each run.
const IsolationProbeTenantID = "tnt_validate_probe"

// SmokeTenantID is the fixture tenant `validate` uses when no tenant was
// seeded (prod): it holds a copy of the sample agent.
const SmokeTenantID = "tnt_validate_smoke"

// ProbeAgentID is the agent `validate` puts into the key's tenant when it
// checks a node by URL (no seeded sample agent to rely on); it is left
// disabled after the run.
const ProbeAgentID = "agt_validate_probe"

// ensureSmokeFixture creates, idempotently, the smoke tenant and its
// sample agent with the platform admin client adm.
func ensureSmokeFixture(ctx context.Context, nf app.NodeFile, adm *apiClient) (string, error) {
	err := adm.do(ctx, http.MethodPost, nf.StackAURL+"/v1/admin/tenants", map[string]any{"tenant_create": map[string]any{
		"tenant_id": SmokeTenantID, "name": "Smoke tests (agentos validate)", "plan_tier": core.PlanFree,
		"entitlements": map[string]any{"model_tiers_allowed": []string{core.TierFast}, "model_backends_allowed": []string{"builtin"},
			"tool_ids_allowed": []string{app.SampleToolID}}}}, nil)
	if err != nil && statusOf(err) != http.StatusConflict {
		return "", fmt.Errorf("create %s: %w", SmokeTenantID, err)
	}
	adm.tenant = SmokeTenantID
	if err := adm.do(ctx, http.MethodPut, nf.StackAURL+"/v1/agents/"+app.SampleAgentID, map[string]any{"agent": map[string]any{
		"agent_id": app.SampleAgentID, "name": "Sample echo agent (validate)", "model_ref": "tier:fast",
		"instructions": "You are a helpful echo agent.", "tool_ids": []string{app.SampleToolID}}}, nil); err != nil {
		return "", fmt.Errorf("put %s in %s: %w", app.SampleAgentID, SmokeTenantID, err)
	}
	return fmt.Sprintf("tenant %s with %s", SmokeTenantID, app.SampleAgentID), nil
}

// serviceHealthPath is each router's own health endpoint.
var serviceHealthPath = map[string]string{app.StackA: "/v1/health", app.StackB: "/v1/health", app.StackFed: "/v1/federation/health"}

func nodeURLs(nf app.NodeFile) map[string]string {
	return map[string]string{app.StackA: nf.StackAURL, app.StackB: nf.StackBURL, app.StackFed: nf.FedURL}
}

// healthGate checks liveness, readiness and the service health of every
// port; it returns how many services are healthy.
func healthGate(ctx context.Context, ph *phase, nf app.NodeFile, hc *http.Client) (int, error) {
	healthy := 0
	var errs []error
	for _, name := range []string{app.StackA, app.StackB, app.StackFed} {
		base := nodeURLs(nf)[name]
		err := ph.check(name+" healthy", func() (string, error) {
			var parts []string
			for _, path := range []string{"/healthz", "/readyz", serviceHealthPath[name]} {
				code, body, err := getPublicWith(ctx, hc, base+path)
				if err != nil {
					return "", fmt.Errorf("%s%s: %v", base, path, err)
				}
				if code != http.StatusOK {
					return "", fmt.Errorf("%s%s: HTTP %d %v", base, path, code, compact(body))
				}
				parts = append(parts, path+" 200")
			}
			return base + " " + strings.Join(parts, ", "), nil
		})
		if err == nil {
			healthy++
		} else {
			errs = append(errs, err)
		}
	}
	fmt.Fprintf(ph.p.out, "      services healthy %d/3\n", healthy)
	ph.summarize("services healthy %d/3", healthy)
	if healthy != 3 {
		return healthy, fmt.Errorf("services healthy %d/3: %w", healthy, errors.Join(errs...))
	}
	return healthy, nil
}

// compact renders a small JSON body on one line for error messages.
func compact(v map[string]any) string {
	if v == nil {
		return ""
	}
	if e, ok := v["error"].(map[string]any); ok {
		return fmt.Sprintf("%v: %v", e["code"], e["message"])
	}
	if c, ok := v["checks"]; ok {
		return fmt.Sprintf("checks %v", c)
	}
	return ""
}

// smokeResult is what the smoke gates found, for reports.
type smokeResult struct {
	RunID  string
	Passed int
	Total  int
}

// smokeGates names the functional gates of CONTRACT §7 in the order they run.
var smokeGates = []string{"sample run created", "events streamed to completion", "tool call", "model call through Stack B",
	"policy check on Stack B", "metrics moved", "tenant isolation"}

// smokeGate runs the functional gates of CONTRACT §7 against a running
// node: a sample run streamed to completion with a tool and a model call,
// a policy check on Stack B, metrics moved, and cross-tenant isolation.
// It is three stages: choose who acts (smokeActor), run the gates
// (smokeRun's methods, one per gate), and summarize.
func smokeGate(ctx context.Context, ph *phase, nf app.NodeFile, t nodeTarget) (smokeResult, error) {
	s := &smokeRun{ctx: ctx, ph: ph, nf: nf, t: t}
	s.res.Total = len(smokeGates)
	ok, cleanup, err := s.actor()
	if cleanup != nil {
		defer cleanup()
	}
	if !ok {
		return s.res, err
	}
	// In a cluster the sample run may execute on another node, so the
	// counters are summed over every live node the console lists.
	s.metricURLs = installationMetricURLs(ctx, s.user, nf.StackAURL)
	s.before, s.metricsErr = sumMetrics(ctx, t.HTTP, s.metricURLs)

	if s.gate("sample run created", s.createRun) {
		s.gate("events streamed to completion", s.streamToCompletion)
	} else {
		ph.skip("events streamed to completion", "no run")
		s.failed = append(s.failed, "events streamed to completion")
	}
	s.gate("tool call", s.toolCallSeen)
	s.gate("model call through Stack B", s.modelCallSeen)
	s.gate("policy check on Stack B", s.policyCheck)
	s.gate("metrics moved", s.metricsMoved)
	if t.AdminKey == "" {
		ph.skip("tenant isolation", "needs a platform admin key (--admin-key) to issue the second tenant's probe key")
		s.res.Total--
	} else {
		s.gate("tenant isolation", func() (string, error) {
			if s.runID == "" {
				return "", errors.New("no run to probe")
			}
			return isolationProbe(ctx, nf, t, s.runID)
		})
	}
	fmt.Fprintf(ph.p.out, "      smoke %d/%d\n", s.res.Passed, s.res.Total)
	ph.summarize("smoke %d/%d", s.res.Passed, s.res.Total)
	if len(s.failed) > 0 {
		return s.res, fmt.Errorf("smoke %d/%d: failed %s", s.res.Passed, s.res.Total, strings.Join(s.failed, ", "))
	}
	return s.res, nil
}

// smokeRun is one smoke: who acts, on which agent, and what the gates saw.
type smokeRun struct {
	ctx context.Context
	ph  *phase
	nf  app.NodeFile
	t   nodeTarget

	user                         *apiClient
	tenantID, principal, agentID string

	metricURLs []string
	before     map[string]float64
	metricsErr error

	runID  string
	events []sseEvent
	res    smokeResult
	failed []string
}

// gate runs one named gate, counting it passed or failed.
func (s *smokeRun) gate(name string, fn func() (string, error)) bool {
	if err := s.ph.check(name, fn); err != nil {
		s.failed = append(s.failed, name)
		return false
	}
	s.res.Passed++
	return true
}

// skipAll marks every gate skipped for reason and says so in the summary.
func (s *smokeRun) skipAll(reason, summary string) {
	for _, g := range smokeGates {
		s.ph.skip(g, reason)
	}
	s.ph.summarize("smoke 0/%d%s", s.res.Total, summary)
}

// actor chooses who the smoke acts as and on which agent: the seeded
// tenant admin on the sample agent; in prod (no seeded tenant) validate's
// own fixture tenant, made with the platform admin key; by URL a probe
// agent brought into the key's tenant and left disabled afterwards (the
// returned cleanup). ok false means no gate can run.
func (s *smokeRun) actor() (ok bool, cleanup func(), err error) {
	ctx, t, nf := s.ctx, s.t, s.nf
	s.tenantID = firstNonEmpty(t.Creds.DefaultTenantID, app.DemoTenantID)
	s.user = t.client(t.Creds.TenantAdmin.APIKey)
	s.principal = t.Creds.TenantAdmin.PrincipalID
	s.agentID = app.SampleAgentID
	if t.Creds.TenantAdmin.APIKey == "" && t.AdminKey != "" {
		s.tenantID, s.principal = SmokeTenantID, firstNonEmpty(t.Creds.PlatformAdmin.PrincipalID, app.PlatformAdminID)
		s.user = t.client(t.AdminKey)
		s.user.tenant = s.tenantID
		if err := s.ph.check("smoke fixture", func() (string, error) { return ensureSmokeFixture(ctx, nf, t.client(t.AdminKey)) }); err != nil {
			s.ph.summarize("smoke 0/%d", s.res.Total)
			return false, nil, err
		}
	}
	if s.user.key == "" {
		s.skipAll("no credentials: pass --api-key (platform admin) or run `agentos bootstrap` in prod", " (skipped: no credentials)")
		return false, nil, nil
	}
	if !t.Remote || t.Creds.TenantAdmin.APIKey == "" {
		return true, nil, nil
	}
	var put struct {
		Agent struct {
			TenantID string `json:"tenant_id"`
		} `json:"agent"`
	}
	if err := s.ph.check("probe agent", func() (string, error) {
		if err := s.user.do(ctx, http.MethodPut, nf.StackAURL+"/v1/agents/"+ProbeAgentID, probeAgent("active"), &put); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s in %s", ProbeAgentID, put.Agent.TenantID), nil
	}); err != nil {
		s.skipAll("no probe agent", "")
		return false, nil, fmt.Errorf("smoke 0/%d: failed probe agent", s.res.Total)
	}
	user := s.user
	cleanup = func() {
		_ = user.do(context.WithoutCancel(ctx), http.MethodPut, nf.StackAURL+"/v1/agents/"+ProbeAgentID, probeAgent("disabled"), nil)
	}
	s.agentID, s.tenantID = ProbeAgentID, put.Agent.TenantID
	var who struct {
		WhoAmI struct {
			PrincipalID string `json:"principal_id"`
		} `json:"whoami"`
	}
	if s.user.do(ctx, http.MethodGet, nf.StackAURL+"/v1/console/overview", nil, &who) == nil && who.WhoAmI.PrincipalID != "" {
		s.principal = who.WhoAmI.PrincipalID
	}
	return true, cleanup, nil
}

// createRun is the gate "sample run created".
func (s *smokeRun) createRun() (string, error) {
	var run struct {
		Run struct {
			RunID  string `json:"run_id"`
			Status string `json:"status"`
		} `json:"run"`
	}
	body := map[string]any{"input": map[string]any{"type": "text", "text": "agentos validate: hello from the operator"},
		"idempotency_key": core.NewID("idem")}
	if err := s.user.do(s.ctx, http.MethodPost, s.nf.StackAURL+"/v1/agents/"+s.agentID+"/runs", body, &run); err != nil {
		return "", err
	}
	s.runID, s.res.RunID = run.Run.RunID, run.Run.RunID
	return fmt.Sprintf("%s on %s (%s)", run.Run.RunID, s.agentID, run.Run.Status), nil
}

// streamToCompletion is the gate "events streamed to completion": the
// run's stream ends with run.completed and its sequences have no gap.
func (s *smokeRun) streamToCompletion() (string, error) {
	sctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	evs, err := s.user.streamEvents(sctx, s.nf.StackAURL+"/v1/runs/"+s.runID+"/events", nil)
	s.events = evs
	if err != nil {
		return "", fmt.Errorf("after %d events: %w", len(evs), err)
	}
	last := evs[len(evs)-1]
	if last.Type != "agentos.run.completed" {
		return "", fmt.Errorf("run ended with %s: %v", last.Type, last.Payload["error"])
	}
	for i, e := range evs {
		if e.Sequence != i+1 {
			return "", fmt.Errorf("event %d has sequence %d (gap or reorder)", i+1, e.Sequence)
		}
	}
	return fmt.Sprintf("%d events, sequences 1..%d, terminal %s", len(evs), len(evs), last.Type), nil
}

// count is how many of the streamed events have type typ and satisfy pred.
func (s *smokeRun) count(typ string, pred func(sseEvent) bool) int {
	n := 0
	for _, e := range s.events {
		if e.Type == typ && pred(e) {
			n++
		}
	}
	return n
}

// toolCallSeen is the gate "tool call".
func (s *smokeRun) toolCallSeen() (string, error) {
	n := s.count("agentos.tool.call.completed", func(e sseEvent) bool { return e.Payload["status"] == "ok" })
	if n == 0 {
		return "", errors.New("no agentos.tool.call.completed with status ok in the run's events")
	}
	return fmt.Sprintf("%d tool call(s) ok", n), nil
}

// modelCallSeen is the gate "model call through Stack B": an ok model call
// that carried its route and a policy outcome.
func (s *smokeRun) modelCallSeen() (string, error) {
	var route, decision string
	n := s.count("agentos.model.completed", func(e sseEvent) bool {
		if e.Payload["status"] != "ok" {
			return false
		}
		if r, ok := e.Payload["route"].(map[string]any); ok {
			route = fmt.Sprintf("%v/%v", r["backend"], r["model"])
		}
		if p, ok := e.Payload["policy_outcome"].(map[string]any); ok {
			decision = fmt.Sprint(p["decision"])
		}
		return true
	})
	if n == 0 {
		return "", errors.New("no agentos.model.completed with status ok in the run's events")
	}
	if decision == "" {
		return "", errors.New("model call carried no policy_outcome")
	}
	return fmt.Sprintf("%d model call(s) ok, route %s, policy %s", n, route, decision), nil
}

// policyCheck is the gate "policy check on Stack B".
func (s *smokeRun) policyCheck() (string, error) {
	body := map[string]any{
		"auth": map[string]any{"tenant_id": s.tenantID, "principal": map[string]any{"principal_id": s.principal, "principal_type": "user"},
			"scopes": []string{core.ScopePolicyCheck}, "policy_context": map[string]any{"data_classification": "internal", "region": "local", "purpose": "operator_validation"}},
		"policy_check": map[string]any{"request_id": core.NewID(core.PrefixRequest),
			"content": map[string]any{"type": "text", "text": "validate: contact ops@example.com"}, "ruleset": "pol_default"}}
	var out struct {
		PolicyResult struct {
			Decision string   `json:"decision"`
			Reasons  []string `json:"reasons"`
		} `json:"policy_result"`
	}
	if err := s.user.do(s.ctx, http.MethodPost, s.nf.StackBURL+"/v1/policy:check", body, &out); err != nil {
		return "", err
	}
	switch out.PolicyResult.Decision {
	case "allowed", "blocked", "redacted":
	default:
		return "", fmt.Errorf("decision %q is not allowed|blocked|redacted", out.PolicyResult.Decision)
	}
	return fmt.Sprintf("decision %s %v", out.PolicyResult.Decision, out.PolicyResult.Reasons), nil
}

// metricsMoved is the gate "metrics moved": the request, run and model
// counters summed over the installation grew since the smoke began.
func (s *smokeRun) metricsMoved() (string, error) {
	if s.metricsErr != nil {
		return "", fmt.Errorf("metrics before: %w", s.metricsErr)
	}
	// A counter may move a moment after the event the smoke saw (on
	// PostgreSQL the stream is fed by the database's notice, which can
	// beat the executor's own bookkeeping), so look again for a while.
	deadline := time.Now().Add(3 * time.Second)
	for {
		after, err := sumMetrics(s.ctx, s.t.HTTP, s.metricURLs)
		if err != nil {
			return "", err
		}
		var moved, still []string
		for _, name := range []string{"agentos_http_requests_total", "agentos_runs_total", "agentos_model_requests_total"} {
			if d := after[name] - s.before[name]; d > 0 {
				moved = append(moved, fmt.Sprintf("%s +%g", name, d))
			} else {
				still = append(still, name)
			}
		}
		if len(still) == 0 {
			if len(s.metricURLs) > 1 {
				moved = append(moved, fmt.Sprintf("summed over %d nodes", len(s.metricURLs)))
			}
			return strings.Join(moved, ", "), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("did not move within 3 s: %s", strings.Join(still, ", "))
		}
		select {
		case <-s.ctx.Done():
			return "", s.ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// isolationProbe creates (once) a second tenant, issues it a key with the
// platform admin key, and proves it gets 404 on the first tenant's run and
// events and does not see the run in its list. The probe key is revoked.
func isolationProbe(ctx context.Context, nf app.NodeFile, t nodeTarget, runID string) (string, error) {
	if t.AdminKey == "" {
		return "", errors.New("no platform admin key: pass --api-key or keep credentials.json")
	}
	adm := t.client(t.AdminKey)
	base := nf.StackAURL + "/v1/admin/tenants"
	err := adm.do(ctx, http.MethodPost, base, map[string]any{"tenant_create": map[string]any{
		"tenant_id": IsolationProbeTenantID, "name": "Isolation probe (agentos validate)", "plan_tier": core.PlanDemo}}, nil)
	if err != nil && statusOf(err) != http.StatusConflict {
		return "", fmt.Errorf("create probe tenant: %w", err)
	}
	// The probe tenant is disabled between runs; switch it on for this one.
	if err := adm.do(ctx, http.MethodPatch, base+"/"+IsolationProbeTenantID, map[string]any{"tenant_update": map[string]any{"status": "active"}}, nil); err != nil {
		return "", fmt.Errorf("enable probe tenant: %w", err)
	}
	defer func() {
		_ = adm.do(context.WithoutCancel(ctx), http.MethodPatch, base+"/"+IsolationProbeTenantID, map[string]any{"tenant_update": map[string]any{"status": "disabled"}}, nil)
	}()
	var issued struct {
		Token struct {
			TokenID string `json:"token_id"`
		} `json:"token"`
		Secret string `json:"secret"`
	}
	if err := adm.do(ctx, http.MethodPost, base+"/"+IsolationProbeTenantID+"/tokens", map[string]any{"token_create": map[string]any{
		"principal_id": "usr_validate_probe", "principal_type": "user", "display_name": "agentos validate probe",
		"scopes": []string{core.ScopeRunsRead, core.ScopeRunsCreate}, "roles": []string{core.RoleTenantUser}}}, &issued); err != nil {
		return "", fmt.Errorf("issue probe key: %w", err)
	}
	defer func() {
		_ = adm.do(context.WithoutCancel(ctx), http.MethodDelete, base+"/"+IsolationProbeTenantID+"/tokens/"+issued.Token.TokenID, nil, nil)
	}()
	probe := t.client(issued.Secret)
	var list struct {
		Runs []struct {
			RunID string `json:"run_id"`
		} `json:"runs"`
	}
	if err := probe.do(ctx, http.MethodGet, nf.StackAURL+"/v1/runs?limit=100", nil, &list); err != nil {
		return "", fmt.Errorf("probe tenant lists its runs: %w", err)
	}
	if slices.ContainsFunc(list.Runs, func(r struct {
		RunID string `json:"run_id"`
	}) bool {
		return r.RunID == runID
	}) {
		return "", fmt.Errorf("%s sees %s in GET /v1/runs", IsolationProbeTenantID, runID)
	}
	for _, path := range []string{"/v1/runs/" + runID, "/v1/runs/" + runID + "/events"} {
		err := probe.do(ctx, http.MethodGet, nf.StackAURL+path, nil, nil)
		if statusOf(err) != http.StatusNotFound {
			return "", fmt.Errorf("%s GET %s: want 404 not_found, got %v", IsolationProbeTenantID, path, errOrOK(err))
		}
	}
	return fmt.Sprintf("%s: run 404, events 404, not in list (%d own runs)", IsolationProbeTenantID, len(list.Runs)), nil
}

func errOrOK(err error) any {
	if err == nil {
		return "200 OK"
	}
	return err
}

// probeAgent is the body of the probe agent `validate` puts by URL.
func probeAgent(status string) map[string]any {
	return map[string]any{"agent": map[string]any{
		"agent_id": ProbeAgentID, "name": "Probe agent (agentos validate)", "model_ref": "tier:fast",
		"instructions": "You are a helpful echo agent.", "tool_ids": []string{app.SampleToolID}, "status": status}}
}

// installationMetricURLs lists the /metrics URL of every live node of the
// installation as the console's overview names them (one on bbolt, each
// node of a cluster), starting with the target's own; the target's alone
// when the list cannot be read.
func installationMetricURLs(ctx context.Context, user *apiClient, stackA string) []string {
	urls := []string{stackA + "/metrics"}
	var ov struct {
		Node struct {
			Nodes []struct {
				StackAURL string `json:"stack_a_url"`
			} `json:"nodes"`
		} `json:"node"`
	}
	if user.do(ctx, http.MethodGet, stackA+"/v1/console/overview", nil, &ov) != nil {
		return urls
	}
	for _, n := range ov.Node.Nodes {
		if n.StackAURL != "" && n.StackAURL != stackA {
			urls = append(urls, n.StackAURL+"/metrics")
		}
	}
	return urls
}

// sumMetrics adds up the samples of each metric name (labels folded) over
// several nodes' /metrics, enough to see counters move. The first (the
// target's own) must answer; another node that cannot be reached from
// here (an address behind a load balancer) is left out. A malformed line
// costs only its own sample.
func sumMetrics(ctx context.Context, hc *http.Client, urls []string) (map[string]float64, error) {
	total := map[string]float64{}
	for i, u := range urls {
		page, err := promtext.Fetch(ctx, hc, u)
		var malformed *promtext.SyntaxError
		if err != nil && !errors.As(err, &malformed) {
			if i == 0 {
				return nil, err
			}
			continue
		}
		for _, s := range page.Samples() {
			total[s.Name] += s.Value
		}
	}
	return total, nil
}
