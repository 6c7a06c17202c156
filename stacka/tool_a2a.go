package stacka

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"
	"github.com/agentos/agentos/core"
)

// KindA2A is the kind of tools that delegate to a remote A2A agent.
const KindA2A = "a2a"

func init() { registerToolKind(KindA2A, a2aKind{}) }

// a2aKind sends the call's input as a message to a remote A2A (v1.0)
// agent, found from its Agent Card (config.card_url), and answers with
// the remote task's artifacts. config.secret_ref, when set, is presented
// as "Authorization: Bearer <secret>". Card and calls go through the
// egress-checked client, so the egress rules of http tools apply. The
// remote task id is on the tool.call.completed event ("remote"), and a
// call stopped by a run cancel or timeout cancels the remote task.
type a2aKind struct{}

func (a2aKind) validate(td *core.ToolDescriptor) error {
	if !httpURL(cfgString(*td, "card_url")) {
		return core.Invalid("tool.config.card_url", "an a2a tool needs config.card_url, the absolute http(s) URL of the remote agent's card (or its base URL)")
	}
	return checkSecretRef(*td)
}

// cardLocation splits a card URL into the base and path the SDK's
// resolver takes: a URL ending in .json is the card itself; any other is a
// base URL under which the card sits at the well-known path.
func cardLocation(raw string) (base, path string) {
	u, err := url.Parse(raw)
	if err != nil || !strings.HasSuffix(u.Path, ".json") {
		return strings.TrimSuffix(raw, "/"), "/.well-known/agent-card.json"
	}
	path = u.Path
	u.Path, u.RawPath = "", ""
	return u.String(), path
}

// invoke is four stages: connect (read the card, open a client), stream
// the message and follow the remote task, settle a task whose stream
// ended early from its stored state, and answer from the final state.
func (a2aKind) invoke(ctx context.Context, s *Service, c toolCall) (toolResult, error) {
	ctx, card, client, err := a2aConnect(ctx, s, c)
	if err != nil {
		return toolResult{}, err
	}
	defer client.Destroy()
	call := newA2ACall(card.Name)
	streamCtx, stopStream := call.streamContext(ctx)
	defer stopStream()
	if err := call.stream(ctx, streamCtx, client, a2aMessage(c)); err != nil {
		cancelRemote(ctx, client, call.remote)
		return toolResult{Remote: call.remote}, a2aError(c.Tool, "send the message", err)
	}
	if ctx.Err() != nil {
		cancelRemote(ctx, client, call.remote)
		return toolResult{Remote: call.remote}, toolError(ctx.Err())
	}
	if err := call.settle(ctx, client); err != nil {
		return toolResult{Remote: call.remote}, a2aError(c.Tool, "read the remote task", err)
	}
	return call.result()
}

// a2aConnect reads the remote agent's card and opens a client on it. With
// a secret, card and calls carry it as a bearer (the returned context
// holds it for the calls).
func a2aConnect(ctx context.Context, s *Service, c toolCall) (context.Context, *a2a.AgentCard, *a2aclient.Client, error) {
	secret, err := s.toolSecret(ctx, c.Run, c.Tool, c.CallID, cfgString(c.Tool, "secret_ref"), "a2a credential")
	if err != nil {
		return ctx, nil, nil, err
	}
	httpClient := withTraceparent(s.egress)
	base, path := cardLocation(cfgString(c.Tool, "card_url"))
	opts := []agentcard.ResolveOption{agentcard.WithPath(path)}
	if secret != nil {
		opts = append(opts, agentcard.WithRequestHeader("Authorization", "Bearer "+string(secret)))
		ctx = a2aclient.AttachServiceParams(ctx, a2aclient.ServiceParams{"Authorization": {"Bearer " + string(secret)}})
	}
	card, err := agentcard.NewResolver(httpClient).Resolve(ctx, base, opts...)
	if err != nil {
		return ctx, nil, nil, a2aError(c.Tool, "read the agent card", err)
	}
	client, err := a2aclient.NewFromCard(ctx, card, a2aclient.WithJSONRPCTransport(httpClient))
	if err != nil {
		return ctx, nil, nil, core.Errorf(core.CodeDependencyUnavailable, "tool %s: no usable interface on the agent card: %v", c.Tool.ToolID, err)
	}
	return ctx, card, client, nil
}

// a2aMessage is the message a call sends: its input as parts, its id the
// tool call id, so a retried delivery of the same call is recognisably the
// same message on the remote side.
func a2aMessage(c toolCall) *a2a.Message {
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2aInputParts(c.Input)...)
	msg.ID = c.CallID
	msg.SetMeta("agentos.run_id", c.Run.RunID)
	return msg
}

// a2aCall is one call's view of the remote task, as its stream (and, when
// that ends early, the stored task) reports it.
type a2aCall struct {
	agent string // the card's name
	// remote is what the tool.call.completed event says of the remote
	// side: protocol, agent, task_id, context_id, state, canceled.
	remote    map[string]any
	task      *a2a.Task
	idKnown   chan struct{} // closed once the remote task id arrived
	known     bool
	texts     []string
	artifacts []map[string]any
	state     a2a.TaskState
}

func newA2ACall(agent string) *a2aCall {
	return &a2aCall{agent: agent, remote: map[string]any{"protocol": "a2a", "agent": agent},
		idKnown: make(chan struct{}), artifacts: []map[string]any{}, state: a2a.TaskStateUnspecified}
}

// track notes the remote task's ids the first time an event names them.
func (a *a2aCall) track(info a2a.TaskInfo) {
	if info.TaskID != "" {
		a.remote["task_id"], a.remote["context_id"] = string(info.TaskID), info.ContextID
		if !a.known {
			a.known = true
			close(a.idKnown)
		}
	}
}

// streamContext is the context the stream runs on. It is not cut the
// instant the run (ctx) stops: it stays open until the remote task's id
// has arrived (at most 5 s), so the task the call started can be canceled
// too, even when the stop came before the first event. stop ends it.
func (a *a2aCall) streamContext(ctx context.Context) (streamCtx context.Context, stop func()) {
	streamCtx, stopStream := context.WithCancel(context.WithoutCancel(ctx))
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-streamCtx.Done():
			return
		case <-ctx.Done():
		}
		select {
		case <-a.idKnown:
		case <-streamCtx.Done():
		case <-time.After(5 * time.Second):
		}
		stopStream()
	}()
	return streamCtx, func() { stopStream(); <-watched }
}

// stream sends msg and follows the answer to its end. Its error is the
// stream failing while the run still wanted it; a run that stopped only
// ends the loop (the caller cancels the remote task).
func (a *a2aCall) stream(ctx, streamCtx context.Context, client *a2aclient.Client, msg *a2a.Message) error {
	for ev, err := range client.SendStreamingMessage(streamCtx, &a2a.SendMessageRequest{Message: msg}) {
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		a.apply(ev)
	}
	return nil
}

// apply takes in one event of the stream.
func (a *a2aCall) apply(ev a2a.Event) {
	switch e := ev.(type) {
	case *a2a.Task:
		a.task = e
		a.track(e.TaskInfo())
		a.state = e.Status.State
		for _, art := range e.Artifacts {
			a.texts, a.artifacts = addArtifact(a.texts, a.artifacts, art)
		}
	case *a2a.TaskStatusUpdateEvent:
		a.track(e.TaskInfo())
		a.state = e.Status.State
		if e.Status.Message != nil && (a.state == a2a.TaskStateFailed || a.state == a2a.TaskStateRejected) {
			a.texts = append(a.texts, partsText(e.Status.Message.Parts))
		}
	case *a2a.TaskArtifactUpdateEvent:
		a.track(e.TaskInfo())
		a.texts, a.artifacts = addArtifact(a.texts, a.artifacts, e.Artifact)
	case *a2a.Message:
		// A direct answer without a task.
		a.texts = append(a.texts, partsText(e.Parts))
		a.state = a2a.TaskStateCompleted
	}
}

// settle reads the task's stored state when the stream ended before a
// terminal one: that state and its artifacts are then the answer.
func (a *a2aCall) settle(ctx context.Context, client *a2aclient.Client) error {
	if a.state.Terminal() || a.task == nil && a.remote["task_id"] == nil {
		return nil
	}
	t, err := client.GetTask(ctx, &a2a.GetTaskRequest{ID: a2a.TaskID(a.remote["task_id"].(string))})
	if err != nil {
		return err
	}
	a.state = t.Status.State
	a.texts, a.artifacts = nil, []map[string]any{}
	for _, art := range t.Artifacts {
		a.texts, a.artifacts = addArtifact(a.texts, a.artifacts, art)
	}
	return nil
}

// result is the call's answer from the final state: the text and
// artifacts of a completed task, else an error saying how it ended.
func (a *a2aCall) result() (toolResult, error) {
	a.remote["state"] = string(a.state)
	text := strings.Join(a.texts, "\n")
	switch a.state {
	case a2a.TaskStateCompleted:
		out := map[string]any{"text": text, "artifacts": a.artifacts, "state": string(a.state)}
		if id, ok := a.remote["task_id"]; ok {
			out["task_id"], out["context_id"] = id, a.remote["context_id"]
		}
		return toolResult{Output: out, Remote: a.remote}, nil
	case a2a.TaskStateInputRequired, a2a.TaskStateAuthRequired:
		return toolResult{Remote: a.remote}, core.Errorf(core.CodeDependencyUnavailable, "remote agent %s needs more input (%s): %s", a.agent, a.state, text).
			With("remote_task_id", a.remote["task_id"])
	case a2a.TaskStateCanceled:
		return toolResult{Remote: a.remote}, core.Errorf(core.CodeDependencyUnavailable, "remote task of %s was canceled", a.agent).
			With("remote_task_id", a.remote["task_id"])
	case a2a.TaskStateFailed, a2a.TaskStateRejected:
		return toolResult{Remote: a.remote}, core.Errorf(core.CodeDependencyUnavailable, "remote task of %s %s: %s", a.agent, a.state, text).
			With("remote_task_id", a.remote["task_id"])
	}
	return toolResult{Remote: a.remote}, core.Errorf(core.CodeDependencyUnavailable, "remote agent %s ended without a terminal task state (%s)", a.agent, a.state)
}

// a2aInputParts turns a tool input into message parts: its text as a text
// part, and the whole input as a data part when it holds more than text.
func a2aInputParts(in map[string]any) []*a2a.Part {
	text, _ := in["text"].(string)
	var parts []*a2a.Part
	if text != "" {
		parts = append(parts, a2a.NewTextPart(text))
	}
	if len(in) > 1 || text == "" {
		parts = append(parts, a2a.NewDataPart(in))
	}
	return parts
}

func partsText(parts a2a.ContentParts) string {
	var b []string
	for _, p := range parts {
		switch {
		case p.Text() != "":
			b = append(b, p.Text())
		case p.Data() != nil:
			if raw, err := json.Marshal(p.Data()); err == nil {
				b = append(b, string(raw))
			}
		}
	}
	return strings.Join(b, "\n")
}

func addArtifact(texts []string, arts []map[string]any, art *a2a.Artifact) ([]string, []map[string]any) {
	if art == nil {
		return texts, arts
	}
	t := partsText(art.Parts)
	if t != "" {
		texts = append(texts, t)
	}
	return texts, append(arts, map[string]any{"artifact_id": string(art.ID), "name": art.Name, "text": t})
}

// cancelRemote asks the remote agent to stop the task a stopped call
// started; best effort, on a short context of its own.
func cancelRemote(ctx context.Context, client *a2aclient.Client, remote map[string]any) {
	id, _ := remote["task_id"].(string)
	if id == "" {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := client.CancelTask(cctx, &a2a.CancelTaskRequest{ID: a2a.TaskID(id)}); err == nil {
		remote["canceled"] = true
	}
}

// a2aError maps a client error to the error of the call: a refused egress
// keeps its code, the rest is the remote agent being unavailable.
func a2aError(td core.ToolDescriptor, what string, err error) error {
	var ce *core.Error
	if errors.As(err, &ce) {
		return ce
	}
	if strings.Contains(err.Error(), "egress to") && strings.Contains(err.Error(), "is not allowed") {
		return core.Errorf(core.CodeForbidden, "tool %s: %v", td.ToolID, err)
	}
	return core.Errorf(core.CodeDependencyUnavailable, "tool %s could not %s: %v", td.ToolID, what, err)
}
