package app_test

import (
	"testing"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/internal/testkit/testnode"
)

// The app tests use the shared test kit (internal/testkit); these short
// names keep the many call sites as they were.

// testNode is a real node on :0 ports in a temp dir, seeded.
type testNode struct {
	*app.Node
	creds app.Credentials
}

func testConfig(t testing.TB) app.Config { return testnode.Config(t) }

// MustStartNode opens and seeds a node and closes it when the test ends.
func MustStartNode(t testing.TB, mutate ...func(*app.Config)) *testNode {
	t.Helper()
	n := testnode.Start(t, mutate...)
	return &testNode{Node: n.Node, creds: n.Creds}
}

type response = testkit.Response

// do sends a request (testkit.Do): body nil, []byte or string as is, or a
// value as JSON.
func do(t testing.TB, method, url, key string, body any, hdr ...string) response {
	t.Helper()
	return testkit.Do(t, method, url, key, body, hdr...)
}

func expectStatus(t testing.TB, r response, want int, what string) {
	t.Helper()
	r.Expect(t, what, want)
}
