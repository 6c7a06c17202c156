package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type bearer struct{ key string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}

// TestInterop_BinaryServesA2AAndMCP: the built binary, after agentos up,
// answers the official A2A and MCP clients with the seeded agent.
func TestInterop_BinaryServesA2AAndMCP(t *testing.T) {
	t.Parallel()
	w := newWorkdir(t)
	w.mustRun(t, "up")
	defer w.run("nuke", "--yes-really")
	base, key := w.node().StackAURL, w.creds().TenantAdmin.APIKey
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hc := &http.Client{Transport: bearer{key}}

	card, err := agentcard.NewResolver(hc).Resolve(ctx, base+"/a2a/agents/agt_sample_echo_v1")
	if err != nil {
		t.Fatalf("card: %v", err)
	}
	client, err := a2aclient.NewFromCard(ctx, card, a2aclient.WithJSONRPCTransport(hc))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Destroy()
	res, err := client.SendMessage(ctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("from the binary"))})
	if err != nil {
		t.Fatal(err)
	}
	if task, ok := res.(*a2a.Task); !ok || task.Status.State != a2a.TaskStateCompleted ||
		!strings.Contains(task.Artifacts[0].Parts[0].Text(), "echo: from the binary") {
		t.Fatalf("A2A answer %#v", res)
	}

	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatalf("mcp connect: %v", err)
	}
	defer cs.Close()
	out, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "agt_sample_echo_v1", Arguments: map[string]any{"input": "over mcp"}})
	if err != nil || out.IsError || !strings.Contains(out.Content[0].(*mcp.TextContent).Text, "echo: over mcp") {
		t.Fatalf("MCP call: %v %+v", err, out)
	}
}
