package stacka

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
	"github.com/labstack/echo/v4"
)

// Register mounts Stack A's routes on e. app installs auth, correlation,
// body limits, OpenAPI validation and the error handler before them; each
// route names the scope it needs (edge.RequireScope).
func (s *Service) Register(e *echo.Echo) {
	need := edge.RequireScope
	e.GET("/v1/health", s.handleHealth)
	e.GET("/v1/agents", s.handleListAgents, need(core.ScopeAgentsRead))
	e.GET("/v1/agents/:agent_id", s.handleGetAgent, need(core.ScopeAgentsRead))
	e.PUT("/v1/agents/:agent_id", s.handlePutAgent, need(core.ScopeAgentsWrite))
	e.POST("/v1/agents/:agent_id/runs", s.handleCreateRun, need(core.ScopeRunsCreate))
	e.GET("/v1/runs", s.handleListRuns, need(core.ScopeRunsRead))
	e.GET("/v1/runs/:run_id", s.handleGetRun, need(core.ScopeRunsRead))
	// "/v1/runs/{run_id}:cancel" is one path segment; echo would read a
	// second ':' as a parameter, so the handler splits the verb off (and
	// the scope is checked once the verb is known: an unknown verb is 404).
	e.POST("/v1/runs/:run_id", s.handleRunAction)
	e.GET("/v1/runs/:run_id/events", s.handleEvents, need(core.ScopeRunsRead))
	e.GET("/v1/tools", s.handleListTools, need(core.ScopeAgentsRead, core.ScopeToolsWrite, core.ScopeToolsInvoke))
	e.PUT("/v1/tools/:tool_id", s.handlePutTool, need(core.ScopeToolsWrite))
	e.PUT("/v1/memory/:ns/:key", s.handlePutMemory, need(core.ScopeMemoryWrite))
	e.GET("/v1/memory/:ns/:key", s.handleGetMemory, need(core.ScopeMemoryRead))
	e.POST("/v1/memory/:ns", s.handleMemoryAction) // "{ns}:search", scope checked after the verb
}

func authOf(c echo.Context) core.Auth {
	a, _ := core.AuthFrom(c.Request().Context())
	return a
}

func cid(c echo.Context) string { return core.CorrelationID(c.Request().Context()) }

func (s *Service) handleHealth(c echo.Context) error {
	body := map[string]any{"status": "ok", "service": "stack-a", "version": core.APIVersion}
	if s.nodeID != "" {
		body["node_id"] = s.nodeID
	}
	return c.JSON(http.StatusOK, body)
}

func (s *Service) handleListAgents(c echo.Context) error {
	a := authOf(c)
	list, err := s.agents.ListAgents(c.Request().Context(), a.TenantID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"agents": list, "correlation_id": cid(c)})
}

func (s *Service) handleGetAgent(c echo.Context) error {
	a := authOf(c)
	ag, err := s.agents.GetAgent(c.Request().Context(), a.TenantID, c.Param("agent_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"agent": ag, "correlation_id": cid(c)})
}

// pathID is the id the path parameter param names. The body may repeat
// it in field (its JSON path) or leave it out, never name another.
func pathID(c echo.Context, param, field, inBody string) (string, error) {
	id := c.Param(param)
	if inBody != "" && inBody != id {
		return "", core.Invalid(field, "%s differs from the path", field)
	}
	return id, nil
}

func (s *Service) handlePutAgent(c echo.Context) error {
	a := authOf(c)
	in, err := edge.DecodeEnvelope[core.Agent](c, "agent")
	if err != nil {
		return err
	}
	if in.AgentID, err = pathID(c, "agent_id", "agent.agent_id", in.AgentID); err != nil {
		return err
	}
	ag, err := s.PutAgent(c.Request().Context(), a, in)
	if err != nil {
		return err
	}
	return c.JSON(putStatus(ag.Version == 1), map[string]any{"agent": ag, "correlation_id": cid(c)})
}

func (s *Service) handleCreateRun(c echo.Context) error {
	a := authOf(c)
	var req core.RunRequest
	if err := edge.DecodeJSON(c, &req); err != nil {
		return err
	}
	run, replayed, err := s.CreateRun(c.Request().Context(), a, c.Param("agent_id"), req, c.Request().Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	// A replay answers like the create it repeats (§3.3): 201, the original
	// run, plus Idempotent-Replayed.
	if replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	c.Response().Header().Set("Location", "/v1/runs/"+run.RunID)
	return c.JSON(http.StatusCreated, map[string]any{"run": run, "correlation_id": cid(c)})
}

func (s *Service) handleListRuns(c echo.Context) error {
	f := core.RunFilter{AgentID: c.QueryParam("agent_id"), Status: c.QueryParam("status"), Cursor: c.QueryParam("cursor")}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return core.Invalid("limit", "limit must be between 1 and 200")
		}
		f.Limit = n
	}
	runs, next, err := s.ListRuns(c.Request().Context(), authOf(c), f)
	if err != nil {
		return err
	}
	var nc any
	if next != "" {
		nc = next
	}
	return c.JSON(http.StatusOK, map[string]any{"runs": runs, "next_cursor": nc, "correlation_id": cid(c)})
}

func (s *Service) handleGetRun(c echo.Context) error {
	run, err := s.GetRun(c.Request().Context(), authOf(c), c.Param("run_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"run": run, "correlation_id": cid(c)})
}

func (s *Service) handleRunAction(c echo.Context) error {
	ref := c.Param("run_id")
	id, ok := strings.CutSuffix(ref, ":cancel")
	if !ok || id == "" {
		return core.Errorf(core.CodeNotFound, "no route POST /v1/runs/%s", ref)
	}
	run, err := s.CancelRun(c.Request().Context(), authOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"run": run, "correlation_id": cid(c)})
}

func (s *Service) handleEvents(c echo.Context) error {
	return s.ServeEventStream(c, authOf(c), c.Param("run_id"))
}

func (s *Service) handleListTools(c echo.Context) error {
	a := authOf(c)
	ctx := c.Request().Context()
	reg, err := s.tools.ListTools(ctx, a.TenantID)
	if err != nil {
		return err
	}
	out := make([]core.ToolDescriptor, 0, len(reg)+len(builtinTools))
	seen := map[string]bool{}
	for _, t := range reg {
		seen[t.ToolID] = true
		out = append(out, t)
	}
	for _, b := range builtinTools {
		if !seen[b.ToolID] {
			out = append(out, b)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"tools": out, "correlation_id": cid(c)})
}

func (s *Service) handlePutTool(c echo.Context) error {
	a := authOf(c)
	td, err := edge.DecodeEnvelope[core.ToolDescriptor](c, "tool")
	if err != nil {
		return err
	}
	if td.ToolID, err = pathID(c, "tool_id", "tool.tool_id", td.ToolID); err != nil {
		return err
	}
	td.TenantID = a.TenantID
	if err := validateTool(&td); err != nil {
		return err
	}
	if _, err := s.tenantSecret(c.Request().Context(), td.TenantID, cfgString(td, "secret_ref")); err != nil {
		return err
	}
	out, err := s.tools.PutTool(c.Request().Context(), td)
	s.cache.forget("x/" + td.TenantID + "/" + td.ToolID)
	if err != nil {
		return err
	}
	created := out.CreatedAt != nil && out.UpdatedAt != nil && out.CreatedAt.Equal(*out.UpdatedAt)
	return c.JSON(putStatus(created), map[string]any{"tool": out, "correlation_id": cid(c)})
}

// putStatus is the status of a PUT that creates or replaces: 201 when it
// created (openapi: putAgent, putTool), 200 when it replaced.
func putStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// memoryView is a memory item as the API shows it (no vector).
type memoryView struct {
	Namespace string          `json:"namespace"`
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	Metadata  map[string]any  `json:"metadata"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
}

func viewOf(it core.MemoryItem) memoryView {
	return memoryView{Namespace: it.Namespace, Key: it.Key, Value: it.Value, Metadata: it.Metadata,
		CreatedAt: it.CreatedAt.Format("2006-01-02T15:04:05.999999999Z"), UpdatedAt: it.UpdatedAt.Format("2006-01-02T15:04:05.999999999Z")}
}

func (s *Service) handlePutMemory(c echo.Context) error {
	a := authOf(c)
	var body struct {
		Value    json.RawMessage `json:"value"`
		Metadata map[string]any  `json:"metadata"`
	}
	if err := edge.DecodeJSON(c, &body); err != nil {
		return err
	}
	if len(body.Value) == 0 || string(body.Value) == "null" {
		return core.Invalid("value", "value is required")
	}
	it, err := s.putMemory(c.Request().Context(), a, c.Param("ns"), c.Param("key"), body.Value, body.Metadata)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"memory": viewOf(it), "correlation_id": cid(c)})
}

func (s *Service) handleGetMemory(c echo.Context) error {
	a := authOf(c)
	it, err := s.memory.GetMemory(c.Request().Context(), a.TenantID, c.Param("ns"), c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"memory": viewOf(it), "correlation_id": cid(c)})
}

func (s *Service) handleMemoryAction(c echo.Context) error {
	a := authOf(c)
	ns, ok := strings.CutSuffix(c.Param("ns"), ":search")
	if !ok || ns == "" {
		return core.Errorf(core.CodeNotFound, "no route POST /v1/memory/%s", c.Param("ns"))
	}
	if err := a.Require(core.ScopeMemoryRead); err != nil {
		return err
	}
	var body struct {
		Query string `json:"query"`
		Mode  string `json:"mode"`
		Limit int    `json:"limit"`
	}
	if err := edge.DecodeJSON(c, &body); err != nil {
		return err
	}
	if strings.TrimSpace(body.Query) == "" {
		return core.Invalid("query", "query is required")
	}
	res, err := s.searchMemory(c.Request().Context(), a, ns, body.Query, body.Mode, body.Limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"results": res, "correlation_id": cid(c)})
}
