package core

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// The run rules every storage adapter applies. An adapter loads a run,
// calls these, and stores what they return in one transaction; it never
// decides itself what a transition means.

// NewSpanID returns a random 8-byte span id in hex (W3C trace context).
func NewSpanID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SequenceEvents turns drafts into the run's next events: each gets an
// event id, the next sequence after rec.LastSequence (which it advances),
// the run's ids, trace parent and a fresh span id, and its payload encoded.
// Sequences are gapless as long as the caller commits rec and the events
// together, in the transaction that also checked rec.LastSequence.
func SequenceEvents(rec *RunRecord, drafts []EventDraft, now time.Time) ([]Event, error) {
	if len(drafts) == 0 {
		return nil, nil
	}
	out := make([]Event, 0, len(drafts))
	for _, d := range drafts {
		payload, err := json.Marshal(d.Payload)
		if err != nil {
			return nil, fmt.Errorf("encode %s payload: %w", d.Type, err)
		}
		rec.LastSequence++
		ev := Event{
			EventID: NewID(PrefixEvent), Sequence: rec.LastSequence, Time: now, Type: d.Type,
			TenantID: rec.TenantID, AgentID: rec.AgentID, RunID: rec.RunID,
			Trace: EventTrace{Traceparent: rec.Traceparent, SpanID: NewSpanID()}, Payload: payload,
		}
		if d.StepID != "" {
			id := d.StepID
			ev.StepID = &id
		}
		out = append(out, ev)
	}
	return out, nil
}

// BodyHash is how an idempotent request is fingerprinted: the SHA-256, in
// hex, of its JSON form. A create that finds its key already used compares
// this hash (see CheckIdempotentReplay); the caller clears the key itself
// from the body first where the body carries it.
func BodyHash(body any) string {
	raw, _ := json.Marshal(body)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// CheckIdempotentReplay decides what a create that found its idempotency
// key already used returns: the stored run when the body hash is the same
// (a replay), conflict naming the stored run when it is not.
func CheckIdempotentReplay(stored RunRecord, key, bodyHash string) error {
	if stored.BodyHash != bodyHash {
		return Errorf(CodeConflict, "idempotency key reused with a different body").
			With("idempotency_key", key).With("run_id", stored.RunID)
	}
	return nil
}

// CheckAppend is the single writer's precondition: a run that is terminal
// takes no more events (ErrRunFinished), and a run whose stored sequence
// moved past what the writer last saw was changed by someone else
// (conflict).
func CheckAppend(runID, storedStatus string, storedSeq, expectSeq int64) error {
	if RunTerminal(storedStatus) {
		return ErrRunFinished
	}
	if storedSeq != expectSeq {
		return Errorf(CodeConflict, "run %s moved to sequence %d (expected %d)", runID, storedSeq, expectSeq)
	}
	return nil
}

// StepCompletedPayload is the payload of agentos.run.step.completed.
// Its fields are in alphabetical order, as a map of them would encode.
type StepCompletedPayload struct {
	DurationMS int64  `json:"duration_ms"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	StepKind   string `json:"step_kind"`
}

// RunStatusPayload is the payload of the run lifecycle events that carry
// only the new status (created, canceled).
type RunStatusPayload struct {
	Status string `json:"status"`
}

// CancelRunRecord applies a cancel to rec: conflict when the run is
// already terminal; otherwise an open step is closed with an error
// step.completed (so the stream stays well formed), the run becomes
// canceled at now with nothing left to execute, and the events to append
// are returned.
func CancelRunRecord(rec *RunRecord, now time.Time) ([]EventDraft, error) {
	if RunTerminal(rec.Status) {
		return nil, Errorf(CodeConflict, "run %s is already %s", rec.RunID, rec.Status).
			With("run_id", rec.RunID).With("status", rec.Status)
	}
	var drafts []EventDraft
	if o := rec.Open; o != nil {
		drafts = append(drafts, EventDraft{Type: EventStepCompleted, StepID: o.StepID, Payload: StepCompletedPayload{
			StepKind: o.Kind, Name: o.Name, Status: "error", DurationMS: now.Sub(o.StartedAt).Milliseconds()}})
		rec.Open = nil
	}
	drafts = append(drafts, EventDraft{Type: EventRunCanceled, Payload: RunStatusPayload{Status: RunCanceled}})
	rec.Status = RunCanceled
	rec.CompletedAt = &now
	rec.DropResumeState()
	return drafts, nil
}

// NextAgentVersion is what storing ag makes of it: version 1 and created
// now when there is no previous agent, else the previous version + 1 with
// its created_at kept; updated_at is now either way.
func NextAgentVersion(prev *Agent, ag Agent, now time.Time) Agent {
	a := ag
	a.Version, a.CreatedAt = 1, now
	if prev != nil {
		a.Version, a.CreatedAt = prev.Version+1, prev.CreatedAt
	}
	a.UpdatedAt = now
	return a
}

// NextToolDescriptor is what storing td makes of it: created_at kept
// from the previous descriptor when there is one (and it has one), else
// now; updated_at now.
func NextToolDescriptor(prev *ToolDescriptor, td ToolDescriptor, now time.Time) ToolDescriptor {
	t := td
	t.CreatedAt, t.UpdatedAt = &now, &now
	if prev != nil && prev.CreatedAt != nil {
		t.CreatedAt = prev.CreatedAt
	}
	return t
}

// NextPeer is what registering p makes of it: created_at kept from the
// previous record when there is one (and it has one), else p's own or
// now; updated_at now.
func NextPeer(prev *Peer, p Peer, now time.Time) Peer {
	p.UpdatedAt = now
	if prev != nil && !prev.CreatedAt.IsZero() {
		p.CreatedAt = prev.CreatedAt
	} else if p.CreatedAt.IsZero() {
		p.CreatedAt = now
	}
	return p
}

// CheckMemoryBudget is the tenant memory byte budget: replacing an item of
// oldSize bytes (0 when new) with one of newSize moves the tenant from used
// to the returned total, or quota_exceeded when that passes maxBytes (0:
// unlimited). Adapters call it with used read under a lock that is held
// until the new total is stored.
func CheckMemoryBudget(tenantID string, used, oldSize, newSize, maxBytes int64) (int64, error) {
	next := used - oldSize + newSize
	if maxBytes > 0 && next > maxBytes {
		e := Errorf(CodeQuotaExceeded, "tenant memory would exceed max_memory_bytes")
		e.Details = map[string]any{"tenant_id": tenantID, "limit": maxBytes, "used": used, "requested": newSize}
		return used, e
	}
	return next, nil
}

// Add settles d onto the ledger entry r.
func (r *UsageRecord) Add(d UsageDelta) {
	r.Requests += d.Requests
	r.InputTokens += d.InputTokens
	r.OutputTokens += d.OutputTokens
	r.TotalTokens += d.InputTokens + d.OutputTokens
	r.CostUSD += d.CostUSD
	if d.At.After(r.UpdatedAt) {
		r.UpdatedAt = d.At.UTC()
	}
}
