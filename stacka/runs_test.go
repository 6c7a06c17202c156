package stacka_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/stacka"
)

func TestRun_SampleRunFullEventSequence(t *testing.T) {
	n := newNode(t)
	n.putAgent("tok-a", "agt_sample_echo_v1", "tool.echo")
	run := n.createRun("tok-a", "agt_sample_echo_v1", "hello world")
	id := run["run_id"].(string)
	if !core.HasPrefix(id, "run") || run["status"] != "queued" || run["events_url"] != "/v1/runs/"+id+"/events" {
		t.Fatalf("bad run: %v", run)
	}
	ch, resp, cancel := n.stream("tok-a", id)
	defer cancel()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	msgs := collect(t, ch, 10*time.Second)
	want := []string{core.EventRunCreated, core.EventRunStarted,
		core.EventStepStarted, core.EventModelRequested, core.EventModelCompleted, core.EventStepCompleted,
		core.EventStepStarted, core.EventToolCallRequested, core.EventToolCallCompleted, core.EventStepCompleted,
		core.EventStepStarted, core.EventModelRequested, core.EventModelCompleted, core.EventStepCompleted,
		core.EventRunCompleted}
	var got []string
	for i, m := range msgs {
		ev := m.data.Event
		got = append(got, ev.Type)
		if m.event != "agentos.event" || m.id != fmt.Sprint(i+1) || ev.Sequence != int64(i+1) {
			t.Fatalf("message %d: id %s event %s seq %d", i, m.id, m.event, ev.Sequence)
		}
		if ev.TenantID != "tnt_a" || ev.RunID != id || ev.AgentID != "agt_sample_echo_v1" || !core.HasPrefix(ev.EventID, "evt") || ev.Trace.Traceparent == "" {
			t.Fatalf("bad envelope %+v", ev)
		}
		runLevel := strings.HasPrefix(ev.Type, "agentos.run.") && !strings.HasPrefix(ev.Type, "agentos.run.step.")
		if runLevel != (ev.StepID == nil) {
			t.Fatalf("%s: step_id %v", ev.Type, ev.StepID)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("event types\n got %v\nwant %v", got, want)
	}
	var tc map[string]any
	_ = json.Unmarshal(msgs[8].data.Event.Payload, &tc)
	if tc["status"] != "ok" || tc["tool_id"] != "tool.echo" || !strings.HasPrefix(tc["tool_call_id"].(string), "tcall_") {
		t.Fatalf("tool.call.completed payload %v", tc)
	}
	final := waitStatus(t, n, "tok-a", id, "completed", 2*time.Second)
	out := final["output"].(map[string]any)
	if out["text"] != "echo: hello world\ntool echo: {\"text\":\"hello world\"}" {
		t.Fatalf("output %q", out["text"])
	}
	sum := final["summary"].(map[string]any)
	if sum["steps_total"] != 3.0 || sum["tool_calls_total"] != 1.0 || sum["model_calls_total"] != 2.0 || final["error"] != nil {
		t.Fatalf("summary %v error %v", sum, final["error"])
	}
}

func TestRun_IdempotencyReplayAndConflict(t *testing.T) {
	n := newNode(t)
	n.putAgent("tok-a", "agt_x", "tool.echo")
	body := map[string]any{"input": map[string]any{"type": "text", "text": "hi"}, "idempotency_key": "idem_1"}
	c1, _, b1 := n.do("POST", "/v1/agents/agt_x/runs", "tok-a", body)
	c2, h2, b2 := n.do("POST", "/v1/agents/agt_x/runs", "tok-a", body)
	if c1 != 201 || c2 != 201 || h2.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("create %d, replay %d %q", c1, c2, h2.Get("Idempotent-Replayed"))
	}
	if b1["run"].(map[string]any)["run_id"] != b2["run"].(map[string]any)["run_id"] {
		t.Fatal("replay returned another run")
	}
	body["input"] = map[string]any{"type": "text", "text": "other"}
	if c, _, b := n.do("POST", "/v1/agents/agt_x/runs", "tok-a", body); c != 409 || b["error"].(map[string]any)["code"] != "conflict" {
		t.Fatalf("different body: %d %v", c, b)
	}
	// The header form, and the same key for another principal is another run.
	hb := map[string]any{"input": map[string]any{"type": "text", "text": "hi"}}
	c3, _, b3 := n.do("POST", "/v1/agents/agt_x/runs", "tok-a2", hb, "Idempotency-Key", "idem_1")
	c4, h4, b4 := n.do("POST", "/v1/agents/agt_x/runs", "tok-a2", hb, "Idempotency-Key", "idem_1")
	if c3 != 201 || c4 != 201 || h4.Get("Idempotent-Replayed") != "true" ||
		b3["run"].(map[string]any)["run_id"] != b4["run"].(map[string]any)["run_id"] ||
		b3["run"].(map[string]any)["run_id"] == b1["run"].(map[string]any)["run_id"] {
		t.Fatalf("header key: %d %d", c3, c4)
	}
}

func TestCreateRun_BadInputs(t *testing.T) {
	n := newNode(t)
	n.putAgent("tok-a", "agt_x")
	long := strings.Repeat("k", 257)
	cases := []struct {
		name   string
		agent  string
		body   string
		hdr    []string
		status int
		field  string
	}{
		{"missing input", "agt_x", `{"idempotency_key":"k"}`, nil, 400, "input.type"},
		{"unknown input type", "agt_x", `{"input":{"type":"image","text":"x"},"idempotency_key":"k"}`, nil, 400, "input.type"},
		{"empty text", "agt_x", `{"input":{"type":"text","text":""},"idempotency_key":"k"}`, nil, 400, "input.text"},
		{"text of wrong type", "agt_x", `{"input":{"type":"text","text":5},"idempotency_key":"k"}`, nil, 400, "input.text"},
		{"malformed json", "agt_x", `{"input":`, nil, 400, ""},
		{"missing idempotency key", "agt_x", `{"input":{"type":"text","text":"x"}}`, nil, 400, "idempotency_key"},
		{"idempotency key too long", "agt_x", `{"input":{"type":"text","text":"x"},"idempotency_key":"` + long + `"}`, nil, 400, "idempotency_key"},
		{"header key too long", "agt_x", `{"input":{"type":"text","text":"x"}}`, []string{"Idempotency-Key", long}, 400, "idempotency_key"},
		{"header and body keys differ", "agt_x", `{"input":{"type":"text","text":"x"},"idempotency_key":"a"}`, []string{"Idempotency-Key", "b"}, 400, "idempotency_key"},
		{"bad priority", "agt_x", `{"input":{"type":"text","text":"x"},"idempotency_key":"k","run_options":{"priority":"urgent"}}`, nil, 400, "run_options.priority"},
		{"timeout_ms zero", "agt_x", `{"input":{"type":"text","text":"x"},"idempotency_key":"k","run_options":{"timeout_ms":0}}`, nil, 400, "run_options.timeout_ms"},
		{"max_steps zero", "agt_x", `{"input":{"type":"text","text":"x"},"idempotency_key":"k","run_options":{"max_steps":0}}`, nil, 400, "run_options.max_steps"},
		{"max_steps wrong type", "agt_x", `{"input":{"type":"text","text":"x"},"idempotency_key":"k","run_options":{"max_steps":"3"}}`, nil, 400, "run_options.max_steps"},
		{"unknown agent", "agt_nope", `{"input":{"type":"text","text":"x"},"idempotency_key":"k"}`, nil, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := n.do("POST", "/v1/agents/"+tc.agent+"/runs", "tok-a", tc.body, tc.hdr...)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %v", code, tc.status, body)
			}
			e := body["error"].(map[string]any)
			if tc.status == 400 {
				d, _ := e["details"].(map[string]any)
				if e["code"] != "invalid_request" || (tc.field != "" && d["field"] != tc.field) {
					t.Fatalf("error %v, want field %q", e, tc.field)
				}
			} else if e["code"] != "not_found" {
				t.Fatalf("error %v", e)
			}
		})
	}
}

func TestRun_ToolSetIntersectionAndDryRun(t *testing.T) {
	n := newNode(t, func(c *stackaConfig, ts tenants) {
		ts["tnt_a"].Entitlements.ToolIDsAllowed = []string{"tool.echo", "tool.kv.get", "tool.kv.put"}
	})
	n.putAgent("tok-a", "agt_x", "tool.echo", "tool.kv.get", "tool.kv.put", "tool.http.fetch")
	cases := []struct {
		name    string
		tooling map[string]any
		want    []string
	}{
		{"agent ∩ tenant", nil, []string{"tool.echo", "tool.kv.get", "tool.kv.put"}},
		{"allowlist", map[string]any{"tool_allowlist": []string{"tool.kv.get", "tool.http.fetch"}}, []string{"tool.kv.get"}},
		{"denymap", map[string]any{"tool_denymap": []string{"tool.echo"}}, []string{"tool.kv.get", "tool.kv.put"}},
		{"empty allowlist", map[string]any{"tool_allowlist": []string{}}, []string{}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"input": map[string]any{"type": "text", "text": "x"}, "idempotency_key": fmt.Sprint("k", i),
				"run_options": map[string]any{"dry_run": true}}
			if tc.tooling != nil {
				body["tooling"] = tc.tooling
			}
			code, _, b := n.do("POST", "/v1/agents/agt_x/runs", "tok-a", body)
			if code != 201 {
				t.Fatalf("%d %v", code, b)
			}
			run := b["run"].(map[string]any)
			var got []string
			for _, x := range asSlice(run["tools"]) {
				got = append(got, x.(string))
			}
			if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Fatalf("tools %v, want %v", got, tc.want)
			}
			if run["status"] != "completed" || run["summary"].(map[string]any)["model_calls_total"] != 0.0 {
				t.Fatalf("dry run: %v", run)
			}
		})
	}
	if n.model.calls.Load() != 0 {
		t.Fatal("dry runs called the model")
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func TestEvents_ResumeFromMiddleOfLiveStream(t *testing.T) {
	hook := testkit.StartHeldWebhook(t)
	n := newNode(t)
	if c, _, b := n.do("PUT", "/v1/tools/tool.hook", "tok-a", map[string]any{"tool": map[string]any{"kind": "http",
		"config": map[string]any{"url": hook.URL}}}); c != 201 {
		t.Fatalf("put tool %d %v", c, b)
	}
	n.putAgent("tok-a", "agt_h", "tool.hook")
	id := n.createRun("tok-a", "agt_h", "go")["run_id"].(string)
	ch, _, cancel := n.stream("tok-a", id)
	first := until(t, ch, core.EventToolCallRequested, 10*time.Second)
	cancel() // drop the connection mid-run
	last := first[len(first)-1].id
	ch2, _, cancel2 := n.stream("tok-a", id, "Last-Event-ID", last)
	defer cancel2()
	hook.Release()
	rest := collect(t, ch2, 10*time.Second)
	all := append(first, rest...)
	for i, m := range all {
		if m.data.Event.Sequence != int64(i+1) {
			t.Fatalf("sequence %d at %d: gap or duplicate", m.data.Event.Sequence, i+1)
		}
	}
	if all[len(all)-1].data.Event.Type != core.EventRunCompleted {
		t.Fatalf("last event %s", all[len(all)-1].data.Event.Type)
	}
	// after_sequence on a finished run replays and closes; JSON form lists.
	ch3, _, cancel3 := n.stream("tok-a", id, "X-Ignore", "")
	defer cancel3()
	if got := collect(t, ch3, 5*time.Second); len(got) != len(all) {
		t.Fatalf("replay of finished run: %d events, want %d", len(got), len(all))
	}
	code, _, body := n.do("GET", "/v1/runs/"+id+"/events?after_sequence=5", "tok-a", nil)
	evs := asSlice(body["events"])
	if code != 200 || len(evs) != len(all)-5 || evs[0].(map[string]any)["sequence"] != 6.0 || body["correlation_id"] == "" {
		t.Fatalf("json listing: %d %d events", code, len(evs))
	}
	if c, _, _ := n.do("GET", "/v1/runs/"+id+"/events?after_sequence=x", "tok-a", nil); c != 400 {
		t.Fatalf("bad after_sequence: %d", c)
	}
}

func TestCancel_SlowWebhookStopsWithin2s(t *testing.T) {
	hook := testkit.StartHeldWebhook(t)
	n := newNode(t)
	n.do("PUT", "/v1/tools/tool.slow", "tok-a", map[string]any{"tool": map[string]any{"kind": "http",
		"config": map[string]any{"url": hook.URL, "timeout_ms": 60000}}})
	n.putAgent("tok-a", "agt_slow", "tool.slow")
	id := n.createRun("tok-a", "agt_slow", "wait")["run_id"].(string)
	ch, _, cancel := n.stream("tok-a", id)
	defer cancel()
	until(t, ch, core.EventToolCallRequested, 10*time.Second)
	start := time.Now()
	code, _, body := n.do("POST", "/v1/runs/"+id+":cancel", "tok-a", nil)
	if code != 200 || body["run"].(map[string]any)["status"] != "canceled" {
		t.Fatalf("cancel: %d %v", code, body)
	}
	rest := collect(t, ch, 2*time.Second)
	if rest[len(rest)-1].data.Event.Type != core.EventRunCanceled {
		t.Fatalf("last event %s", rest[len(rest)-1].data.Event.Type)
	}
	testkit.Await(t, "the webhook call aborted within 2 s of the cancel", time.Until(start.Add(2*time.Second)), hook.Gone)
	if c, _, b := n.do("POST", "/v1/runs/"+id+":cancel", "tok-a", nil); c != 409 {
		t.Fatalf("second cancel: %d %v", c, b)
	}
	recs, _ := n.st.ListAudit(context.Background(), "tnt_a", core.AuditFilter{})
	var actions []string
	for _, r := range recs {
		if r.ObjectID == id {
			actions = append(actions, r.Action)
		}
	}
	if !slices.Equal(actions, []string{"run.cancel", "run.create"}) {
		t.Fatalf("audit of the run: %v", actions)
	}
	if c, _, _ := n.do("POST", "/v1/runs/"+id+":explode", "tok-a", nil); c != 404 {
		t.Fatalf("unknown verb: %d", c)
	}
	var st stacka.Stats
	testkit.WaitFor(t, "the worker free", 2*time.Second, func() bool {
		st, _ = n.svc.Stats(context.Background())
		return st.ActiveRuns == 0
	})
	if st.ActiveRuns != 0 {
		t.Fatalf("worker still busy: %+v", st)
	}
}

func TestTenancy_CrossTenantIs404(t *testing.T) {
	n := newNode(t)
	n.putAgent("tok-a", "agt_x", "tool.echo")
	id := n.createRun("tok-a", "agt_x", "secret")["run_id"].(string)
	waitStatus(t, n, "tok-a", id, "completed", 5*time.Second)
	for _, p := range []string{"/v1/runs/" + id, "/v1/runs/" + id + "/events", "/v1/agents/agt_x"} {
		if c, _, b := n.do("GET", p, "tok-b", nil); c != 404 || b["error"].(map[string]any)["code"] != "not_found" {
			t.Fatalf("GET %s as tenant b: %d", p, c)
		}
	}
	if _, resp, cancel := n.stream("tok-b", id); resp.StatusCode != 404 {
		cancel()
		t.Fatalf("stream as tenant b: %d", resp.StatusCode)
	} else {
		cancel()
	}
	if c, _, _ := n.do("POST", "/v1/runs/"+id+":cancel", "tok-b", nil); c != 404 {
		t.Fatalf("cancel as tenant b: %d", c)
	}
	if c, _, _ := n.do("POST", "/v1/agents/agt_x/runs", "tok-b", map[string]any{"input": map[string]any{"type": "text", "text": "x"}, "idempotency_key": "k"}); c != 404 {
		t.Fatalf("run of another tenant's agent: %d", c)
	}
	_, _, list := n.do("GET", "/v1/runs", "tok-b", nil)
	if len(asSlice(list["runs"])) != 0 {
		t.Fatalf("tenant b lists %v", list["runs"])
	}
	_, _, agents := n.do("GET", "/v1/agents", "tok-b", nil)
	if len(asSlice(agents["agents"])) != 0 {
		t.Fatal("tenant b lists tenant a's agents")
	}
}

func TestQuota_RateLimitAnswers429WithRetryAfter(t *testing.T) {
	n := newNode(t, func(c *stackaConfig, ts tenants) {
		ts["tnt_a"].Quotas.Runs = &core.RunQuotas{RunCreateQPS: core.Ptr(0.2), RunCreateBurst: core.Ptr(2)}
		ts["tnt_b"].Quotas.Runs = &core.RunQuotas{MaxConcurrentRuns: core.Ptr(1)}
	})
	n.putAgent("tok-a", "agt_x")
	n.putAgent("tok-b", "agt_x")
	for i := 0; i < 3; i++ {
		code, h, b := n.do("POST", "/v1/agents/agt_x/runs", "tok-a", map[string]any{"input": map[string]any{"type": "text", "text": "x"}, "idempotency_key": fmt.Sprint(i)})
		if i < 2 && code != 201 {
			t.Fatalf("run %d: %d %v", i, code, b)
		}
		if i == 2 {
			e := b["error"].(map[string]any)
			if code != 429 || e["code"] != "rate_limited" || e["retryable"] != true || h.Get("Retry-After") == "" {
				t.Fatalf("over burst: %d %v Retry-After=%q", code, b, h.Get("Retry-After"))
			}
		}
	}
	// max_concurrent_runs: a run blocked in a slow model holds the slot.
	hook := testkit.StartHeldWebhook(t)
	n.do("PUT", "/v1/tools/tool.slow", "tok-b", map[string]any{"tool": map[string]any{"kind": "http", "config": map[string]any{"url": hook.URL}}})
	n.putAgent("tok-b", "agt_slow", "tool.slow")
	n.createRun("tok-b", "agt_slow", "x")
	code, h, _ := n.do("POST", "/v1/agents/agt_x/runs", "tok-b", map[string]any{"input": map[string]any{"type": "text", "text": "x"}, "idempotency_key": "second"})
	if code != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("over max_concurrent_runs: %d", code)
	}
}

func TestRun_ModelFailureFailsRunWithDependencyUnavailable(t *testing.T) {
	n := newNode(t)
	n.putAgent("tok-a", "agt_x", "tool.echo")
	n.model.setFail(fmt.Errorf("dial tcp 127.0.0.1:8081: connection refused"))
	id := n.createRun("tok-a", "agt_x", "x")["run_id"].(string)
	run := waitStatus(t, n, "tok-a", id, "failed", 5*time.Second)
	if e := run["error"].(map[string]any); e["code"] != "dependency_unavailable" || e["retryable"] != true {
		t.Fatalf("error %v", e)
	}
	n.model.setFail(core.Errorf(core.CodeQuotaExceeded, "budget spent"))
	id = n.createRun("tok-a", "agt_x", "y")["run_id"].(string)
	run = waitStatus(t, n, "tok-a", id, "failed", 5*time.Second)
	if e := run["error"].(map[string]any); e["code"] != "quota_exceeded" {
		t.Fatalf("error %v", e)
	}
	code, _, body := n.do("GET", "/v1/runs/"+id+"/events", "tok-a", nil)
	evs := asSlice(body["events"])
	lastEv := evs[len(evs)-1].(map[string]any)
	if code != 200 || lastEv["type"] != core.EventRunFailed {
		t.Fatalf("last event %v", lastEv["type"])
	}
}

func TestRun_MaxStepsAndTimeout(t *testing.T) {
	n := newNode(t)
	n.putAgent("tok-a", "agt_x", "tool.echo")
	code, _, b := n.do("POST", "/v1/agents/agt_x/runs", "tok-a", map[string]any{"input": map[string]any{"type": "text", "text": "x"},
		"idempotency_key": "k1", "run_options": map[string]any{"max_steps": 2}})
	if code != 201 {
		t.Fatal(code)
	}
	run := waitStatus(t, n, "tok-a", b["run"].(map[string]any)["run_id"].(string), "failed", 5*time.Second)
	if e := run["error"].(map[string]any); e["details"].(map[string]any)["reason"] != "max_steps" {
		t.Fatalf("error %v", e)
	}
	hook := testkit.StartHeldWebhook(t) // never answers before the run's timeout
	n.do("PUT", "/v1/tools/tool.slow", "tok-a", map[string]any{"tool": map[string]any{"kind": "http", "config": map[string]any{"url": hook.URL}}})
	n.putAgent("tok-a", "agt_slow", "tool.slow")
	_, _, b = n.do("POST", "/v1/agents/agt_slow/runs", "tok-a", map[string]any{"input": map[string]any{"type": "text", "text": "x"},
		"idempotency_key": "k2", "run_options": map[string]any{"timeout_ms": 300}})
	run = waitStatus(t, n, "tok-a", b["run"].(map[string]any)["run_id"].(string), "failed", 5*time.Second)
	if e := run["error"].(map[string]any); e["code"] != "timeout" {
		t.Fatalf("error %v", e)
	}
}

func TestRuns_ListFiltersAndPagination(t *testing.T) {
	n := newNode(t)
	n.putAgent("tok-a", "agt_x", "tool.echo")
	n.putAgent("tok-a", "agt_y")
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, n.createRun("tok-a", "agt_x", "x")["run_id"].(string))
	}
	yid := n.createRun("tok-a", "agt_y", "y")["run_id"].(string)
	for _, id := range append(ids, yid) {
		waitStatus(t, n, "tok-a", id, "completed", 5*time.Second)
	}
	var got []string
	cursor := ""
	for page := 0; page < 10; page++ {
		q := "/v1/runs?agent_id=agt_x&limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		_, _, b := n.do("GET", q, "tok-a", nil)
		for _, r := range asSlice(b["runs"]) {
			got = append(got, r.(map[string]any)["run_id"].(string))
		}
		if b["next_cursor"] == nil {
			break
		}
		cursor = b["next_cursor"].(string)
	}
	slices.Reverse(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("pages %v, want newest first %v", got, ids)
	}
	_, _, b := n.do("GET", "/v1/runs?status=completed", "tok-a", nil)
	if r := asSlice(b["runs"]); len(r) != 6 || r[0].(map[string]any)["run_id"] != yid {
		t.Fatalf("status filter: %d runs", len(r))
	}
	if c, _, _ := n.do("GET", "/v1/runs?status=bogus", "tok-a", nil); c != 400 {
		t.Fatalf("bad status filter: %d", c)
	}
}

func TestCancel_SlowModelCallIsAborted(t *testing.T) {
	n := newNode(t)
	id, ch := n.runInModelCall()
	start := time.Now()
	if code, _, _ := n.do("POST", "/v1/runs/"+id+":cancel", "tok-a", nil); code != 200 {
		t.Fatalf("cancel: %d", code)
	}
	rest := collect(t, ch, 2*time.Second)
	if len(rest) < 2 || rest[len(rest)-1].data.Event.Type != core.EventRunCanceled || rest[len(rest)-2].data.Event.Type != core.EventStepCompleted {
		t.Fatalf("tail of stream: %v", rest)
	}
	testkit.WaitFor(t, "the in-flight model call aborted within 2 s of the cancel", time.Until(start.Add(2*time.Second)),
		func() bool { return n.model.aborted.Load() > 0 })
}

func TestClose_EndsStreamsAndLeavesRunsResumable(t *testing.T) {
	n := newNode(t)
	id, ch := n.runInModelCall()
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if err := n.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	collect(t, ch, 2*time.Second) // the stream ends without a terminal event
	rec, err := n.st.GetRun(context.Background(), "tnt_a", id)
	if err != nil || rec.Status != core.RunRunning || rec.Open == nil {
		t.Fatalf("after Close the run is %s (open step %v): %v", rec.Status, rec.Open, err)
	}
}

func TestQuota_ToolCallsPerMinuteFailsTheRun(t *testing.T) {
	n := newNode(t, func(c *stackaConfig, ts tenants) {
		ts["tnt_a"].Quotas.Tools = &core.ToolQuotas{ToolCallsPerMinute: core.Ptr(1)}
	})
	n.putAgent("tok-a", "agt_x", "tool.echo")
	first := n.createRun("tok-a", "agt_x", "one")["run_id"].(string)
	waitStatus(t, n, "tok-a", first, "completed", 5*time.Second)
	second := n.createRun("tok-a", "agt_x", "two")["run_id"].(string)
	run := waitStatus(t, n, "tok-a", second, "failed", 5*time.Second)
	e := run["error"].(map[string]any)
	if e["code"] != "rate_limited" || e["retryable"] != true || e["details"].(map[string]any)["kind"] != "tool_calls_per_minute" {
		t.Fatalf("error %v", e)
	}
}

func TestEvents_HeartbeatPing(t *testing.T) {
	n := newNode(t) // HeartbeatInterval is 200 ms in tests
	n.putAgent("tok-a", "agt_x", "tool.echo")
	n.model.delay.Store(int64(20 * time.Second))
	id := n.createRun("tok-a", "agt_x", "x")["run_id"].(string)
	resp := testkit.OpenStream(t, context.Background(), nil, n.srv.URL+"/v1/runs/"+id+"/events", "tok-a")
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), ":") {
				got <- sc.Text()
				return
			}
		}
	}()
	if line := testkit.Await(t, "a heartbeat", 3*time.Second, got); line != ": ping" {
		t.Fatalf("comment line %q", line)
	}
}

// TestRun_FinishedRecordKeepsNoResumeState: a finished run's stored record
// holds no conversation, credentials or instructions (only executing it
// needed them) and no "auth" at all, while the run reads whole and its
// idempotency key still replays it.
func TestRun_FinishedRecordKeepsNoResumeState(t *testing.T) {
	n := newNode(t)
	n.putAgent("tok-a", "agt_x", "tool.echo")
	body := map[string]any{"input": map[string]any{"type": "text", "text": "hi"}, "idempotency_key": "idem_finish"}
	code, _, created := n.do("POST", "/v1/agents/agt_x/runs", "tok-a", body)
	if code != 201 {
		t.Fatalf("create: %d %v", code, created)
	}
	id := created["run"].(map[string]any)["run_id"].(string)
	running, err := n.st.GetRun(context.Background(), "tnt_a", id)
	if err != nil {
		t.Fatal(err)
	}
	if running.Status == core.RunQueued && (running.Auth.Principal.PrincipalID == "" || len(running.Messages) == 0) {
		t.Fatalf("a queued run's record lacks what executing it needs: %+v", running)
	}
	final := waitStatus(t, n, "tok-a", id, "completed", 5*time.Second)
	if final["output"] == nil || final["principal_id"] == "" {
		t.Fatalf("finished run reads %v", final)
	}
	rec, err := n.st.GetRun(context.Background(), "tnt_a", id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Auth.TenantID != "" || rec.Auth.Principal.PrincipalID != "" || rec.Messages != nil || rec.PendingCalls != nil ||
		rec.Open != nil || rec.Instructions != "" {
		t.Fatalf("finished record keeps resume state: %+v", rec)
	}
	raw, _ := json.Marshal(rec)
	if strings.Contains(string(raw), `"auth"`) {
		t.Fatalf("finished record still encodes auth: %s", raw)
	}
	code, h, again := n.do("POST", "/v1/agents/agt_x/runs", "tok-a", body)
	if code != 201 || h.Get("Idempotent-Replayed") != "true" || again["run"].(map[string]any)["run_id"] != id {
		t.Fatalf("replay after finishing: %d %v %v", code, h, again)
	}
}
