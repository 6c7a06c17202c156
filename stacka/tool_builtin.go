package stacka

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/agentos/agentos/core"
)

// KindBuiltin is the kind of the node's own tools (§3.5).
const KindBuiltin = "builtin"

func init() { registerToolKind(KindBuiltin, builtinKind{}) }

// builtinKind runs the node's own tools in-process.
type builtinKind struct{}

func (builtinKind) validate(td *core.ToolDescriptor) error {
	if _, ok := builtinTool(td.ToolID); !ok {
		return core.Invalid("tool.kind", "kind builtin is reserved for the node's builtin tools")
	}
	return nil
}

func (builtinKind) invoke(ctx context.Context, s *Service, c toolCall) (toolResult, error) {
	out, err := s.callBuiltin(ctx, c.Run.Auth, c.Tool.ToolID, c.Input)
	return toolResult{Output: out}, err
}

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

// BuiltinToolIDs lists the ids of the tools every node hosts, in a fresh
// slice (the one list: seeds, entitlements and tests read it).
func BuiltinToolIDs() []string {
	ids := make([]string, len(builtinTools))
	for i, t := range builtinTools {
		ids[i] = t.ToolID
	}
	return ids
}

// NetworkTool reports whether the builtin tool id reaches the network
// (egress-checked); new tenants are not granted such tools by default.
func NetworkTool(id string) bool { return id == "tool.http.fetch" }

func builtinTool(id string) (core.ToolDescriptor, bool) {
	for _, t := range builtinTools {
		if t.ToolID == id {
			return t, true
		}
	}
	return core.ToolDescriptor{}, false
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
