package edge_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
	"github.com/labstack/echo/v4"
)

func TestDecodeJSON_OneDecoderTwoStrictnesses(t *testing.T) {
	type inner struct {
		Text string `json:"text"`
	}
	type body struct {
		Input inner `json:"input"`
		N     int   `json:"n"`
	}
	cases := []struct {
		name   string
		body   string
		strict bool
		field  string // "" with ok: no error
		ok     bool
	}{
		{"open object passes unknown fields", `{"input":{"text":"x","extra":1},"other":true}`, false, "", true},
		{"strict object refuses an unknown field", `{"input":{"text":"x"},"other":true}`, true, "other", false},
		{"strict object refuses a nested unknown field", `{"input":{"text":"x","extra":1}}`, true, "extra", false},
		{"wrong type names its path", `{"input":{"text":5}}`, false, "input.text", false},
		{"wrong type at the top", `[1,2]`, false, "", false},
		{"empty body", "  ", false, "", false},
		{"malformed", `{"input":`, false, "", false},
		{"trailing data", `{"n":1} {"n":2}`, false, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := echo.New().NewContext(httptest.NewRequest("POST", "/", strings.NewReader(tc.body)), httptest.NewRecorder())
			var b body
			var err error
			if tc.strict {
				err = edge.DecodeStrictJSON(c, &b)
			} else {
				err = edge.DecodeJSON(c, &b)
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			ce := core.AsError(err)
			if ce.Code != core.CodeInvalidRequest || ce.HTTPStatus() != 400 || ce.Message == "" {
				t.Fatalf("want invalid_request 400, got %v", err)
			}
			if got, _ := ce.Details["field"].(string); got != tc.field {
				t.Fatalf("field %q, want %q (%v)", got, tc.field, err)
			}
		})
	}
}

func envelopeCtx(body string) echo.Context {
	return echo.New().NewContext(httptest.NewRequest("POST", "/", strings.NewReader(body)), httptest.NewRecorder())
}

// An envelope {"<key>": {...}} decodes to its object with the errors a
// handler-declared wrapper struct gave: the key missing or null is
// "<key> is required", a wrong type names its whole path, and the strict
// form refuses unknown fields at either level.
func TestDecodeEnvelope_ErrorsAsAWrapperStruct(t *testing.T) {
	type agent struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
	}
	cases := []struct {
		name    string
		body    string
		strict  bool
		field   string // details.field of the invalid_request
		message string // "" when only the field is checked
	}{
		{"key missing", `{"other":{}}`, false, "agent", "agent is required"},
		{"key null", `{"agent":null}`, false, "agent", "agent is required"},
		{"key missing, strict", `{}`, true, "agent", "agent is required"},
		{"wrong type inside", `{"agent":{"version":"x"}}`, false, "agent.version", ""},
		{"wrong type of the object", `{"agent":5}`, false, "agent", ""},
		{"strict: unknown top-level field", `{"agent":{},"extra":1}`, true, "extra", "unknown field extra"},
		{"strict: unknown field inside", `{"agent":{"nope":1}}`, true, "nope", "unknown field nope"},
		{"empty body", ``, false, "", "a JSON body is required"},
		{"trailing data", `{"agent":{}} 1`, false, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			decode := edge.DecodeEnvelope[agent]
			if tc.strict {
				decode = edge.DecodeStrictEnvelope[agent]
			}
			_, err := decode(envelopeCtx(tc.body), "agent")
			ce := core.AsError(err)
			if err == nil || ce.Code != core.CodeInvalidRequest || ce.HTTPStatus() != 400 {
				t.Fatalf("want invalid_request 400, got %v", err)
			}
			if got, _ := ce.Details["field"].(string); got != tc.field {
				t.Fatalf("field %q, want %q (%v)", got, tc.field, err)
			}
			if tc.message != "" && ce.Message != tc.message {
				t.Fatalf("message %q, want %q", ce.Message, tc.message)
			}
		})
	}
}

func TestDecodeEnvelope_ReturnsTheObject(t *testing.T) {
	type agent struct {
		Name string `json:"name"`
	}
	got, err := edge.DecodeEnvelope[agent](envelopeCtx(`{"agent":{"name":"a","extra":true},"other":1}`), "agent")
	if err != nil || got.Name != "a" {
		t.Fatalf("open envelope: %+v, %v", got, err)
	}
	// Same type, another key: each (type, key) has its own wrapper.
	got, err = edge.DecodeStrictEnvelope[agent](envelopeCtx(`{"helper":{"name":"h"}}`), "helper")
	if err != nil || got.Name != "h" {
		t.Fatalf("strict envelope under another key: %+v, %v", got, err)
	}
	// A map object: {} is an empty patch, not a missing one.
	patch, err := edge.DecodeStrictEnvelope[map[string]json.RawMessage](envelopeCtx(`{"tenant_update":{}}`), "tenant_update")
	if err != nil || patch == nil || len(patch) != 0 {
		t.Fatalf("empty map envelope: %v, %v", patch, err)
	}
	if _, err := edge.DecodeStrictEnvelope[map[string]json.RawMessage](envelopeCtx(`{"tenant_update":null}`), "tenant_update"); core.ErrorCode(err) != core.CodeInvalidRequest {
		t.Fatalf("null map envelope: %v, want invalid_request", err)
	}
}
