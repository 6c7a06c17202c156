package edge

import (
	"testing"
	"time"
)

func TestTenantLabels_RerankFollowsTraffic(t *testing.T) {
	now := time.Unix(0, 0)
	var evicted []string
	l := newTenantLabels(2, time.Minute, func(id string) { evicted = append(evicted, id) })
	l.now = func() time.Time { return now }
	if l.label("") != tenantLabelNone {
		t.Fatal("empty tenant must be none")
	}
	if l.label("tnt_a") != "tnt_a" || l.label("tnt_b") != "tnt_b" || l.label("tnt_c") != tenantLabelOther {
		t.Fatal("first two tenants admitted, third is other")
	}
	for i := 0; i < 50; i++ {
		l.label("tnt_c")
	}
	now = now.Add(2 * time.Minute) // next call reranks: c and one of a/b stay
	if got := l.label("tnt_c"); got != "tnt_c" {
		t.Fatalf("busy tenant after rerank: %s", got)
	}
	if len(evicted) != 1 {
		t.Fatalf("want one eviction, got %v", evicted)
	}
	if len(l.admitted) != 2 {
		t.Fatalf("admitted %v", l.admitted)
	}
}
