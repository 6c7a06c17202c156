// Package fakeup runs fake model upstreams on real loopback HTTP servers
// for tests and benchmarks: one speaking OpenAI's chat completions and
// embeddings, one speaking Anthropic's Messages API, both able to stream.
//
// Both behave alike and deterministically: with tools offered and no tool
// result in the conversation they call the first tool with {"text": <last
// user text>}; otherwise they answer "<Name>: <last user text>" plus one
// line "tool result: <content>" per tool result. Tokens are ceil(bytes/4).
// The model id picks a failure: "fail-500", "fail-400", "fail-429", or
// "hang" (answers nothing until the caller gives up).
package fakeup

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// Server is one fake upstream.
type Server struct {
	// URL is the base URL to configure: http://127.0.0.1:port/v1.
	URL string
	// Name prefixes answers ("openai-fake: hi").
	Name string
	// Key, when set, is the API key the upstream demands.
	Key   string
	Calls atomic.Int64

	srv  *http.Server
	ln   net.Listener
	mu   sync.Mutex
	last []byte
}

// LastBody is the last request body received.
func (s *Server) LastBody() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Close stops the server.
func (s *Server) Close() { _ = s.srv.Close() }

// routes maps a request pattern to the Server method that answers it.
type routes map[string]func(*Server, http.ResponseWriter, *http.Request)

// start serves routes on 127.0.0.1:0 as the fake upstream name.
func start(name string, rs routes) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Name: name, ln: ln, URL: "http://" + ln.Addr().String() + "/v1"}
	mux := http.NewServeMux()
	for pattern, h := range rs {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { h(s, w, r) })
	}
	s.srv = &http.Server{Handler: mux}
	go s.srv.Serve(ln)
	return s, nil
}

func tokens(s string) int { return (len(s) + 3) / 4 }

// turn is the fake's view of a conversation.
type turn struct {
	lastUser    string
	toolResults []string
	inTokens    int
}

// answer decides the reply: a tool call (name, args JSON) or text.
func (s *Server) answer(t turn, tools []string) (tool, args, text string) {
	if len(tools) > 0 && len(t.toolResults) == 0 {
		raw, _ := json.Marshal(map[string]string{"text": t.lastUser})
		return tools[0], string(raw), ""
	}
	var b strings.Builder
	b.WriteString(s.Name + ": " + t.lastUser)
	for _, r := range t.toolResults {
		b.WriteString("\ntool result: " + r)
	}
	return "", "", b.String()
}

// failure answers the failure a model id asks for; it reports whether it
// did.
func failure(w http.ResponseWriter, r *http.Request, model string, body func(typ, msg string) string) bool {
	status := 0
	switch model {
	case "fail-500":
		status = 500
	case "fail-400":
		status = 400
	case "fail-429":
		w.Header().Set("Retry-After", "1")
		status = 429
	case "hang":
		<-r.Context().Done()
		return true
	}
	if status == 0 {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body("error", fmt.Sprintf("fake failure %d", status)))
	return true
}

func (s *Server) record(r *http.Request, v any) ([]byte, error) {
	s.Calls.Add(1)
	var raw json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.last = raw
	s.mu.Unlock()
	return raw, json.Unmarshal(raw, v)
}

func sse(w http.ResponseWriter) func(event string, v any) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	return func(event string, v any) {
		if event != "" {
			fmt.Fprintf(w, "event: %s\n", event)
		}
		switch x := v.(type) {
		case string:
			fmt.Fprintf(w, "data: %s\n\n", x)
		default:
			raw, _ := json.Marshal(v)
			fmt.Fprintf(w, "data: %s\n\n", raw)
		}
		if fl != nil {
			fl.Flush()
		}
	}
}
