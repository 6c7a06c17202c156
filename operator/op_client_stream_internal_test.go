package operator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// streamEvents reads a run's stream to its terminal event and no further,
// whatever the framing (comments, CRLF, data split over lines), and
// fails clearly when the stream ends first or carries something that is
// not an event envelope.
func TestStreamEvents_ToTheTerminalEvent(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		hold  bool // keep the stream open after body
		types []string
		err   string // substring of the error; "" none
	}{
		{name: "stops at the terminal event", hold: true,
			body: ": ping\n\nid: 1\r\nevent: agentos.event\r\ndata: {\"event\":{\"sequence\":1,\"type\":\"agentos.run.created\"}}\r\n\r\n" +
				"data: {\"event\":\ndata: {\"sequence\":2,\"type\":\"agentos.run.completed\"}}\n\n",
			types: []string{"agentos.run.created", "agentos.run.completed"}},
		{name: "a last event without its blank line",
			body:  "data: {\"event\":{\"sequence\":1,\"type\":\"agentos.run.failed\"}}",
			types: []string{"agentos.run.failed"}},
		{name: "ends before a terminal event",
			body:  "data: {\"event\":{\"sequence\":1,\"type\":\"agentos.run.created\"}}\n\n",
			types: []string{"agentos.run.created"}, err: "stream ended before a terminal event"},
		{name: "data that is not an envelope", body: "data: not json\n\n", err: "decode event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer k" || r.Header.Get("Accept") != "text/event-stream" {
					http.Error(w, "headers", http.StatusBadRequest)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = w.Write([]byte(tt.body))
				w.(http.Flusher).Flush()
				if tt.hold {
					<-r.Context().Done()
				}
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var seen []string
			evs, err := newAPIClient("k").streamEvents(ctx, srv.URL, func(e sseEvent) { seen = append(seen, e.Type) })
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			var types []string
			for _, e := range evs {
				types = append(types, e.Type)
			}
			if strings.Join(types, ",") != strings.Join(tt.types, ",") || strings.Join(seen, ",") != strings.Join(tt.types, ",") {
				t.Fatalf("events %v (fn saw %v), want %v", types, seen, tt.types)
			}
		})
	}
}
