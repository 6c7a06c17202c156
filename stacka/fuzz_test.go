package stacka_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/agentos/agentos/core"
)

// FuzzCreateRun_Body feeds arbitrary JSON bodies through the run-create
// path: it must answer a contract error (never panic, never internal_error)
// or create a dry run.
func FuzzCreateRun_Body(f *testing.F) {
	for _, s := range []string{
		`{"input":{"type":"text","text":"hi"},"idempotency_key":"k","run_options":{"dry_run":true}}`,
		`{"input":{"type":"text","text":""},"idempotency_key":"k"}`,
		`{"input":{"type":"image"},"run_options":{"priority":"urgent","timeout_ms":0,"max_steps":-1}}`,
		`{"input":{"type":"text","text":"x"},"tooling":{"tool_allowlist":["tool.echo","bad id"],"tool_denymap":[]}}`,
	} {
		f.Add(s)
	}
	n := newNode(f, func(c *stackaConfig, ts tenants) {
		ts["tnt_a"].Quotas.Runs = &core.RunQuotas{RunCreateQPS: core.Ptr(1e9), RunCreateBurst: core.Ptr(1 << 30), MaxConcurrentRuns: core.Ptr(1 << 20)}
	})
	n.putAgent("tok-a", "agt_x", "tool.echo")
	a := authFor("tnt_a", "usr_a")
	f.Fuzz(func(t *testing.T, body string) {
		var req core.RunRequest
		if json.Unmarshal([]byte(body), &req) != nil {
			return
		}
		if req.RunOptions == nil {
			req.RunOptions = &core.RunOptions{}
		}
		req.RunOptions.DryRun = core.Ptr(true) // validate only: no executor work
		run, _, err := n.svc.CreateRun(context.Background(), a, "agt_x", req, "")
		if err != nil {
			if e := core.AsError(err); e.HTTPStatus() >= 500 {
				t.Fatalf("body %q: %v", body, err)
			}
			return
		}
		if run.Status != core.RunCompleted {
			t.Fatalf("dry run status %s", run.Status)
		}
	})
}
