package promtext

import (
	"context"
	"fmt"
	"net/http"

	"github.com/agentos/agentos/internal/jsonhttp"
)

// MaxPage bounds how many bytes of a page Fetch reads; a longer page is
// an error rather than a page cut mid-line (a cut value would read as a
// smaller number).
const MaxPage = 16 << 20

// Accept is what Fetch asks for: the text format, not OpenMetrics or
// protobuf.
const Accept = "text/plain;version=0.0.4"

// Fetch GETs url (a /metrics page) with hc (nil: http.DefaultClient) and
// parses it. A transport failure, a status other than 200 or a page over
// MaxPage is an error with an empty Page (a non-200 status a
// *jsonhttp.StatusError); a *SyntaxError comes with the
// samples of the page's well-formed lines, as from Parse.
func Fetch(ctx context.Context, hc *http.Client, url string) (Page, error) {
	resp, err := jsonhttp.Send(ctx, hc, jsonhttp.Call{Method: http.MethodGet, URL: url,
		Header: http.Header{"Accept": {Accept}}, Limit: MaxPage + 1})
	if err != nil {
		return Page{}, err
	}
	if resp.Status != http.StatusOK {
		return Page{}, &jsonhttp.StatusError{Method: http.MethodGet, URL: url, Response: resp}
	}
	if len(resp.Body) > MaxPage {
		return Page{}, fmt.Errorf("%s: page larger than %d bytes", url, MaxPage)
	}
	return Parse(resp.Body)
}
