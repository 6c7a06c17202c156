package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Upstream is a minimal OpenAI-compatible server for measuring the
// gateway's own cost: it answers every chat completion at once with a fixed
// short text, so what a client sees above a direct call is what the node
// adds. It listens on loopback only.
type Upstream struct {
	srv      *http.Server
	ln       net.Listener
	served   atomic.Int64
	Delay    time.Duration
	response []byte
}

// ListenUpstream binds addr, which must be a loopback address.
func ListenUpstream(addr string) (*Upstream, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("upstream addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("upstream addr %q: only loopback addresses are served", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	u := &Upstream{ln: ln}
	u.response, _ = json.Marshal(map[string]any{
		"id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench-1",
		"choices": []map[string]any{{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": "bench answer"}}},
		"usage": map[string]int{"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10},
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", u.chat)
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"bench-1","object":"model"}]}`)
	})
	u.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return u, nil
}

// URL is the API root to put in a providers file (…/v1).
func (u *Upstream) URL() string { return "http://" + u.ln.Addr().String() + "/v1" }

// Served is how many completions were answered.
func (u *Upstream) Served() int64 { return u.served.Load() }

// Serve answers until Close.
func (u *Upstream) Serve() error {
	err := u.srv.Serve(u.ln)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

// Close stops the server.
func (u *Upstream) Close() error { return u.srv.Close() }

func (u *Upstream) chat(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Stream bool `json:"stream"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":{"message":"bad json","type":"invalid_request_error","code":"invalid_request"}}`)
		return
	}
	if u.Delay > 0 {
		time.Sleep(u.Delay)
	}
	u.served.Add(1)
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(u.response)))
		_, _ = w.Write(u.response)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, chunk := range []string{
		`{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"bench-1","choices":[{"index":0,"delta":{"role":"assistant","content":"bench "},"finish_reason":null}]}`,
		`{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"bench-1","choices":[{"index":0,"delta":{"content":"answer"},"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10}}`,
	} {
		_, _ = io.WriteString(w, "data: "+chunk+"\n\n")
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
}
