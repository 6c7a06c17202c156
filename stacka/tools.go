package stacka

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Tool kinds of §3.5.
const (
	KindBuiltin = "builtin"
	KindHTTP    = "http"
	KindMCP     = "mcp"
)

var toolIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$`)

func objSchema(props map[string]any, required ...string) map[string]any {
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

var str = map[string]any{"type": "string"}

// builtinTools are the node's own tools, offered to every tenant entitled
// to them.
var builtinTools = []core.ToolDescriptor{
	{ToolID: "tool.echo", Name: "echo", Kind: KindBuiltin, Description: "Returns its input unchanged.",
		InputSchema: map[string]any{"type": "object"}},
	{ToolID: "tool.kv.put", Name: "kv_put", Kind: KindBuiltin, Description: "Stores a value in tenant memory.",
		InputSchema: objSchema(map[string]any{"namespace": str, "key": str, "value": map[string]any{}, "metadata": map[string]any{"type": "object"}}, "key", "value")},
	{ToolID: "tool.kv.get", Name: "kv_get", Kind: KindBuiltin, Description: "Reads a value from tenant memory.",
		InputSchema: objSchema(map[string]any{"namespace": str, "key": str}, "key")},
	{ToolID: "tool.kv.search", Name: "kv_search", Kind: KindBuiltin, Description: "Searches tenant memory by keyword or vector.",
		InputSchema: objSchema(map[string]any{"namespace": str, "query": str, "mode": map[string]any{"type": "string", "enum": []string{"keyword", "vector"}}, "limit": map[string]any{"type": "integer"}}, "query")},
	{ToolID: "tool.http.fetch", Name: "http_fetch", Kind: KindBuiltin, Description: "GETs a URL on an allowed host (size and time capped).",
		InputSchema: objSchema(map[string]any{"url": str}, "url")},
}

func builtinTool(id string) (core.ToolDescriptor, bool) {
	for _, t := range builtinTools {
		if t.ToolID == id {
			return t, true
		}
	}
	return core.ToolDescriptor{}, false
}

// lookupTool finds a tool in the tenant's registry, then among builtins.
func (s *Service) lookupTool(ctx context.Context, tenantID, toolID string) (core.ToolDescriptor, error) {
	td, err := s.cachedTool(ctx, tenantID, toolID)
	if err == nil {
		return td, nil
	}
	if !core.IsCode(err, core.CodeNotFound) {
		return td, err
	}
	if b, ok := builtinTool(toolID); ok {
		return b, nil
	}
	return td, core.NotFound("tool", toolID)
}

// resolveTool checks that the run may call toolID and returns its descriptor.
func (s *Service) resolveTool(ctx context.Context, r *core.RunRecord, toolID string) (core.ToolDescriptor, error) {
	if !slices.Contains(r.Tools, toolID) {
		return core.ToolDescriptor{ToolID: toolID}, core.Errorf(core.CodeForbidden, "tool %s is not in this run's tool set", toolID).With("tool_id", toolID)
	}
	return s.lookupTool(ctx, r.TenantID, toolID)
}

func (s *Service) modelTools(ctx context.Context, tenantID string, ids []string) ([]core.ModelTool, error) {
	out := make([]core.ModelTool, 0, len(ids))
	for _, id := range ids {
		td, err := s.lookupTool(ctx, tenantID, id)
		if err != nil {
			if core.IsCode(err, core.CodeNotFound) {
				continue
			}
			return nil, err
		}
		name := td.Name
		if name == "" {
			name = td.ToolID
		}
		schema := td.InputSchema
		if schema == nil {
			schema = map[string]any{"type": "object"}
		}
		out = append(out, core.ModelTool{ToolID: td.ToolID, Name: name, Description: td.Description, InputSchema: schema})
	}
	return out, nil
}

func (s *Service) toolIDByName(ctx context.Context, r *core.RunRecord, name string) string {
	for _, id := range r.Tools {
		if id == name {
			return id
		}
		if td, err := s.lookupTool(ctx, r.TenantID, id); err == nil && td.Name == name {
			return id
		}
	}
	return name
}

// invokeTool runs one tool call of run r.
func (s *Service) invokeTool(ctx context.Context, r *core.RunRecord, td core.ToolDescriptor, callID string, input map[string]any) (map[string]any, error) {
	switch td.Kind {
	case KindHTTP:
		return s.callWebhook(ctx, r, td, callID, input)
	case KindMCP:
		return s.callMCP(ctx, td, input)
	case KindBuiltin, "":
		return s.callBuiltin(ctx, r.Auth, td.ToolID, input)
	}
	return nil, core.Errorf(core.CodeInvalidRequest, "tool %s has unknown kind %q", td.ToolID, td.Kind)
}

func strArg(in map[string]any, key, def string) string {
	if v, ok := in[key].(string); ok && v != "" {
		return v
	}
	return def
}

func (s *Service) callBuiltin(ctx context.Context, a core.Auth, toolID string, in map[string]any) (map[string]any, error) {
	switch toolID {
	case "tool.echo":
		return in, nil
	case "tool.kv.put":
		raw, err := json.Marshal(in["value"])
		if err != nil || in["value"] == nil {
			return nil, core.Invalid("input.value", "value is required")
		}
		meta, _ := in["metadata"].(map[string]any)
		it, err := s.putMemory(ctx, a, strArg(in, "namespace", "default"), strArg(in, "key", ""), raw, meta)
		if err != nil {
			return nil, err
		}
		return map[string]any{"ok": true, "namespace": it.Namespace, "key": it.Key}, nil
	case "tool.kv.get":
		it, err := s.memory.GetMemory(ctx, a.TenantID, strArg(in, "namespace", "default"), strArg(in, "key", ""))
		if core.IsCode(err, core.CodeNotFound) {
			return map[string]any{"found": false, "value": nil}, nil
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"found": true, "value": it.Value, "metadata": it.Metadata}, nil
	case "tool.kv.search":
		limit := 10
		if v, ok := in["limit"].(float64); ok && v > 0 {
			limit = int(v)
		}
		res, err := s.searchMemory(ctx, a, strArg(in, "namespace", "default"), strArg(in, "query", ""), strArg(in, "mode", "keyword"), limit)
		if err != nil {
			return nil, err
		}
		return map[string]any{"results": res}, nil
	case "tool.http.fetch":
		// input.text is accepted as the URL too, so builtin/echo-1 (which
		// passes {"text": <user message>}) can drive the tool.
		return s.httpFetch(ctx, strArg(in, "url", strArg(in, "text", "")))
	}
	return nil, core.NotFound("tool", toolID)
}

func (s *Service) httpFetch(ctx context.Context, raw string) (map[string]any, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, core.Invalid("input.url", "url must be an absolute http(s) URL")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, core.Invalid("input.url", "bad url: %v", err)
	}
	resp, err := s.egress.Do(req)
	if err != nil {
		return nil, toolError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.FetchMaxBytes+1))
	if err != nil {
		return nil, toolError(err)
	}
	truncated := int64(len(body)) > s.cfg.FetchMaxBytes
	if truncated {
		body = body[:s.cfg.FetchMaxBytes]
	}
	return map[string]any{"status": resp.StatusCode, "content_type": resp.Header.Get("Content-Type"),
		"body": string(body), "truncated": truncated}, nil
}

// traceTransport adds the traceparent of each request's context, for
// clients (the MCP SDK's) that build their own requests.
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

// readSecret resolves a secret_ref: env:NAME or file:path.
func readSecret(ref string) ([]byte, error) {
	switch {
	case ref == "":
		return nil, nil
	case strings.HasPrefix(ref, "env:"):
		v := os.Getenv(strings.TrimPrefix(ref, "env:"))
		if v == "" {
			return nil, core.Errorf(core.CodeInternal, "secret_ref %s is not set", ref)
		}
		return []byte(v), nil
	case strings.HasPrefix(ref, "file:"):
		b, err := os.ReadFile(strings.TrimPrefix(ref, "file:"))
		if err != nil {
			return nil, core.Errorf(core.CodeInternal, "secret_ref %s cannot be read", ref)
		}
		return bytes.TrimSpace(b), nil
	}
	return nil, core.Errorf(core.CodeInternal, "secret_ref must be env:NAME or file:path")
}

// Sign returns the X-AgentOS-Signature value of body: sha256=<hex HMAC>.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func cfgString(td core.ToolDescriptor, keys ...string) string {
	for _, k := range keys {
		if v, ok := td.Config[k].(string); ok && v != "" {
			return v
		}
	}
	return ""
}

func (s *Service) callWebhook(ctx context.Context, r *core.RunRecord, td core.ToolDescriptor, callID string, input map[string]any) (map[string]any, error) {
	body, err := json.Marshal(map[string]any{"tool_call_id": callID, "tool_id": td.ToolID, "input": input,
		"tenant_id": r.TenantID, "run_id": r.RunID})
	if err != nil {
		return nil, fmt.Errorf("encode webhook body: %w", err)
	}
	ref := cfgString(td, "secret_ref")
	secret, err := readSecret(ref)
	if err != nil {
		return nil, err
	}
	if ref != "" {
		rec := core.SecretReadAudit(r.TenantID, r.Auth.Principal.PrincipalID, ref, "webhook signature of "+td.ToolID)
		rec.Details["run_id"], rec.Details["tool_call_id"] = r.RunID, callID
		if _, err := s.audit.AppendAudit(ctx, rec); err != nil {
			return nil, fmt.Errorf("audit secret read: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfgString(td, "url"), bytes.NewReader(body))
	if err != nil {
		return nil, core.Errorf(core.CodeInvalidRequest, "tool %s has a bad url", td.ToolID)
	}
	req.Header.Set("Content-Type", "application/json")
	if tp := core.Traceparent(ctx); tp != "" {
		req.Header.Set("traceparent", tp)
	}
	if cid := core.CorrelationID(ctx); cid != "" {
		req.Header.Set("X-Correlation-Id", cid)
	}
	if secret != nil {
		req.Header.Set("X-AgentOS-Signature", Sign(secret, body))
	}
	resp, err := s.egress.Do(req)
	if err != nil {
		return nil, toolError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, toolError(err)
	}
	var ans struct {
		Output map[string]any  `json:"output"`
		Error  *core.ErrorBody `json:"error"`
	}
	_ = json.Unmarshal(raw, &ans)
	if ans.Error != nil && ans.Error.Code != "" {
		e := core.Errorf(ans.Error.Code, "%s", ans.Error.Message)
		e.Details = ans.Error.Details
		return nil, e
	}
	if resp.StatusCode/100 != 2 {
		code := core.CodeForStatus(resp.StatusCode)
		if resp.StatusCode >= 500 && code == core.CodeInternal {
			code = core.CodeDependencyUnavailable
		}
		return nil, core.Errorf(code, "tool %s answered HTTP %d", td.ToolID, resp.StatusCode)
	}
	if ans.Output == nil {
		return nil, core.Errorf(core.CodeDependencyUnavailable, "tool %s answered without an output object", td.ToolID)
	}
	return ans.Output, nil
}

func (s *Service) callMCP(ctx context.Context, td core.ToolDescriptor, input map[string]any) (map[string]any, error) {
	endpoint := cfgString(td, "url", "server_url")
	name := cfgString(td, "tool_name", "name")
	client := mcp.NewClient(&mcp.Implementation{Name: "agentos-stack-a", Version: Version}, nil)
	sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: withTraceparent(s.egress),
		MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return nil, toolError(err)
	}
	defer sess.Close()
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: input})
	if err != nil {
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

// egressPolicy decides which addresses tools may reach; it is applied to
// the resolved IP at dial time, so a name cannot smuggle a private address.
type egressPolicy struct {
	hosts    []string
	nets     []*net.IPNet
	loopback bool
}

func newEgressPolicy(cfg Config) (egressPolicy, error) {
	p := egressPolicy{loopback: cfg.AllowLoopbackEgress}
	for _, h := range cfg.ToolEgressAllow {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		if strings.Contains(h, "/") {
			_, n, err := net.ParseCIDR(h)
			if err != nil {
				return p, fmt.Errorf("tool egress allow %q: %w", h, err)
			}
			p.nets = append(p.nets, n)
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			bits := 32
			if ip.To4() == nil {
				bits = 128
			}
			p.nets = append(p.nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		p.hosts = append(p.hosts, h)
	}
	return p, nil
}

var cgnat = &net.IPNet{IP: net.IPv4(100, 64, 0, 0), Mask: net.CIDRMask(10, 32)}

func (p egressPolicy) hostListed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range p.hosts {
		if h == host || (strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:])) {
			return true
		}
	}
	return false
}

func (p egressPolicy) allowed(host string, ip net.IP) bool {
	for _, n := range p.nets {
		if n.Contains(ip) {
			return true
		}
	}
	if ip.IsLoopback() {
		return p.loopback
	}
	if ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() ||
		ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || cgnat.Contains(ip) {
		return false
	}
	return p.hostListed(host)
}

func (p egressPolicy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, core.Errorf(core.CodeDependencyUnavailable, "resolve %s: %v", host, err)
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	for _, ip := range ips {
		if p.allowed(host, ip) {
			return d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		}
	}
	return nil, core.Errorf(core.CodeForbidden, "egress to %s is not allowed", host).With("host", host)
}

func newEgressClient(cfg Config) (*http.Client, error) {
	p, err := newEgressPolicy(cfg)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{Proxy: nil, DialContext: p.dial, MaxIdleConnsPerHost: 16, IdleConnTimeout: 60 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 60 * time.Second}
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return core.Errorf(core.CodeForbidden, "too many redirects")
			}
			return nil
		}}, nil
}

// validateTool checks a descriptor of PUT /v1/tools/{tool_id}.
func validateTool(td *core.ToolDescriptor) error {
	if !toolIDPattern.MatchString(td.ToolID) {
		return core.Invalid("tool.tool_id", "tool_id must be a dotted name of letters, digits, '.', '_' or '-'")
	}
	if td.Name == "" {
		td.Name = td.ToolID
	}
	switch td.Kind {
	case KindBuiltin:
		if _, ok := builtinTool(td.ToolID); !ok {
			return core.Invalid("tool.kind", "kind builtin is reserved for the node's builtin tools")
		}
	case KindHTTP:
		u, err := url.Parse(cfgString(*td, "url"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return core.Invalid("tool.config.url", "an http tool needs config.url, an absolute http(s) URL")
		}
		if ref := cfgString(*td, "secret_ref"); ref != "" && !strings.HasPrefix(ref, "env:") && !strings.HasPrefix(ref, "file:") {
			return core.Invalid("tool.config.secret_ref", "secret_ref must be env:NAME or file:path")
		}
		if v, ok := td.Config["timeout_ms"]; ok {
			if f, ok := v.(float64); !ok || f < 1 {
				return core.Invalid("tool.config.timeout_ms", "timeout_ms must be a positive integer")
			}
		}
	case KindMCP:
		u, err := url.Parse(cfgString(*td, "url", "server_url"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return core.Invalid("tool.config.url", "an mcp tool needs config.url, the server's streamable HTTP endpoint")
		}
		if cfgString(*td, "tool_name", "name") == "" {
			return core.Invalid("tool.config.tool_name", "an mcp tool needs config.tool_name")
		}
	case "":
		return core.Invalid("tool.kind", "kind is required (builtin, http or mcp)")
	default:
		return core.Invalid("tool.kind", "kind must be builtin, http or mcp")
	}
	return nil
}

// EnsureTool registers td for tenantID unless an identical descriptor is
// already there (the demo seed calls it on every start).
func (s *Service) EnsureTool(ctx context.Context, tenantID string, td core.ToolDescriptor) error {
	td.TenantID = tenantID
	if err := validateTool(&td); err != nil {
		return err
	}
	if prev, err := s.tools.GetTool(ctx, tenantID, td.ToolID); err == nil {
		prev.CreatedAt, prev.UpdatedAt = nil, nil
		a, _ := json.Marshal(prev)
		b, _ := json.Marshal(td)
		if bytes.Equal(a, b) {
			return nil
		}
	}
	_, err := s.tools.PutTool(ctx, td)
	s.cache.forget("x/" + tenantID + "/" + td.ToolID)
	return err
}
