package openapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/agentos/agentos/openapi"
)

func MustValidator(tb testing.TB, stack string) *openapi.Validator {
	tb.Helper()
	v, err := openapi.NewValidator(stack)
	if err != nil {
		tb.Fatalf("NewValidator(%s): %v", stack, err)
	}
	return v
}

func TestDocuments_AreValidOpenAPI(t *testing.T) {
	for _, stack := range openapi.Stacks() {
		t.Run(stack, func(t *testing.T) {
			y, err := openapi.Document(stack)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := libopenapi.NewDocument(y)
			if err != nil {
				t.Fatal(err)
			}
			v, errs := validator.NewValidator(doc)
			if errs != nil {
				t.Fatal(errs)
			}
			if ok, verrs := v.ValidateDocument(); !ok {
				for _, e := range verrs {
					t.Errorf("%v", e)
				}
			}
			j, err := openapi.DocumentJSON(stack)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(j, &m); err != nil {
				t.Fatalf("DocumentJSON is not JSON: %v", err)
			}
			if m["openapi"] != "3.1.0" {
				t.Errorf("openapi = %v", m["openapi"])
			}
			if _, err := libopenapi.NewDocument(j); err != nil {
				t.Errorf("JSON form does not parse as OpenAPI: %v", err)
			}
		})
	}
	if _, err := openapi.Document("stack-z"); err == nil {
		t.Error("unknown stack: want error")
	}
}

func TestValidator_Operations(t *testing.T) {
	want := map[string][]string{
		openapi.StackA: {"POST /v1/agents/{agent_id}/runs createRun", "POST /v1/runs/{run_id}:cancel cancelRun",
			"GET /v1/runs/{run_id}/events streamRunEvents", "POST /v1/memory/{ns}:search searchMemory",
			"POST /v1/admin/tenants/{tenant_id}/tokens/{token_id}:rotate rotateToken", "GET /examples/{name}.json getExample"},
		openapi.StackB:     {"POST /v1/models:invoke invokeModel", "POST /v1/policy:check checkPolicy", "POST /v1/chat/completions createChatCompletion", "GET /v1/usage getUsage"},
		openapi.Federation: {"POST /v1/federation/runs:forward forwardRun", "POST /v1/federation/events:ingest ingestEvents", "DELETE /v1/federation/peers/{stack_id} deletePeer", "GET /v1/peer/info getPeerInfoAlias"},
	}
	for stack, ops := range want {
		v := MustValidator(t, stack)
		have := map[string]bool{}
		for _, o := range v.Operations() {
			have[o.Method+" "+o.Path+" "+o.OperationID] = true
		}
		for _, o := range ops {
			if !have[o] {
				t.Errorf("%s: missing %s", stack, o)
			}
		}
	}
}

func TestValidator_Match(t *testing.T) {
	v := MustValidator(t, openapi.StackA)
	cases := []struct{ method, path, want string }{
		{"POST", "/v1/runs/run_01J:cancel", "cancelRun"},
		{"GET", "/v1/runs/run_01J", "getRun"},
		{"GET", "/v1/runs/run_01J/events", "streamRunEvents"},
		{"POST", "/v1/memory/notes:search", "searchMemory"},
		{"GET", "/v1/memory/notes/k1", "getMemory"},
		{"PUT", "/v1/tools/tool.echo", "putTool"},
		{"GET", "/examples/createRun.request.json", "getExample"},
		{"GET", "/examples/", "listExamples"},
		{"GET", "/v1/nothing", ""},
		{"DELETE", "/v1/runs/run_01J", ""},
	}
	for _, c := range cases {
		op, ok := v.Match(c.method, c.path)
		if got := op.OperationID; got != c.want || ok != (c.want != "") {
			t.Errorf("Match(%s %s) = %q, %v; want %q", c.method, c.path, got, ok, c.want)
		}
	}
}

func newRequest(method, target, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

const validRun = `{"input": {"type": "text", "text": "Summarize the release notes"},
 "context": {"locale": "en-US", "labels": {"team": "growth"}},
 "tooling": {"tool_allowlist": ["tool.echo"], "tool_denymap": []},
 "run_options": {"priority": "normal", "timeout_ms": 180000, "max_steps": 30, "stream_events": true, "dry_run": false},
 "idempotency_key": "idem_01J9Z3K4M5N6P7Q8R9S0T1V2W3"}`

func TestValidateRequest(t *testing.T) {
	type scenario struct {
		name, stack, method, target, body string
		wantField                         string // "-" wants no error
		wantMsg                           string
	}
	invoke := func(request string) string {
		return `{"auth": {"tenant_id": "tnt_demo", "principal": {"principal_id": "usr_1", "principal_type": "user"},
		  "scopes": ["models:invoke"], "policy_context": {"data_classification": "internal", "region": "local", "purpose": "product_inference"}},
		  "request": ` + request + `}`
	}
	const runs = "/v1/agents/agt_sample_echo_v1/runs"
	cases := []scenario{
		{"valid run create", "stack-a", "POST", runs, validRun, "-", ""},
		{"minimal run create (key in header)", "stack-a", "POST", runs, `{"input": {"type": "text", "text": "hi"}}`, "-", ""},
		{"wrong type", "stack-a", "POST", runs, `{"input": {"type": "text", "text": 42}}`, "input.text", "must be string"},
		{"unknown enum", "stack-a", "POST", runs, `{"input": {"type": "text", "text": "hi"}, "run_options": {"priority": "urgent"}}`, "run_options.priority", "must be one of"},
		{"unknown input type", "stack-a", "POST", runs, `{"input": {"type": "image", "text": "hi"}}`, "input.type", "must be one of"},
		{"missing required", "stack-a", "POST", runs, `{"input": {"type": "text"}}`, "input.text", "is required"},
		{"missing input", "stack-a", "POST", runs, `{"idempotency_key": "k"}`, "input", "is required"},
		{"timeout below minimum", "stack-a", "POST", runs, `{"input": {"type": "text", "text": "hi"}, "run_options": {"timeout_ms": 0}}`, "run_options.timeout_ms", ""},
		{"idempotency key too long", "stack-a", "POST", runs, `{"input": {"type": "text", "text": "hi"}, "idempotency_key": "` + strings.Repeat("k", 257) + `"}`, "idempotency_key", ""},
		{"open object takes extra fields", "stack-a", "POST", runs, `{"input": {"type": "text", "text": "hi"}, "context": {"x_custom": 1}, "future_field": true}`, "-", ""},
		{"malformed JSON", "stack-a", "POST", runs, `{"input": `, "", "malformed JSON"},
		{"unknown route", "stack-a", "POST", "/v1/nowhere", `{"x": 1}`, "-", ""},
		{"query enum", "stack-a", "GET", "/v1/runs?status=sleeping", "", "status", "must be one of"},
		{"query integer", "stack-a", "GET", "/v1/runs?limit=ten", "", "limit", "must be an integer"},
		{"query ok", "stack-a", "GET", "/v1/runs?status=running&limit=10", "", "-", ""},
		{"valid invoke", "stack-b", "POST", "/v1/models:invoke", invoke(`{"request_id": "req_1", "operation": "chat", "model_ref": "tier:fast",
		  "input": {"messages": [{"role": "user", "content": "hi"}]}, "generation": {"temperature": 0.2}}`), "-", ""},
		{"closed generation rejects extra", "stack-b", "POST", "/v1/models:invoke", invoke(`{"operation": "chat", "model_ref": "tier:fast",
		  "input": {"messages": [{"role": "user", "content": "hi"}]}, "generation": {"temperature": 0.2, "seed": 7}}`), "request.generation.seed", "closed object"},
		{"generation wrong type", "stack-b", "POST", "/v1/models:invoke", invoke(`{"operation": "chat", "model_ref": "tier:fast",
		  "input": {"messages": [{"role": "user", "content": "hi"}]}, "generation": {"temperature": "hot"}}`), "request.generation.temperature", "must be number"},
		{"closed top level rejects extra", "stack-b", "POST", "/v1/models:invoke", strings.TrimSuffix(invoke(`{"operation": "chat", "model_ref": "tier:fast",
		  "input": {"messages": [{"role": "user", "content": "hi"}]}}`), "}") + `, "extra": 1}`, "extra", "closed object"},
		{"role enum in array", "stack-b", "POST", "/v1/models:invoke", invoke(`{"operation": "chat", "model_ref": "tier:fast",
		  "input": {"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]}}`), "request.input.messages[1].role", "must be one of"},
		{"embed input is closed", "stack-b", "POST", "/v1/models:invoke", invoke(`{"operation": "embed", "model_ref": "builtin/hash-embed-1",
		  "input": {"texts": ["a"], "messages": []}}`), "request.input.messages", "closed object"},
		{"valid embed", "stack-b", "POST", "/v1/models:invoke", invoke(`{"operation": "embed", "model_ref": "builtin/hash-embed-1",
		  "input": {"texts": ["a", "b"], "encoding_format": "float"}}`), "-", ""},
		{"policy check closed", "stack-b", "POST", "/v1/policy:check", `{"auth": {"tenant_id": "tnt_demo", "principal": {"principal_id": "usr_1", "principal_type": "user"},
		  "scopes": [], "policy_context": {"data_classification": "internal", "region": "local", "purpose": "p"}}, "policy_check": {"content": {"type": "text", "text": "x"}}, "traceparent": "00-x"}`, "traceparent", "closed object"},
		{"auth principal_type enum", "stack-b", "POST", "/v1/policy:check", `{"auth": {"tenant_id": "tnt_demo", "principal": {"principal_id": "usr_1", "principal_type": "robot"},
		  "scopes": [], "policy_context": {"data_classification": "internal", "region": "local", "purpose": "p"}}, "policy_check": {"content": {"type": "text", "text": "x"}}}`, "auth.principal.principal_type", "must be one of"},
		{"ingest peer form", "federation", "POST", "/v1/federation/events:ingest", `{"ingest": {"source_stack_id": "stk_b"}, "events": []}`, "-", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := MustValidator(t, c.stack)
			var r *http.Request
			if c.body == "" {
				r = httptest.NewRequest(c.method, c.target, nil)
			} else {
				r = newRequest(c.method, c.target, c.body)
			}
			fe := v.ValidateRequest(r)
			if c.wantField == "-" {
				if fe != nil {
					t.Fatalf("want no error, got %v", fe)
				}
				return
			}
			if fe == nil {
				t.Fatalf("want error at %q, got none", c.wantField)
			}
			if fe.Field != c.wantField {
				t.Errorf("field = %q, want %q (message %q)", fe.Field, c.wantField, fe.Message)
			}
			if !strings.Contains(fe.Message, c.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", fe.Message, c.wantMsg)
			}
		})
	}
}

func TestValidateRequest_RestoresBody(t *testing.T) {
	v := MustValidator(t, openapi.StackA)
	for _, body := range []string{validRun, `{"input": {"type": "text", "text": 1}}`} {
		r := newRequest("POST", "/v1/agents/agt_1/runs", body)
		_ = v.ValidateRequest(r)
		got, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != body {
			t.Errorf("handler reads %q, want %q", got, body)
		}
	}
}

func TestValidateRequest_RequiredBodyMissing(t *testing.T) {
	v := MustValidator(t, openapi.StackA)
	r := httptest.NewRequest("POST", "/v1/agents/agt_1/runs", nil)
	if fe := v.ValidateRequest(r); fe == nil || fe.Field != "" {
		t.Fatalf("want body-level error, got %v", fe)
	}
	// A body that is not JSON is the handler's 415, not a field error.
	r = httptest.NewRequest("POST", "/v1/agents/agt_1/runs", strings.NewReader("input=hi"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if fe := v.ValidateRequest(r); fe != nil {
		t.Fatalf("non-JSON body: want nil, got %v", fe)
	}
}

func TestValidateResponse(t *testing.T) {
	v := MustValidator(t, openapi.StackA)
	req := httptest.NewRequest("GET", "/v1/runs/run_1", nil)
	mk := func(status int, ct, body string) *http.Response {
		return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {ct}}, Body: io.NopCloser(strings.NewReader(body))}
	}
	good := `{"error": {"code": "not_found", "message": "run run_1 not found", "retryable": false, "details": {"run_id": "run_1"}}, "correlation_id": "corr_1"}`
	if err := v.ValidateResponse(req, mk(404, "application/json", good)); err != nil {
		t.Errorf("valid error answer: %v", err)
	}
	extra := `{"error": {"code": "not_found", "message": "x", "retryable": false, "stack": "boom"}, "correlation_id": "corr_1"}`
	if err := v.ValidateResponse(req, mk(404, "application/json", extra)); err == nil || !strings.Contains(err.Error(), "error.stack") {
		t.Errorf("closed error object: want error naming error.stack, got %v", err)
	}
	if err := v.ValidateResponse(req, mk(418, "application/json", good)); err == nil {
		t.Error("undocumented status: want error")
	}
	if err := v.ValidateResponse(req, mk(404, "text/html", "<p>")); err == nil {
		t.Error("undocumented media type: want error")
	}
}

func BenchmarkValidateRequest(b *testing.B) {
	v := MustValidator(b, openapi.StackA)
	body := []byte(validRun)
	r := newRequest("POST", "/v1/agents/agt_sample_echo_v1/runs", "")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		r.ContentLength = int64(len(body))
		if fe := v.ValidateRequest(r); fe != nil {
			b.Fatal(fe)
		}
	}
}

func BenchmarkValidateRequest_NoBody(b *testing.B) {
	v := MustValidator(b, openapi.StackA)
	r := httptest.NewRequest("GET", "/v1/runs/run_01J/events", nil)
	b.ReportAllocs()
	for b.Loop() {
		if fe := v.ValidateRequest(r); fe != nil {
			b.Fatal(fe)
		}
	}
}
