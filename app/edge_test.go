package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func TestEdge_PanicIsInternalErrorWithoutStack(t *testing.T) {
	ed := &edge{stack: StackA, log: zerolog.Nop(), failures: newFailureLimiter(100), bodyLimit: 1 << 20,
		metrics: newEdgeMetrics(prometheus.NewRegistry(), 5)}
	e := echo.New()
	e.HTTPErrorHandler = ed.errorHandler
	e.Use(ed.ids, ed.accessLog, ed.recoverPanics)
	e.GET("/boom", func(echo.Context) error { panic("secret internals at handler.go:42") })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rec.Code)
	}
	var body struct {
		Error struct {
			Code      string `json:"code"`
			Retryable bool   `json:"retryable"`
		} `json:"error"`
		CorrelationID string `json:"correlation_id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Error.Code != "internal_error" || !body.Error.Retryable || body.CorrelationID == "" {
		t.Fatalf("body %s", rec.Body)
	}
	if strings.Contains(rec.Body.String(), "handler.go") || strings.Contains(rec.Body.String(), "secret") {
		t.Fatalf("panic details leaked: %s", rec.Body)
	}
}

func TestEdge_OpenAISurfaceErrorShape(t *testing.T) {
	ed := &edge{stack: StackB, log: zerolog.Nop(), failures: newFailureLimiter(100), bodyLimit: 1 << 20,
		metrics: newEdgeMetrics(prometheus.NewRegistry(), 5)}
	e := echo.New()
	e.HTTPErrorHandler = ed.errorHandler
	e.Use(ed.ids)
	e.POST("/v1/chat/completions", func(echo.Context) error { return tooLarge(10) })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/chat/completions", nil))
	var body struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 413 || body.Error.Type != "invalid_request_error" || body.Error.Code != "invalid_request" || body.Error.Message == "" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}
