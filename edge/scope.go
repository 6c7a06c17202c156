package edge

import (
	"github.com/agentos/agentos/core"
	"github.com/labstack/echo/v4"
)

// RequireScope is route middleware: the request's caller (set by
// Authenticate) must hold at least one of scopes, directly or through a
// role; otherwise 403 forbidden naming the first scope. Routes declare
// their scope with it, so handlers do not check again; services keep
// their own check for the callers that reach them without HTTP (A2A, MCP,
// the console).
func RequireScope(scopes ...string) echo.MiddlewareFunc {
	if len(scopes) == 0 {
		panic("edge.RequireScope: no scope")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			a, _ := core.AuthFrom(c.Request().Context())
			if err := a.RequireAny(scopes...); err != nil {
				return err
			}
			return next(c)
		}
	}
}
