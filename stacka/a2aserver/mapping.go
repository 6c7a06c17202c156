package a2aserver

import (
	"encoding/json"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/agentos/agentos/core"
)

// Metadata keys AgentOS puts on tasks and updates.
const (
	// MetaSequence is the run event sequence an update comes from (the
	// resume point of SubscribeToTask), or on a task the sequence its
	// snapshot reflects.
	MetaSequence = "agentos.sequence"
	// MetaEventType is the run event type an update comes from.
	MetaEventType = "agentos.event_type"
)

// OutputArtifactID is the artifact a completed run's output is.
const OutputArtifactID = "output"

// stateOf is the task state of a run status.
func stateOf(status string) a2a.TaskState {
	switch status {
	case core.RunQueued:
		return a2a.TaskStateSubmitted
	case core.RunRunning:
		return a2a.TaskStateWorking
	case core.RunCompleted:
		return a2a.TaskStateCompleted
	case core.RunFailed:
		return a2a.TaskStateFailed
	case core.RunCanceled:
		return a2a.TaskStateCanceled
	}
	return a2a.TaskStateUnspecified
}

// runStatusOf is the run status of a task state, for listing filters.
func runStatusOf(s a2a.TaskState) (string, bool) {
	for _, st := range []string{core.RunQueued, core.RunRunning, core.RunCompleted, core.RunFailed, core.RunCanceled} {
		if stateOf(st) == s {
			return st, true
		}
	}
	return "", false
}

// contextOf is the task's context id: the run's session id, or the run id
// for a run created without one.
func contextOf(r core.Run) string {
	if r.Context != nil && r.Context.SessionID != "" {
		return r.Context.SessionID
	}
	return r.RunID
}

func outputArtifact(text string) *a2a.Artifact {
	return &a2a.Artifact{ID: OutputArtifactID, Name: "output", Parts: a2a.ContentParts{a2a.NewTextPart(text)}}
}

func errorMessage(info a2a.TaskInfo, id string, e *core.ErrorBody) *a2a.Message {
	m := a2a.NewMessageForTask(a2a.MessageRoleAgent, info, a2a.NewTextPart(e.Message),
		a2a.NewDataPart(map[string]any{"error": e}))
	m.ID = id
	return m
}

// taskOf is the task a run is. historyLength, when set, keeps that many
// most recent history messages (0: none).
func taskOf(r core.Run, historyLength *int) *a2a.Task {
	info := a2a.TaskInfo{TaskID: a2a.TaskID(r.RunID), ContextID: contextOf(r)}
	ts := r.CreatedAt
	switch {
	case r.CompletedAt != nil:
		ts = *r.CompletedAt
	case r.StartedAt != nil:
		ts = *r.StartedAt
	}
	t := &a2a.Task{ID: info.TaskID, ContextID: info.ContextID,
		Status:   a2a.TaskStatus{State: stateOf(r.Status), Timestamp: &ts},
		Metadata: map[string]any{MetaSequence: r.LastSequence, "agentos.agent_id": r.AgentID, "agentos.events_url": r.EventsURL}}
	in := a2a.NewMessageForTask(a2a.MessageRoleUser, info, a2a.NewTextPart(r.Input.Text))
	in.ID = r.RunID + ":input"
	if r.Context != nil {
		if id, ok := r.Context.Metadata["a2a_message_id"].(string); ok && id != "" {
			in.ID = id
		}
	}
	t.History = []*a2a.Message{in}
	if r.Status == core.RunCompleted && r.Output != nil {
		t.Artifacts = []*a2a.Artifact{outputArtifact(r.Output.Text)}
		out := a2a.NewMessageForTask(a2a.MessageRoleAgent, info, a2a.NewTextPart(r.Output.Text))
		out.ID = r.RunID + ":output"
		t.History = append(t.History, out)
	}
	if r.Status == core.RunFailed && r.Error != nil {
		t.Status.Message = errorMessage(info, r.RunID+":error", r.Error)
	}
	if historyLength != nil {
		if n := *historyLength; n >= 0 && n < len(t.History) {
			t.History = t.History[len(t.History)-n:]
		}
	}
	return t
}

// updatesOf is what one run event becomes on an A2A stream: a status
// update (working, with the event as a data part of its message, for the
// steps in between), plus the output artifact before a completed status.
func updatesOf(info a2a.TaskInfo, ev core.Event) []a2a.Event {
	meta := map[string]any{MetaSequence: ev.Sequence, MetaEventType: ev.Type}
	status := func(state a2a.TaskState, msg *a2a.Message) *a2a.TaskStatusUpdateEvent {
		up := a2a.NewStatusUpdateEvent(info, state, msg)
		ts := ev.Time
		up.Status.Timestamp = &ts
		up.Metadata = meta
		return up
	}
	var payload map[string]any
	_ = json.Unmarshal(ev.Payload, &payload)
	switch ev.Type {
	case core.EventRunCreated:
		return []a2a.Event{status(a2a.TaskStateSubmitted, nil)}
	case core.EventRunStarted:
		return []a2a.Event{status(a2a.TaskStateWorking, nil)}
	case core.EventRunCompleted:
		var out struct {
			Output *core.RunInput `json:"output"`
		}
		_ = json.Unmarshal(ev.Payload, &out)
		var ups []a2a.Event
		if out.Output != nil {
			art := a2a.NewArtifactUpdateEvent(info, OutputArtifactID, a2a.NewTextPart(out.Output.Text))
			art.Artifact.Name = "output"
			art.LastChunk = true
			art.Metadata = meta
			ups = append(ups, art)
		}
		return append(ups, status(a2a.TaskStateCompleted, nil))
	case core.EventRunFailed:
		var f struct {
			Error *core.ErrorBody `json:"error"`
		}
		_ = json.Unmarshal(ev.Payload, &f)
		var msg *a2a.Message
		if f.Error != nil {
			msg = errorMessage(info, ev.EventID, f.Error)
		}
		return []a2a.Event{status(a2a.TaskStateFailed, msg)}
	case core.EventRunCanceled:
		return []a2a.Event{status(a2a.TaskStateCanceled, nil)}
	}
	msg := a2a.NewMessageForTask(a2a.MessageRoleAgent, info, a2a.NewDataPart(map[string]any{"event": ev}))
	msg.ID = ev.EventID
	return []a2a.Event{status(a2a.TaskStateWorking, msg)}
}
