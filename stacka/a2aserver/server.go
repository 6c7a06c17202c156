// Package a2aserver serves Stack A's agents over the Agent2Agent protocol
// (A2A v1.0, JSON-RPC binding) with the official a2a-go SDK doing the wire
// format: an Agent Card per agent at
// /a2a/agents/{agent_id}/.well-known/agent-card.json, a listing at
// /a2a/agents, and the JSON-RPC endpoint at /a2a/agents/{agent_id}.
//
// A task is a run: the task id is the run id, the context id the run's
// context.session_id, the task state follows the run status, run events
// arrive as status and artifact updates, and the run's output is the
// artifact "output". Everything goes through Stack A's own methods (the
// Runs interface), so tenancy, scopes, quotas, idempotency and audit are
// those of POST /v1/agents/{id}/runs.
package a2aserver

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
	"github.com/agentos/agentos/core"
	"github.com/labstack/echo/v4"
)

// Runs is what the A2A server needs of Stack A (*stacka.Service has it).
// Every method takes the caller's Auth and answers with the contract's
// error codes (not_found outside the tenant, forbidden without the scope).
type Runs interface {
	AgentFor(ctx context.Context, a core.Auth, agentID string) (core.Agent, error)
	RunnableAgents(ctx context.Context, a core.Auth) ([]core.Agent, error)
	PublicAgent(ctx context.Context, tenantID, agentID string) (core.Agent, error)
	CreateRun(ctx context.Context, a core.Auth, agentID string, req core.RunRequest, idemKeyHeader string) (core.Run, bool, error)
	GetRun(ctx context.Context, a core.Auth, runID string) (core.Run, error)
	CancelRun(ctx context.Context, a core.Auth, runID string) (core.Run, error)
	ListRuns(ctx context.Context, a core.Auth, f core.RunFilter) ([]core.Run, string, error)
	StreamEvents(ctx context.Context, a core.Auth, runID string, afterSeq int64, fn func(core.Event) error) error
}

// Server is the A2A surface of Stack A.
type Server struct {
	runs    Runs
	rpc     http.Handler
	version string
}

// New builds the server on runs; version is the node's, shown on cards.
func New(runs Runs, version string) *Server {
	s := &Server{runs: runs, version: version}
	// Keep-alives hold a quiet stream (a slow tool) open through proxies.
	s.rpc = a2asrv.NewJSONRPCHandler(&handler{runs: runs}, a2asrv.WithTransportKeepAlive(15*time.Second))
	return s
}

// Paths of the A2A surface.
const (
	basePath     = "/a2a/agents"
	wellKnown    = "/.well-known/agent-card.json"
	publicPrefix = "/a2a/tenants/"
)

// PublicCardPath reports whether p is the credential-optional public card
// path /a2a/tenants/{tenant_id}/agents/{agent_id}/.well-known/agent-card.json,
// for the edge to let through without a credential.
func PublicCardPath(p string) bool {
	if !strings.HasPrefix(p, publicPrefix) || !strings.HasSuffix(p, wellKnown) {
		return false
	}
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(p, publicPrefix), wellKnown), "/")
	return len(parts) == 3 && parts[1] == "agents" && parts[0] != "" && parts[2] != ""
}

// Register mounts the routes on e, behind the edge's auth.
func (s *Server) Register(e *echo.Echo) {
	e.GET(basePath, s.handleList)
	e.GET(basePath+"/:agent_id"+wellKnown, s.handleCard)
	e.POST(basePath+"/:agent_id", s.handleRPC)
	e.GET(publicPrefix+":tenant_id/agents/:agent_id"+wellKnown, s.handlePublicCard)
}

func authOf(c echo.Context) (core.Auth, bool) {
	return core.AuthFrom(c.Request().Context())
}

// baseURL is the scheme and host the caller reached us at, for the
// absolute URLs a card carries.
func baseURL(c echo.Context) string {
	return c.Scheme() + "://" + c.Request().Host
}

func (s *Server) handleList(c echo.Context) error {
	a, _ := authOf(c)
	ctx := c.Request().Context()
	agents, err := s.runs.RunnableAgents(ctx, a)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(agents))
	for _, ag := range agents {
		card := s.card(baseURL(c), ag)
		out = append(out, map[string]any{"agent_id": ag.AgentID, "name": ag.Name,
			"card_url": baseURL(c) + basePath + "/" + ag.AgentID + wellKnown, "card": card})
	}
	return c.JSON(http.StatusOK, map[string]any{"agents": out, "correlation_id": core.CorrelationID(ctx)})
}

func (s *Server) handleCard(c echo.Context) error {
	a, _ := authOf(c)
	ag, err := s.runs.AgentFor(c.Request().Context(), a, c.Param("agent_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.card(baseURL(c), ag))
}

// handlePublicCard serves a card by tenant without a credential when the
// tenant publishes its cards; with a credential it is the caller's own
// card path (another tenant's answers not_found, as REST does).
func (s *Server) handlePublicCard(c echo.Context) error {
	ctx := c.Request().Context()
	tenantID, agentID := c.Param("tenant_id"), c.Param("agent_id")
	if a, ok := authOf(c); ok {
		if a.TenantID != tenantID {
			return core.NotFound("agent", agentID)
		}
		ag, err := s.runs.AgentFor(ctx, a, agentID)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, s.card(baseURL(c), ag))
	}
	ag, err := s.runs.PublicAgent(ctx, tenantID, agentID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.card(baseURL(c), ag))
}

// handleRPC answers the JSON-RPC binding for one agent. The agent is
// looked up first, so another tenant's or an unknown agent is a 404 like
// on the REST surface; the SDK then decodes, dispatches to handler and
// encodes (streams as SSE).
func (s *Server) handleRPC(c echo.Context) error {
	a, _ := authOf(c)
	ctx := c.Request().Context()
	ag, err := s.runs.AgentFor(ctx, a, c.Param("agent_id"))
	if err != nil {
		return err
	}
	s.rpc.ServeHTTP(c.Response(), c.Request().WithContext(withAgent(ctx, ag)))
	return nil
}

// card is the Agent Card of ag as reached at base.
func (s *Server) card(base string, ag core.Agent) *a2a.AgentCard {
	desc := ag.Description
	if desc == "" {
		desc = "AgentOS agent " + ag.AgentID
	}
	tags := append([]string{"agentos"}, ag.ToolIDs...)
	return &a2a.AgentCard{
		Name: ag.Name, Description: desc, Version: strconv.Itoa(ag.Version),
		SupportedInterfaces: []*a2a.AgentInterface{a2a.NewAgentInterface(base+basePath+"/"+ag.AgentID, a2a.TransportProtocolJSONRPC)},
		Provider:            &a2a.AgentProvider{Org: "AgentOS " + s.version, URL: base},
		Capabilities:        a2a.AgentCapabilities{Streaming: true},
		DefaultInputModes:   []string{"text/plain"},
		DefaultOutputModes:  []string{"text/plain", "application/json"},
		SecuritySchemes: a2a.NamedSecuritySchemes{
			"bearer": a2a.HTTPAuthSecurityScheme{Scheme: "Bearer", BearerFormat: "JWT",
				Description: "An AgentOS API key or a JWT of the tenant, as Authorization: Bearer <credential>."},
			"apiKey": a2a.APIKeySecurityScheme{Name: "X-API-Key", Location: a2a.APIKeySecuritySchemeLocationHeader,
				Description: "An AgentOS API key of the tenant."},
		},
		SecurityRequirements: a2a.SecurityRequirementsOptions{{"bearer": {}}, {"apiKey": {}}},
		Skills: []a2a.AgentSkill{{ID: ag.AgentID, Name: ag.Name, Description: desc, Tags: tags,
			InputModes: []string{"text/plain"}, OutputModes: []string{"text/plain"}}},
	}
}

type agentKey struct{}

func withAgent(ctx context.Context, ag core.Agent) context.Context {
	return context.WithValue(ctx, agentKey{}, ag)
}

func agentFrom(ctx context.Context) (core.Agent, bool) {
	ag, ok := ctx.Value(agentKey{}).(core.Agent)
	return ag, ok
}
