package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/golang-jwt/jwt/v5"
)

// TestMetrics_TenantLabelStaysBounded sends requests as 1,000 tenants and
// checks the `tenant` label takes at most N+2 values (top N, "other",
// "none"), whatever the tenant count.
func TestMetrics_TenantLabelStaysBounded(t *testing.T) {
	const tenants, limit = 1000, 10
	n := MustStartNode(t, func(c *app.Config) { c.TenantLabelLimit = limit })
	ctx := context.Background()
	testkit.AtOnce(8, func(w int) {
		for i := w; i < tenants; i += 8 {
			id := fmt.Sprintf("tnt_card_%04d", i)
			now := core.Now()
			if err := n.Store().CreateTenant(ctx, core.Tenant{TenantID: id, Name: id, Status: core.TenantActive, PlanTier: "free", CreatedAt: now, UpdatedAt: now}, nil); err != nil {
				t.Errorf("create %s: %v", id, err)
				return
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	a := n.URL(app.StackA)
	for i := 0; i < tenants; i++ {
		claims := jwt.MapClaims{"sub": "usr_x", "tenant_id": fmt.Sprintf("tnt_card_%04d", i), "scope": "audit:read", "exp": time.Now().Add(time.Minute).Unix()}
		tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(n.Secret())
		do(t, "GET", a+"/v1/audit?limit=1", tok, nil).Expect(t, fmt.Sprintf("tenant %d", i), 200)
	}
	m := scrape(t, n)
	series := len(m.Series("agentos_http_requests_total"))
	values, without := m.LabelValues("agentos_http_requests_total", "tenant")
	if without > 0 {
		t.Fatalf("%d series of agentos_http_requests_total without a tenant label", without)
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
