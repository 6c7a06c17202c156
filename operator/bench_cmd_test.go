package operator_test

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/bench"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/internal/testkit/testnode"
)

// The CI-sized smoke of `agentos bench`: both drivers against a real node,
// a second each at a low rate. It asserts that the bench runs, succeeds
// and reports; the full runs are `make bench` (docs/benchmarks.md).
func TestBenchCommand_SmokeAgainstNode(t *testing.T) {
	n, creds := testnode.Start(t).Parts()
	for _, kind := range []string{"runs", "gateway"} {
		t.Run(kind, func(t *testing.T) {
			code, out, errw := runCLI(t, "bench", kind, "--data-dir", t.TempDir(),
				"--url-a", n.URL(app.StackA), "--url-b", n.URL(app.StackB), "--pid", fmt.Sprint(os.Getpid()),
				"--admin-key", creds.PlatformAdmin.APIKey,
				"--rate", "20", "--duration", "1s", "--warmup", "0s", "--timeout", "20s", "--json")
			if code != 0 {
				t.Fatalf("bench %s: exit %d\n%s\n%s", kind, code, out, errw)
			}
			var rep bench.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("report is not JSON: %v\n%s", err, out)
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
	var list struct {
		Tokens []struct {
			TokenID   string  `json:"token_id"`
			RevokedAt *string `json:"revoked_at"`
		} `json:"tokens"`
	}
	r := testkit.Do(t, "GET", n.URL(app.StackA)+"/v1/admin/tenants/"+bench.TenantID+"/tokens", creds.PlatformAdmin.APIKey, nil)
	r.Expect(t, "list bench tokens", 200).Decode(t, &list)
	for _, tok := range list.Tokens {
		if tok.RevokedAt == nil {
			t.Fatalf("bench key %s is still active: %s", tok.TokenID, r.Body)
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
		if code, out, errw := runCLI(t, append([]string{"bench"}, append(args, "--data-dir", t.TempDir())...)...); code == 0 {
			t.Errorf("%v: accepted\n%s\n%s", args, out, errw)
		}
	}
}
