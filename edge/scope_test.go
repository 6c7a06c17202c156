package edge_test

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
	"github.com/labstack/echo/v4"
)

func TestRequireScope_RouteRefusesWithoutAnyOfItsScopes(t *testing.T) {
	ed := &edge.Edge{}
	e := echo.New()
	e.HTTPErrorHandler = ed.ErrorHandler
	var who core.Auth
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.SetRequest(c.Request().WithContext(core.WithAuth(c.Request().Context(), who)))
			return next(c)
		}
	})
	reached := 0
	e.GET("/x", func(c echo.Context) error { reached++; return c.NoContent(204) },
		edge.RequireScope(core.ScopeAgentsRead, core.ScopeToolsWrite))
	cases := []struct {
		name string
		auth core.Auth
		want int
	}{
		{"first scope", core.Auth{TenantID: "t", Scopes: []string{core.ScopeAgentsRead}}, 204},
		{"second scope", core.Auth{TenantID: "t", Scopes: []string{core.ScopeToolsWrite}}, 204},
		{"through a role", core.Auth{TenantID: "t", Roles: []string{core.RoleTenantAdmin}}, 204},
		{"another scope only", core.Auth{TenantID: "t", Scopes: []string{core.ScopeRunsRead}}, 403},
		{"no scope", core.Auth{TenantID: "t"}, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			who, reached = tc.auth, 0
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == 403 {
				var body struct {
					Error struct {
						Code    string         `json:"code"`
						Details map[string]any `json:"details"`
					} `json:"error"`
				}
				_ = json.Unmarshal(rec.Body.Bytes(), &body)
				if body.Error.Code != core.CodeForbidden || body.Error.Details["scope"] != core.ScopeAgentsRead || reached != 0 {
					t.Fatalf("want forbidden naming %s with the handler not reached, got %s (reached %d)", core.ScopeAgentsRead, rec.Body, reached)
				}
			}
		})
	}
}
