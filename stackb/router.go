package stackb

import (
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
)

// backendHealth tracks each backend: failThreshold consecutive
// unavailable/timeout failures take it out of routing; after cooldown one
// call is let through, and a success brings it back.
type backendHealth struct {
	mu            sync.Mutex
	state         map[string]*healthState
	failThreshold int
	cooldown      time.Duration
	now           func() time.Time
	onChange      func(backend string, up bool)
}

type healthState struct {
	up        bool
	fails     int
	downSince time.Time
	probing   bool
	latencyMS float64 // moving average of successful calls
}

func newBackendHealth(backends []string, threshold int, cooldown time.Duration, now func() time.Time, onChange func(string, bool)) *backendHealth {
	h := &backendHealth{state: map[string]*healthState{}, failThreshold: threshold, cooldown: cooldown, now: now, onChange: onChange}
	for _, b := range backends {
		h.state[b] = &healthState{up: true}
		onChange(b, true)
	}
	return h
}

// usable reports whether routing may try backend now. A down backend whose
// cooldown passed is usable once (a probe).
func (h *backendHealth) usable(backend string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.state[backend]
	if s == nil || s.up {
		return true
	}
	if !s.probing && h.now().Sub(s.downSince) >= h.cooldown {
		s.probing = true
		return true
	}
	return false
}

func (h *backendHealth) latency(backend string) float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.state[backend]; s != nil {
		return s.latencyMS
	}
	return 0
}

func (h *backendHealth) success(backend string, latency time.Duration) {
	h.mu.Lock()
	s := h.state[backend]
	if s == nil {
		h.mu.Unlock()
		return
	}
	ms := float64(latency) / float64(time.Millisecond)
	if s.latencyMS == 0 {
		s.latencyMS = ms
	} else {
		s.latencyMS = 0.8*s.latencyMS + 0.2*ms
	}
	s.fails, s.probing = 0, false
	changed := !s.up
	s.up = true
	h.mu.Unlock()
	if changed {
		h.onChange(backend, true)
	}
}

func (h *backendHealth) failure(backend string) {
	h.mu.Lock()
	s := h.state[backend]
	if s == nil {
		h.mu.Unlock()
		return
	}
	s.fails++
	s.probing = false
	changed := false
	if s.up && s.fails >= h.failThreshold {
		s.up, changed = false, true
	}
	if !s.up {
		s.downSince = h.now()
	}
	h.mu.Unlock()
	if changed {
		h.onChange(backend, false)
	}
}

func (h *backendHealth) snapshot() map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]bool, len(h.state))
	for b, s := range h.state {
		out[b] = s.up
	}
	return out
}

// routePlan is the ordered list of models to try for one request.
type routePlan struct {
	tier       string
	candidates []*model
	canary     bool // candidates[0] was put first by a canary rule
}

// resolve turns a model_ref into the chain to try (before filtering).
// Errors: invalid_request naming request.model_ref.
func (c *catalog) resolve(ref string) (tier string, chain []*model, err error) {
	switch {
	case strings.HasPrefix(ref, "tier:"):
		tier = strings.TrimPrefix(ref, "tier:")
		if !core.KnownTier(tier) {
			return "", nil, core.Invalid("request.model_ref", "unknown tier %q (want fast, balanced or premium)", tier)
		}
		return tier, c.tiers[tier], nil
	case ref == "":
		return "", nil, core.Invalid("request.model_ref", "model_ref is required")
	}
	if m, ok := c.models[ref]; ok {
		return "", []*model{m}, nil
	}
	for _, m := range c.order {
		if m.cfg.ModelID == ref {
			chain = append(chain, m)
		}
	}
	if len(chain) == 0 {
		return "", nil, core.Invalid("request.model_ref", "unknown model %q", ref).With("model_ref", ref)
	}
	return "", chain, nil
}

// canaryFor returns the canary model for this tenant/agent/tier, if the
// request falls in its percentage. The split hashes the request id when
// there is one, so a retried request goes the same way.
func (c *catalog) canaryFor(tenantID, agentID, tier, requestID string) *model {
	if tier == "" {
		return nil
	}
	for _, r := range c.canary {
		if r.Tier != tier || (r.TenantID != nil && *r.TenantID != tenantID) || (r.AgentID != nil && *r.AgentID != agentID) {
			continue
		}
		var x float64
		if requestID != "" {
			h := fnv.New64a()
			h.Write([]byte(requestID))
			x = float64(h.Sum64()%10000) / 100
		} else {
			x = rand.Float64() * 100
		}
		if x < r.Percent {
			return c.models[r.Route]
		}
		return nil
	}
	return nil
}

// entitled reports whether the tenant may use m (through tier, when the
// request named one). A nil list allows everything; an empty list nothing.
func entitled(t core.Tenant, tier string, m *model) bool {
	e := t.Entitlements
	if e.ModelBackendsAllowed != nil && !slices.Contains(e.ModelBackendsAllowed, m.backend) {
		return false
	}
	if e.ModelTiersAllowed != nil {
		if tier != "" && !slices.Contains(e.ModelTiersAllowed, tier) {
			return false
		}
		if tier == "" && m.cfg.Tier != "" && !slices.Contains(e.ModelTiersAllowed, m.cfg.Tier) {
			return false
		}
	}
	return true
}
