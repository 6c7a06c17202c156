package stackb_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
)

// fakeOpenAI is a local OpenAI-compatible server: it answers chat with
// "upstream: <last message>" and embeddings with a 3-dim vector.
type fakeOpenAI struct {
	srv   *httptest.Server
	calls atomic.Int64
	fail  atomic.Bool // answer 500
}

func newFakeOpenAI(t testing.TB) *fakeOpenAI {
	f := &fakeOpenAI{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		if f.fail.Load() {
			http.Error(w, `{"error":{"message":"boom"}}`, http.StatusInternalServerError)
			return
		}
		var req struct {
			Model    string `json:"model"`
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
			Tools []struct {
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			} `json:"tools"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":{"message":"bad json"}}`, http.StatusBadRequest)
			return
		}
		last := req.Messages[len(req.Messages)-1].Content
		msg := map[string]any{"role": "assistant", "content": "upstream: " + last}
		finish := "stop"
		if len(req.Tools) > 0 && last != "no tools" {
			msg = map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{
				"id": "call_up1", "type": "function", "function": map[string]any{"name": req.Tools[0].Function.Name, "arguments": `{"q":"x"}`}}}}
			finish = "tool_calls"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
			"usage":   map[string]int{"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}})
	})
	mux.HandleFunc("POST /v1/embeddings", func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		var req struct {
			Input []string `json:"input"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		data := []any{}
		for i := range req.Input {
			data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": []float64{1, 0, 0}})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data, "usage": map[string]int{"prompt_tokens": 2, "total_tokens": 2}})
	})
	f.srv = testkit.Serve(t, mux, nil)
	return f
}

// newFakeOpenAIAt starts a fake upstream on the address of url (a restart).
func newFakeOpenAIAt(t testing.TB, url string) *fakeOpenAI {
	t.Helper()
	f := newFakeOpenAI(t)
	f.srv.Close()
	f.srv = testkit.ServeAt(t, strings.TrimPrefix(url, "http://"), f.srv.Config.Handler)
	return f
}

type nopTenants struct{}

func (nopTenants) CreateTenant(context.Context, core.Tenant, *core.AuditRecord) error { return nil }
func (nopTenants) GetTenant(_ context.Context, id string) (core.Tenant, error) {
	return core.Tenant{}, core.NotFound("tenant", id)
}
func (nopTenants) ListTenants(context.Context) ([]core.Tenant, error) { return nil, nil }
func (nopTenants) UpdateTenant(context.Context, string, func(*core.Tenant) error, *core.AuditRecord) (core.Tenant, error) {
	return core.Tenant{}, nil
}

type nopUsage struct{}

func (nopUsage) GetUsage(_ context.Context, tenantID, window, period string) (core.UsageRecord, error) {
	return core.UsageRecord{}, nil
}
func (nopUsage) ListUsage(context.Context, string, int) ([]core.UsageRecord, error) { return nil, nil }
func (nopUsage) RecordUsage(context.Context, []core.UsageDelta, []core.ModelReplay) error {
	return nil
}
func (nopUsage) GetReplay(_ context.Context, _, id string) (core.ModelReplay, error) {
	return core.ModelReplay{}, core.NotFound("request", id)
}
