// Package mcpserver serves Stack A's agents as MCP tools over streamable
// HTTP (/mcp), with the official MCP go-sdk doing the protocol. Each agent
// the credential may run (scope runs:create) is a tool named by its
// agent_id; a call is a run (input: the run's input text and optional
// context; result: the run's output and run id), progress notifications
// carry the run's events while it executes, and a client's cancellation
// cancels the run. Runs go through Stack A's own CreateRun, so quotas,
// idempotency and audit are those of POST /v1/agents/{id}/runs.
package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/labstack/echo/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Path is where the MCP endpoint is mounted.
const Path = "/mcp"

// Runs is what the MCP server needs of Stack A (*stacka.Service has it).
type Runs interface {
	RunnableAgents(ctx context.Context, a core.Auth) ([]core.Agent, error)
	CreateRun(ctx context.Context, a core.Auth, agentID string, req core.RunRequest, idemKeyHeader string) (core.Run, bool, error)
	GetRun(ctx context.Context, a core.Auth, runID string) (core.Run, error)
	CancelRun(ctx context.Context, a core.Auth, runID string) (core.Run, error)
	StreamEvents(ctx context.Context, a core.Auth, runID string, afterSeq int64, fn func(core.Event) error) error
}

// Server is the MCP surface of Stack A.
type Server struct {
	runs    Runs
	version string
	handler http.Handler
}

// SessionIdle is how long an MCP session may go without a request before
// it is closed.
const SessionIdle = 30 * time.Minute

// New builds the server on runs; version is the node's.
func New(runs Runs, version string) *Server {
	s := &Server{runs: runs, version: version}
	h := mcp.NewStreamableHTTPHandler(s.serverFor, &mcp.StreamableHTTPOptions{SessionTimeout: SessionIdle})
	// The SDK binds a session to the TokenInfo.UserID of the request that
	// opened it and refuses the session to anyone else; the edge has
	// already authenticated the request, so the "verifier" only names the
	// principal.
	bound := auth.RequireBearerToken(func(ctx context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		a, ok := core.AuthFrom(r.Context())
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: a.TenantID + "/" + a.Principal.PrincipalID, Scopes: a.Scopes}, nil
	}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An X-API-Key caller has no bearer header for the SDK's check.
		if r.Header.Get("Authorization") == "" && r.Header.Get("X-API-Key") != "" {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+r.Header.Get("X-API-Key"))
		}
		bound.ServeHTTP(w, r)
	})
	return s
}

// Register mounts /mcp (POST, GET and DELETE of streamable HTTP) on e,
// behind the edge's auth.
func (s *Server) Register(e *echo.Echo) {
	e.Any(Path, echo.WrapHandler(s.handler))
}

// serverFor builds the MCP server of one session, for the credential that
// opened it.
func (s *Server) serverFor(r *http.Request) *mcp.Server {
	a, _ := core.AuthFrom(r.Context())
	srv := mcp.NewServer(&mcp.Implementation{Name: "agentos", Title: "AgentOS agents", Version: s.version},
		&mcp.ServerOptions{Instructions: "Each tool runs one AgentOS agent: pass the input text; the result is the run's output and run id."})
	ts := &toolSet{s: s, a: a, srv: srv, known: map[string]string{}}
	_ = ts.sync(r.Context())
	// The tool list follows the tenant's agents: it is brought up to date
	// before every listing and call.
	// A call of anything else (another tenant's agent, one it may not
	// run) answers the contract's error, as the REST surface would.
	srv.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			switch method {
			case "tools/list":
				ts.sync(ctx)
			case "tools/call":
				err := ts.sync(ctx)
				call, ok := req.(*mcp.CallToolRequest)
				if !ok {
					break
				}
				if err != nil {
					return errorResult(err), nil
				}
				if !ts.has(call.Params.Name) {
					return errorResult(core.NotFound("agent", call.Params.Name)), nil
				}
			}
			return next(ctx, method, req)
		}
	})
	return srv
}

// toolSet keeps a session's tools equal to the agents its credential may run.
type toolSet struct {
	s     *Server
	a     core.Auth
	srv   *mcp.Server
	mu    sync.Mutex
	known map[string]string // agent id → description served
}

var inputSchema = json.RawMessage(`{"type":"object","properties":{` +
	`"input":{"type":"string","description":"The run's input text."},` +
	`"context":{"type":"object","description":"Optional run context (locale, timezone, channel, user_id, session_id, labels, metadata)."},` +
	`"idempotency_key":{"type":"string","description":"Optional; the same key returns the same run."}},` +
	`"required":["input"]}`)

func (ts *toolSet) has(name string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	_, ok := ts.known[name]
	return ok
}

// sync brings the tools up to date; when the agents cannot be listed
// (no runs:create, or the store failed) there are no tools and the error
// says why.
func (ts *toolSet) sync(ctx context.Context) error {
	agents, err := ts.s.runs.RunnableAgents(ctx, ts.a)
	if err != nil {
		agents = nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	seen := map[string]bool{}
	for _, ag := range agents {
		seen[ag.AgentID] = true
		desc := ag.Description
		if desc == "" {
			desc = "Runs the AgentOS agent " + ag.Name + "."
		}
		if ts.known[ag.AgentID] == desc {
			continue
		}
		ts.known[ag.AgentID] = desc
		ts.srv.AddTool(&mcp.Tool{Name: ag.AgentID, Title: ag.Name, Description: desc, InputSchema: inputSchema},
			ts.s.callHandler(ts.a, ag.AgentID))
	}
	var gone []string
	for id := range ts.known {
		if !seen[id] {
			gone = append(gone, id)
			delete(ts.known, id)
		}
	}
	if len(gone) > 0 {
		ts.srv.RemoveTools(gone...)
	}
	return err
}

type callArgs struct {
	Input          string           `json:"input"`
	Context        *core.RunContext `json:"context"`
	IdempotencyKey string           `json:"idempotency_key"`
}

// callHandler runs agentID for one tools/call.
func (s *Server) callHandler(a core.Auth, agentID string) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args callArgs
		if len(req.Params.Arguments) > 0 {
			if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
				return errorResult(core.Invalid("arguments", "arguments must be {input, context?, idempotency_key?}: %v", err)), nil
			}
		}
		if strings.TrimSpace(args.Input) == "" {
			return errorResult(core.Invalid("arguments.input", "input is required")), nil
		}
		rc := args.Context
		if rc == nil {
			rc = &core.RunContext{}
		}
		if rc.Channel == "" {
			rc.Channel = "mcp"
		}
		key := args.IdempotencyKey
		if key == "" {
			key = core.NewID("mcp")
		}
		run, _, err := s.runs.CreateRun(ctx, a, agentID, core.RunRequest{Input: core.RunInput{Type: "text", Text: args.Input},
			Context: rc, IdempotencyKey: key}, "")
		if err != nil {
			return errorResult(err), nil
		}
		token := req.Params.GetProgressToken()
		err = s.runs.StreamEvents(ctx, a, run.RunID, 0, func(ev core.Event) error {
			if token == nil {
				return nil
			}
			raw, _ := json.Marshal(ev)
			// A notification that cannot be delivered (the client's stream
			// is gone) does not end the call: the client's cancel, when it
			// comes, does, and cancels the run.
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token,
				Progress: float64(ev.Sequence), Message: string(raw)})
			return nil
		})
		if ctx.Err() != nil {
			// The client canceled the call (or went away): the run stops
			// as POST /v1/runs/{id}:cancel stops it.
			if _, cerr := s.runs.CancelRun(context.WithoutCancel(ctx), a, run.RunID); cerr != nil && !core.IsCode(cerr, core.CodeConflict) {
				return nil, errors.Join(ctx.Err(), cerr)
			}
			return nil, ctx.Err()
		}
		if err != nil {
			return errorResult(err), nil
		}
		final, err := s.runs.GetRun(ctx, a, run.RunID)
		if err != nil {
			return errorResult(err), nil
		}
		return runResult(final), nil
	}
}

// runResult is a finished run as a tool result: the output text, and the
// run as structured content.
func runResult(r core.Run) *mcp.CallToolResult {
	structured := map[string]any{"run_id": r.RunID, "status": r.Status, "output": r.Output, "error": r.Error}
	text := ""
	switch {
	case r.Output != nil:
		text = r.Output.Text
	case r.Error != nil:
		text = r.Error.Code + ": " + r.Error.Message
	default:
		text = "run " + r.RunID + " " + r.Status
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}, StructuredContent: structured,
		IsError: r.Status != core.RunCompleted}
}

// errorResult reports a refused call as a tool error carrying the
// contract's error object (not_found, forbidden, rate_limited, …).
func errorResult(err error) *mcp.CallToolResult {
	ce := core.AsError(err)
	details := ce.Details
	if details == nil {
		details = map[string]any{}
	}
	body := map[string]any{"error": map[string]any{"code": ce.Code, "message": ce.Message, "retryable": ce.Retryable, "details": details}}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: ce.Code + ": " + ce.Message}},
		StructuredContent: body, IsError: true}
}
