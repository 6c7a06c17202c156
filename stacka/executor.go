package stacka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// runExec is one run being executed: a local copy of its record and the
// events waiting for the next commit. The executor commits before every
// model or tool call (so the stream shows the step as started and recovery
// knows which call may be lost) and after the last one, merging the close of
// one step and the start of the next into one transaction.
type runExec struct {
	s      *Service
	rec    core.RunRecord
	drafts []core.EventDraft
	log    zerolog.Logger
}

// execute runs one dequeued run until it is terminal, canceled or the node
// shuts down; it reports whether the run ended (terminal).
func (s *Service) execute(base context.Context, it queuedRun) bool {
	var (
		rec core.RunRecord
		err error
	)
	if it.rec != nil {
		rec = *it.rec
	} else {
		rec, err = s.runs.GetRun(context.Background(), it.tenantID, it.runID)
	}
	if err != nil {
		s.log.Error().Err(err).Str("tenant_id", it.tenantID).Str("run_id", it.runID).Msg("load run")
		return true
	}
	if core.RunTerminal(rec.Status) {
		return true
	}
	ctx, cancel := context.WithCancelCause(base)
	defer cancel(nil)
	s.sched.register(rec.RunID, cancel)
	defer s.sched.unregister(rec.RunID)

	x := &runExec{s: s, rec: rec, log: s.log.With().Str("tenant_id", rec.TenantID).
		Str("run_id", rec.RunID).Str("correlation_id", rec.CorrelationID).Logger()}
	// The run span continues the trace of the request that created the run
	// (its stored traceparent), across restarts too.
	ctx = traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": rec.Traceparent})
	ctx, span := s.tracer.Start(ctx, "run", trace.WithAttributes(attribute.String("tenant_id", rec.TenantID),
		attribute.String("run_id", rec.RunID), attribute.String("agent_id", rec.AgentID)))
	defer span.End()
	ended := x.run(ctx)
	span.SetAttributes(attribute.String("run.status", x.rec.Status))
	return ended
}

var traceContext = propagation.TraceContext{}

// span opens a child span of ctx for one step or call of the run.
func (x *runExec) span(ctx context.Context, name, stepID string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	attrs = append(attrs, attribute.String("tenant_id", x.rec.TenantID), attribute.String("run_id", x.rec.RunID), attribute.String("step_id", stepID))
	return x.s.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// traceparentOr renders ctx's span as a traceparent, or fallback when ctx
// has no valid span (tracing off).
func traceparentOr(ctx context.Context, fallback string) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return fallback
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	if tp := c.Get("traceparent"); tp != "" {
		return tp
	}
	return fallback
}

func (x *runExec) add(typ, stepID string, payload any) {
	x.drafts = append(x.drafts, core.EventDraft{Type: typ, StepID: stepID, Payload: payload})
}

// commit writes the local record and the pending events in one transaction
// unless the run became terminal meanwhile (canceled), then wakes streams.
// While the store is unavailable (a database that went away) it waits and
// tries again until the store returns or the node stops, so the run goes
// on where it was instead of failing or stalling until a restart.
func (x *runExec) commit() error {
	out, evs, err := x.commitRetrying()
	x.drafts = nil
	if err != nil {
		return err
	}
	x.rec = out
	// Count a finished run before its terminal event goes out, so a client
	// that saw the event and then scrapes /metrics sees the run counted.
	if core.RunTerminal(out.Status) {
		x.s.metrics.runs.WithLabelValues(out.Status).Inc()
		x.s.metrics.runLatency.Observe(float64(time.Since(out.CreatedAt).Milliseconds()))
	}
	x.s.hub.publish(evs)
	return nil
}

// Waits between commit attempts while the store is unavailable.
const (
	commitRetryFirst = 100 * time.Millisecond
	commitRetryMax   = 2 * time.Second
)

func (x *runExec) commitRetrying() (core.RunRecord, []core.Event, error) {
	wait := commitRetryFirst
	retried := false
	for {
		out, evs, err := x.s.runs.AppendRun(context.Background(), x.rec, x.drafts)
		if err == nil || !retried && !core.IsCode(err, core.CodeDependencyUnavailable) {
			return out, evs, err
		}
		if retried && !core.IsCode(err, core.CodeDependencyUnavailable) {
			// An attempt whose answer was lost with the connection may
			// have committed: then the stored run is exactly where this
			// commit puts it, and its events are ours.
			if core.IsCode(err, core.CodeConflict) {
				if out, evs, ok := x.committedMeanwhile(); ok {
					return out, evs, nil
				}
			}
			return out, evs, err
		}
		if !retried {
			x.log.Warn().Err(err).Msg("store unavailable; the run waits for it")
		}
		retried = true
		select {
		case <-x.s.sched.base.Done():
			return core.RunRecord{}, nil, err
		case <-time.After(wait):
		}
		wait = min(wait*2, commitRetryMax)
	}
}

// committedMeanwhile reports whether the pending commit is already stored.
func (x *runExec) committedMeanwhile() (core.RunRecord, []core.Event, bool) {
	ctx := context.Background()
	stored, err := x.s.runs.GetRun(ctx, x.rec.TenantID, x.rec.RunID)
	if err != nil || stored.LastSequence != x.rec.LastSequence+int64(len(x.drafts)) {
		return core.RunRecord{}, nil, false
	}
	evs, err := x.s.runs.ListEvents(ctx, x.rec.TenantID, x.rec.RunID, x.rec.LastSequence, 0)
	if err != nil || len(evs) != len(x.drafts) {
		return core.RunRecord{}, nil, false
	}
	for i, ev := range evs {
		if ev.Type != x.drafts[i].Type {
			return core.RunRecord{}, nil, false
		}
	}
	return stored, evs, true
}

// maxPending is how many events a run may hold uncommitted between steps.
const maxPending = 64

// during runs call while the run's pending events wait in memory; if call
// is still running after StepCommitDelay they are committed, so a slow
// step shows up as started (and recovery knows it is open).
func (x *runExec) during(call func()) error {
	delay := x.s.cfg.StepCommitDelay
	if delay < 0 {
		if err := x.commit(); err != nil {
			return err
		}
		call()
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		call()
	}()
	t := time.NewTimer(delay)
	select {
	case <-done:
		t.Stop()
		return nil
	case <-t.C:
	}
	err := x.commit()
	<-done
	return err
}

// settle commits when too many events are pending.
func (x *runExec) settle() error {
	if len(x.drafts) >= maxPending {
		return x.commit()
	}
	return nil
}

// stopped reports whether ctx was canceled by a user cancel or a shutdown,
// in which case the executor must write nothing more.
func stopped(ctx context.Context) bool {
	c := context.Cause(ctx)
	return errors.Is(c, errShutdown) || errors.Is(c, errUserCanceled) || errors.Is(c, errLeaseLost)
}

// run drives the loop; it returns true when the run is terminal.
func (x *runExec) run(ctx context.Context) bool {
	r := &x.rec
	now := core.Now()
	if r.Status == core.RunQueued {
		r.Status = core.RunRunning
		r.StartedAt = &now
		d := now.Add(time.Duration(r.TimeoutMS) * time.Millisecond)
		r.Deadline = &d
		x.add(core.EventRunStarted, "", core.RunStatusPayload{Status: core.RunRunning})
	} else if o := r.Open; o != nil {
		// Resume after a crash: the call in flight is lost; close its step
		// as an error and run it again from the stored conversation.
		lost := toolErrorBody{Code: core.CodeInternal, Message: "interrupted by a node restart or a takeover by another node; the step is retried"}
		if o.Kind == "tool" {
			x.add(core.EventToolCallCompleted, o.StepID, toolCallCompletedPayload{ToolCallID: o.ToolCallID, ToolID: o.Name,
				Status: "error", Error: lost})
		} else {
			x.add(core.EventModelCompleted, o.StepID, modelCompletedPayload{ModelRef: r.ModelRef, Operation: core.OpChat,
				Status: "error", Error: lost})
		}
		x.add(core.EventStepCompleted, o.StepID, core.StepCompletedPayload{StepKind: o.Kind, Name: o.Name, Status: "error"})
		r.Open = nil
	}
	if r.Deadline != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, *r.Deadline)
		defer cancel()
	}
	if r.StartedAt == nil {
		r.StartedAt = &now
	}
	for {
		if stopped(ctx) {
			return false
		}
		if ctx.Err() != nil {
			return x.fail(ctx, timeoutErr(r))
		}
		if r.Summary.StepsTotal >= r.MaxSteps {
			e := core.Errorf(core.CodeTimeout, "run reached max_steps (%d) before the model answered", r.MaxSteps)
			e.Retryable = false
			return x.fail(ctx, e.With("reason", "max_steps").With("max_steps", r.MaxSteps))
		}
		var (
			done bool
			err  error
		)
		if len(r.PendingCalls) > 0 {
			err = x.toolStep(ctx)
		} else {
			done, err = x.modelStep(ctx)
		}
		if err != nil {
			if errors.Is(err, core.ErrRunFinished) || stopped(ctx) {
				return errors.Is(err, core.ErrRunFinished) || errors.Is(context.Cause(ctx), errUserCanceled)
			}
			if ctx.Err() != nil && !core.IsCode(err, core.CodeTimeout) {
				err = timeoutErr(r)
			}
			return x.fail(ctx, err)
		}
		if done {
			return true
		}
	}
}

func timeoutErr(r *core.RunRecord) error {
	return core.Errorf(core.CodeTimeout, "run exceeded timeout_ms (%d)", r.TimeoutMS).With("timeout_ms", r.TimeoutMS)
}

// fail ends the run failed with err's error object (pending events first).
func (x *runExec) fail(ctx context.Context, err error) bool {
	if stopped(ctx) {
		return false
	}
	r := &x.rec
	body := core.ErrorBodyOf(err)
	now := core.Now()
	// The conversation is only needed to resume; a finished run drops it.
	r.Status, r.Error, r.CompletedAt = core.RunFailed, body, &now
	r.DropResumeState()
	x.add(core.EventRunFailed, "", runFailedPayload{Status: core.RunFailed, Error: body})
	if cerr := x.commit(); cerr != nil && !errors.Is(cerr, core.ErrRunFinished) {
		x.log.Error().Err(cerr).Msg("commit failed run")
		return false
	}
	return true
}

// modelStep asks the model for the next move; done when the run completed.
func (x *runExec) modelStep(ctx context.Context) (bool, error) {
	r := &x.rec
	tools, err := x.s.modelTools(ctx, r.TenantID, r.Tools)
	if err != nil {
		return false, err
	}
	stepID := core.NewID(core.PrefixStep)
	started := time.Now()
	x.add(core.EventStepStarted, stepID, stepStartedPayload{StepKind: "model", Name: r.ModelRef})
	x.add(core.EventModelRequested, stepID, modelRequestedPayload{ModelRef: r.ModelRef, Operation: core.OpChat,
		InputSummary: inputSummary{Messages: len(r.Messages), HasTools: len(tools) > 0}})
	r.Open = &core.OpenStep{StepID: stepID, Kind: "model", Name: r.ModelRef, StartedAt: core.Now()}
	r.Summary.StepsTotal++
	r.Summary.ModelCallsTotal++
	// A new request id per call, never sent again (a resumed run asks
	// anew), so Stack B keeps no answer for replay.
	req := core.ModelRequest{RequestID: core.NewID(core.PrefixRequest), Operation: core.OpChat, ModelRef: r.ModelRef,
		Input: core.ModelInput{Messages: r.Messages, Tools: tools}, AgentID: r.AgentID, Once: true}
	if len(tools) > 0 {
		req.Input.ToolChoice = "auto"
	}
	sctx, stepSpan := x.span(ctx, "step.model", stepID, attribute.String("model_ref", r.ModelRef))
	defer stepSpan.End()
	cctx, callSpan := x.span(sctx, "model.chat", stepID, attribute.String("model_ref", r.ModelRef))
	defer callSpan.End()
	mctx := core.WithTraceparent(core.WithCorrelationID(ctx, r.CorrelationID), traceparentOr(cctx, r.Traceparent))
	var (
		resp core.ModelResponse
		merr error
	)
	auth := r.Auth // the call runs beside a possible commit that replaces x.rec
	if err := x.during(func() { resp, merr = x.s.models.Chat(mctx, auth, req) }); err != nil {
		return false, err
	}
	dur := time.Since(started).Milliseconds()
	x.s.metrics.stepLat.WithLabelValues("model").Observe(float64(dur))
	if stopped(ctx) {
		return false, context.Cause(ctx)
	}
	status := "ok"
	var body *core.ErrorBody
	if merr != nil {
		merr = modelError(ctx, merr)
		status, body = "error", core.ErrorBodyOf(merr)
	}
	x.add(core.EventModelCompleted, stepID, modelCompletedPayload{ModelRef: r.ModelRef, Operation: core.OpChat,
		Status: status, Usage: resp.Usage, LatencyMS: dur, PolicyOutcome: &resp.PolicyOutcome,
		Route: &resp.Route, Error: body})
	x.add(core.EventStepCompleted, stepID, core.StepCompletedPayload{StepKind: "model", Name: r.ModelRef, Status: status, DurationMS: dur})
	r.Open = nil
	if merr != nil {
		return false, merr
	}
	msg := core.ChatMessage{Role: "assistant"}
	if resp.Output.Message != nil {
		msg.Content = resp.Output.Message.Content
	}
	if calls := resp.Output.ToolCalls; len(calls) > 0 {
		msg.ToolCalls = calls
		r.Messages = append(r.Messages, msg)
		r.PendingCalls = append([]core.ToolCall(nil), calls...)
		return false, x.settle()
	}
	now := core.Now()
	out := &core.RunInput{Type: "text", Text: msg.Content}
	r.Status, r.Output, r.CompletedAt = core.RunCompleted, out, &now
	r.DropResumeState()
	x.add(core.EventRunCompleted, "", runCompletedPayload{Status: core.RunCompleted, Output: out})
	return true, x.commit()
}

// modelError keeps contract errors and turns transport failures of Stack B
// into dependency_unavailable.
func modelError(ctx context.Context, err error) error {
	var e *core.Error
	if errors.As(err, &e) {
		return e
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return core.Errorf(core.CodeTimeout, "model call ran past the run's deadline")
	}
	return core.Errorf(core.CodeDependencyUnavailable, "stack b unavailable: %v", err)
}

// toolStep executes the first pending tool call.
func (x *runExec) toolStep(ctx context.Context) error {
	r := &x.rec
	call := r.PendingCalls[0]
	toolID := call.ToolID
	if toolID == "" {
		toolID = x.s.toolIDByName(ctx, r, call.Name)
	}
	callID := core.NewID(core.PrefixToolCall)
	stepID := core.NewID(core.PrefixStep)
	input := call.Arguments
	if input == nil {
		input = map[string]any{}
	}
	td, terr := x.s.resolveTool(ctx, r, toolID)
	timeout := toolTimeout(td, r)
	x.add(core.EventStepStarted, stepID, stepStartedPayload{StepKind: "tool", Name: toolID})
	x.add(core.EventToolCallRequested, stepID, toolCallRequestedPayload{ToolCallID: callID, ToolID: toolID,
		Input: input, TimeoutMS: timeout.Milliseconds()})
	r.Open = &core.OpenStep{StepID: stepID, Kind: "tool", Name: toolID, ToolCallID: callID, StartedAt: core.Now()}
	r.Summary.StepsTotal++
	r.Summary.ToolCallsTotal++
	started := time.Now()
	var output, remote map[string]any
	if terr == nil {
		terr = x.s.allowTool(ctx, r.TenantID, x.s.tenantLimits(ctx, r.TenantID))
	}
	if terr == nil {
		sctx, stepSpan := x.span(ctx, "step.tool", stepID, attribute.String("tool_id", toolID))
		defer stepSpan.End()
		cctx, callSpan := x.span(sctx, "tool.call", stepID, attribute.String("tool_id", toolID), attribute.String("tool_call_id", callID))
		defer callSpan.End()
		tctx, cancel := context.WithTimeout(ctx, timeout)
		tctx = core.WithTraceparent(core.WithCorrelationID(tctx, r.CorrelationID), traceparentOr(cctx, r.Traceparent))
		rec := *r
		err := x.during(func() {
			var res toolResult
			res, terr = x.s.invokeTool(tctx, &rec, td, callID, input)
			output, remote = res.Output, res.Remote
			if terr != nil && tctx.Err() == context.DeadlineExceeded && ctx.Err() == nil && !core.IsCode(terr, core.CodeTimeout) {
				terr = core.Errorf(core.CodeTimeout, "tool %s ran past its %d ms timeout", toolID, timeout.Milliseconds())
			}
		})
		cancel()
		if err != nil {
			return err
		}
	}
	dur := time.Since(started).Milliseconds()
	x.s.metrics.toolLat.Observe(float64(dur))
	x.s.metrics.stepLat.WithLabelValues("tool").Observe(float64(dur))
	if stopped(ctx) {
		return context.Cause(ctx)
	}
	status := "ok"
	var errObj any
	if terr != nil {
		x.s.metrics.toolErrs.Inc()
		terr = toolError(terr)
		e := core.AsError(terr)
		status, errObj, output = "error", toolErrorBody{Code: e.Code, Message: e.Message}, nil
	}
	completed := toolCallCompletedPayload{ToolCallID: callID, ToolID: toolID, Status: status,
		Output: output, DurationMS: dur, Error: errObj}
	if remote != nil {
		completed.Remote = remote
	}
	x.add(core.EventToolCallCompleted, stepID, completed)
	x.add(core.EventStepCompleted, stepID, core.StepCompletedPayload{StepKind: "tool", Name: toolID, Status: status, DurationMS: dur})
	r.Open = nil
	r.PendingCalls = r.PendingCalls[1:]
	if terr != nil {
		return terr
	}
	raw, err := json.Marshal(output)
	if err != nil {
		return fmt.Errorf("encode tool output: %w", err)
	}
	name := call.Name
	if name == "" {
		name = toolID
	}
	r.Messages = append(r.Messages, core.ChatMessage{Role: "tool", Content: string(raw), Name: name, ToolCallID: call.ID})
	return x.settle()
}

func toolError(err error) error {
	var e *core.Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return core.Errorf(core.CodeTimeout, "tool call timed out")
	}
	return core.Errorf(core.CodeDependencyUnavailable, "tool call failed: %v", err)
}

func toolTimeout(td core.ToolDescriptor, r *core.RunRecord) time.Duration {
	d := 30 * time.Second
	if v, ok := td.Config["timeout_ms"].(float64); ok && v > 0 {
		d = time.Duration(v) * time.Millisecond
	}
	if r.Deadline != nil {
		if left := time.Until(*r.Deadline); left < d {
			d = max(left, time.Millisecond)
		}
	}
	return d
}
