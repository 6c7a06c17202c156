package a2aserver

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/agentos/agentos/core"
)

func TestPublicCardPath(t *testing.T) {
	cases := map[string]bool{
		"/a2a/tenants/tnt_demo/agents/agt_x/.well-known/agent-card.json":         true,
		"/a2a/tenants//agents/agt_x/.well-known/agent-card.json":                 false,
		"/a2a/tenants/tnt_demo/agents//.well-known/agent-card.json":              false,
		"/a2a/tenants/tnt_demo/other/agt_x/.well-known/agent-card.json":          false,
		"/a2a/tenants/tnt_demo/agents/agt_x/extra/.well-known/agent-card.json":   false,
		"/a2a/tenants/tnt_demo/agents/a/../../../v1/.well-known/agent-card.json": false,
		"/a2a/agents/agt_x/.well-known/agent-card.json":                          false,
		"/a2a/tenants/tnt_demo/agents/agt_x":                                     false,
		"/v1/agents":                                                             false,
	}
	for p, want := range cases {
		if got := PublicCardPath(p); got != want {
			t.Errorf("PublicCardPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestTaskOf_RunStatusesAndHistory(t *testing.T) {
	now := time.Date(2026, 11, 25, 17, 30, 0, 0, time.UTC)
	base := core.Run{RunID: "run_1", AgentID: "agt_x", CreatedAt: now, LastSequence: 9, Input: core.RunInput{Type: "text", Text: "hi"},
		Context: &core.RunContext{SessionID: "ses_1", Metadata: map[string]any{"a2a_message_id": "m-1"}}}
	cases := []struct {
		status    string
		state     a2a.TaskState
		artifacts int
		history   int
	}{
		{core.RunQueued, a2a.TaskStateSubmitted, 0, 1},
		{core.RunRunning, a2a.TaskStateWorking, 0, 1},
		{core.RunCompleted, a2a.TaskStateCompleted, 1, 2},
		{core.RunFailed, a2a.TaskStateFailed, 0, 1},
		{core.RunCanceled, a2a.TaskStateCanceled, 0, 1},
	}
	for _, tc := range cases {
		r := base
		r.Status = tc.status
		if tc.status == core.RunCompleted {
			r.Output = &core.RunInput{Type: "text", Text: "done"}
		}
		if tc.status == core.RunFailed {
			r.Error = &core.ErrorBody{Code: "timeout", Message: "too slow"}
		}
		task := taskOf(r, nil)
		if task.ID != "run_1" || task.ContextID != "ses_1" || task.Status.State != tc.state ||
			len(task.Artifacts) != tc.artifacts || len(task.History) != tc.history || task.Metadata[MetaSequence] != int64(9) {
			t.Errorf("%s: task %+v", tc.status, task)
		}
		if task.History[0].ID != "m-1" || task.History[0].Parts[0].Text() != "hi" {
			t.Errorf("%s: first history message %+v", tc.status, task.History[0])
		}
		if tc.status == core.RunFailed && (task.Status.Message == nil || task.Status.Message.Parts[0].Text() != "too slow") {
			t.Errorf("failed task without the error message: %+v", task.Status)
		}
	}
	zero, one := 0, 1
	r := base
	r.Status, r.Output = core.RunCompleted, &core.RunInput{Type: "text", Text: "done"}
	if h := taskOf(r, &zero).History; len(h) != 0 {
		t.Errorf("historyLength 0 kept %d", len(h))
	}
	if h := taskOf(r, &one).History; len(h) != 1 || h[0].Parts[0].Text() != "done" {
		t.Errorf("historyLength 1 kept %+v", h)
	}
	r.Context = nil
	if got := taskOf(r, nil).ContextID; got != "run_1" {
		t.Errorf("context of a run without a session: %q", got)
	}
}

func TestUpdatesOf_EveryEventBecomesUpdates(t *testing.T) {
	info := a2a.TaskInfo{TaskID: "run_1", ContextID: "ses_1"}
	ev := func(seq int64, typ string, payload any) core.Event {
		raw, _ := json.Marshal(payload)
		return core.Event{EventID: "evt_" + typ, Sequence: seq, Type: typ, RunID: "run_1", Payload: raw}
	}
	cases := []struct {
		ev    core.Event
		kinds []string
		state a2a.TaskState
	}{
		{ev(1, core.EventRunCreated, map[string]any{"status": "queued"}), []string{"status"}, a2a.TaskStateSubmitted},
		{ev(2, core.EventRunStarted, map[string]any{"status": "running"}), []string{"status"}, a2a.TaskStateWorking},
		{ev(3, core.EventToolCallCompleted, map[string]any{"tool_id": "tool.echo"}), []string{"status"}, a2a.TaskStateWorking},
		{ev(4, core.EventRunCompleted, map[string]any{"status": "completed", "output": map[string]any{"type": "text", "text": "done"}}),
			[]string{"artifact", "status"}, a2a.TaskStateCompleted},
		{ev(5, core.EventRunFailed, map[string]any{"status": "failed", "error": map[string]any{"code": "timeout", "message": "slow"}}),
			[]string{"status"}, a2a.TaskStateFailed},
		{ev(6, core.EventRunCanceled, map[string]any{"status": "canceled"}), []string{"status"}, a2a.TaskStateCanceled},
	}
	for _, tc := range cases {
		ups := updatesOf(info, tc.ev)
		if len(ups) != len(tc.kinds) {
			t.Fatalf("%s: %d updates, want %v", tc.ev.Type, len(ups), tc.kinds)
		}
		for i, up := range ups {
			switch u := up.(type) {
			case *a2a.TaskArtifactUpdateEvent:
				if tc.kinds[i] != "artifact" || u.Artifact.ID != OutputArtifactID || u.Artifact.Parts[0].Text() != "done" || !u.LastChunk {
					t.Errorf("%s: artifact %+v", tc.ev.Type, u)
				}
				if u.Metadata[MetaSequence] != tc.ev.Sequence {
					t.Errorf("%s: artifact without its sequence", tc.ev.Type)
				}
			case *a2a.TaskStatusUpdateEvent:
				if tc.kinds[i] != "status" || u.Status.State != tc.state || u.Metadata[MetaSequence] != tc.ev.Sequence ||
					u.Metadata[MetaEventType] != tc.ev.Type || u.TaskID != "run_1" || u.ContextID != "ses_1" {
					t.Errorf("%s: status %+v", tc.ev.Type, u)
				}
				if tc.ev.Type == core.EventToolCallCompleted {
					d, _ := u.Status.Message.Parts[0].Data().(map[string]any)
					if e, _ := d["event"].(core.Event); e.Type != core.EventToolCallCompleted {
						t.Errorf("tool event not carried in the update: %+v", d)
					}
				}
			default:
				t.Errorf("%s: unexpected %T", tc.ev.Type, up)
			}
		}
	}
}
