package stackb

import (
	"net/http"
	"testing"

	"github.com/agentos/agentos/core"
)

// The governance header names are written in canonical form by hand; they
// must be what net/http's canonicalization makes of the contract's names.
func TestGovernanceHeaders_CanonicalNames(t *testing.T) {
	for name, canon := range map[string]string{"X-AgentOS-Route": hdrRoute, "X-AgentOS-Policy": hdrPolicy,
		"X-AgentOS-Policy-Reasons": hdrPolicyReasons, "X-AgentOS-Request-Id": hdrRequestID} {
		if got := http.CanonicalHeaderKey(name); got != canon {
			t.Errorf("%s: canonical %q, written as %q", name, got, canon)
		}
	}
	h := http.Header{}
	governanceHeaders(h, "req_1", core.Route{Backend: "b", Model: "m", FallbackUsed: true},
		core.PolicyOutcome{Decision: core.DecisionRedacted, Reasons: []string{"pii.email", "pii.phone"}})
	want := map[string]string{"X-AgentOS-Route": "b/m;fallback", "X-AgentOS-Policy": core.DecisionRedacted,
		"X-AgentOS-Policy-Reasons": "pii.email,pii.phone", "X-AgentOS-Request-Id": "req_1"}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want [%q]", k, got, v)
		}
	}
	h.Add("X-AgentOS-Route", "second") // the shared backing array must not leak between keys
	if h.Get("X-AgentOS-Policy") != core.DecisionRedacted {
		t.Errorf("adding to one header changed another: %v", h)
	}
}
