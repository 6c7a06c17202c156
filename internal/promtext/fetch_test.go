package promtext_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agentos/agentos/internal/jsonhttp"
	"github.com/agentos/agentos/internal/promtext"
	"github.com/agentos/agentos/internal/testkit"
)

// Fetch reads a page whole or not at all: a page one byte over MaxPage is
// an error with no samples (a page cut mid-number would read as a smaller
// value), a status other than 200 is a *jsonhttp.StatusError, and a page
// at the limit is read.
func TestFetch_PageLimitAndStatus(t *testing.T) {
	const line = "agentos_x_total 1\n"
	page := func(size int) string {
		// Comment padding, then the sample last: a cut page loses it.
		return "#" + strings.Repeat(" ", size-len(line)-2) + "\n" + line
	}
	srv := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Accept"); got != promtext.Accept {
			t.Errorf("Accept %q, want %q", got, promtext.Accept)
		}
		switch r.URL.Path {
		case "/at-limit":
			io.WriteString(w, page(promtext.MaxPage))
		case "/over-limit":
			io.WriteString(w, page(promtext.MaxPage+1))
		default:
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}), nil)
	ctx := context.Background()

	p, err := promtext.Fetch(ctx, nil, srv.URL+"/at-limit")
	if err != nil {
		t.Fatalf("page of exactly MaxPage bytes: %v", err)
	}
	if v, ok := p.Value("agentos_x_total"); !ok || v != 1 {
		t.Fatalf("page at the limit: agentos_x_total = %v, %v", v, ok)
	}

	p, err = promtext.Fetch(ctx, nil, srv.URL+"/over-limit")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("page over MaxPage: err = %v, want a size error", err)
	}
	if len(p.Samples()) != 0 {
		t.Fatalf("page over MaxPage gave %d samples, want none", len(p.Samples()))
	}

	_, err = promtext.Fetch(ctx, nil, srv.URL+"/down")
	var se *jsonhttp.StatusError
	if !errors.As(err, &se) || se.Response.Status != http.StatusServiceUnavailable {
		t.Fatalf("503 page: err = %v, want a StatusError with 503", err)
	}
}
