package stacka

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// KindMCP is the kind of tools served by an MCP server over streamable HTTP.
const KindMCP = "mcp"

func init() { registerToolKind(KindMCP, mcpKind{}) }

// mcpKind calls one tool of a remote MCP server (config.url, the server's
// streamable HTTP endpoint, and config.tool_name), over a session the node
// keeps for the tenant and server.
type mcpKind struct{}

func (mcpKind) validate(td *core.ToolDescriptor) error {
	if !httpURL(cfgString(*td, "url", "server_url")) {
		return core.Invalid("tool.config.url", "an mcp tool needs config.url, the server's streamable HTTP endpoint")
	}
	if cfgString(*td, "tool_name", "name") == "" {
		return core.Invalid("tool.config.tool_name", "an mcp tool needs config.tool_name")
	}
	return nil
}

func (mcpKind) invoke(ctx context.Context, s *Service, c toolCall) (toolResult, error) {
	out, err := s.callMCP(ctx, c.Run.TenantID, c.Tool, c.Input)
	return toolResult{Output: out}, err
}

func (s *Service) callMCP(ctx context.Context, tenantID string, td core.ToolDescriptor, input map[string]any) (map[string]any, error) {
	endpoint := cfgString(td, "url", "server_url")
	name := cfgString(td, "tool_name", "name")
	// A session is per tenant and server, so one tenant's session state on
	// the server is never another's. A session the server dropped is
	// replaced once.
	key := tenantID + "\x00" + endpoint
	var res *mcp.CallToolResult
	for attempt := 0; ; attempt++ {
		sess, release, err := s.mcpPool.get(ctx, key, func(ctx context.Context) (*mcp.ClientSession, error) {
			client := mcp.NewClient(&mcp.Implementation{Name: "agentos-stack-a", Version: core.APIVersion}, nil)
			return client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: withTraceparent(s.egress),
				MaxRetries: -1, DisableStandaloneSSE: true}, nil)
		})
		if err != nil {
			return nil, toolError(err)
		}
		res, err = sess.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: input})
		release()
		if err == nil {
			break
		}
		if staleSession(err) && attempt == 0 && ctx.Err() == nil {
			s.mcpPool.drop(key, sess)
			continue
		}
		if staleSession(err) {
			s.mcpPool.drop(key, sess)
		}
		return nil, toolError(err)
	}
	var texts []string
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			texts = append(texts, t.Text)
		}
	}
	text := strings.Join(texts, "\n")
	if res.IsError {
		return nil, core.Errorf(core.CodeDependencyUnavailable, "mcp tool %s failed: %s", name, text)
	}
	out := map[string]any{"text": text}
	if res.StructuredContent != nil {
		if raw, err := json.Marshal(res.StructuredContent); err == nil {
			var m map[string]any
			if json.Unmarshal(raw, &m) == nil {
				out = m
			}
		}
	}
	return out, nil
}

// staleSession reports errors after which a pooled session is useless.
func staleSession(err error) bool {
	return errors.Is(err, mcp.ErrConnectionClosed) || errors.Is(err, mcp.ErrSessionMissing)
}

// mcpPool keeps MCP client sessions for reuse across tool calls: at most
// max sessions (the least recently used is closed to make room), each
// closed after idle without a call. A session is only handed out for the
// key it was opened with.
type mcpPool struct {
	mu      sync.Mutex
	max     int
	idle    time.Duration
	entries map[string]*mcpEntry
	opened  int // sessions opened since start, for tests and metrics
}

type mcpEntry struct {
	ready    chan struct{} // closed once sess or err is set
	sess     *mcp.ClientSession
	err      error
	lastUsed time.Time
	inUse    int
}

func newMCPPool(max int, idle time.Duration) *mcpPool {
	return &mcpPool{max: max, idle: idle, entries: map[string]*mcpEntry{}}
}

// get returns the session of key, opening it with connect when there is
// none; concurrent callers of one key share one connect. The caller calls
// release when its call is over; a session in use is never closed by the
// idle sweep or the bound.
func (p *mcpPool) get(ctx context.Context, key string, connect func(context.Context) (*mcp.ClientSession, error)) (*mcp.ClientSession, func(), error) {
	p.mu.Lock()
	stale := p.sweepLocked(time.Now())
	e := p.entries[key]
	owner := e == nil
	if owner {
		e = &mcpEntry{ready: make(chan struct{})}
		p.entries[key] = e
		p.opened++
		stale = append(stale, p.evictLocked(key)...)
	}
	e.inUse++
	p.mu.Unlock()
	closeAll(stale)

	if owner {
		e.sess, e.err = connect(ctx)
		close(e.ready)
	} else {
		select {
		case <-e.ready:
		case <-ctx.Done():
			p.release(e)
			return nil, nil, ctx.Err()
		}
	}
	if e.err != nil {
		p.mu.Lock()
		if p.entries[key] == e {
			delete(p.entries, key)
		}
		e.inUse--
		p.mu.Unlock()
		return nil, nil, e.err
	}
	var once sync.Once
	return e.sess, func() { once.Do(func() { p.release(e) }) }, nil
}

func (p *mcpPool) release(e *mcpEntry) {
	p.mu.Lock()
	e.inUse--
	e.lastUsed = time.Now()
	p.mu.Unlock()
}

// drop closes sess and forgets it if it is still key's session.
func (p *mcpPool) drop(key string, sess *mcp.ClientSession) {
	p.mu.Lock()
	if e := p.entries[key]; e != nil && e.sess == sess {
		delete(p.entries, key)
	}
	p.mu.Unlock()
	_ = sess.Close()
}

// sweepLocked removes sessions idle past p.idle and returns them to close.
func (p *mcpPool) sweepLocked(now time.Time) []*mcp.ClientSession {
	var out []*mcp.ClientSession
	for k, e := range p.entries {
		if e.sess != nil && e.inUse == 0 && now.Sub(e.lastUsed) > p.idle {
			out = append(out, e.sess)
			delete(p.entries, k)
		}
	}
	return out
}

// evictLocked makes room for keep by removing the least recently used
// ready sessions while the pool is over its bound.
func (p *mcpPool) evictLocked(keep string) []*mcp.ClientSession {
	var out []*mcp.ClientSession
	for len(p.entries) > p.max {
		victim, oldest := "", time.Time{}
		for k, e := range p.entries {
			if k == keep || e.sess == nil || e.inUse > 0 {
				continue
			}
			if victim == "" || e.lastUsed.Before(oldest) {
				victim, oldest = k, e.lastUsed
			}
		}
		if victim == "" {
			break
		}
		out = append(out, p.entries[victim].sess)
		delete(p.entries, victim)
	}
	return out
}

// close ends every pooled session (service shutdown).
func (p *mcpPool) close() {
	p.mu.Lock()
	var all []*mcp.ClientSession
	for k, e := range p.entries {
		if e.sess != nil {
			all = append(all, e.sess)
		}
		delete(p.entries, k)
	}
	p.mu.Unlock()
	closeAll(all)
}

// stats reports open sessions and how many were ever opened.
func (p *mcpPool) stats() (open, opened int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries), p.opened
}

func closeAll(ss []*mcp.ClientSession) {
	for _, s := range ss {
		_ = s.Close()
	}
}

// traceTransport adds the traceparent of each request's context, for
// clients (the MCP and A2A SDKs') that build their own requests.
type traceTransport struct{ base http.RoundTripper }

func (t traceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if tp := core.Traceparent(r.Context()); tp != "" && r.Header.Get("traceparent") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("traceparent", tp)
	}
	return t.base.RoundTrip(r)
}

// withTraceparent returns a copy of c whose requests carry traceparent.
func withTraceparent(c *http.Client) *http.Client {
	cp := *c
	base := cp.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp.Transport = traceTransport{base: base}
	return &cp
}
