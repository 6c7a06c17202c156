package stackb_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/openapi"
)

// TestHTTP_Routes drives every Stack B route over real HTTP and checks
// each answer's status, a fragment of its body, and that it validates
// against the embedded OpenAPI document (openapi.StackB).
func TestHTTP_Routes(t *testing.T) {
	e := newEnv(t, envOpt{})
	if err := e.st.CreateTenant(t.Context(), demoTenant("tnt_other"), nil); err != nil {
		t.Fatal(err)
	}
	url := e.serve(t)
	v, err := openapi.NewValidator(openapi.StackB)
	if err != nil {
		t.Fatalf("openapi validator: %v", err)
	}
	userBody := `"auth":{"tenant_id":"tnt_demo","principal":{"principal_id":"usr_test","principal_type":"user"},"scopes":["models:invoke"],"policy_context":{"data_classification":"internal","region":"local","purpose":"test"}}`
	otherBody := strings.Replace(userBody, "tnt_demo", "tnt_other", 1)
	chat := `"request":{"request_id":"req_http_1","operation":"chat","model_ref":"tier:fast","input":{"messages":[{"role":"user","content":"hi"}]}}`
	tests := []struct {
		name, method, path, bearer, body string
		headers                          map[string]string
		status                           int
		contains                         string
	}{
		{"health", "GET", "/v1/health", "user", "", nil, 200, `"service":"stack-b"`},
		{"models", "GET", "/v1/models", "user", "", nil, 200, `"model_id":"echo-1"`},
		{"invoke chat", "POST", "/v1/models:invoke", "user", "{" + userBody + "," + chat + `,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`, nil, 200, `"content":"echo: hi"`},
		{"invoke replay", "POST", "/v1/models:invoke", "user", "{" + userBody + "," + chat + "}", nil, 200, `"request_id":"req_http_1"`},
		{"invoke embed", "POST", "/v1/models:invoke", "user", "{" + userBody + `,"request":{"operation":"embed","model_ref":"hash-embed-1","input":{"texts":["a b"],"encoding_format":"float"}}}`, nil, 200, `"type":"embedding"`},
		{"invoke without body auth", "POST", "/v1/models:invoke", "user", "{" + chat + "}", nil, 200, `"status":"ok"`},
		{"closed top level", "POST", "/v1/models:invoke", "user", "{" + chat + `,"extra":1}`, nil, 400, `"field":"extra"`},
		{"closed generation", "POST", "/v1/models:invoke", "user", `{"request":{"operation":"chat","model_ref":"tier:fast","input":{"messages":[{"role":"user","content":"x"}]},"generation":{"seed":1}}}`, nil, 400, `"field":"request.generation.seed"`},
		{"closed chat input", "POST", "/v1/models:invoke", "user", `{"request":{"operation":"chat","model_ref":"tier:fast","input":{"messages":[{"role":"user","content":"x"}],"texts":[]}}}`, nil, 400, `"field":"request.input.texts"`},
		{"bad role", "POST", "/v1/models:invoke", "user", `{"request":{"operation":"chat","model_ref":"tier:fast","input":{"messages":[{"role":"bot","content":"x"}]}}}`, nil, 400, `request.input.messages[0].role`},
		{"other tenant in body", "POST", "/v1/models:invoke", "user", "{" + otherBody + "," + chat + "}", nil, 403, `"code":"forbidden"`},
		{"act as other tenant", "POST", "/v1/models:invoke", "service", "{" + otherBody + `,"request":{"operation":"chat","model_ref":"tier:fast","input":{"messages":[{"role":"user","content":"as other"}]}}}`, nil, 200, `"content":"echo: as other"`},
		{"policy blocked", "POST", "/v1/models:invoke", "user", `{"request":{"operation":"chat","model_ref":"tier:fast","input":{"messages":[{"role":"user","content":"AKIAIOSFODNN7EXAMPLE"}]}}}`, nil, 403, `"code":"policy_blocked"`},
		{"unknown model", "POST", "/v1/models:invoke", "user", `{"request":{"operation":"chat","model_ref":"nope","input":{"messages":[{"role":"user","content":"x"}]}}}`, nil, 400, `"field":"request.model_ref"`},
		{"policy check", "POST", "/v1/policy:check", "user", "{" + userBody + `,"policy_check":{"request_id":"req_p","content":{"type":"text","text":"ssn 123-45-6789"},"ruleset":"pol_default"}}`, nil, 200, `"kind":"national_id","start":4,"end":15`},
		{"policy check blocked is 200", "POST", "/v1/policy:check", "user", `{"policy_check":{"content":{"type":"text","text":"sk-abcdefghijklmnopqrstuvwxyz"}}}`, nil, 200, `"decision":"blocked"`},
		{"policy check unknown ruleset", "POST", "/v1/policy:check", "user", `{"policy_check":{"content":{"type":"text","text":"x"},"ruleset":"pol_nope"}}`, nil, 400, `"field":"policy_check.ruleset"`},
		{"policy check closed", "POST", "/v1/policy:check", "user", `{"policy_check":{"content":{"type":"text","text":"x","lang":"en"}}}`, nil, 400, `"field":"policy_check.content.lang"`},
		{"usage", "GET", "/v1/usage?window=day", "user", "", nil, 200, `"window":"day"`},
		{"usage bad window", "GET", "/v1/usage?window=week", "user", "", nil, 400, `"field":"window"`},
		{"openai chat", "POST", "/v1/chat/completions", "user", `{"model":"tier:fast","messages":[{"role":"user","content":"yo"}]}`, nil, 200, `"object":"chat.completion"`},
		{"openai chat blocked", "POST", "/v1/chat/completions", "user", `{"model":"tier:fast","messages":[{"role":"user","content":"-----BEGIN PRIVATE KEY-----"}]}`, nil, 403, `"code":"policy_blocked"`},
		{"openai embeddings", "POST", "/v1/embeddings", "user", `{"model":"hash-embed-1","input":"hello"}`, nil, 200, `"object":"embedding"`},
		{"openai embeddings base64", "POST", "/v1/embeddings", "user", `{"model":"hash-embed-1","input":["a"],"encoding_format":"base64"}`, nil, 200, `"embedding":"`},
		{"no credential", "GET", "/v1/models", "", "", nil, 401, `"code":"unauthorized"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.body != "" {
				body = tt.body
			}
			var hdr []string
			if tt.name == "act as other tenant" {
				hdr = []string{"X-Tenant-Id", "tnt_demo"}
			}
			r := testkit.Do(t, tt.method, url+tt.path, tt.bearer, body, hdr...)
			raw := r.Body
			if r.Status != tt.status || !strings.Contains(string(raw), tt.contains) {
				t.Fatalf("%s %s = %d %s; want %d containing %s", tt.method, tt.path, r.Status, raw, tt.status, tt.contains)
			}
			if tt.status == 401 {
				return // answered by the test's stand-in auth, not by Stack B
			}
			req, _ := http.NewRequest(tt.method, url+tt.path, nil)
			resp := &http.Response{StatusCode: r.Status, Header: r.Header, Body: io.NopCloser(bytes.NewReader(raw))}
			if err := v.ValidateResponse(req, resp); err != nil {
				t.Fatalf("answer does not validate against the OpenAPI: %v\n%s", err, raw)
			}
			if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") && tt.path != "/v1/chat/completions" && tt.path != "/v1/embeddings" {
				var m map[string]any
				if json.Unmarshal(raw, &m) != nil || m["correlation_id"] == "" || m["correlation_id"] == nil {
					t.Fatalf("answer has no correlation_id: %s", raw)
				}
			}
		})
	}
}

func TestHTTP_StreamEndsWithDone(t *testing.T) {
	e := newEnv(t, envOpt{})
	url := e.serve(t)
	r := testkit.Do(t, "POST", url+"/v1/chat/completions", "user",
		`{"model":"tier:fast","stream":true,"tools":[{"type":"function","function":{"name":"echo","parameters":{"type":"object"}}}],"messages":[{"role":"user","content":"x y"}]}`)
	s := string(r.Body)
	if r.Header.Get("Content-Type") != "text/event-stream" || !strings.HasSuffix(s, "data: [DONE]\n\n") {
		t.Fatalf("stream %q (%s)", s, r.Header.Get("Content-Type"))
	}
	if !strings.Contains(s, `"tool_calls":[{"index":0,"id":"call_`) || !strings.Contains(s, `"finish_reason":"tool_calls"`) {
		t.Fatalf("stream lacks delta tool_calls: %s", s)
	}
	if r.Header.Get("X-AgentOS-Route") != "builtin/echo-1" || r.Header.Get("X-AgentOS-Policy") != core.DecisionAllowed {
		t.Fatalf("governance headers %v", r.Header)
	}
}
