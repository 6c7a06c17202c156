package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// Retention sweeps (core.RetentionPort). Everything a sweep reads is in
// the tenant's own key range, bounded from below by the range's start and
// from above by the cutoff (run and audit ids are ULIDs, ledger periods
// and replay times sort as text), so a sweep costs what it removes, not
// what the store holds.

var _ core.RetentionPort = (*Store)(nil)

// auditAnchorKey holds a tenant's core.AuditAnchor once records went.
func auditAnchorKey(tenantID string) []byte { return []byte("audit_anchor/" + tenantID) }

// replayTimeKey orders a tenant's stored model answers by time, so the
// sweep finds the old ones without reading all of them.
func replayTimeKey(tenantID string, at time.Time, requestID string) []byte {
	return TenantKey(tenantID, "replay_time", SeqKey(at.UnixNano()), requestID)
}

// SweepTenant implements core.RetentionPort.
func (s *Store) SweepTenant(ctx context.Context, tenantID string, c core.SweepCutoffs, limit int, audit func(core.SweepResult) *core.AuditRecord) (core.SweepResult, error) {
	limit = core.SweepBudget(limit)
	var res core.SweepResult
	err := s.update(ctx, func(tx *bolt.Tx) error {
		res = core.SweepResult{}
		sw := &sweep{tx: tx, tenant: tenantID, budget: limit}
		steps := []func(*core.SweepResult) error{
			func(r *core.SweepResult) error { return sw.runs(c.Runs, r) },
			func(r *core.SweepResult) error { return sw.audit(c.Audit, r) },
			func(r *core.SweepResult) error { return sw.usage(c.UsageDetail, r) },
			func(r *core.SweepResult) error { return sw.replays(c.UsageDetail, r) },
		}
		for _, step := range steps {
			if sw.budget <= 0 {
				res.More = true
				break
			}
			if err := step(&res); err != nil {
				return err
			}
		}
		if err := sw.apply(); err != nil {
			return err
		}
		if audit != nil && res.Total() > 0 {
			if rec := audit(res); rec != nil {
				_, err := AppendAuditTx(tx, *rec)
				return err
			}
		}
		return nil
	})
	if err != nil {
		return core.SweepResult{}, fmt.Errorf("sweep %s: %w", tenantID, err)
	}
	return res, nil
}

// sweep collects the keys one transaction removes (deleting behind a
// live cursor skips keys in bbolt), then deletes them.
type sweep struct {
	tx       *bolt.Tx
	tenant   string
	budget   int
	data     [][]byte
	index    [][]byte
	anchor   *core.AuditAnchor
	anchored bool
}

func (w *sweep) drop(k []byte) {
	w.data = append(w.data, append([]byte(nil), k...))
	w.budget--
}

func (w *sweep) apply() error {
	for _, k := range w.data {
		if err := Data(w.tx).Delete(k); err != nil {
			return err
		}
	}
	for _, k := range w.index {
		if err := Index(w.tx).Delete(k); err != nil {
			return err
		}
	}
	if w.anchored {
		return putJSON(Index(w.tx), auditAnchorKey(w.tenant), w.anchor)
	}
	return nil
}

// runs removes finished runs created and finished before cutoff, each
// with every event, its idempotency key and its index entries (a run goes
// whole or not at all, so the budget may be overrun by one run).
func (w *sweep) runs(cutoff time.Time, res *core.SweepResult) error {
	if cutoff.IsZero() {
		return nil
	}
	prefix := TenantKey(w.tenant, "runs", "")
	upper := append(append([]byte{}, prefix...), core.IDFloor(core.PrefixRun, cutoff)...)
	c := Data(w.tx).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.Compare(k, upper) < 0; {
		rest := k[len(prefix):]
		if i := bytes.IndexByte(rest, '/'); i >= 0 {
			// An event whose run key is gone cannot happen (they go
			// together); skip to the next run.
			k, v = c.Seek(append(append(append([]byte{}, prefix...), rest[:i]...), '/', 0xff))
			continue
		}
		if w.budget <= 0 {
			res.More = true
			return nil
		}
		var rec core.SweptRun
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		runID := string(rest)
		runKey := append([]byte(nil), k...)
		if !rec.Sweepable(cutoff) {
			k, v = c.Seek(append(append(runKey, '/'), 0xff))
			continue
		}
		w.drop(runKey)
		evPrefix := append(append([]byte(nil), runKey...), '/')
		for k, v = c.Next(); k != nil && bytes.HasPrefix(k, evPrefix); k, v = c.Next() {
			w.drop(k)
			res.Events++
		}
		// k, v: the first key after the run's events.
		if rec.IdempotencyKey != "" {
			ik := idemKey(w.tenant, rec.PrincipalID, rec.AgentID, rec.IdempotencyKey)
			if string(Data(w.tx).Get(ik)) == runID {
				w.drop(ik)
			}
		}
		w.index = append(w.index, runStateKey(runID), activeKey(runID))
		res.Runs++
	}
	return nil
}

// audit removes the oldest records of the chain while they are older than
// cutoff, stopping at the first it keeps, and moves the anchor past them.
func (w *sweep) audit(cutoff time.Time, res *core.SweepResult) error {
	if cutoff.IsZero() {
		return nil
	}
	anchor := core.AuditAnchor{TenantID: w.tenant}
	if _, err := getJSON(Index(w.tx), auditAnchorKey(w.tenant), &anchor); err != nil {
		return err
	}
	prefix := TenantKey(w.tenant, "audit", "")
	c := Data(w.tx).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if w.budget <= 0 {
			res.More = true
			break
		}
		var rec core.AuditRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		if !core.AuditSweepable(rec.Time, cutoff) {
			break
		}
		anchor = anchor.Advance(rec)
		w.drop(k)
		res.Audit++
	}
	if res.Audit > 0 {
		w.anchor, w.anchored = &anchor, true
	}
	return nil
}

// usage removes minute and hour ledger entries of periods before cutoff.
func (w *sweep) usage(cutoff time.Time, res *core.SweepResult) error {
	if cutoff.IsZero() {
		return nil
	}
	for _, win := range []string{core.WindowMinute, core.WindowHour} {
		prefix := TenantKey(w.tenant, "usage", win, "")
		c := Data(w.tx).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if !core.UsagePeriodSweepable(win, string(k[len(prefix):]), cutoff) {
				break
			}
			if w.budget <= 0 {
				res.More = true
				return nil
			}
			w.drop(k)
			res.Usage++
		}
	}
	return nil
}

// replays removes stored model answers created before cutoff, found by
// their time index.
func (w *sweep) replays(cutoff time.Time, res *core.SweepResult) error {
	if cutoff.IsZero() {
		return nil
	}
	prefix := TenantKey(w.tenant, "replay_time", "")
	upper := append(append([]byte{}, prefix...), SeqKey(cutoff.UnixNano())...)
	c := Data(w.tx).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.Compare(k, upper) < 0; k, _ = c.Next() {
		if w.budget <= 0 {
			res.More = true
			return nil
		}
		rest := k[len(prefix):]
		i := bytes.IndexByte(rest, '/')
		if i < 0 {
			continue
		}
		w.drop(k)
		rk := replayKey(w.tenant, string(rest[i+1:]))
		if Data(w.tx).Get(rk) != nil {
			w.drop(rk)
			res.Replays++
		}
	}
	return nil
}

// AuditAnchor implements core.RetentionPort.
func (s *Store) AuditAnchor(ctx context.Context, tenantID string) (core.AuditAnchor, error) {
	a := core.AuditAnchor{TenantID: tenantID}
	err := s.view(func(tx *bolt.Tx) error {
		_, err := getJSON(Index(tx), auditAnchorKey(tenantID), &a)
		return err
	})
	return a, err
}
