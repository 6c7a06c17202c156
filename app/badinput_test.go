package app_test

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentos/agentos/app"
)

func TestNode_BadInputs(t *testing.T) {
	n := MustStartNode(t)
	key := n.creds.TenantAdmin.APIKey
	admin := n.creds.PlatformAdmin.APIKey
	runs := n.URL(app.StackA) + "/v1/agents/agt_sample_echo_v1/runs"
	invoke := n.URL(app.StackB) + "/v1/models:invoke"
	auth := `{"tenant_id":"tnt_demo","principal":{"principal_id":"usr_tnt_demo_admin","principal_type":"user"},"scopes":[],"policy_context":{"data_classification":"internal","region":"local","purpose":"test"}}`
	big := `{"input":{"type":"text","text":"` + strings.Repeat("a", 2<<20) + `"},"idempotency_key":"k"}`
	cases := []struct {
		name, url, key, ctype, body string
		status                      int
		code, field                 string
	}{
		{"malformed JSON", runs, key, "application/json", `{"input":`, 400, "invalid_request", ""},
		{"wrong type", runs, key, "application/json", `{"input":{"type":"text","text":42},"idempotency_key":"k1"}`, 400, "invalid_request", "input.text"},
		{"unknown enum", runs, key, "application/json", `{"input":{"type":"text","text":"x"},"run_options":{"priority":"urgent"},"idempotency_key":"k2"}`, 400, "invalid_request", "run_options.priority"},
		{"unknown input type", runs, key, "application/json", `{"input":{"type":"image","text":"x"},"idempotency_key":"k3"}`, 400, "invalid_request", "input.type"},
		{"missing required", runs, key, "application/json", `{"idempotency_key":"k4"}`, 400, "invalid_request", "input"},
		{"zero max_steps", runs, key, "application/json", `{"input":{"type":"text","text":"x"},"run_options":{"max_steps":0},"idempotency_key":"k5"}`, 400, "invalid_request", "run_options.max_steps"},
		{"missing idempotency key", runs, key, "application/json", `{"input":{"type":"text","text":"x"}}`, 400, "invalid_request", "idempotency_key"},
		{"2 MiB body", runs, key, "application/json", big, 413, "invalid_request", ""},
		{"text/plain", runs, key, "text/plain", `hello`, 415, "invalid_request", ""},
		{"unknown agent", n.URL(app.StackA) + "/v1/agents/agt_nope/runs", key, "application/json", `{"input":{"type":"text","text":"x"},"idempotency_key":"k6"}`, 404, "not_found", ""},
		{"closed object extra field", invoke, key, "application/json", `{"auth":` + auth + `,"request":{"request_id":"req_1","operation":"chat","model_ref":"tier:fast","input":{"messages":[{"role":"user","content":"hi"}]},"generation":{"temperature":0.1,"seed":7}}}`, 400, "invalid_request", "request.generation"},
		{"unknown role", invoke, key, "application/json", `{"auth":` + auth + `,"request":{"request_id":"req_2","operation":"chat","model_ref":"tier:fast","input":{"messages":[{"role":"robot","content":"hi"}]}}}`, 400, "invalid_request", "request.input.messages[0].role"},
		{"tenant create wrong type", n.URL(app.StackA) + "/v1/admin/tenants", admin, "application/json", `{"tenant_create":{"tenant_id":"tnt_q","name":7}}`, 400, "invalid_request", "tenant_create.name"},
		{"unknown route", n.URL(app.StackA) + "/v1/nothing", key, "application/json", `{}`, 404, "not_found", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", tc.url, tc.key, tc.body, "Content-Type", tc.ctype)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			body := r.JSON(t)
			e := body["error"].(map[string]any)
			if e["code"] != tc.code {
				t.Fatalf("code %v, want %s", e["code"], tc.code)
			}
			if tc.field != "" {
				d, _ := e["details"].(map[string]any)
				if f, _ := d["field"].(string); !strings.HasPrefix(f, tc.field) {
					t.Fatalf("details.field %q, want %q: %s", f, tc.field, r.Body)
				}
			}
			if body["correlation_id"] == nil || e["retryable"] != false {
				t.Fatalf("error object incomplete: %s", r.Body)
			}
		})
	}
}

// FuzzRunCreateDecoding throws arbitrary bodies at run create, in memory:
// whatever the bytes, the answer is a contract status, never a 500.
func FuzzRunCreateDecoding(f *testing.F) {
	n := MustStartNode(f)
	h := n.Handler(app.StackA)
	key := n.creds.TenantAdmin.APIKey
	for _, seed := range []string{
		`{"input":{"type":"text","text":"hi"},"idempotency_key":"f1"}`,
		`{"input":{"type":"text","text":"hi"},"run_options":{"timeout_ms":-1,"max_steps":"x"}}`,
		`{"input":null}`, `[]`, `null`, `{"input":{"type":"text","text":"\u0000"}}`, `{{{`, ``,
		`{"input":{"type":"text","text":"x"},"tooling":{"tool_allowlist":[1,2]},"idempotency_key":"f2"}`,
		`{"input":{"type":"text","text":"x"},"context":{"labels":{"a":1}},"idempotency_key":"f3"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/v1/agents/agt_sample_echo_v1/runs", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		req.RemoteAddr = "127.0.0.1:1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 201, 400, 409, 413, 429:
		default:
			t.Fatalf("body %q answered %d: %s", body, rec.Code, rec.Body.String())
		}
	})
}
