package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/core"
	"github.com/golang-jwt/jwt/v5"
)

// TestMetrics_TenantLabelStaysBounded sends requests as 1,000 tenants and
// checks the `tenant` label takes at most N+2 values (top N, "other",
// "none"), whatever the tenant count.
func TestMetrics_TenantLabelStaysBounded(t *testing.T) {
	const tenants, limit = 1000, 10
	n := MustStartNode(t, func(c *app.Config) { c.TenantLabelLimit = limit })
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, tenants)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < tenants; i += 8 {
				id := fmt.Sprintf("tnt_card_%04d", i)
				now := core.Now()
				if err := n.Store().CreateTenant(ctx, core.Tenant{TenantID: id, Name: id, Status: core.TenantActive, PlanTier: "free", CreatedAt: now, UpdatedAt: now}, nil); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	h := n.Handler(app.StackA)
	for i := 0; i < tenants; i++ {
		claims := jwt.MapClaims{"sub": "usr_x", "tenant_id": fmt.Sprintf("tnt_card_%04d", i), "scope": "audit:read", "exp": time.Now().Add(time.Minute).Unix()}
		tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(n.Secret())
		req := httptest.NewRequest("GET", "/v1/audit?limit=1", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("tenant %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	r := do(t, "GET", n.URL(app.StackA)+"/metrics", "", nil)
	values := map[string]bool{}
	series := 0
	for _, line := range strings.Split(string(r.Body), "\n") {
		if !strings.HasPrefix(line, "agentos_http_requests_total{") {
			continue
		}
		series++
		i := strings.Index(line, `tenant="`)
		if i < 0 {
			t.Fatalf("series without tenant label: %s", line)
		}
		rest := line[i+len(`tenant="`):]
		values[rest[:strings.IndexByte(rest, '"')]] = true
	}
	if len(values) > limit+2 {
		t.Fatalf("tenant label has %d values for %d tenants, want <= %d", len(values), tenants, limit+2)
	}
	if !values["other"] {
		t.Fatalf("tenants beyond the top %d are not counted as other: %v", limit, values)
	}
	// 3 stacks x a few status classes x (limit+2) tenant values, at most.
	if series > 3*5*(limit+2) {
		t.Fatalf("%d series of agentos_http_requests_total", series)
	}
	t.Logf("%d tenants -> %d tenant label values, %d series", tenants, len(values), series)
}
