// Package client is the HTTP adapter of core.ModelPort for a remote Stack
// B: Stack A uses it when --stack-b-url is set. It sends the Auth in the
// body (the caller's service credential in the header), propagates
// traceparent and X-Correlation-Id, and maps error bodies back to
// *core.Error.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/jsonhttp"
)

// Client calls a remote Stack B.
type Client struct {
	base   string
	bearer string
	hc     *http.Client
}

var _ core.ModelPort = (*Client)(nil)

// New returns a client of the Stack B at baseURL (e.g.
// "http://127.0.0.1:8081") that authenticates with bearer; hc nil means
// http.DefaultClient.
func New(baseURL, bearer string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), bearer: bearer, hc: hc}
}

type invokeBody struct {
	Auth        core.Auth         `json:"auth"`
	Request     core.ModelRequest `json:"request"`
	Traceparent string            `json:"traceparent,omitempty"`
}

// Chat implements core.ModelPort.
func (c *Client) Chat(ctx context.Context, a core.Auth, req core.ModelRequest) (core.ModelResponse, error) {
	req.Operation = core.OpChat
	return c.invoke(ctx, a, req)
}

// Embed implements core.ModelPort.
func (c *Client) Embed(ctx context.Context, a core.Auth, req core.ModelRequest) (core.ModelResponse, error) {
	req.Operation = core.OpEmbed
	return c.invoke(ctx, a, req)
}

func (c *Client) invoke(ctx context.Context, a core.Auth, req core.ModelRequest) (core.ModelResponse, error) {
	var out struct {
		Response core.ModelResponse `json:"response"`
	}
	h := http.Header{}
	if req.AgentID != "" {
		h.Set("X-AgentOS-Agent-Id", req.AgentID)
	}
	body := invokeBody{Auth: a, Request: req, Traceparent: core.Traceparent(ctx)}
	if err := c.do(ctx, http.MethodPost, "/v1/models:invoke", a, h, body, &out); err != nil {
		return core.ModelResponse{}, err
	}
	return out.Response, nil
}

// PolicyCheck implements core.ModelPort.
func (c *Client) PolicyCheck(ctx context.Context, a core.Auth, req core.PolicyCheckRequest) (core.PolicyResult, error) {
	var out struct {
		PolicyResult core.PolicyResult `json:"policy_result"`
	}
	body := map[string]any{"auth": a, "policy_check": req}
	if err := c.do(ctx, http.MethodPost, "/v1/policy:check", a, nil, body, &out); err != nil {
		return core.PolicyResult{}, err
	}
	return out.PolicyResult, nil
}

// ListModels implements core.ModelPort; a's tenant travels as X-Tenant-Id.
func (c *Client) ListModels(ctx context.Context, a core.Auth) ([]core.ModelInfo, error) {
	var out struct {
		Models []core.ModelInfo `json:"models"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/models", a, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Models, nil
}

func (c *Client) do(ctx context.Context, method, path string, a core.Auth, h http.Header, body, out any) error {
	if h == nil {
		h = http.Header{}
	}
	if c.bearer != "" {
		h.Set("Authorization", "Bearer "+c.bearer)
	}
	if a.TenantID != "" {
		h.Set("X-Tenant-Id", a.TenantID)
	}
	if id := core.CorrelationID(ctx); id != "" {
		h.Set("X-Correlation-Id", id)
	}
	if tp := core.Traceparent(ctx); tp != "" {
		h.Set("traceparent", tp)
	}
	// No bound on the answer: Stack A trusts its own Stack B, and an
	// embedding answer may be large.
	err := jsonhttp.Do(ctx, c.hc, jsonhttp.Call{Method: method, URL: c.base + path, Header: h, Body: body, Limit: -1}, out)
	return jsonhttp.Failures{
		Transport: func(cause error) error { return transportError(ctx, cause) },
		Status:    errorFrom,
		Decode: func(cause error) error {
			return core.Errorf(core.CodeDependencyUnavailable, "stack b: undecodable answer: %v", cause)
		},
		Build: func(err error) error { return core.Errorf(core.CodeDependencyUnavailable, "stack b url: %v", err) },
	}.Map(err)
}

func transportError(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded {
		return core.Errorf(core.CodeTimeout, "stack b: deadline exceeded")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return core.Errorf(core.CodeTimeout, "stack b: timed out")
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return core.Errorf(core.CodeDependencyUnavailable, "stack b unreachable: %v", err)
}

// errorFrom rebuilds the *core.Error of an error answer: the contract's
// error object, OpenAI's error shape, or only the status.
func errorFrom(resp jsonhttp.Response) error {
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	_ = json.Unmarshal(resp.Body, &body)
	var e core.Error
	if len(body.Error) > 0 && json.Unmarshal(body.Error, &e) == nil && e.Code != "" {
		if e.Details == nil {
			e.Details = map[string]any{}
		}
	} else {
		e = *core.Errorf(core.CodeForStatus(resp.Status), "stack b answered %d", resp.Status)
	}
	if core.StatusForCode(e.Code) != resp.Status {
		e.Status = resp.Status
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra > 0 {
		e.RetryAfter = ra
	}
	return &e
}
