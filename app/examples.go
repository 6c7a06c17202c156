package app

import "github.com/labstack/echo/v4"

// mountExamples serves /examples/ once the examples package lands.
func mountExamples(e *echo.Echo, stack string) {}
