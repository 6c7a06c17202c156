package stackb

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"

	"github.com/agentos/agentos/core"
	"github.com/labstack/echo/v4"
)

// What the compatible surfaces (OpenAI, Responses, Anthropic) share: the
// model listing they answer in their own shapes, and the SSE writer their
// streams go out through.

// modelEntry is one model id a compatible surface lists: a tier
// ("tier:fast", owned by agentos) or a backend/model ref (owned by the
// backend).
type modelEntry struct {
	id, owner string
}

// modelRefs lists, in a stable order, the ids the tenant may put in
// "model": the tiers it is entitled to that route somewhere it may go,
// then each entitled backend/model.
func (g *Gateway) modelRefs(ctx context.Context, a core.Auth) ([]modelEntry, error) {
	t, err := g.tenant(ctx, a.TenantID)
	if err != nil {
		return nil, err
	}
	var out []modelEntry
	for _, tier := range core.ModelTiers() {
		if allowed := t.Entitlements.ModelTiersAllowed; allowed != nil && !slices.Contains(allowed, tier) {
			continue
		}
		if slices.ContainsFunc(g.cat.tiers[tier], func(m *model) bool { return entitled(t, tier, m) }) {
			out = append(out, modelEntry{id: "tier:" + tier, owner: "agentos"})
		}
	}
	for _, m := range g.cat.order {
		if entitled(t, "", m) {
			out = append(out, modelEntry{id: m.ref, owner: m.backend})
		}
	}
	return out, nil
}

// modelRef finds id among the tenant's model ids, a bare model id
// matching its backend/model ref too; anything else is not_found.
func (g *Gateway) modelRef(ctx context.Context, a core.Auth, id string) (modelEntry, error) {
	refs, err := g.modelRefs(ctx, a)
	if err != nil {
		return modelEntry{}, err
	}
	for _, r := range refs {
		if r.id == id {
			return r, nil
		}
	}
	for _, m := range g.cat.order {
		if m.cfg.ModelID == id && slices.ContainsFunc(refs, func(r modelEntry) bool { return r.id == m.ref }) {
			return modelEntry{id: id, owner: m.backend}, nil
		}
	}
	return modelEntry{}, core.NotFound("model", id)
}

// callerModelRefs lists the model ids the request's caller may use (the
// models listings of both compatible surfaces).
func (g *Gateway) callerModelRefs(c echo.Context) ([]modelEntry, error) {
	a, err := caller(c)
	if err != nil {
		return nil, err
	}
	return g.modelRefs(c.Request().Context(), a)
}

// callerModelRef is the model id of the path ({id}, which may hold a
// '/') if the request's caller may use it; not_found otherwise.
func (g *Gateway) callerModelRef(c echo.Context) (modelEntry, error) {
	a, err := caller(c)
	if err != nil {
		return modelEntry{}, err
	}
	return g.modelRef(c.Request().Context(), a, pathID(c))
}

// pathID is the model id of a /models/{id} route: the rest of the path,
// unescaped (SDKs escape the '/' of backend/model refs, or not).
func pathID(c echo.Context) string {
	id := c.Param("*")
	if u, err := url.PathUnescape(id); err == nil {
		return u
	}
	return id
}

// sseWriter writes one server-sent event stream. The status and headers go
// out when the stream opens, which a surface does at the first streamed
// text so the governance headers can describe the answer.
type sseWriter struct {
	w      *echo.Response
	opened bool
}

func newSSE(c echo.Context) *sseWriter { return &sseWriter{w: c.Response()} }

func (s *sseWriter) header() http.Header { return s.w.Header() }

func (s *sseWriter) open() {
	h := s.w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	s.w.WriteHeader(http.StatusOK)
	s.opened = true
}

// event writes "event: name" (unless name is "") and v as its data line.
func (s *sseWriter) event(name string, v any) error {
	buf := jsonBufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer jsonBufPool.Put(buf)
	if name != "" {
		buf.WriteString("event: ")
		buf.WriteString(name)
		buf.WriteByte('\n')
	}
	buf.WriteString("data: ")
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		return err
	}
	buf.WriteByte('\n')
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		return err
	}
	s.w.Flush()
	return nil
}

func (s *sseWriter) data(v any) error { return s.event("", v) }

func (s *sseWriter) raw(text string) {
	_, _ = s.w.Write([]byte(text))
	s.w.Flush()
}

// openAnswer opens a streamed answer once the route and policy are known.
type openAnswer func(requestID string, route core.Route, policy core.PolicyOutcome) error

// textDeltas is the OnDelta of a streamed chat answer on a compatible
// surface: the first delta opens the answer, then every delta sends its
// text.
func textDeltas(open openAnswer, text func(string) error) func(core.ModelDelta) error {
	return func(d core.ModelDelta) error {
		if d.First {
			if err := open(d.RequestID, d.Route, d.Policy); err != nil {
				return err
			}
		}
		return text(d.Text)
	}
}

// withText opens the answer and then its text block (the Anthropic and
// Responses streams carry text in a block of its own).
func withText(open openAnswer, openText func() error) openAnswer {
	return func(requestID string, route core.Route, policy core.PolicyOutcome) error {
		if err := open(requestID, route, policy); err != nil {
			return err
		}
		return openText()
	}
}
