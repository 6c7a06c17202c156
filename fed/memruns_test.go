package fed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
)

// memRuns is an in-memory Stack A for the federation tests: runs are
// tenant-scoped, idempotent per (tenant, principal, agent, key), and emit a
// realistic gapless event sequence over time (created, started, model and
// tool steps, completed).
type memRuns struct {
	mu     sync.Mutex
	runs   map[string]*memRun
	idem   map[string]string
	steps  int           // model+tool step pairs per run
	delay  time.Duration // between events
	manual bool          // events after "created" only on emit()
}

type memRun struct {
	mu      sync.Mutex
	run     core.Run
	auth    core.Auth
	events  []core.Event
	changed chan struct{}
	next    int // index into the planned sequence
	plan    []string
}

func newMemRuns(steps int, delay time.Duration) *memRuns {
	return &memRuns{runs: map[string]*memRun{}, idem: map[string]string{}, steps: steps, delay: delay}
}

func (m *memRuns) plan() []string {
	p := []string{core.EventRunStarted}
	for i := 0; i < m.steps; i++ {
		p = append(p, core.EventStepStarted, core.EventModelRequested, core.EventModelCompleted, core.EventStepCompleted,
			core.EventStepStarted, core.EventToolCallRequested, core.EventToolCallCompleted, core.EventStepCompleted)
	}
	return append(p, core.EventRunCompleted)
}

func (m *memRuns) CreateRun(ctx context.Context, a core.Auth, agentID string, req core.RunRequest, idemKeyHeader string) (core.Run, bool, error) {
	if err := a.Require(core.ScopeRunsCreate); err != nil {
		return core.Run{}, false, err
	}
	if agentID == "agt_missing" {
		return core.Run{}, false, core.NotFound("agent", agentID)
	}
	key := req.IdempotencyKey
	if key == "" {
		key = idemKeyHeader
	}
	m.mu.Lock()
	ik := a.TenantID + "|" + a.Principal.PrincipalID + "|" + agentID + "|" + key
	if id, ok := m.idem[ik]; ok {
		r := m.runs[id]
		m.mu.Unlock()
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.run, true, nil
	}
	now := core.Now()
	r := &memRun{
		run: core.Run{TenantID: a.TenantID, AgentID: agentID, RunID: core.NewID(core.PrefixRun), Status: core.RunQueued,
			CreatedAt: now, Input: req.Input, PrincipalID: a.Principal.PrincipalID},
		auth:    a,
		changed: make(chan struct{}),
		plan:    m.plan(),
	}
	r.run.EventsURL = "/v1/runs/" + r.run.RunID + "/events"
	m.runs[r.run.RunID] = r
	m.idem[ik] = r.run.RunID
	manual, delay := m.manual, m.delay
	m.mu.Unlock()

	r.mu.Lock()
	r.appendLocked(core.EventRunCreated)
	out := r.run
	r.mu.Unlock()
	if !manual {
		go func() {
			for r.emit() {
				if delay > 0 {
					time.Sleep(delay)
				}
			}
		}()
	}
	return out, false, nil
}

// emit appends the next planned event; false once the run is finished.
func (r *memRun) emit() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next >= len(r.plan) {
		return false
	}
	r.appendLocked(r.plan[r.next])
	r.next++
	return r.next < len(r.plan)
}

func (r *memRun) appendLocked(typ string) {
	seq := int64(len(r.events) + 1)
	payload := map[string]any{}
	switch typ {
	case core.EventRunCreated:
		payload["status"] = core.RunQueued
	case core.EventRunStarted:
		payload["status"] = core.RunRunning
		r.run.Status = core.RunRunning
	case core.EventRunCompleted:
		payload["status"] = core.RunCompleted
		payload["output"] = map[string]any{"type": "text", "text": "echo: " + r.run.Input.Text}
		r.run.Status = core.RunCompleted
	default:
		payload["name"] = "tool.echo"
	}
	raw, _ := json.Marshal(payload)
	ev := core.Event{EventID: core.NewID(core.PrefixEvent), Sequence: seq, Time: core.Now(), Type: typ,
		TenantID: r.run.TenantID, AgentID: r.run.AgentID, RunID: r.run.RunID, Payload: raw}
	r.events = append(r.events, ev)
	r.run.LastSequence = seq
	close(r.changed)
	r.changed = make(chan struct{})
}

func (m *memRuns) get(a core.Auth, runID string) (*memRun, error) {
	m.mu.Lock()
	r := m.runs[runID]
	m.mu.Unlock()
	if r == nil || r.run.TenantID != a.TenantID {
		return nil, core.NotFound("run", runID)
	}
	return r, nil
}

// emit drives a manual run one event further.
func (m *memRuns) emit(runID string) bool {
	m.mu.Lock()
	r := m.runs[runID]
	m.mu.Unlock()
	return r.emit()
}

func (m *memRuns) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.runs)
}

func (m *memRuns) GetRun(ctx context.Context, a core.Auth, runID string) (core.Run, error) {
	r, err := m.get(a, runID)
	if err != nil {
		return core.Run{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.run, nil
}

func (m *memRuns) ListEvents(ctx context.Context, a core.Auth, runID string, afterSeq int64) ([]core.Event, error) {
	r, err := m.get(a, runID)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []core.Event{}
	for _, ev := range r.events {
		if ev.Sequence > afterSeq {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (m *memRuns) StreamEvents(ctx context.Context, a core.Auth, runID string, afterSeq int64, fn func(core.Event) error) error {
	r, err := m.get(a, runID)
	if err != nil {
		return err
	}
	last := afterSeq
	for {
		r.mu.Lock()
		pending := append([]core.Event(nil), r.events[min(int(last), len(r.events)):]...)
		changed := r.changed
		r.mu.Unlock()
		for _, ev := range pending {
			if err := fn(ev); err != nil {
				return fmt.Errorf("deliver: %w", err)
			}
			last = ev.Sequence
			if core.EventTerminal(ev.Type) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
