package a2aserver

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"strconv"
	"strings"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
	"github.com/agentos/agentos/core"
)

// ResumeHeader names the header a subscriber may send with SubscribeToTask
// to continue after the last update it saw: the "agentos.sequence" of that
// update. The stream then replays every update after it before following
// live ones, so a cut stream loses nothing. Without it, the stream follows
// from the task snapshot it starts with.
const ResumeHeader = "Last-Event-ID"

// handler maps the A2A operations onto runs (a2asrv.RequestHandler).
type handler struct{ runs Runs }

var _ a2asrv.RequestHandler = (*handler)(nil)

// caller returns the credential and the agent of the endpoint, and checks
// the request's tenant field: empty or the credential's own (another
// tenant is refused as X-Tenant-Id is on the REST surface).
func (h *handler) caller(ctx context.Context, tenant string) (core.Auth, core.Agent, error) {
	a, ok := core.AuthFrom(ctx)
	ag, ok2 := agentFrom(ctx)
	if !ok || !ok2 {
		return a, ag, a2a.ErrUnauthenticated
	}
	if tenant != "" && tenant != a.TenantID {
		return a, ag, a2a.NewError(a2a.ErrUnauthorized, "tenant "+tenant+" is not the credential's tenant")
	}
	return a, ag, nil
}

// rpcError turns a contract error into the A2A error the SDK encodes,
// keeping the AgentOS error object in the details.
func rpcError(err error, task bool) error {
	var ae *a2a.Error
	if errors.As(err, &ae) {
		return err
	}
	for _, sentinel := range []error{a2a.ErrTaskNotFound, a2a.ErrUnauthorized, a2a.ErrUnauthenticated, a2a.ErrInvalidParams,
		a2a.ErrUnsupportedOperation, a2a.ErrTaskNotCancelable} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	ce := core.AsError(err)
	var base error
	switch ce.Code {
	case core.CodeNotFound:
		base = a2a.ErrInvalidParams
		if task {
			base = a2a.ErrTaskNotFound
		}
	case core.CodeInvalidRequest:
		base = a2a.ErrInvalidParams
	case core.CodeUnauthorized:
		base = a2a.ErrUnauthenticated
	case core.CodeForbidden, core.CodePolicyBlocked:
		base = a2a.ErrUnauthorized
	case core.CodeConflict:
		base = a2a.ErrInvalidRequest
	default:
		base = a2a.ErrInternalError
	}
	details := ce.Details
	if details == nil {
		details = map[string]any{}
	}
	return a2a.NewError(base, ce.Message).WithDetails(map[string]any{"agentos_error": map[string]any{
		"code": ce.Code, "message": ce.Message, "retryable": ce.Retryable, "details": details}})
}

// taskRun fetches run id of the caller's tenant and endpoint agent.
func (h *handler) taskRun(ctx context.Context, a core.Auth, ag core.Agent, id a2a.TaskID) (core.Run, error) {
	if id == "" {
		return core.Run{}, a2a.NewError(a2a.ErrInvalidParams, "id is required")
	}
	run, err := h.runs.GetRun(ctx, a, string(id))
	if err != nil {
		return run, rpcError(err, true)
	}
	if run.AgentID != ag.AgentID {
		// A run of another agent of the tenant is not a task of this one.
		return run, a2a.ErrTaskNotFound
	}
	return run, nil
}

// GetTask answers the run as a task.
func (h *handler) GetTask(ctx context.Context, req *a2a.GetTaskRequest) (*a2a.Task, error) {
	a, ag, err := h.caller(ctx, req.Tenant)
	if err != nil {
		return nil, err
	}
	run, err := h.taskRun(ctx, a, ag, req.ID)
	if err != nil {
		return nil, err
	}
	return taskOf(run, req.HistoryLength), nil
}

// ListTasks lists the endpoint agent's runs, newest first, a page at a
// time (pageToken is the run listing's cursor).
func (h *handler) ListTasks(ctx context.Context, req *a2a.ListTasksRequest) (*a2a.ListTasksResponse, error) {
	a, ag, err := h.caller(ctx, req.Tenant)
	if err != nil {
		return nil, err
	}
	f := core.RunFilter{AgentID: ag.AgentID, Cursor: req.PageToken, Limit: req.PageSize}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if req.Status != "" && req.Status != a2a.TaskStateUnspecified {
		st, ok := runStatusOf(req.Status)
		if !ok {
			return &a2a.ListTasksResponse{Tasks: []*a2a.Task{}, PageSize: f.Limit}, nil
		}
		f.Status = st
	}
	runs, next, err := h.runs.ListRuns(ctx, a, f)
	if err != nil {
		return nil, rpcError(err, false)
	}
	zero := 0
	hl := req.HistoryLength
	if hl == nil {
		hl = &zero
	}
	out := &a2a.ListTasksResponse{Tasks: []*a2a.Task{}, PageSize: f.Limit, NextPageToken: next}
	for _, r := range runs {
		t := taskOf(r, hl)
		if req.ContextID != "" && t.ContextID != req.ContextID {
			continue
		}
		if req.StatusTimestampAfter != nil && t.Status.Timestamp != nil && !t.Status.Timestamp.After(*req.StatusTimestampAfter) {
			continue
		}
		if !req.IncludeArtifacts {
			t.Artifacts = nil
		}
		out.Tasks = append(out.Tasks, t)
	}
	out.TotalSize = len(out.Tasks)
	return out, nil
}

// CancelTask cancels the run as POST /v1/runs/{id}:cancel does.
func (h *handler) CancelTask(ctx context.Context, req *a2a.CancelTaskRequest) (*a2a.Task, error) {
	a, ag, err := h.caller(ctx, req.Tenant)
	if err != nil {
		return nil, err
	}
	if _, err := h.taskRun(ctx, a, ag, req.ID); err != nil {
		return nil, err
	}
	run, err := h.runs.CancelRun(ctx, a, string(req.ID))
	if core.IsCode(err, core.CodeConflict) {
		return nil, a2a.NewError(a2a.ErrTaskNotCancelable, core.AsError(err).Message)
	}
	if err != nil {
		return nil, rpcError(err, true)
	}
	return taskOf(run, nil), nil
}

// create starts a run for a SendMessage request and returns it.
func (h *handler) create(ctx context.Context, req *a2a.SendMessageRequest) (core.Auth, core.Run, error) {
	a, ag, err := h.caller(ctx, req.Tenant)
	if err != nil {
		return a, core.Run{}, err
	}
	m := req.Message
	if m == nil {
		return a, core.Run{}, a2a.NewError(a2a.ErrInvalidParams, "message is required")
	}
	if m.ID == "" {
		return a, core.Run{}, a2a.NewError(a2a.ErrInvalidParams, "message.messageId is required")
	}
	if m.TaskID != "" {
		// A run takes one input; continuing a task is not something it does.
		if _, err := h.taskRun(ctx, a, ag, m.TaskID); err != nil {
			return a, core.Run{}, err
		}
		return a, core.Run{}, a2a.NewError(a2a.ErrUnsupportedOperation,
			"task "+string(m.TaskID)+" takes no further messages; send a new message (same contextId) instead")
	}
	text := messageText(m)
	if strings.TrimSpace(text) == "" {
		return a, core.Run{}, a2a.NewError(a2a.ErrInvalidParams, "the message has no text or data part")
	}
	ctxID := m.ContextID
	if ctxID == "" {
		// A new context, named after the message so a retried send of it
		// is the same request (and so the same run).
		ctxID = "ctx-" + m.ID
	}
	rr := core.RunRequest{Input: core.RunInput{Type: "text", Text: text},
		Context: &core.RunContext{Channel: "a2a", SessionID: ctxID, Metadata: map[string]any{"a2a_message_id": m.ID}},
		// The message id makes a retried send the same run, as an
		// idempotency key does on POST /v1/agents/{id}/runs.
		IdempotencyKey: "a2a:" + m.ID}
	run, _, err := h.runs.CreateRun(ctx, a, ag.AgentID, rr, "")
	if err != nil {
		return a, run, rpcError(err, false)
	}
	return a, run, nil
}

// messageText is the run input of a message: its text parts, then its
// data parts as JSON, one per line.
func messageText(m *a2a.Message) string {
	var lines []string
	for _, p := range m.Parts {
		if p == nil {
			continue
		}
		if t := p.Text(); t != "" {
			lines = append(lines, t)
			continue
		}
		if d := p.Data(); d != nil {
			if raw, err := json.Marshal(d); err == nil {
				lines = append(lines, string(raw))
			}
		}
	}
	return strings.Join(lines, "\n")
}

// SendMessage starts a run and, unless configuration.returnImmediately,
// waits for it to finish; the answer is the task either way.
func (h *handler) SendMessage(ctx context.Context, req *a2a.SendMessageRequest) (a2a.SendMessageResult, error) {
	a, run, err := h.create(ctx, req)
	if err != nil {
		return nil, err
	}
	var hl *int
	if req.Config != nil {
		hl = req.Config.HistoryLength
		if req.Config.ReturnImmediately {
			return taskOf(run, hl), nil
		}
	}
	if !core.RunTerminal(run.Status) {
		err := h.runs.StreamEvents(ctx, a, run.RunID, run.LastSequence, func(core.Event) error { return nil })
		if err != nil {
			return nil, rpcError(err, true)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if run, err = h.runs.GetRun(ctx, a, run.RunID); err != nil {
		return nil, rpcError(err, true)
	}
	return taskOf(run, hl), nil
}

// SendStreamingMessage starts a run and streams it: the task first, then
// its updates until the terminal one.
func (h *handler) SendStreamingMessage(ctx context.Context, req *a2a.SendMessageRequest) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		a, run, err := h.create(ctx, req)
		if err != nil {
			yield(nil, err)
			return
		}
		h.follow(ctx, a, run, run.LastSequence, yield)
	}
}

// SubscribeToTask streams a task: its snapshot first, then every update
// after the resume point (ResumeHeader) or, without one, after the
// snapshot, until the terminal update.
func (h *handler) SubscribeToTask(ctx context.Context, req *a2a.SubscribeToTaskRequest) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		a, ag, err := h.caller(ctx, req.Tenant)
		if err != nil {
			yield(nil, err)
			return
		}
		run, err := h.taskRun(ctx, a, ag, req.ID)
		if err != nil {
			yield(nil, err)
			return
		}
		after := run.LastSequence
		if cc, ok := a2asrv.CallContextFrom(ctx); ok {
			if v, ok := cc.ServiceParams().Get(ResumeHeader); ok && len(v) > 0 {
				n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64)
				if err != nil || n < 0 {
					yield(nil, a2a.NewError(a2a.ErrInvalidParams, ResumeHeader+" must be a non-negative sequence"))
					return
				}
				after = min(n, run.LastSequence)
			}
		}
		h.follow(ctx, a, run, after, yield)
	}
}

// errStop ends a stream the subscriber left.
var errStop = errors.New("subscriber left")

// follow yields the task snapshot of run, then the updates of every event
// after sequence after, until the terminal one.
func (h *handler) follow(ctx context.Context, a core.Auth, run core.Run, after int64, yield func(a2a.Event, error) bool) {
	if !yield(taskOf(run, nil), nil) {
		return
	}
	if core.RunTerminal(run.Status) && after >= run.LastSequence {
		return
	}
	info := a2a.TaskInfo{TaskID: a2a.TaskID(run.RunID), ContextID: contextOf(run)}
	err := h.runs.StreamEvents(ctx, a, run.RunID, after, func(ev core.Event) error {
		for _, up := range updatesOf(info, ev) {
			if !yield(up, nil) {
				return errStop
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		yield(nil, rpcError(err, true))
	}
}

// Push notifications are not offered (the card says so).

func (h *handler) GetTaskPushConfig(context.Context, *a2a.GetTaskPushConfigRequest) (*a2a.PushConfig, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

func (h *handler) ListTaskPushConfigs(context.Context, *a2a.ListTaskPushConfigRequest) (*a2a.ListTaskPushConfigResponse, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

func (h *handler) CreateTaskPushConfig(context.Context, *a2a.PushConfig) (*a2a.PushConfig, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

func (h *handler) DeleteTaskPushConfig(context.Context, *a2a.DeleteTaskPushConfigRequest) error {
	return a2a.ErrPushNotificationNotSupported
}

// GetExtendedAgentCard: the public card is the whole card.
func (h *handler) GetExtendedAgentCard(context.Context, *a2a.GetExtendedAgentCardRequest) (*a2a.AgentCard, error) {
	return nil, a2a.ErrExtendedCardNotConfigured
}
