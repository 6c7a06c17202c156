package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// StorageHarness is how a storage adapter's test hands itself to
// RunStorageSuite.
type StorageHarness struct {
	// Open returns a fresh, empty storage for one subtest (closed by the
	// harness through t.Cleanup).
	Open func(t *testing.T) core.Storage
	// TamperAudit rewrites the stored audit record behind the ports so the
	// suite can prove verification catches it. Required.
	TamperAudit func(t *testing.T, s core.Storage, tenantID, auditID string) error
}

// RunStorageSuite checks a complete storage adapter: every port of
// core.Storage with the edge cases the node relies on (not_found across
// tenants, conflicts on reused keys, terminal runs refusing appends,
// gapless sequences under concurrent appenders, audit tamper detection,
// the memory byte budget, first-writer-wins records). Every adapter runs
// the same suite.
func RunStorageSuite(t *testing.T, h StorageHarness) {
	t.Run("Tenancy", func(t *testing.T) {
		RunTenancySuite(t, func(t *testing.T) TenancyPorts {
			s := h.Open(t)
			p := TenancyPorts{Tenants: s, Tokens: s, Audit: s,
				Tamper: func(tenantID, auditID string) error { return h.TamperAudit(t, s, tenantID, auditID) }}
			// The per-tenant secret store is optional: an engine without one
			// skips its case (and the node serves tenant secrets from
			// --tenant-secrets-dir only).
			if sp, ok := s.(core.SecretPort); ok {
				p.Secrets = sp
			}
			return p
		})
	})
	t.Run("Agents", func(t *testing.T) { agentSuite(t, h.Open(t)) })
	t.Run("Tools", func(t *testing.T) { toolSuite(t, h.Open(t)) })
	t.Run("Runs", func(t *testing.T) { runSuite(t, h.Open) })
	t.Run("Queue", func(t *testing.T) { queueSuite(t, h.Open(t)) })
	t.Run("Memory", func(t *testing.T) { memorySuite(t, h.Open(t)) })
	t.Run("Usage", func(t *testing.T) { usageSuite(t, h.Open(t)) })
	t.Run("Federation", func(t *testing.T) { federationSuite(t, h.Open) })
	t.Run("Meta", func(t *testing.T) { metaSuite(t, h.Open(t)) })
	t.Run("Retention", func(t *testing.T) { retentionSuite(t, h) })
	t.Run("Limits", func(t *testing.T) { limitsSuite(t, h.Open(t)) })
}

func agentSuite(t *testing.T, s core.Storage) {
	ctx := context.Background()
	a1, err := s.PutAgent(ctx, core.Agent{TenantID: "tnt_a", AgentID: "agt_x", Name: "x", ModelRef: "tier:fast", ToolIDs: []string{"tool.echo"}})
	if err != nil || a1.Version != 1 || a1.CreatedAt.IsZero() {
		t.Fatalf("create: %+v %v", a1, err)
	}
	a2, err := s.PutAgent(ctx, core.Agent{TenantID: "tnt_a", AgentID: "agt_x", Name: "x2", ModelRef: "tier:balanced", ToolIDs: []string{}})
	if err != nil || a2.Version != 2 || !a2.CreatedAt.Equal(a1.CreatedAt) || a2.UpdatedAt.Before(a1.UpdatedAt) {
		t.Fatalf("replace: version %d created %v/%v %v", a2.Version, a2.CreatedAt, a1.CreatedAt, err)
	}
	got, err := s.GetAgent(ctx, "tnt_a", "agt_x")
	if err != nil || got.Version != 2 || got.ModelRef != "tier:balanced" || got.Name != "x2" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.GetAgent(ctx, "tnt_b", "agt_x"); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("other tenant's agent: want not_found, got %v", err)
	}
	if _, err := s.PutAgent(ctx, core.Agent{TenantID: "tnt_b", AgentID: "agt_x", ModelRef: "tier:fast"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.GetAgent(ctx, "tnt_b", "agt_x"); b.Version != 1 {
		t.Fatalf("same agent id in another tenant shares versions: %d", b.Version)
	}
	s.PutAgent(ctx, core.Agent{TenantID: "tnt_a", AgentID: "agt_a", ModelRef: "tier:fast"})
	list, err := s.ListAgents(ctx, "tnt_a")
	if err != nil || len(list) != 2 || list[0].AgentID != "agt_a" || list[1].AgentID != "agt_x" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if empty, err := s.ListAgents(ctx, "tnt_none"); err != nil || empty == nil || len(empty) != 0 {
		t.Fatalf("list of an empty tenant: %v %v (want an empty, non-nil list)", empty, err)
	}
}

func toolSuite(t *testing.T, s core.Storage) {
	ctx := context.Background()
	td := core.ToolDescriptor{TenantID: "tnt_a", ToolID: "tool.web", Name: "web", Kind: "http",
		InputSchema: map[string]any{"type": "object"}, Config: map[string]any{"url": "http://127.0.0.1:1/x"}}
	first, err := s.PutTool(ctx, td)
	if err != nil || first.CreatedAt == nil || first.UpdatedAt == nil {
		t.Fatalf("create: %+v %v", first, err)
	}
	td.Description = "changed"
	second, err := s.PutTool(ctx, td)
	if err != nil || second.CreatedAt == nil || !second.CreatedAt.Equal(*first.CreatedAt) || second.UpdatedAt.Before(*first.UpdatedAt) {
		t.Fatalf("replace: %+v (created_at must be kept from %v) %v", second, first.CreatedAt, err)
	}
	got, err := s.GetTool(ctx, "tnt_a", "tool.web")
	if err != nil || got.Description != "changed" || got.Config["url"] != "http://127.0.0.1:1/x" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.GetTool(ctx, "tnt_b", "tool.web"); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("other tenant's tool: want not_found, got %v", err)
	}
	s.PutTool(ctx, core.ToolDescriptor{TenantID: "tnt_a", ToolID: "tool.alpha", Name: "a", Kind: "http"})
	list, err := s.ListTools(ctx, "tnt_a")
	if err != nil || len(list) != 2 || list[0].ToolID != "tool.alpha" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if other, _ := s.ListTools(ctx, "tnt_b"); len(other) != 0 {
		t.Fatalf("tnt_b sees tools: %+v", other)
	}
}

// NewRunRecord is a queued run of tenant for conformance tests.
func NewRunRecord(tenant, key string) core.RunRecord {
	return core.RunRecord{Run: core.Run{TenantID: tenant, AgentID: "agt_x", RunID: core.NewID(core.PrefixRun), Status: core.RunQueued,
		CreatedAt: core.Now(), PrincipalID: "usr_1", Input: core.RunInput{Type: "text", Text: "hi"}},
		IdempotencyKey: key, BodyHash: "h-" + key, Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
}

func created() []core.EventDraft {
	return []core.EventDraft{{Type: core.EventRunCreated, Payload: core.RunStatusPayload{Status: core.RunQueued}}}
}

func runSuite(t *testing.T, open func(t *testing.T) core.Storage) {
	ctx := context.Background()

	t.Run("CreateSequencesEventsAndAudits", func(t *testing.T) {
		s := open(t)
		audit := core.NewAudit(sysAuth("tnt_a"), "run.create", "run", "x", "success", nil)
		rec, evs, replayed, err := s.CreateRun(ctx, NewRunRecord("tnt_a", "k1"), append(created(),
			core.EventDraft{Type: core.EventRunStarted, StepID: "stp_1", Payload: map[string]any{"n": 1}}), &audit)
		if err != nil || replayed || len(evs) != 2 || rec.LastSequence != 2 {
			t.Fatalf("create: %+v %v %v %v", rec, evs, replayed, err)
		}
		for i, ev := range evs {
			if ev.Sequence != int64(i+1) || !core.HasPrefix(ev.EventID, core.PrefixEvent) || ev.RunID != rec.RunID ||
				ev.TenantID != "tnt_a" || ev.AgentID != "agt_x" || ev.Trace.Traceparent != rec.Traceparent || len(ev.Trace.SpanID) != 16 {
				t.Fatalf("event %d envelope: %+v", i, ev)
			}
		}
		if evs[0].StepID != nil || evs[1].StepID == nil || *evs[1].StepID != "stp_1" {
			t.Fatalf("step ids: %v %v", evs[0].StepID, evs[1].StepID)
		}
		stored, err := s.ListEvents(ctx, "tnt_a", rec.RunID, 0, 0)
		if err != nil || len(stored) != 2 || stored[0].EventID != evs[0].EventID || string(stored[0].Payload) != `{"status":"queued"}` {
			t.Fatalf("stored events: %+v %v", stored, err)
		}
		if recs, _ := s.ListAudit(ctx, "tnt_a", core.AuditFilter{Action: "run.create"}); len(recs) != 1 {
			t.Fatalf("create audit: %d records", len(recs))
		}
		if n, err := s.VerifyAudit(ctx, "tnt_a"); err != nil || n != 1 {
			t.Fatalf("audit chain after create: %d %v", n, err)
		}
		got, err := s.GetRun(ctx, "tnt_a", rec.RunID)
		if err != nil || got.RunID != rec.RunID || got.BodyHash != "h-k1" || got.Input.Text != "hi" || got.LastSequence != 2 {
			t.Fatalf("get: %+v %v", got, err)
		}
		if _, err := s.GetRun(ctx, "tnt_b", rec.RunID); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("other tenant's run: want not_found, got %v", err)
		}
		if _, err := s.ListEvents(ctx, "tnt_b", rec.RunID, 0, 0); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("other tenant's events: want not_found, got %v", err)
		}
		if _, err := s.ListEvents(ctx, "tnt_a", "run_missing", 0, 0); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("unknown run's events: want not_found, got %v", err)
		}
		if after, _ := s.ListEvents(ctx, "tnt_a", rec.RunID, 1, 0); len(after) != 1 || after[0].Sequence != 2 {
			t.Fatalf("after 1: %+v", after)
		}
		if lim, _ := s.ListEvents(ctx, "tnt_a", rec.RunID, 0, 1); len(lim) != 1 || lim[0].Sequence != 1 {
			t.Fatalf("limit 1: %+v", lim)
		}
		// Past the last event: an empty list, not not_found (the run is
		// there), for the run's tenant only.
		if past, err := s.ListEvents(ctx, "tnt_a", rec.RunID, 1000, 0); err != nil || len(past) != 0 {
			t.Fatalf("after the last event: %d events, %v", len(past), err)
		}
		if _, err := s.ListEvents(ctx, "tnt_b", rec.RunID, 1000, 0); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("other tenant's run past its end: want not_found, got %v", err)
		}
	})

	t.Run("IdempotencyReplayConflictAndScope", func(t *testing.T) {
		s := open(t)
		first, _, replayed, err := s.CreateRun(ctx, NewRunRecord("tnt_a", "k"), created(), nil)
		if err != nil || replayed {
			t.Fatal(err, replayed)
		}
		again, evs, replayed, err := s.CreateRun(ctx, NewRunRecord("tnt_a", "k"), created(), nil)
		if err != nil || !replayed || again.RunID != first.RunID || len(evs) != 0 {
			t.Fatalf("replay: %v %v %s %d events", err, replayed, again.RunID, len(evs))
		}
		diff := NewRunRecord("tnt_a", "k")
		diff.BodyHash = "other"
		if _, _, _, err := s.CreateRun(ctx, diff, created(), nil); !core.IsCode(err, core.CodeConflict) {
			t.Fatalf("same key, other body: want conflict, got %v", err)
		}
		found, ok, err := s.FindIdempotent(ctx, "tnt_a", "usr_1", "agt_x", "k")
		if err != nil || !ok || found.RunID != first.RunID {
			t.Fatalf("find: %+v %v %v", found, ok, err)
		}
		for _, probe := range [][3]string{{"tnt_b", "usr_1", "agt_x"}, {"tnt_a", "usr_2", "agt_x"}, {"tnt_a", "usr_1", "agt_y"}} {
			if _, ok, err := s.FindIdempotent(ctx, probe[0], probe[1], probe[2], "k"); ok || err != nil {
				t.Fatalf("key leaks to %v: %v %v", probe, ok, err)
			}
		}
		other, _, replayed, err := s.CreateRun(ctx, NewRunRecord("tnt_b", "k"), created(), nil)
		if err != nil || replayed || other.RunID == first.RunID {
			t.Fatalf("same key in another tenant: %v %v", replayed, err)
		}
		// Concurrent creates with one key make one run.
		var wg sync.WaitGroup
		ids := make([]string, 8)
		errs := make([]error, 8)
		for i := range ids {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r, _, _, err := s.CreateRun(ctx, NewRunRecord("tnt_c", "race"), created(), nil)
				ids[i], errs[i] = r.RunID, err
			}(i)
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil || ids[i] != ids[0] {
				t.Fatalf("concurrent creates: %v / %v", ids, errs)
			}
		}
		if page, _, _ := s.ListRuns(ctx, "tnt_c", core.RunFilter{}); len(page) != 1 {
			t.Fatalf("concurrent creates stored %d runs", len(page))
		}
	})

	t.Run("GaplessSequencesUnderConcurrentAppenders", func(t *testing.T) {
		s := open(t)
		rec, _, _, err := s.CreateRun(ctx, NewRunRecord("tnt_a", "k"), created(), nil)
		if err != nil {
			t.Fatal(err)
		}
		const writers, each = 8, 10
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					_, _, err := s.AdvanceRun(ctx, "tnt_a", rec.RunID, func(r *core.RunRecord) ([]core.EventDraft, error) {
						r.Summary.StepsTotal++
						return []core.EventDraft{{Type: core.EventStepStarted, StepID: "stp_x", Payload: map[string]any{"w": w, "i": i}},
							{Type: core.EventStepCompleted, StepID: "stp_x", Payload: map[string]any{"w": w, "i": i}}}, nil
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
		all, err := s.ListEvents(ctx, "tnt_a", rec.RunID, 0, 0)
		if err != nil || len(all) != 1+writers*each*2 {
			t.Fatalf("%d events, %v", len(all), err)
		}
		seen := map[string]bool{}
		for i, ev := range all {
			if ev.Sequence != int64(i+1) || seen[ev.EventID] {
				t.Fatalf("event %d has sequence %d (or a duplicate id)", i, ev.Sequence)
			}
			seen[ev.EventID] = true
		}
		got, _ := s.GetRun(ctx, "tnt_a", rec.RunID)
		if got.LastSequence != int64(len(all)) || got.Summary.StepsTotal != writers*each {
			t.Fatalf("record after appends: last_sequence %d steps %d", got.LastSequence, got.Summary.StepsTotal)
		}
		// fn's error aborts everything it drafted.
		boom := core.Invalid("x", "refused")
		if _, _, err := s.AdvanceRun(ctx, "tnt_a", rec.RunID, func(r *core.RunRecord) ([]core.EventDraft, error) {
			r.Status = core.RunFailed
			return created(), boom
		}); err != boom {
			t.Fatalf("fn error: %v", err)
		}
		if again, _ := s.GetRun(ctx, "tnt_a", rec.RunID); again.Status != core.RunQueued || again.LastSequence != got.LastSequence {
			t.Fatalf("failed advance leaked: %s %d", again.Status, again.LastSequence)
		}
		if _, _, err := s.AdvanceRun(ctx, "tnt_b", rec.RunID, func(*core.RunRecord) ([]core.EventDraft, error) { return nil, nil }); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("advance through another tenant: %v", err)
		}
	})

	t.Run("SingleWriterAppendAndTerminalRefusal", func(t *testing.T) {
		s := open(t)
		rec, _, _, err := s.CreateRun(ctx, NewRunRecord("tnt_a", "k"), created(), nil)
		if err != nil {
			t.Fatal(err)
		}
		rec.Status = core.RunRunning
		now := core.Now()
		rec.StartedAt = &now
		rec.Open = &core.OpenStep{StepID: "stp_1", Kind: "tool", Name: "tool.echo", StartedAt: now.Add(-time.Second)}
		rec, evs, err := s.AppendRun(ctx, rec, []core.EventDraft{{Type: core.EventRunStarted, Payload: map[string]any{}},
			{Type: core.EventStepStarted, StepID: "stp_1", Payload: map[string]any{}}})
		if err != nil || len(evs) != 2 || evs[1].Sequence != 3 || rec.LastSequence != 3 {
			t.Fatalf("append: %v %+v", err, evs)
		}
		stale := rec
		stale.LastSequence = 2
		if _, _, err := s.AppendRun(ctx, stale, created()); !core.IsCode(err, core.CodeConflict) {
			t.Fatalf("append from a stale sequence: want conflict, got %v", err)
		}
		canceled, cevs, err := s.CancelRun(ctx, "tnt_a", rec.RunID, nil)
		if err != nil || canceled.Status != core.RunCanceled || canceled.CompletedAt == nil || canceled.Open != nil {
			t.Fatalf("cancel: %+v %v", canceled, err)
		}
		if len(cevs) != 2 || cevs[0].Type != core.EventStepCompleted || cevs[1].Type != core.EventRunCanceled || cevs[1].Sequence != 5 {
			t.Fatalf("cancel events: %+v", cevs)
		}
		var sc core.StepCompletedPayload
		if err := json.Unmarshal(cevs[0].Payload, &sc); err != nil || sc.Status != "error" || sc.Name != "tool.echo" || sc.DurationMS < 1000 {
			t.Fatalf("open step closed as %s (%v)", cevs[0].Payload, err)
		}
		if _, _, err := s.AppendRun(ctx, rec, []core.EventDraft{{Type: core.EventStepCompleted, Payload: map[string]any{}}}); err != core.ErrRunFinished {
			t.Fatalf("append to a canceled run: want ErrRunFinished, got %v", err)
		}
		if _, _, err := s.CancelRun(ctx, "tnt_a", rec.RunID, nil); !core.IsCode(err, core.CodeConflict) {
			t.Fatalf("second cancel: want conflict, got %v", err)
		}
		if _, _, err := s.CancelRun(ctx, "tnt_b", rec.RunID, nil); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("cancel through another tenant: want not_found, got %v", err)
		}
		all, _ := s.ListEvents(ctx, "tnt_a", rec.RunID, 0, 0)
		terminal := 0
		for i, ev := range all {
			if ev.Sequence != int64(i+1) {
				t.Fatalf("gap at %d", i)
			}
			if core.EventTerminal(ev.Type) {
				terminal++
			}
		}
		if len(all) != 5 || terminal != 1 {
			t.Fatalf("%d events, %d terminal", len(all), terminal)
		}
		// A run completed by its writer refuses a cancel too.
		r2, _, _, _ := s.CreateRun(ctx, NewRunRecord("tnt_a", "k2"), created(), nil)
		r2.Status = core.RunCompleted
		r2.Output = &core.RunInput{Type: "text", Text: "done"}
		if _, _, err := s.AppendRun(ctx, r2, []core.EventDraft{{Type: core.EventRunCompleted, Payload: map[string]any{"status": "completed"}}}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.CancelRun(ctx, "tnt_a", r2.RunID, nil); !core.IsCode(err, core.CodeConflict) {
			t.Fatalf("cancel of a completed run: %v", err)
		}
		if got, _ := s.GetRun(ctx, "tnt_a", r2.RunID); got.Output == nil || got.Output.Text != "done" {
			t.Fatalf("completed record: %+v", got.Output)
		}
	})

	t.Run("ListNewestFirstPagedAndFiltered", func(t *testing.T) {
		s := open(t)
		var want []string
		for i := 0; i < 7; i++ {
			r := NewRunRecord("tnt_a", fmt.Sprint(i))
			if i%2 == 1 {
				r.AgentID = "agt_y"
			}
			rec, _, _, err := s.CreateRun(ctx, r, append(created(), core.EventDraft{Type: core.EventRunStarted, Payload: map[string]any{}}), nil)
			if err != nil {
				t.Fatal(err)
			}
			want = append([]string{rec.RunID}, want...)
		}
		s.CreateRun(ctx, NewRunRecord("tnt_b", "0"), nil, nil)
		var got []string
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			page, next, err := s.ListRuns(ctx, "tnt_a", core.RunFilter{Limit: 3, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				got = append(got, r.RunID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("paged listing:\n got %v\nwant %v", got, want)
		}
		if ys, _, _ := s.ListRuns(ctx, "tnt_a", core.RunFilter{AgentID: "agt_y"}); len(ys) != 3 {
			t.Fatalf("agent filter: %d", len(ys))
		}
		s.CancelRun(ctx, "tnt_a", want[0], nil)
		if cs, _, _ := s.ListRuns(ctx, "tnt_a", core.RunFilter{Status: core.RunCanceled}); len(cs) != 1 || cs[0].RunID != want[0] {
			t.Fatalf("status filter: %+v", cs)
		}
		if none, next, err := s.ListRuns(ctx, "tnt_none", core.RunFilter{}); err != nil || len(none) != 0 || next != "" || none == nil {
			t.Fatalf("empty tenant: %v %q %v", none, next, err)
		}
	})
}

func queueSuite(t *testing.T, s core.Storage) {
	ctx := context.Background()
	var ids []string
	for i, tenant := range []string{"tnt_a", "tnt_b", "tnt_a"} {
		rec, _, _, err := s.CreateRun(ctx, NewRunRecord(tenant, fmt.Sprint(i)), created(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.RunID)
	}
	done := NewRunRecord("tnt_a", "done")
	done.Status = core.RunCompleted
	if _, _, _, err := s.CreateRun(ctx, done, nil, nil); err != nil {
		t.Fatal(err)
	}
	refs, err := s.ActiveRuns(ctx)
	if err != nil || len(refs) != 3 || refs[0].RunID != ids[0] || refs[1].TenantID != "tnt_b" || refs[2].RunID != ids[2] || refs[0].Status != core.RunQueued {
		t.Fatalf("active (oldest first, terminal creates left out): %+v %v", refs, err)
	}
	// Terminal by cancel, or by the writer, leaves the queue in the same commit.
	s.CancelRun(ctx, "tnt_a", ids[0], nil)
	rec, _ := s.GetRun(ctx, "tnt_b", ids[1])
	rec.Status = core.RunRunning
	rec, _, _ = s.AppendRun(ctx, rec, []core.EventDraft{{Type: core.EventRunStarted, Payload: map[string]any{}}})
	refs, _ = s.ActiveRuns(ctx)
	if len(refs) != 2 || refs[0].RunID != ids[1] || refs[0].Status != core.RunRunning {
		t.Fatalf("after cancel: %+v", refs)
	}
	rec.Status = core.RunFailed
	if _, _, err := s.AppendRun(ctx, rec, []core.EventDraft{{Type: core.EventRunFailed, Payload: map[string]any{}}}); err != nil {
		t.Fatal(err)
	}
	refs, _ = s.ActiveRuns(ctx)
	if len(refs) != 1 || refs[0].RunID != ids[2] {
		t.Fatalf("after failure: %+v", refs)
	}
}

func memorySuite(t *testing.T, s core.Storage) {
	ctx := context.Background()
	it := core.MemoryItem{Namespace: "ns", Key: "k", Value: json.RawMessage(`"hello"`), Metadata: map[string]any{"src": "test"}}
	first, err := s.PutMemory(ctx, "tnt_a", it, 10_000)
	if err != nil || first.CreatedAt.IsZero() {
		t.Fatal(err)
	}
	used, _ := s.MemoryUsage(ctx, "tnt_a")
	if used <= 0 {
		t.Fatalf("usage after a put: %d", used)
	}
	it.Value = json.RawMessage(`"hellp"`)
	second, err := s.PutMemory(ctx, "tnt_a", it, 10_000)
	if err != nil || !second.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("replace: %v created %v vs %v", err, second.CreatedAt, first.CreatedAt)
	}
	if again, _ := s.MemoryUsage(ctx, "tnt_a"); again-used > 8 || used-again > 8 {
		t.Fatalf("replacing counted twice: %d then %d", used, again)
	}
	got, err := s.GetMemory(ctx, "tnt_a", "ns", "k")
	if err != nil || string(got.Value) != `"hellp"` || got.Metadata["src"] != "test" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.GetMemory(ctx, "tnt_b", "ns", "k"); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("other tenant: %v", err)
	}
	if _, err := s.GetMemory(ctx, "tnt_a", "other", "k"); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("other namespace: %v", err)
	}
	if u, _ := s.MemoryUsage(ctx, "tnt_b"); u != 0 {
		t.Fatalf("tnt_b usage %d", u)
	}
	used, _ = s.MemoryUsage(ctx, "tnt_a")
	big := core.MemoryItem{Namespace: "ns", Key: "big", Value: json.RawMessage(`"` + strings.Repeat("x", 100) + `"`)}
	_, err = s.PutMemory(ctx, "tnt_a", big, used+50)
	if !core.IsCode(err, core.CodeQuotaExceeded) {
		t.Fatalf("over budget: want quota_exceeded, got %v", err)
	}
	if _, err := s.GetMemory(ctx, "tnt_a", "ns", "big"); !core.IsCode(err, core.CodeNotFound) {
		t.Fatal("refused item was stored")
	}
	if after, _ := s.MemoryUsage(ctx, "tnt_a"); after != used {
		t.Fatalf("refused put moved usage %d → %d", used, after)
	}
	// Namespace listing does not leak a namespace that shares a prefix.
	s.PutMemory(ctx, "tnt_a", core.MemoryItem{Namespace: "ns2", Key: "k", Value: json.RawMessage(`1`)}, 0)
	s.PutMemory(ctx, "tnt_a", core.MemoryItem{Namespace: "ns", Key: "a", Value: json.RawMessage(`2`)}, 0)
	list, err := s.ListMemory(ctx, "tnt_a", "ns")
	if err != nil || len(list) != 2 || list[0].Key != "a" || list[1].Key != "k" {
		t.Fatalf("list ns: %+v %v", list, err)
	}
	// Concurrent writers never overshoot the budget together.
	var wg sync.WaitGroup
	const budget = 2000
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, _ = s.PutMemory(ctx, "tnt_q", core.MemoryItem{Namespace: "ns", Key: fmt.Sprint(i), Value: json.RawMessage(`"` + strings.Repeat("y", 300) + `"`)}, budget)
		}(i)
	}
	wg.Wait()
	u, _ := s.MemoryUsage(ctx, "tnt_q")
	items, _ := s.ListMemory(ctx, "tnt_q", "ns")
	if u > budget || len(items) == 0 || len(items) > 5 {
		t.Fatalf("concurrent puts: usage %d of %d with %d items", u, budget, len(items))
	}
}

func usageSuite(t *testing.T, s core.Storage) {
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 17, 30, 0, 0, time.UTC)
	day := core.UsagePeriod(core.WindowDay, at)
	if zero, err := s.GetUsage(ctx, "tnt_a", core.WindowDay, day); err != nil || zero.TotalTokens != 0 || zero.TenantID != "tnt_a" || zero.Period != day {
		t.Fatalf("unsettled entry: %+v %v", zero, err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := core.UsageDelta{TenantID: "tnt_a", Window: core.WindowDay, Period: day, Requests: 1, InputTokens: 10, OutputTokens: 5, CostUSD: 0.5, At: at}
			if err := s.RecordUsage(ctx, []core.UsageDelta{d}, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	rec, err := s.GetUsage(ctx, "tnt_a", core.WindowDay, day)
	if err != nil || rec.Requests != 16 || rec.TotalTokens != 240 || rec.CostUSD != 8 || rec.Period != "2026-11-25" || !rec.UpdatedAt.Equal(at) {
		t.Fatalf("record = %+v %v, want 16 requests, 240 tokens, $8", rec, err)
	}
	if other, _ := s.GetUsage(ctx, "tnt_b", core.WindowDay, day); other.TotalTokens != 0 {
		t.Fatalf("tenant b sees %+v", other)
	}
	hour := core.UsagePeriod(core.WindowHour, at)
	first := core.ModelReplay{TenantID: "tnt_a", RequestID: "req_1", Operation: "chat", Response: json.RawMessage(`{"n":1}`)}
	second := first
	second.Response = json.RawMessage(`{"n":2}`)
	if err := s.RecordUsage(ctx, []core.UsageDelta{{TenantID: "tnt_a", Window: core.WindowHour, Period: hour, Requests: 1, At: at}}, []core.ModelReplay{first}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordUsage(ctx, nil, []core.ModelReplay{second}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetReplay(ctx, "tnt_a", "req_1")
	if err != nil || string(got.Response) != `{"n":1}` {
		t.Fatalf("replay = %s, %v; want the first answer", got.Response, err)
	}
	if _, err := s.GetReplay(ctx, "tnt_b", "req_1"); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("other tenant's replay: err = %v, want not_found", err)
	}
	list, err := s.ListUsage(ctx, "tnt_a", 0)
	if err != nil || len(list) != 2 || list[0].Window != core.WindowDay || list[1].Window != core.WindowHour {
		t.Fatalf("ListUsage = %+v, %v; want the day then the hour entry", list, err)
	}
	if one, _ := s.ListUsage(ctx, "tnt_a", 1); len(one) != 1 {
		t.Fatalf("limit: %d", len(one))
	}
}

func federationSuite(t *testing.T, open func(t *testing.T) core.Storage) {
	ctx := context.Background()
	t.Run("PeerRegistry", func(t *testing.T) {
		s := open(t)
		p := core.Peer{StackID: "stk_b", FederationURL: "http://b", PublicKey: "ed25519:x", TrustedTenants: []string{"tnt_a"}}
		created, err := s.PutPeer(ctx, p)
		if err != nil || !created {
			t.Fatalf("first put: %v %v", created, err)
		}
		first, _ := s.GetPeer(ctx, "stk_b")
		p.Region = "eu"
		if created, err := s.PutPeer(ctx, p); err != nil || created {
			t.Fatalf("replace: %v %v", created, err)
		}
		got, err := s.GetPeer(ctx, "stk_b")
		if err != nil || got.Region != "eu" || !got.CreatedAt.Equal(first.CreatedAt) {
			t.Fatalf("get: %+v %v", got, err)
		}
		if _, err := s.PutPeer(ctx, core.Peer{}); !core.IsCode(err, core.CodeInvalidRequest) {
			t.Fatalf("empty stack_id: %v", err)
		}
		s.PutPeer(ctx, core.Peer{StackID: "stk_a"})
		if list, _ := s.ListPeers(ctx); len(list) != 2 || list[0].StackID != "stk_a" {
			t.Fatalf("list: %+v", list)
		}
		if _, err := s.DeletePeer(ctx, "stk_b"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeletePeer(ctx, "stk_b"); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := s.GetPeer(ctx, "stk_b"); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
	})
	t.Run("ForwardIndexFirstWriterWinsAndTenantScoped", func(t *testing.T) {
		s := open(t)
		if _, found, err := s.GetForward(ctx, "tnt_a", "idem/1"); found || err != nil {
			t.Fatalf("empty index: %v %v", found, err)
		}
		rec := core.ForwardRecord{TenantID: "tnt_a", IdempotencyKey: "idem/1", RemoteStackID: "stk_b", Status: "queued"}
		audit := core.AuditRecord{TenantID: "tnt_a", Action: "federation.forward", ObjectID: "run_1", Outcome: "success"}
		var wg sync.WaitGroup
		got := make([]core.ForwardRecord, 8)
		for i := range got {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r := rec
				r.RemoteRunID = core.NewID(core.PrefixRun)
				got[i], _ = s.PutForward(ctx, r, &audit)
			}(i)
		}
		wg.Wait()
		for _, g := range got[1:] {
			if g.RemoteRunID == "" || g.RemoteRunID != got[0].RemoteRunID {
				t.Fatalf("writers disagree: %s vs %s", g.RemoteRunID, got[0].RemoteRunID)
			}
		}
		stored, found, err := s.GetForward(ctx, "tnt_a", "idem/1")
		if err != nil || !found || stored.RemoteRunID != got[0].RemoteRunID || stored.CreatedAt.IsZero() {
			t.Fatalf("get: %+v %v %v", stored, found, err)
		}
		if _, found, _ := s.GetForward(ctx, "tnt_b", "idem/1"); found {
			t.Fatal("another tenant sees the key")
		}
		if r, err := s.ForwardByRemoteRun(ctx, "tnt_a", stored.RemoteRunID); err != nil || r.IdempotencyKey != "idem/1" {
			t.Fatalf("by remote run: %+v %v", r, err)
		}
		if _, err := s.ForwardByRemoteRun(ctx, "tnt_b", stored.RemoteRunID); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("another tenant finds the run: %v", err)
		}
		if recs, _ := s.ListAudit(ctx, "tnt_a", core.AuditFilter{Action: "federation.forward"}); len(recs) != 1 {
			t.Fatalf("audit records %d, want 1 (only the winning write)", len(recs))
		}
		if _, err := s.PutForward(ctx, core.ForwardRecord{TenantID: "tnt_a"}, nil); err == nil {
			t.Fatal("forward without key and run accepted")
		}
	})
	t.Run("SeenAssertionIDs", func(t *testing.T) {
		s := open(t)
		exp := time.Now().Add(time.Minute)
		steps := []struct {
			iss, jti  string
			exp       time.Time
			wantFresh bool
		}{
			{"stk_a", "j1", exp, true},
			{"stk_a", "j1", exp, false},                          // replay
			{"stk_c", "j1", exp, true},                           // other issuer
			{"stk_a", "old", time.Now().Add(-time.Hour), true},   // recorded, already expired
			{"stk_a", "old", time.Now().Add(time.Minute), true},  // an expired entry no longer blocks
			{"stk_a", "old", time.Now().Add(time.Minute), false}, // but the new one does
		}
		for i, tc := range steps {
			fresh, err := s.MarkJTI(ctx, tc.iss, tc.jti, tc.exp)
			if err != nil || fresh != tc.wantFresh {
				t.Fatalf("step %d (%s/%s): fresh %v err %v, want %v", i, tc.iss, tc.jti, fresh, err, tc.wantFresh)
			}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		freshN := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if f, err := s.MarkJTI(ctx, "stk_r", "race", exp); err == nil && f {
					mu.Lock()
					freshN++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if freshN != 1 {
			t.Fatalf("one assertion id accepted %d times concurrently", freshN)
		}
	})
	t.Run("IngestedEventsDedupeConflictAndOrder", func(t *testing.T) {
		s := open(t)
		ev := func(tenant, run, id string, seq int64) core.Event {
			return core.Event{EventID: id, Sequence: seq, Type: core.EventStepStarted, TenantID: tenant, RunID: run, Time: core.Now(), Payload: json.RawMessage(`{}`)}
		}
		batch := []core.Event{ev("tnt_a", "run_1", "evt_2", 2), ev("tnt_a", "run_1", "evt_1", 1), ev("tnt_a", "run_1", "evt_1", 1),
			ev("tnt_a", "run_1", "evt_other", 2), ev("tnt_b", "run_1", "evt_1", 1)}
		out, err := s.PutEvents(ctx, "stk_b", batch)
		if err != nil {
			t.Fatal(err)
		}
		want := []core.IngestOutcome{core.IngestStored, core.IngestStored, core.IngestDuplicate, core.IngestConflict, core.IngestStored}
		for i := range want {
			if out[i] != want[i] {
				t.Fatalf("outcome %d = %v, want %v", i, out[i], want[i])
			}
		}
		got, _ := s.ListIngestedEvents(ctx, "tnt_a", "run_1", 0)
		if len(got) != 2 || got[0].EventID != "evt_1" || got[1].EventID != "evt_2" {
			t.Fatalf("list: %+v", got)
		}
		if got, _ := s.ListIngestedEvents(ctx, "tnt_a", "run_1", 1); len(got) != 1 || got[0].Sequence != 2 {
			t.Fatalf("after 1: %+v", got)
		}
		if got, _ := s.ListIngestedEvents(ctx, "tnt_b", "run_1", 0); len(got) != 1 {
			t.Fatalf("tnt_b: %+v", got)
		}
		s.PutEvents(ctx, "stk_b", []core.Event{ev("tnt_a", "run_10", "evt_10", 1)})
		if got, _ := s.ListIngestedEvents(ctx, "tnt_a", "run_1", 0); len(got) != 2 {
			t.Fatalf("prefix leak: %+v", got)
		}
		if none, err := s.ListIngestedEvents(ctx, "tnt_a", "run_none", 0); err != nil || none == nil || len(none) != 0 {
			t.Fatalf("unknown run: %v %v", none, err)
		}
	})
}

func metaSuite(t *testing.T, s core.Storage) {
	ctx := context.Background()
	if v, err := s.GetMeta(ctx, core.MetaStackID); err != nil || v != "" {
		t.Fatalf("unset meta: %q %v", v, err)
	}
	for _, v := range []string{"stk_1", "stk_2"} {
		if err := s.SetMeta(ctx, core.MetaStackID, v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetMeta(ctx, core.MetaStackID); err != nil || got != v {
			t.Fatalf("meta: %q %v, want %q", got, err, v)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if d := s.Describe(); d == "" || strings.Contains(d, "secret") {
		t.Fatalf("describe: %q", d)
	}
}
