package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// Events live at tenant/{t}/runs/{r}/events/{sequence as 20 digits}, so a
// run's events are one ordered key range. The run record's LastSequence is
// the counter: appends happen only inside the transaction that also rewrites
// the record, which is what keeps sequences gapless under concurrency.

func eventKey(tenantID, runID string, seq int64) []byte {
	return TenantKey(tenantID, "runs", runID, "events", SeqKey(seq))
}

// An event is stored relative to its run (core.Event.AppendRelativeJSON):
// without its sequence, tenant_id and run_id, which its key holds, nor its
// agent_id and traceparent, which are its run's and live in the run
// record; that is about a third of its bytes, and of every commit's pages.
// Stores written before this form keep whole events, and a run begun by an
// older binary has both kinds: readEvent tells them apart by tenant_id,
// which only a whole event carries.

// eventJSONSize is room for an event's JSON without its payload (ids,
// time, type, trace), so encoding one allocates once.
const eventJSONSize = 448

// buildEvents sequences drafts after rec.LastSequence (advancing it) by
// the core rule and encodes them, outside any transaction.
func buildEvents(rec *core.RunRecord, drafts []core.EventDraft) ([]core.Event, [][]byte, error) {
	evs, err := core.SequenceEvents(rec, drafts, core.Now())
	if err != nil {
		return nil, nil, err
	}
	// One buffer for all of them: they are stored together.
	size := 0
	for i := range evs {
		size += eventJSONSize + len(evs[i].Payload)
	}
	buf := make([]byte, 0, size)
	raws := make([][]byte, len(evs))
	for i := range evs {
		ev := &evs[i]
		start := len(buf)
		if ev.TenantID != "" && ev.TenantID == rec.TenantID && ev.RunID == rec.RunID && ev.AgentID == rec.AgentID &&
			ev.Trace.Traceparent == rec.Traceparent {
			buf, err = ev.AppendRelativeJSON(buf)
		} else {
			buf, err = ev.AppendJSON(buf)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("encode event: %w", err)
		}
		raws[i] = buf[start:len(buf):len(buf)]
	}
	return evs, raws, nil
}

// runFields are the fields a run's events share, read from its record for
// events stored relative to it.
type runFields struct {
	AgentID     string `json:"agent_id"`
	Traceparent string `json:"traceparent"`
}

// readEvent decodes the event stored at key k (of a run of tenantID) as v.
// An event stored relative to its run gets its sequence from k and its
// run's fields from run, which it decodes from the record runRaw the first
// time one is needed.
func readEvent(k, v []byte, tenantID, runID string, runRaw []byte, run **runFields) (core.Event, error) {
	var ev core.Event
	if err := json.Unmarshal(v, &ev); err != nil {
		return ev, fmt.Errorf("decode %s: %w", k, err)
	}
	if ev.TenantID != "" {
		return ev, nil
	}
	if *run == nil {
		f := &runFields{}
		if err := json.Unmarshal(runRaw, f); err != nil {
			return ev, fmt.Errorf("decode run %s: %w", runID, err)
		}
		*run = f
	}
	seq, err := strconv.ParseInt(string(k[max(0, len(k)-seqKeyLen):]), 10, 64)
	if err != nil {
		return ev, fmt.Errorf("decode %s: sequence: %w", k, err)
	}
	ev.Sequence, ev.TenantID, ev.RunID = seq, tenantID, runID
	ev.AgentID, ev.Trace.Traceparent = (*run).AgentID, (*run).Traceparent
	return ev, nil
}

// appendEventsTx sequences drafts after rec.LastSequence, stores them and
// advances rec.LastSequence; the caller stores rec in the same tx.
func appendEventsTx(tx *bolt.Tx, rec *core.RunRecord, drafts []core.EventDraft) ([]core.Event, error) {
	evs, raws, err := buildEvents(rec, drafts)
	if err != nil {
		return nil, err
	}
	for i, ev := range evs {
		if err := Data(tx).Put(eventKey(rec.TenantID, rec.RunID, ev.Sequence), raws[i]); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

// ListEvents implements core.RunStatePort.
func (s *Store) ListEvents(ctx context.Context, tenantID, runID string, after int64, limit int) ([]core.Event, error) {
	out := []core.Event{}
	err := s.view(func(tx *bolt.Tx) error {
		runRaw := Data(tx).Get(runKey(tenantID, runID))
		if runRaw == nil {
			return core.NotFound("run", runID)
		}
		var run *runFields
		prefix := TenantKey(tenantID, "runs", runID, "events", "")
		c := Data(tx).Cursor()
		for k, v := c.Seek(eventKey(tenantID, runID, after+1)); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			ev, err := readEvent(k, v, tenantID, runID, runRaw, &run)
			if err != nil {
				return err
			}
			out = append(out, ev)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}
