package store

import (
	"context"
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
	raws := make([][]byte, len(evs))
	for i := range evs {
		if raws[i], err = evs[i].AppendJSON(make([]byte, 0, eventJSONSize+len(evs[i].Payload))); err != nil {
			return nil, nil, fmt.Errorf("encode event: %w", err)
		}
	}
	return evs, raws, nil
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
