package jsonhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentos/agentos/internal/jsonhttp"
)

// echoServer answers what it saw: method, headers and body, with the status
// the request's X-Status names (200 when absent).
func echoServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/error":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"agent agt_x not found"}}`))
			return
		case "/openai-error":
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":{"code":null,"type":"rate_limit_exceeded","message":"slow down"}}`))
			return
		case "/garbage":
			_, _ = w.Write([]byte(`not json`))
			return
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 1000)))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "content_type": r.Header.Get("Content-Type"),
			"accept": r.Header.Get("Accept"), "authorization": r.Header.Get("Authorization"), "body": string(raw)})
	}))
	t.Cleanup(srv.Close)
	return srv
}

type seen struct {
	Method        string `json:"method"`
	ContentType   string `json:"content_type"`
	Accept        string `json:"accept"`
	Authorization string `json:"authorization"`
	Body          string `json:"body"`
}

func TestDo_SendsJSONAndDecodesTheAnswer(t *testing.T) {
	srv := echoServer(t)
	var got seen
	err := jsonhttp.Do(context.Background(), nil, jsonhttp.Call{Method: http.MethodPost, URL: srv.URL + "/x",
		Header: jsonhttp.Bearer("sk-1"), Body: map[string]int{"a": 1}}, &got)
	if err != nil {
		t.Fatal(err)
	}
	want := seen{Method: "POST", ContentType: "application/json", Accept: "application/json", Authorization: "Bearer sk-1", Body: `{"a":1}`}
	if got != want {
		t.Fatalf("server saw %+v, want %+v", got, want)
	}
}

func TestDo_RawAndAbsentBodies(t *testing.T) {
	srv := echoServer(t)
	var got seen
	if err := jsonhttp.Do(context.Background(), nil, jsonhttp.Call{Method: http.MethodPost, URL: srv.URL, Body: []byte(`{"raw":true}`)}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Body != `{"raw":true}` || got.ContentType != "application/json" {
		t.Fatalf("raw body: server saw %+v", got)
	}
	var none []byte
	if err := jsonhttp.Do(context.Background(), nil, jsonhttp.Call{Method: http.MethodGet, URL: srv.URL, Body: none}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Body != "" || got.ContentType != "" || got.Authorization != "" {
		t.Fatalf("a nil []byte is no body and no key is no Authorization; server saw %+v", got)
	}
	h := jsonhttp.Bearer("")
	h.Set("Accept", "text/plain")
	if err := jsonhttp.Do(context.Background(), nil, jsonhttp.Call{Method: http.MethodGet, URL: srv.URL, Header: h}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Accept != "text/plain" {
		t.Fatalf("an Accept the caller set is kept; server saw %q", got.Accept)
	}
}

func TestDo_ErrorAnswersKeepStatusAndErrorObject(t *testing.T) {
	srv := echoServer(t)
	err := jsonhttp.Do(context.Background(), nil, jsonhttp.Call{Method: http.MethodGet, URL: srv.URL + "/error"}, nil)
	var se *jsonhttp.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Fatalf("err = %v, want a 404 StatusError", err)
	}
	if code, msg := jsonhttp.ErrorOf(se.Body); code != "not_found" || msg != "agent agt_x not found" {
		t.Fatalf("ErrorOf = %q, %q", code, msg)
	}
	if !strings.Contains(err.Error(), "HTTP 404 not_found: agent agt_x not found") {
		t.Fatalf("message %q does not name status, code and message", err)
	}
	err = jsonhttp.Do(context.Background(), nil, jsonhttp.Call{Method: http.MethodGet, URL: srv.URL + "/openai-error"}, nil)
	if !errors.As(err, &se) || se.Status != http.StatusTooManyRequests {
		t.Fatalf("err = %v, want a 429 StatusError", err)
	}
	if code, _ := jsonhttp.ErrorOf(se.Body); code != "rate_limit_exceeded" {
		t.Fatalf("OpenAI error without a code: ErrorOf code = %q, want its type", code)
	}
	if code, msg := jsonhttp.ErrorOf([]byte("<html>")); code != "" || msg != "" {
		t.Fatalf("a body of no error shape gave %q, %q", code, msg)
	}
}

func TestSend_AnyStatusIsAnAnswer(t *testing.T) {
	srv := echoServer(t)
	resp, err := jsonhttp.Send(context.Background(), nil, jsonhttp.Call{Method: http.MethodGet, URL: srv.URL + "/error"})
	if err != nil || resp.Status != http.StatusNotFound || resp.OK() || !strings.Contains(string(resp.Body), "not_found") {
		t.Fatalf("Send = %+v, %v", resp, err)
	}
}

func TestDo_UndecodableAnswerAndLimit(t *testing.T) {
	srv := echoServer(t)
	var v map[string]any
	err := jsonhttp.Do(context.Background(), nil, jsonhttp.Call{Method: http.MethodGet, URL: srv.URL + "/garbage"}, &v)
	var de *jsonhttp.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v, want a DecodeError", err)
	}
	resp, err := jsonhttp.Send(context.Background(), nil, jsonhttp.Call{Method: http.MethodGet, URL: srv.URL + "/big", Limit: 10})
	if err != nil || len(resp.Body) != 10 {
		t.Fatalf("Limit 10 read %d bytes (err %v)", len(resp.Body), err)
	}
	resp, err = jsonhttp.Send(context.Background(), nil, jsonhttp.Call{Method: http.MethodGet, URL: srv.URL + "/big", Limit: -1})
	if err != nil || len(resp.Body) != 1000 {
		t.Fatalf("no limit read %d bytes (err %v)", len(resp.Body), err)
	}
}

func TestDo_TransportAndBuildFailures(t *testing.T) {
	srv := echoServer(t)
	url := srv.URL
	srv.Close()
	err := jsonhttp.Do(context.Background(), nil, jsonhttp.Call{Method: http.MethodGet, URL: url}, nil)
	var te *jsonhttp.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("closed server: err = %v, want a TransportError", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = jsonhttp.Do(ctx, nil, jsonhttp.Call{Method: http.MethodGet, URL: url}, nil)
	if !errors.As(err, &te) || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled call: err = %v, want a TransportError wrapping context.Canceled", err)
	}
	err = jsonhttp.Do(context.Background(), nil, jsonhttp.Call{Method: http.MethodPost, URL: url, Body: func() {}}, nil)
	if err == nil || errors.As(err, &te) {
		t.Fatalf("unencodable body: err = %v, want a build error before sending", err)
	}
	err = jsonhttp.Do(context.Background(), nil, jsonhttp.Call{Method: "BAD METHOD", URL: "://nowhere"}, nil)
	if err == nil || errors.As(err, &te) {
		t.Fatalf("bad URL: err = %v, want a build error before sending", err)
	}
}
