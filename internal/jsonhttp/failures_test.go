package jsonhttp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentos/agentos/internal/jsonhttp"
)

// Each way Do fails reaches its own func of Failures, with what that kind
// of failure carries; Retryable says yes to a transport failure and a 5xx
// only.
func TestFailures_EachKindToItsFunc(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/503":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/404":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"gone"}}`))
		case "/garbled":
			_, _ = w.Write([]byte(`{"ok":`))
		default:
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	var saw string
	f := jsonhttp.Failures{
		Transport: func(cause error) error { saw = "transport"; return cause },
		Status: func(r jsonhttp.Response) error {
			saw = "status " + http.StatusText(r.Status)
			if code, _ := jsonhttp.ErrorOf(r.Body); code != "" {
				saw += " " + code
			}
			return errors.New(saw)
		},
		Decode: func(cause error) error { saw = "decode"; return cause },
		Build:  func(err error) error { saw = "build"; return err },
	}
	cases := []struct {
		url       string
		want      string // what Failures saw ("" for success)
		retryable bool
	}{
		{srv.URL + "/ok", "", false},
		{srv.URL + "/503", "status Service Unavailable", true},
		{srv.URL + "/404", "status Not Found not_found", false},
		{srv.URL + "/garbled", "decode", false},
		{closedURL + "/x", "transport", true},
		{"http://bad host/", "build", false},
	}
	for _, tc := range cases {
		saw = ""
		var out map[string]any
		err := jsonhttp.Do(context.Background(), nil, jsonhttp.Call{Method: http.MethodGet, URL: tc.url}, &out)
		mapped := f.Map(err)
		if saw != tc.want || (mapped == nil) != (tc.want == "") {
			t.Errorf("%s: Failures saw %q (mapped %v), want %q", tc.url, saw, mapped, tc.want)
		}
		if got := jsonhttp.Retryable(err); got != tc.retryable {
			t.Errorf("%s: Retryable %v, want %v (%v)", tc.url, got, tc.retryable, err)
		}
	}
}

// A kind without a func keeps Do's own error.
func TestFailures_NilFuncKeepsTheError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
	}))
	defer srv.Close()
	err := jsonhttp.Do(context.Background(), nil, jsonhttp.Call{Method: http.MethodPost, URL: srv.URL, Body: map[string]int{"n": 1}}, nil)
	var se *jsonhttp.StatusError
	if got := (jsonhttp.Failures{}).Map(err); !errors.As(got, &se) || se.Status != http.StatusConflict || !strings.Contains(got.Error(), "409") {
		t.Fatalf("Map with no funcs: %v, want Do's *StatusError 409", got)
	}
	if (jsonhttp.Failures{}).Map(nil) != nil {
		t.Fatal("Map(nil) is not nil")
	}
}
