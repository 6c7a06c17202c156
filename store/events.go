package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

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

func spanID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// buildEvents sequences drafts after rec.LastSequence (advancing it) and
// encodes them, outside any transaction.
func buildEvents(rec *core.RunRecord, drafts []core.EventDraft) ([]core.Event, [][]byte, error) {
	evs := make([]core.Event, 0, len(drafts))
	raws := make([][]byte, 0, len(drafts))
	now := core.Now()
	for _, d := range drafts {
		payload, err := json.Marshal(d.Payload)
		if err != nil {
			return nil, nil, fmt.Errorf("encode %s payload: %w", d.Type, err)
		}
		rec.LastSequence++
		ev := core.Event{
			EventID: core.NewID(core.PrefixEvent), Sequence: rec.LastSequence, Time: now, Type: d.Type,
			TenantID: rec.TenantID, AgentID: rec.AgentID, RunID: rec.RunID,
			Trace: core.EventTrace{Traceparent: rec.Traceparent, SpanID: spanID()}, Payload: payload,
		}
		if d.StepID != "" {
			id := d.StepID
			ev.StepID = &id
		}
		raw, err := json.Marshal(ev)
		if err != nil {
			return nil, nil, fmt.Errorf("encode event: %w", err)
		}
		evs = append(evs, ev)
		raws = append(raws, raw)
	}
	return evs, raws, nil
}

// appendEventsTx sequences drafts after rec.LastSequence, stores them and
// advances rec.LastSequence; the caller stores rec in the same tx.
func appendEventsTx(tx *bolt.Tx, rec *core.RunRecord, drafts []core.EventDraft) ([]core.Event, error) {
	if len(drafts) == 0 {
		return nil, nil
	}
	out := make([]core.Event, 0, len(drafts))
	now := core.Now()
	for _, d := range drafts {
		raw, err := json.Marshal(d.Payload)
		if err != nil {
			return nil, fmt.Errorf("encode %s payload: %w", d.Type, err)
		}
		rec.LastSequence++
		ev := core.Event{
			EventID: core.NewID(core.PrefixEvent), Sequence: rec.LastSequence, Time: now, Type: d.Type,
			TenantID: rec.TenantID, AgentID: rec.AgentID, RunID: rec.RunID,
			Trace: core.EventTrace{Traceparent: rec.Traceparent, SpanID: spanID()}, Payload: raw,
		}
		if d.StepID != "" {
			id := d.StepID
			ev.StepID = &id
		}
		if err := putJSON(Data(tx), eventKey(rec.TenantID, rec.RunID, ev.Sequence), ev); err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// ListEvents implements core.RunStatePort.
func (s *Store) ListEvents(ctx context.Context, tenantID, runID string, after int64, limit int) ([]core.Event, error) {
	out := []core.Event{}
	err := s.view(func(tx *bolt.Tx) error {
		if Data(tx).Get(runKey(tenantID, runID)) == nil {
			return core.NotFound("run", runID)
		}
		prefix := TenantKey(tenantID, "runs", runID, "events", "")
		c := Data(tx).Cursor()
		for k, v := c.Seek(eventKey(tenantID, runID, after+1)); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			var ev core.Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
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
