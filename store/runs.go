package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// Runs live at tenant/{t}/runs/{run_id} (the whole core.RunRecord, so a
// restarted executor can resume); idempotency keys at
// tenant/{t}/idem/{principal}\x00{agent}\x00{key} → run_id. The key is kept
// as given (not hashed) so that time-ordered client keys (ULIDs, timestamps)
// append to the tree instead of dirtying a random page per create.

var _ core.RunStatePort = (*Store)(nil)

func runKey(tenantID, runID string) []byte { return TenantKey(tenantID, "runs", runID) }

func idemKey(tenantID, principalID, agentID, key string) []byte {
	return TenantKey(tenantID, "idem", principalID+"\x00"+agentID+"\x00"+key)
}

func getRunTx(tx *bolt.Tx, tenantID, runID string) (core.RunRecord, error) {
	var rec core.RunRecord
	ok, err := getJSON(Data(tx), runKey(tenantID, runID), &rec)
	if err != nil {
		return rec, err
	}
	if !ok {
		return rec, core.NotFound("run", runID)
	}
	return rec, nil
}

// The index keeps "runstate/{run_id}" → "{last_sequence} {status}" so the
// executor's appends can check a run without decoding its record.
func runStateKey(runID string) []byte { return []byte("runstate/" + runID) }

func runStateVal(rec *core.RunRecord) []byte {
	return []byte(strconv.FormatInt(rec.LastSequence, 10) + " " + rec.Status)
}

func putRunTx(tx *bolt.Tx, rec *core.RunRecord) error {
	if err := putJSON(Data(tx), runKey(rec.TenantID, rec.RunID), rec); err != nil {
		return err
	}
	return putRunIndexTx(tx, rec)
}

func putRunIndexTx(tx *bolt.Tx, rec *core.RunRecord) error {
	if err := Index(tx).Put(runStateKey(rec.RunID), runStateVal(rec)); err != nil {
		return err
	}
	if core.RunTerminal(rec.Status) {
		return Index(tx).Delete(activeKey(rec.RunID))
	}
	return nil
}

// runStateTx reads a run's sequence and status, from the index when it is
// there, else from the record.
func runStateTx(tx *bolt.Tx, tenantID, runID string) (int64, string, error) {
	if v := Index(tx).Get(runStateKey(runID)); v != nil {
		if i := bytes.IndexByte(v, ' '); i > 0 {
			n, err := strconv.ParseInt(string(v[:i]), 10, 64)
			if err == nil {
				return n, string(v[i+1:]), nil
			}
		}
	}
	raw := Data(tx).Get(runKey(tenantID, runID))
	if raw == nil {
		return 0, "", core.NotFound("run", runID)
	}
	var cur struct {
		Status       string `json:"status"`
		LastSequence int64  `json:"last_sequence"`
	}
	if err := json.Unmarshal(raw, &cur); err != nil {
		return 0, "", fmt.Errorf("decode run %s: %w", runID, err)
	}
	return cur.LastSequence, cur.Status, nil
}

// CreateRun implements core.RunStatePort. The record and its events are
// encoded before the shared transaction, which checks the idempotency key
// and writes bytes (plus the audit record, whose hash chains in the tx).
func (s *Store) CreateRun(ctx context.Context, rec core.RunRecord, drafts []core.EventDraft, audit *core.AuditRecord) (core.RunRecord, []core.Event, bool, error) {
	r := rec
	r.LastSequence = 0
	evs, raws, err := buildEvents(&r, drafts)
	if err != nil {
		return core.RunRecord{}, nil, false, err
	}
	recRaw, err := json.Marshal(r)
	if err != nil {
		return core.RunRecord{}, nil, false, fmt.Errorf("encode run: %w", err)
	}
	var (
		stored   core.RunRecord
		replayed bool
	)
	ik := idemKey(r.TenantID, r.PrincipalID, r.AgentID, r.IdempotencyKey)
	err = s.group(ctx, func(tx *bolt.Tx) error {
		replayed = false
		if prev := Data(tx).Get(ik); prev != nil {
			old, err := getRunTx(tx, r.TenantID, string(prev))
			if err != nil {
				return noWrites(err)
			}
			if err := core.CheckIdempotentReplay(old, r.IdempotencyKey, r.BodyHash); err != nil {
				return noWrites(err)
			}
			stored, replayed = old, true
			return nil
		}
		for i, ev := range evs {
			if err := Data(tx).Put(eventKey(r.TenantID, r.RunID, ev.Sequence), raws[i]); err != nil {
				return err
			}
		}
		if err := Data(tx).Put(runKey(r.TenantID, r.RunID), recRaw); err != nil {
			return err
		}
		if err := Index(tx).Put(runStateKey(r.RunID), runStateVal(&r)); err != nil {
			return err
		}
		if err := Data(tx).Put(ik, []byte(r.RunID)); err != nil {
			return err
		}
		if !core.RunTerminal(r.Status) {
			if err := Index(tx).Put(activeKey(r.RunID), []byte(r.TenantID)); err != nil {
				return err
			}
		}
		return appendAuditIf(tx, audit)
	})
	if err != nil {
		return core.RunRecord{}, nil, false, fmt.Errorf("create run: %w", err)
	}
	if replayed {
		return stored, nil, true, nil
	}
	return r, evs, false, nil
}

// FindIdempotent implements core.RunStatePort.
func (s *Store) FindIdempotent(ctx context.Context, tenantID, principalID, agentID, key string) (core.RunRecord, bool, error) {
	var (
		rec core.RunRecord
		ok  bool
	)
	err := s.view(func(tx *bolt.Tx) error {
		prev := Data(tx).Get(idemKey(tenantID, principalID, agentID, key))
		if prev == nil {
			return nil
		}
		var err error
		rec, err = getRunTx(tx, tenantID, string(prev))
		ok = err == nil
		return err
	})
	return rec, ok, err
}

// GetRun implements core.RunStatePort.
func (s *Store) GetRun(ctx context.Context, tenantID, runID string) (core.RunRecord, error) {
	var rec core.RunRecord
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		rec, err = getRunTx(tx, tenantID, runID)
		return err
	})
	return rec, err
}

// ListRuns implements core.RunStatePort. It walks the tenant's run range
// backwards (ULIDs: newest first) and jumps over each run's event keys.
func (s *Store) ListRuns(ctx context.Context, tenantID string, f core.RunFilter) ([]core.Run, string, error) {
	limit := f.PageSize()
	out := []core.Run{}
	next := ""
	err := s.view(func(tx *bolt.Tx) error {
		prefix := TenantKey(tenantID, "runs", "")
		c := Data(tx).Cursor()
		var k, v []byte
		if f.Cursor != "" {
			k, _ = c.Seek(append(append([]byte{}, prefix...), f.Cursor...))
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			k, _ = c.Seek(append(append([]byte{}, prefix...), 0xff))
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for k != nil && hasPrefix(k, prefix) {
			rest := k[len(prefix):]
			if i := bytes.IndexByte(rest, '/'); i >= 0 {
				// An event key: jump to its run's own key.
				k, v = c.Seek(append(append([]byte{}, prefix...), rest[:i]...))
				if k == nil {
					return fmt.Errorf("list runs: run key missing for %s", rest[:i])
				}
			}
			var rec core.RunRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			if (f.AgentID == "" || rec.AgentID == f.AgentID) && (f.Status == "" || rec.Status == f.Status) {
				if len(out) == limit {
					next = out[len(out)-1].RunID
					return nil
				}
				out = append(out, rec.Run)
			}
			k, v = c.Prev()
		}
		return nil
	})
	return out, next, err
}

// AdvanceRun implements core.RunStatePort.
func (s *Store) AdvanceRun(ctx context.Context, tenantID, runID string, fn func(*core.RunRecord) ([]core.EventDraft, error)) (core.RunRecord, []core.Event, error) {
	var (
		out    core.RunRecord
		events []core.Event
	)
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		rec, evs, err := advanceRunTx(tx, tenantID, runID, fn)
		if err != nil {
			return err
		}
		out, events = rec, evs
		return nil
	})
	return out, events, err
}

// advanceRunTx reads the run inside tx, lets fn change it and draft its
// events, and writes both; an error before the first write (no such run,
// fn's refusal) is marked noWrites.
func advanceRunTx(tx *bolt.Tx, tenantID, runID string, fn func(*core.RunRecord) ([]core.EventDraft, error)) (core.RunRecord, []core.Event, error) {
	rec, err := getRunTx(tx, tenantID, runID)
	if err != nil {
		return rec, nil, noWrites(err)
	}
	drafts, err := fn(&rec)
	if err != nil {
		return rec, nil, noWrites(err)
	}
	evs, err := appendEventsTx(tx, &rec, drafts)
	if err != nil {
		return rec, nil, err
	}
	return rec, evs, putRunTx(tx, &rec)
}

// AppendRun implements core.RunStatePort. Events and the record are encoded
// before the (shared, single-writer) transaction, which only checks the
// stored status and sequence and writes bytes.
func (s *Store) AppendRun(ctx context.Context, rec core.RunRecord, drafts []core.EventDraft) (core.RunRecord, []core.Event, error) {
	expect := rec.LastSequence
	evs, raws, err := buildEvents(&rec, drafts)
	if err != nil {
		return rec, nil, err
	}
	recRaw, err := json.Marshal(rec)
	if err != nil {
		return rec, nil, fmt.Errorf("encode run: %w", err)
	}
	rk := runKey(rec.TenantID, rec.RunID)
	err = s.group(ctx, func(tx *bolt.Tx) error {
		last, status, err := runStateTx(tx, rec.TenantID, rec.RunID)
		if err != nil {
			return noWrites(err)
		}
		if err := core.CheckAppend(rec.RunID, status, last, expect); err != nil {
			return noWrites(err)
		}
		for i, ev := range evs {
			if err := Data(tx).Put(eventKey(rec.TenantID, rec.RunID, ev.Sequence), raws[i]); err != nil {
				return err
			}
		}
		if err := Data(tx).Put(rk, recRaw); err != nil {
			return err
		}
		return putRunIndexTx(tx, &rec)
	})
	if err != nil {
		return core.RunRecord{}, nil, err
	}
	return rec, evs, nil
}

// CancelRun implements core.RunStatePort with core.CancelRunRecord.
func (s *Store) CancelRun(ctx context.Context, tenantID, runID string, audit *core.AuditRecord) (core.RunRecord, []core.Event, error) {
	var (
		out    core.RunRecord
		events []core.Event
	)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		rec, evs, err := advanceRunTx(tx, tenantID, runID, func(rec *core.RunRecord) ([]core.EventDraft, error) {
			return core.CancelRunRecord(rec, core.Now())
		})
		if err != nil {
			return err
		}
		out, events = rec, evs
		return appendAuditIf(tx, audit)
	})
	return out, events, err
}

// ImportRuns writes runs with their (already sequenced) events in one
// transaction, as CreateRun and AppendRun would have left them: record,
// events, idempotency key, index entries. It is for bulk imports and
// fixtures (a store of a million runs for the restart benchmark); it
// checks no idempotency conflict and writes no audit record.
func (s *Store) ImportRuns(ctx context.Context, recs []core.RunRecord, events [][]core.Event) error {
	if len(events) != len(recs) {
		return fmt.Errorf("import runs: %d runs, %d event lists", len(recs), len(events))
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		Data(tx).FillPercent = appendFill
		Index(tx).FillPercent = appendFill
		for i := range recs {
			rec := &recs[i]
			for _, ev := range events[i] {
				if err := putJSON(Data(tx), eventKey(rec.TenantID, rec.RunID, ev.Sequence), ev); err != nil {
					return err
				}
			}
			if err := putRunTx(tx, rec); err != nil {
				return err
			}
			if rec.IdempotencyKey != "" {
				if err := Data(tx).Put(idemKey(rec.TenantID, rec.PrincipalID, rec.AgentID, rec.IdempotencyKey), []byte(rec.RunID)); err != nil {
					return err
				}
			}
			if !core.RunTerminal(rec.Status) {
				if err := Index(tx).Put(activeKey(rec.RunID), []byte(rec.TenantID)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
