package edge_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentos/agentos/edge"
	"github.com/agentos/agentos/stackb"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func TestEdge_PanicIsInternalErrorWithoutStack(t *testing.T) {
	ed := &edge.Edge{Stack: "stack-a", Log: zerolog.Nop(), Failures: edge.NewFailureLimiter(100), BodyLimit: 1 << 20,
		Metrics: edge.NewMetrics(prometheus.NewRegistry(), 5)}
	e := echo.New()
	e.HTTPErrorHandler = ed.ErrorHandler
	e.Use(ed.IDs, ed.AccessLog, ed.RecoverPanics)
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
	ed := &edge.Edge{Stack: "stack-b", Log: zerolog.Nop(), Failures: edge.NewFailureLimiter(100), BodyLimit: 10,
		Metrics: edge.NewMetrics(prometheus.NewRegistry(), 5), CompatError: stackb.CompatError}
	e := echo.New()
	e.HTTPErrorHandler = ed.ErrorHandler
	e.Use(ed.IDs)
	e.POST("/v1/chat/completions", func(echo.Context) error { return echo.ErrStatusRequestEntityTooLarge })
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
