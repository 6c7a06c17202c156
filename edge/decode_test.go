package edge_test

import (
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
