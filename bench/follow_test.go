package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// follow names a run stream's outcome by its terminal event, reading
// through comments and any line ends, and says when the stream ends
// first or breaks its bound.
func TestRuns_FollowNamesTheOutcome(t *testing.T) {
	created := "data: {\"event\":{\"sequence\":1,\"type\":\"agentos.run.created\"}}\n\n"
	tests := []struct{ name, body, code string }{
		{"completed", ": ping\n\n" + created + "id: 2\nevent: agentos.event\ndata: {\"event\":{\"type\":\"agentos.run.completed\"}}\n\n", "ok"},
		{"failed, CRLF", "data: {\"event\":{\"type\":\"agentos.run.failed\"}}\r\n\r\n", "run failed"},
		{"canceled, CR", "data: {\"event\":\rdata: {\"type\":\"agentos.run.canceled\"}}\r\r", "run canceled"},
		{"a terminal event without its blank line", created + "data: {\"event\":{\"type\":\"agentos.run.completed\"}}", "ok"},
		{"ends before a terminal event", created, "stream ended early"},
		{"a line over the bound", created + "data: " + strings.Repeat("x", followEventLimit) + "\n\n", "transport"},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte(tt.body))
		}))
		r := &Runs{Client: NewClient(1), APIKey: "k"}
		if got := r.follow(context.Background(), srv.URL); got != tt.code {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.code)
		}
		srv.Close()
	}
}
