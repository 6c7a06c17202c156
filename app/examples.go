package app

import (
	"net/http"
	"strings"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/examples"
	"github.com/labstack/echo/v4"
)

// mountExamples serves the port's golden examples (§1.5): the index at
// /examples/ and each payload at /examples/{name}.json.
func mountExamples(e *echo.Echo, stack string) {
	index := func(c echo.Context) error {
		items := examples.Index(stack)
		if items == nil {
			items = []examples.Entry{}
		}
		return c.JSON(http.StatusOK, map[string]any{"examples": items, "correlation_id": core.CorrelationID(c.Request().Context())})
	}
	e.GET("/examples", index)
	e.GET("/examples/", index)
	e.GET("/examples/:file", func(c echo.Context) error {
		name := strings.TrimSuffix(c.Param("file"), ".json")
		for _, it := range examples.Index(stack) {
			if it.Name == name {
				if raw, ok := examples.Get(name); ok {
					return c.Blob(http.StatusOK, "application/json", raw)
				}
			}
		}
		return core.NotFound("example", name)
	})
}
