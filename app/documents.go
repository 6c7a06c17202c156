package app

import (
	"net/http"

	"github.com/agentos/agentos/openapi"
	"github.com/labstack/echo/v4"
)

// mountDocuments serves the port's OpenAPI document and golden examples
// (§1.5) from the embedded copies.
func mountDocuments(e *echo.Echo, stack string) {
	e.GET("/openapi.yaml", func(c echo.Context) error {
		doc, err := openapi.Document(stack)
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, "application/yaml", doc)
	})
	e.GET("/openapi.json", func(c echo.Context) error {
		doc, err := openapi.DocumentJSON(stack)
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, "application/json", doc)
	})
	mountExamples(e, stack)
}
