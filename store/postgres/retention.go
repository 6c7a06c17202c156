package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/jackc/pgx/v5"
)

// Retention sweeps (core.RetentionPort). Each query is bounded by the
// tenant, the cutoff and the limit and walks an index (runs and audit by
// their keys, which are in creation order; model_replays by created_at),
// so a sweep costs what it removes. PostgreSQL reuses the space of deleted
// rows after autovacuum; see docs/operator.md.

var (
	_ core.RetentionPort = (*Store)(nil)
	_ core.SweepLocker   = (*Store)(nil)
)

// sweepLock is the advisory lock the sweeping node holds, so nodes that
// share the database sweep one at a time.
const sweepLock = 7_365_821_016

// TrySweepLock implements core.SweepLocker with a session advisory lock
// on a connection held until release (a node that dies drops it).
func (s *Store) TrySweepLock(ctx context.Context) (func(), bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, dbErr(err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, sweepLock).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, dbErr(err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, sweepLock); err != nil {
			// The session may hold the lock still: drop the connection.
			conn.Conn().Close(ctx)
		}
		conn.Release()
	}, true, nil
}

// SweepTenant implements core.RetentionPort.
func (s *Store) SweepTenant(ctx context.Context, tenantID string, c core.SweepCutoffs, limit int, audit func(core.SweepResult) *core.AuditRecord) (core.SweepResult, error) {
	limit = core.SweepBudget(limit)
	var res core.SweepResult
	err := s.tx(ctx, func(tx pgx.Tx) error {
		res = core.SweepResult{}
		budget := limit
		steps := []func() (int, error){
			func() (int, error) { return sweepRuns(ctx, tx, tenantID, c.Runs, budget, &res) },
			func() (int, error) { return sweepAudit(ctx, tx, tenantID, c.Audit, budget, &res) },
			func() (int, error) { return sweepUsage(ctx, tx, tenantID, c.UsageDetail, budget, &res) },
			func() (int, error) { return sweepReplays(ctx, tx, tenantID, c.UsageDetail, budget, &res) },
		}
		for _, step := range steps {
			if budget <= 0 {
				res.More = true
				break
			}
			n, err := step()
			if err != nil {
				return err
			}
			budget -= n
		}
		if audit != nil && res.Total() > 0 {
			if rec := audit(res); rec != nil {
				_, err := appendAudit(ctx, tx, *rec)
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

// sweepRuns removes finished runs created before the cutoff that finished
// before it, with their events, idempotency keys and queue rows.
func sweepRuns(ctx context.Context, tx pgx.Tx, tenantID string, cutoff time.Time, budget int, res *core.SweepResult) (int, error) {
	if cutoff.IsZero() {
		return 0, nil
	}
	// Candidates: finished runs created before the cutoff that finished
	// before it (a run created long ago that finished recently must not
	// fill the page); core.SweptRun.Sweepable decides below.
	rows, err := tx.Query(ctx, `SELECT run_id, doc FROM runs WHERE tenant_id = $1 AND run_id < $2
		AND status IN ('completed', 'failed', 'canceled')
		AND (convert_from(doc, 'UTF8')::jsonb->>'completed_at')::timestamptz < $4
		ORDER BY run_id LIMIT $3 FOR UPDATE`,
		tenantID, core.IDFloor(core.PrefixRun, cutoff), budget, cutoff)
	if err != nil {
		return 0, err
	}
	type doomed struct{ runID, principal, agent, key string }
	var gone []doomed
	seen := 0
	for rows.Next() {
		seen++
		var id string
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			rows.Close()
			return 0, err
		}
		var rec core.SweptRun
		if err := json.Unmarshal(raw, &rec); err != nil {
			rows.Close()
			return 0, fmt.Errorf("decode run %s: %w", id, err)
		}
		if rec.Sweepable(cutoff) {
			gone = append(gone, doomed{id, rec.PrincipalID, rec.AgentID, rec.IdempotencyKey})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(gone) == 0 {
		return 0, nil
	}
	ids := make([]string, len(gone))
	var principals, agents, keys, keyRuns []string
	for i, g := range gone {
		ids[i] = g.runID
		if g.key != "" {
			principals, agents, keys, keyRuns = append(principals, g.principal), append(agents, g.agent), append(keys, g.key), append(keyRuns, g.runID)
		}
	}
	tag, err := tx.Exec(ctx, `DELETE FROM run_events WHERE tenant_id = $1 AND run_id = ANY($2)`, tenantID, ids)
	if err != nil {
		return 0, err
	}
	events := int(tag.RowsAffected())
	// By primary key (a key reused by a later run stays: run_id must match).
	if _, err := tx.Exec(ctx, `DELETE FROM run_idempotency i USING unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS d(principal_id, agent_id, key, run_id)
		WHERE i.tenant_id = $1 AND i.principal_id = d.principal_id AND i.agent_id = d.agent_id AND i.key = d.key AND i.run_id = d.run_id`,
		tenantID, principals, agents, keys, keyRuns); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM run_queue WHERE tenant_id = $1 AND run_id = ANY($2)`, tenantID, ids); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM runs WHERE tenant_id = $1 AND run_id = ANY($2)`, tenantID, ids); err != nil {
		return 0, err
	}
	res.Runs += len(gone)
	res.Events += events
	// A full page of candidates may hide more due runs behind it.
	if seen == budget && len(gone) > 0 {
		res.More = true
	}
	return len(gone) + events, nil
}

// sweepAudit removes the oldest records of the chain while they are older
// than the cutoff and moves the tenant's anchor past them, under the
// anchor's row lock.
func sweepAudit(ctx context.Context, tx pgx.Tx, tenantID string, cutoff time.Time, budget int, res *core.SweepResult) (int, error) {
	if cutoff.IsZero() {
		return 0, nil
	}
	anchor := core.AuditAnchor{TenantID: tenantID}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_anchors (tenant_id, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING`, tenantID, mustEncode(anchor)); err != nil {
		return 0, err
	}
	if _, err := getDoc(ctx, tx, &anchor, `SELECT doc FROM audit_anchors WHERE tenant_id = $1 FOR UPDATE`, tenantID); err != nil {
		return 0, err
	}
	rows, err := tx.Query(ctx, `SELECT seq, doc FROM audit WHERE tenant_id = $1 ORDER BY seq LIMIT $2`, tenantID, budget)
	if err != nil {
		return 0, err
	}
	var last int64 = -1
	n, seen := 0, 0
	for rows.Next() {
		seen++
		var seq int64
		var raw []byte
		if err := rows.Scan(&seq, &raw); err != nil {
			rows.Close()
			return 0, err
		}
		var rec core.AuditRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			rows.Close()
			return 0, fmt.Errorf("decode audit %d: %w", seq, err)
		}
		if !core.AuditSweepable(rec.Time, cutoff) {
			break
		}
		anchor = anchor.Advance(rec)
		last = seq
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM audit WHERE tenant_id = $1 AND seq <= $2`, tenantID, last); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `UPDATE audit_anchors SET doc = $2 WHERE tenant_id = $1`, tenantID, mustEncode(anchor)); err != nil {
		return 0, err
	}
	res.Audit += n
	if n == seen && seen == budget {
		res.More = true
	}
	return n, nil
}

// sweepUsage removes minute and hour ledger entries past the cutoff.
func sweepUsage(ctx context.Context, tx pgx.Tx, tenantID string, cutoff time.Time, budget int, res *core.SweepResult) (int, error) {
	if cutoff.IsZero() {
		return 0, nil
	}
	// Candidates by the text order of periods (the rule's own bound is
	// checked again below by core.UsagePeriodSweepable).
	rows, err := tx.Query(ctx, `SELECT win, period FROM usage WHERE tenant_id = $1 AND win IN ('minute', 'hour')
		AND period < $2 ORDER BY win, period LIMIT $3`, tenantID, core.UsagePeriod(core.WindowHour, cutoff), budget)
	if err != nil {
		return 0, err
	}
	var wins, periods []string
	seen := 0
	for rows.Next() {
		seen++
		var w, p string
		if err := rows.Scan(&w, &p); err != nil {
			rows.Close()
			return 0, err
		}
		if core.UsagePeriodSweepable(w, p, cutoff) {
			wins, periods = append(wins, w), append(periods, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(wins) == 0 {
		return 0, nil
	}
	tag, err := tx.Exec(ctx, `DELETE FROM usage u USING unnest($2::text[], $3::text[]) AS d(win, period)
		WHERE u.tenant_id = $1 AND u.win = d.win AND u.period = d.period`, tenantID, wins, periods)
	if err != nil {
		return 0, err
	}
	n := int(tag.RowsAffected())
	res.Usage += n
	if seen == budget {
		res.More = true
	}
	return n, nil
}

// sweepReplays removes stored model answers created before the cutoff.
func sweepReplays(ctx context.Context, tx pgx.Tx, tenantID string, cutoff time.Time, budget int, res *core.SweepResult) (int, error) {
	if cutoff.IsZero() {
		return 0, nil
	}
	tag, err := tx.Exec(ctx, `DELETE FROM model_replays WHERE tenant_id = $1 AND request_id IN (
		SELECT request_id FROM model_replays WHERE tenant_id = $1 AND created_at < $2 ORDER BY created_at LIMIT $3)`,
		tenantID, cutoff, budget)
	if err != nil {
		return 0, err
	}
	n := int(tag.RowsAffected())
	res.Replays += n
	if n == budget {
		res.More = true
	}
	return n, nil
}

// AuditAnchor implements core.RetentionPort.
func (s *Store) AuditAnchor(ctx context.Context, tenantID string) (core.AuditAnchor, error) {
	a := core.AuditAnchor{TenantID: tenantID}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		_, err := getDoc(ctx, tx, &a, `SELECT doc FROM audit_anchors WHERE tenant_id = $1`, tenantID)
		return err
	})
	return a, err
}
