package stacka

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/agentos/agentos/core"
)

// A toolKind is one kind of tool (§3.5): how a descriptor of that kind is
// checked when it is registered and how a call of it runs. Each kind lives
// in its own file (tool_<kind>.go) and registers itself from init, so adding
// a kind is that file plus its fixture in the per-kind conformance suite
// (toolkind_test.go); nothing else switches on the kind.
type toolKind interface {
	// validate checks td (kind already matched) and may fill defaults;
	// invalid_request names the offending field.
	validate(td *core.ToolDescriptor) error
	// invoke runs one call. The result's Remote, when set, is recorded on
	// the tool.call.completed event even when err is not nil.
	invoke(ctx context.Context, s *Service, call toolCall) (toolResult, error)
}

// toolCall is one call of a tool by a run.
type toolCall struct {
	Run    *core.RunRecord
	Tool   core.ToolDescriptor
	CallID string
	Input  map[string]any
}

// toolResult is what a call produced.
type toolResult struct {
	Output map[string]any
	// Remote describes the remote work a call became (the remote task of an
	// a2a tool), for the tool.call.completed event.
	Remote map[string]any
}

var (
	toolKindsMu sync.RWMutex
	toolKinds   = map[string]toolKind{}
)

// registerToolKind makes kind name available; each kind's file calls it
// from init. Registering a name twice is a programming error.
func registerToolKind(name string, k toolKind) {
	toolKindsMu.Lock()
	defer toolKindsMu.Unlock()
	if _, dup := toolKinds[name]; dup {
		panic(fmt.Sprintf("stacka: tool kind %q registered twice", name))
	}
	toolKinds[name] = k
}

func toolKindOf(name string) (toolKind, bool) {
	toolKindsMu.RLock()
	defer toolKindsMu.RUnlock()
	k, ok := toolKinds[name]
	return k, ok
}

// ToolKinds lists the registered tool kinds, sorted.
func ToolKinds() []string {
	toolKindsMu.RLock()
	defer toolKindsMu.RUnlock()
	return slices.Sorted(maps.Keys(toolKinds))
}

func kindList() string {
	names := ToolKinds()
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// invokeTool runs one tool call of run r through its kind. A descriptor
// without a kind is a builtin (the node's own tools carry none in old data).
func (s *Service) invokeTool(ctx context.Context, r *core.RunRecord, td core.ToolDescriptor, callID string, input map[string]any) (toolResult, error) {
	name := td.Kind
	if name == "" {
		name = KindBuiltin
	}
	k, ok := toolKindOf(name)
	if !ok {
		return toolResult{}, core.Errorf(core.CodeInvalidRequest, "tool %s has unknown kind %q", td.ToolID, td.Kind)
	}
	return k.invoke(ctx, s, toolCall{Run: r, Tool: td, CallID: callID, Input: input})
}

// validateTool checks a descriptor of PUT /v1/tools/{tool_id}.
func validateTool(td *core.ToolDescriptor) error {
	if !validID(td.ToolID) {
		return core.Invalid("tool.tool_id", "tool_id must be a dotted name of letters, digits, '.', '_' or '-'")
	}
	if td.Name == "" {
		td.Name = td.ToolID
	}
	if td.Kind == "" {
		return core.Invalid("tool.kind", "kind is required (%s)", kindList())
	}
	k, ok := toolKindOf(td.Kind)
	if !ok {
		return core.Invalid("tool.kind", "kind must be %s", kindList())
	}
	if v, ok := td.Config["timeout_ms"]; ok {
		if f, ok := v.(float64); !ok || f < 1 {
			return core.Invalid("tool.config.timeout_ms", "timeout_ms must be a positive integer")
		}
	}
	return k.validate(td)
}

// httpURL reports whether raw is an absolute http(s) URL.
func httpURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
