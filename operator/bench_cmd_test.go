package operator_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/bench"
	"github.com/agentos/agentos/internal/testkit/testnode"
	"github.com/agentos/agentos/operator"
)

// The CI-sized smoke of `agentos bench`: both drivers against a real node,
// a second each at a low rate. It asserts that the bench runs, succeeds
// and reports; the full runs are `make bench` (docs/benchmarks.md).
func TestBenchCommand_SmokeAgainstNode(t *testing.T) {
	n, creds := testnode.Start(t).Parts()
	for _, kind := range []string{"runs", "gateway"} {
		t.Run(kind, func(t *testing.T) {
			var out bytes.Buffer
			cli := operator.NewCLI(app.BuildInfo{Version: "test"}, &out, &out)
			args := []string{"agentos", "bench", kind, "--data-dir", t.TempDir(),
				"--url-a", n.URL(app.StackA), "--url-b", n.URL(app.StackB), "--pid", fmt.Sprint(os.Getpid()),
				"--admin-key", creds.PlatformAdmin.APIKey,
				"--rate", "20", "--duration", "1s", "--warmup", "0s", "--timeout", "20s", "--json"}
			if err := cli.Run(args); err != nil {
				t.Fatalf("bench %s: %v\n%s", kind, err, out.String())
			}
			var rep bench.Report
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("report is not JSON: %v\n%s", err, out.String())
			}
			if rep.Sent != 20 || rep.OK != 20 || len(rep.Errors) != 0 {
				t.Fatalf("want 20 sent, 20 ok: %+v", rep)
			}
			if rep.Latency.P50 <= 0 || rep.Latency.P999 < rep.Latency.P50 || rep.Throughput <= 0 {
				t.Fatalf("latency figures missing: %+v", rep)
			}
			if rep.Node.Source == "" || rep.Node.RSSPeak <= 0 || rep.CPUPerRequest <= 0 {
				t.Fatalf("node figures missing: %+v", rep.Node)
			}
			if kind == "runs" && rep.FirstAnswer == nil {
				t.Fatalf("runs report has no create latency: %+v", rep)
			}
		})
	}
	// The bench tenant's key is revoked after each run.
	req, _ := http.NewRequest(http.MethodGet, n.URL(app.StackA)+"/v1/admin/tenants/"+bench.TenantID+"/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+creds.PlatformAdmin.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("list bench tokens: %d %s", resp.StatusCode, body)
	}
	var list struct {
		Tokens []struct {
			TokenID   string  `json:"token_id"`
			RevokedAt *string `json:"revoked_at"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	for _, tok := range list.Tokens {
		if tok.RevokedAt == nil {
			t.Fatalf("bench key %s is still active: %s", tok.TokenID, body)
		}
	}
}

func TestBenchCommand_RefusesBadOptions(t *testing.T) {
	for _, args := range [][]string{
		{"runs", "--rate", "0"},
		{"gateway", "--duration", "0s"},
		{"gateway", "--rate", "1000000"},
		{"runs", "--url-a", "ftp://example.com", "--api-key", "k"},
	} {
		var out bytes.Buffer
		cli := operator.NewCLI(app.BuildInfo{Version: "test"}, &out, &out)
		err := cli.Run(append([]string{"agentos", "bench"}, append(args, "--data-dir", t.TempDir())...))
		if err == nil {
			t.Errorf("%v: accepted\n%s", args, out.String())
		}
	}
}
