package edge

import (
	"sort"
	"sync"
	"time"
)

// Tenant label values that are not tenant ids.
const (
	tenantLabelOther = "other" // a tenant outside the top N
	tenantLabelNone  = "none"  // no authenticated tenant
)

// tenantLabels bounds the cardinality of the `tenant` metric label: only
// the top N tenants by recent traffic get their own label value, the rest
// share "other". Every rerank interval the counts are halved (so the
// ranking follows recent traffic), tenants that fell out of the top N are
// evicted, and their series are dropped through onEvict.
type tenantLabels struct {
	mu       sync.Mutex
	max      int
	interval time.Duration
	counts   map[string]float64
	admitted map[string]bool
	next     time.Time
	onEvict  func(tenant string)
	now      func() time.Time
}

// maxTrackedTenants caps the traffic counts kept between reranks.
const maxTrackedTenants = 100_000

func newTenantLabels(max int, interval time.Duration, onEvict func(string)) *tenantLabels {
	return &tenantLabels{max: max, interval: interval, counts: map[string]float64{}, admitted: map[string]bool{},
		onEvict: onEvict, now: time.Now}
}

// label counts one request of tenant and returns its label value.
func (l *tenantLabels) label(tenant string) string {
	if tenant == "" {
		return tenantLabelNone
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.After(l.next) {
		l.rerank()
		l.next = now.Add(l.interval)
	}
	if _, ok := l.counts[tenant]; ok || len(l.counts) < maxTrackedTenants {
		l.counts[tenant]++
	}
	if l.admitted[tenant] {
		return tenant
	}
	if len(l.admitted) < l.max {
		l.admitted[tenant] = true
		return tenant
	}
	return tenantLabelOther
}

// rerank keeps the top N by traffic admitted; called with mu held.
func (l *tenantLabels) rerank() {
	if len(l.counts) == 0 {
		return
	}
	ids := make([]string, 0, len(l.counts))
	for id := range l.counts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if l.counts[ids[i]] != l.counts[ids[j]] {
			return l.counts[ids[i]] > l.counts[ids[j]]
		}
		return ids[i] < ids[j]
	})
	top := map[string]bool{}
	for i := 0; i < len(ids) && i < l.max; i++ {
		top[ids[i]] = true
	}
	for id := range l.admitted {
		if !top[id] {
			delete(l.admitted, id)
			if l.onEvict != nil {
				l.onEvict(id)
			}
		}
	}
	for id := range top {
		l.admitted[id] = true
	}
	for id, c := range l.counts {
		if c /= 2; c < 0.5 {
			delete(l.counts, id)
		} else {
			l.counts[id] = c
		}
	}
}
