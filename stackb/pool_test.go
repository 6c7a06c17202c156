package stackb_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
)

// Past 64 calls in flight the gateway used to dial a new upstream
// connection per call and close it after. Now a burst's connections stay
// pooled: a second burst of the same size dials (almost) nothing.
func TestGateway_UpstreamPool_ReusesConnectionsOfABurst(t *testing.T) {
	const inFlight = 100
	// The upstream holds every call of a burst until all of them have
	// arrived, so each burst really has inFlight calls in flight together
	// (and needs inFlight connections), however the scheduler runs them.
	var (
		mu      sync.Mutex
		arrived int
		gate    chan struct{}
	)
	open := func() {
		mu.Lock()
		arrived, gate = 0, make(chan struct{})
		mu.Unlock()
	}
	inner := newFakeOpenAI(t).srv.Config.Handler
	srv, dials := testkit.ServeCounting(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		g := gate
		if arrived++; arrived == inFlight {
			close(gate)
		}
		mu.Unlock()
		select {
		case <-g:
		case <-time.After(20 * time.Second):
			mu.Lock()
			t.Errorf("only %d of %d calls of a burst reached the upstream", arrived, inFlight)
			mu.Unlock()
		}
		inner.ServeHTTP(w, r)
	}))
	t.Setenv("STACKB_TEST_KEY", "sk-test")
	providers := strings.Replace(providersJSON(srv.URL+"/v1", ""), `"timeout_ms":2000`, `"timeout_ms":60000`, 1)
	tn := demoTenant("tnt_demo")
	tn.Quotas.Models = &core.ModelQuotas{MaxRequestsPerMinute: core.Ptr(1 << 30),
		TokenBudget: &core.TokenBudget{Window: "day", MaxTokens: core.Ptr[int64](1 << 50), MaxCostUSD: core.Ptr(1e9)}}
	e := newEnv(t, envOpt{tenant: &tn, providers: providers})
	burst := func() {
		open()
		testkit.AtOnce(inFlight, func(int) {
			if _, err := e.gw.Chat(context.Background(), e.auth, chatReq("local-vllm/qwen2.5:7b", "hello")); err != nil {
				t.Errorf("chat: %v", err)
			}
		})
		if t.Failed() {
			t.FailNow()
		}
	}
	burst()
	first := dials.Load()
	for i := 0; i < 3; i++ {
		burst()
	}
	if again := dials.Load() - first; again > inFlight/10 {
		t.Fatalf("bursts after the first dialed %d new connections (first burst: %d); the pool dropped them", again, first)
	}
}
