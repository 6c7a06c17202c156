// Package client is the HTTP adapter of core.ModelPort for a remote Stack
// B: Stack A uses it when --stack-b-url is set. It sends the Auth in the
// body (the caller's service credential in the header), propagates
// traceparent and X-Correlation-Id, and maps error bodies back to
// *core.Error.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/agentos/agentos/core"
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
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return core.Errorf(core.CodeDependencyUnavailable, "stack b url: %v", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if a.TenantID != "" {
		req.Header.Set("X-Tenant-Id", a.TenantID)
	}
	if id := core.CorrelationID(ctx); id != "" {
		req.Header.Set("X-Correlation-Id", id)
	}
	if tp := core.Traceparent(ctx); tp != "" {
		req.Header.Set("traceparent", tp)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return transportError(ctx, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return transportError(ctx, err)
	}
	if resp.StatusCode/100 != 2 {
		return errorFrom(resp, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return core.Errorf(core.CodeDependencyUnavailable, "stack b: undecodable answer: %v", err)
	}
	return nil
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
func errorFrom(resp *http.Response, raw []byte) error {
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	_ = json.Unmarshal(raw, &body)
	var e core.Error
	if len(body.Error) > 0 && json.Unmarshal(body.Error, &e) == nil && e.Code != "" {
		if e.Details == nil {
			e.Details = map[string]any{}
		}
	} else {
		e = *core.Errorf(core.CodeForStatus(resp.StatusCode), "stack b answered %d", resp.StatusCode)
	}
	if core.StatusForCode(e.Code) != resp.StatusCode {
		e.Status = resp.StatusCode
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra > 0 {
		e.RetryAfter = ra
	}
	return &e
}
