package stackb_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/internal/testkit"
)

// streamingUpstream speaks OpenAI's streaming wire format: it sends the
// first piece, waits for release, then the rest (or drops the connection
// when cut is set).
func streamingUpstream(t *testing.T, release <-chan struct{}, cut bool) *httptest.Server {
	return testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(readAll(r), `"stream":true`) {
			t.Errorf("upstream was not asked to stream")
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		chunk := func(s string) {
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":%q}}]}\n\n", s)
			fl.Flush()
		}
		chunk("Hel")
		select {
		case <-release:
		case <-time.After(5 * time.Second):
			return
		}
		if cut {
			return // no [DONE]: the stream breaks mid-answer
		}
		chunk("lo")
		fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
		fl.Flush()
	}), nil)
}

func readAll(r *http.Request) string {
	var b strings.Builder
	sc := bufio.NewScanner(r.Body)
	for sc.Scan() {
		b.WriteString(sc.Text())
	}
	return b.String()
}

// streamChat asks the upstream model for a streamed answer with usage.
const streamChat = `{"model":"local-vllm/qwen2.5:7b","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`

// streamRequest sends streamChat and returns the answer unread, for a test
// that reads it piece by piece.
func streamRequest(t *testing.T, url string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(streamChat))
	req.Header.Set("Authorization", "Bearer user")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, bufio.NewReader(resp.Body)
}

// TestStream_PassesUpstreamTokensThrough: the client sees the first piece
// of text while the upstream is still holding the rest, so streaming is
// real, and the whole answer, usage and [DONE] follow.
func TestStream_PassesUpstreamTokensThrough(t *testing.T) {
	release := make(chan struct{})
	up := streamingUpstream(t, release, false)
	e := newEnv(t, envOpt{providers: providersJSON(up.URL+"/v1", "")})
	resp, rd := streamRequest(t, e.serve(t))
	if resp.StatusCode != 200 || resp.Header.Get("X-AgentOS-Route") != "local-vllm/qwen2.5:7b" || resp.Header.Get("X-AgentOS-Policy") == "" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	got := make(chan string, 1)
	go func() {
		var seen strings.Builder
		for {
			line, err := rd.ReadString('\n')
			seen.WriteString(line)
			if strings.Contains(line, `"content":"Hel"`) {
				got <- seen.String()
				return
			}
			if err != nil {
				got <- seen.String()
				return
			}
		}
	}()
	if s := testkit.Await(t, "the first piece while the upstream holds the rest (else the gateway buffers)", 3*time.Second, got); !strings.Contains(s, `"content":"Hel"`) {
		t.Fatalf("stream ended before the first piece: %q", s)
	}
	close(release)
	rest, _ := io.ReadAll(rd)
	s := string(rest)
	for _, want := range []string{`"content":"lo"`, `"finish_reason":"stop"`, `"total_tokens":5`, "data: [DONE]"} {
		if !strings.Contains(s, want) {
			t.Fatalf("stream tail lacks %s: %s", want, s)
		}
	}
	if strings.Count(s, `"content":"Hel"`) != 0 {
		t.Fatalf("text sent twice: %s", s)
	}
}

// TestStream_MidStreamFailureEndsWithError: once text went out, a broken
// upstream is reported in the stream (no fallback that would repeat text).
func TestStream_MidStreamFailureEndsWithError(t *testing.T) {
	release := make(chan struct{})
	close(release)
	up := streamingUpstream(t, release, true)
	e := newEnv(t, envOpt{providers: providersJSON(up.URL+"/v1", "")})
	r := testkit.Do(t, "POST", e.serve(t)+"/v1/chat/completions", "user", streamChat)
	s := string(r.Body)
	if r.Status != 200 || !strings.Contains(s, `"content":"Hel"`) || !strings.Contains(s, `"error":`) || !strings.HasSuffix(s, "data: [DONE]\n\n") {
		t.Fatalf("stream %q", s)
	}
	if strings.Contains(s, "echo:") {
		t.Fatalf("fell back to another backend after streaming text: %s", s)
	}
}
