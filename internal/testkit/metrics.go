package testkit

import (
	"net/http"
	"testing"

	"github.com/agentos/agentos/internal/promtext"
)

// Metrics is a /metrics page read by promtext, the one reader of the
// text exposition: Value (a sample by exact series), Sum (labels folded or
// matched), Series, Has and LabelValues.
type Metrics = promtext.Page

// Scrape reads url (a /metrics path) with client (nil:
// http.DefaultClient), failing the test unless it answers 200 with a
// well-formed page.
func Scrape(t testing.TB, client *http.Client, url string) Metrics {
	t.Helper()
	m, err := promtext.Parse(DoWith(t, client, "GET", url, "", nil).Expect(t, "scrape "+url, 200).Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return m
}
