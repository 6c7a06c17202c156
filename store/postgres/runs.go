package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/jackc/pgx/v5"
)

// PutAgent implements core.AgentPort (core.NextAgentVersion under the
// row lock; a first create that races another is retried).
func (s *Store) PutAgent(ctx context.Context, ag core.Agent) (core.Agent, error) {
	var out core.Agent
	err := s.tx(ctx, func(tx pgx.Tx) error {
		a, raw, found, err := nextDoc(ctx, tx, func(prev *core.Agent) core.Agent { return core.NextAgentVersion(prev, ag, core.Now()) },
			`SELECT doc FROM agents WHERE tenant_id = $1 AND agent_id = $2 FOR UPDATE`, ag.TenantID, ag.AgentID)
		if err != nil {
			return err
		}
		if found {
			_, err = tx.Exec(ctx, `UPDATE agents SET doc = $3 WHERE tenant_id = $1 AND agent_id = $2`, a.TenantID, a.AgentID, raw)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO agents (tenant_id, agent_id, doc) VALUES ($1, $2, $3)`, a.TenantID, a.AgentID, raw)
		}
		out = a
		return err
	})
	if pgCode(err) == codeUniqueViolation {
		return s.PutAgent(ctx, ag)
	}
	return out, err
}

// GetAgent implements core.AgentPort.
func (s *Store) GetAgent(ctx context.Context, tenantID, agentID string) (core.Agent, error) {
	return oneDoc[core.Agent](ctx, s, "agent", agentID, `SELECT doc FROM agents WHERE tenant_id = $1 AND agent_id = $2`, tenantID, agentID)
}

// ListAgents implements core.AgentPort.
func (s *Store) ListAgents(ctx context.Context, tenantID string) ([]core.Agent, error) {
	return listDocs[core.Agent](ctx, s, `SELECT doc FROM agents WHERE tenant_id = $1 ORDER BY agent_id`, tenantID)
}

// PutTool implements core.ToolRegistryPort (core.NextToolDescriptor
// under the row lock).
func (s *Store) PutTool(ctx context.Context, td core.ToolDescriptor) (core.ToolDescriptor, error) {
	var out core.ToolDescriptor
	err := s.tx(ctx, func(tx pgx.Tx) error {
		t, raw, _, err := nextDoc(ctx, tx, func(prev *core.ToolDescriptor) core.ToolDescriptor {
			return core.NextToolDescriptor(prev, td, core.Now())
		},
			`SELECT doc FROM tools WHERE tenant_id = $1 AND tool_id = $2 FOR UPDATE`, td.TenantID, td.ToolID)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO tools (tenant_id, tool_id, doc) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id, tool_id) DO UPDATE SET doc = excluded.doc`, t.TenantID, t.ToolID, raw)
		out = t
		return err
	})
	return out, err
}

// GetTool implements core.ToolRegistryPort.
func (s *Store) GetTool(ctx context.Context, tenantID, toolID string) (core.ToolDescriptor, error) {
	return oneDoc[core.ToolDescriptor](ctx, s, "tool", toolID, `SELECT doc FROM tools WHERE tenant_id = $1 AND tool_id = $2`, tenantID, toolID)
}

// ListTools implements core.ToolRegistryPort.
func (s *Store) ListTools(ctx context.Context, tenantID string) ([]core.ToolDescriptor, error) {
	return listDocs[core.ToolDescriptor](ctx, s, `SELECT doc FROM tools WHERE tenant_id = $1 ORDER BY tool_id`, tenantID)
}

// writeRun queues the statements that store rec and its new events (and
// take a terminal run off the queue) on b. An insert with a lease owner
// queues the run already claimed by that node.
func (s *Store) writeRun(b *pgx.Batch, rec *core.RunRecord, evs []core.Event, insert bool, lease ...leaseTo) error {
	raw, err := encode(rec)
	if err != nil {
		return err
	}
	if insert {
		b.Queue(`INSERT INTO runs (tenant_id, run_id, agent_id, status, last_sequence, doc) VALUES ($1, $2, $3, $4, $5, $6)`,
			rec.TenantID, rec.RunID, rec.AgentID, rec.Status, rec.LastSequence, raw)
		switch {
		case core.RunTerminal(rec.Status):
		case len(lease) > 0:
			b.Queue(`INSERT INTO run_queue (run_id, tenant_id, lease_owner, lease_until) VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')`,
				rec.RunID, rec.TenantID, lease[0].node, millis(lease[0].d))
		default:
			b.Queue(`INSERT INTO run_queue (run_id, tenant_id) VALUES ($1, $2)`, rec.RunID, rec.TenantID)
		}
	} else {
		b.Queue(`UPDATE runs SET status = $3, last_sequence = $4, doc = $5 WHERE tenant_id = $1 AND run_id = $2`,
			rec.TenantID, rec.RunID, rec.Status, rec.LastSequence, raw)
		if core.RunTerminal(rec.Status) {
			b.Queue(`DELETE FROM run_queue WHERE run_id = $1`, rec.RunID)
		}
	}
	for i := range evs {
		ev, err := evs[i].AppendJSON(make([]byte, 0, 448+len(evs[i].Payload)))
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO run_events (tenant_id, run_id, sequence, doc) VALUES ($1, $2, $3, $4)`, rec.TenantID, rec.RunID, evs[i].Sequence, ev)
	}
	if len(evs) > 0 {
		notify(b, s.channel, core.NoticeEvents, rec.TenantID, rec.RunID, rec.LastSequence)
	}
	return nil
}

func sendBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}

func lockRun(ctx context.Context, tx pgx.Tx, tenantID, runID string) (core.RunRecord, error) {
	var rec core.RunRecord
	found, err := getDoc(ctx, tx, &rec, `SELECT doc FROM runs WHERE tenant_id = $1 AND run_id = $2 FOR UPDATE`, tenantID, runID)
	if err != nil {
		return rec, err
	}
	if !found {
		return rec, core.NotFound("run", runID)
	}
	return rec, nil
}

// leaseTo is a claim written with the run: node holds it for d.
type leaseTo struct {
	node string
	d    time.Duration
}

// CreateRun implements core.RunStatePort. The idempotency row is inserted
// first: a concurrent create with the same key waits on it and then finds
// the winner's run.
func (s *Store) CreateRun(ctx context.Context, rec core.RunRecord, drafts []core.EventDraft, audit *core.AuditRecord) (core.RunRecord, []core.Event, bool, error) {
	stored, evs, replayed, _, err := s.createRun(ctx, rec, drafts, audit, nil, 0)
	return stored, evs, replayed, err
}

// CreateRunClaimed is CreateRun with the creating node's claim (as
// ClaimRun would make it: at most maxHeld (> 0) of the tenant's runs held
// with a live lease, under the tenant's claim lock) written in the same
// transaction, so a cluster node pays one commit per created run instead
// of a create and then a claim. claimed is false when the tenant's cap is
// reached (the run is queued unclaimed, for the claim loops) or on a
// replay.
func (s *Store) CreateRunClaimed(ctx context.Context, rec core.RunRecord, drafts []core.EventDraft, audit *core.AuditRecord,
	node string, lease time.Duration, maxHeld int) (core.RunRecord, []core.Event, bool, bool, error) {
	return s.createRun(ctx, rec, drafts, audit, &leaseTo{node: node, d: lease}, maxHeld)
}

func (s *Store) createRun(ctx context.Context, rec core.RunRecord, drafts []core.EventDraft, audit *core.AuditRecord,
	claim *leaseTo, maxHeld int) (core.RunRecord, []core.Event, bool, bool, error) {
	r := rec
	r.LastSequence = 0
	evs, err := core.SequenceEvents(&r, drafts, core.Now())
	if err != nil {
		return core.RunRecord{}, nil, false, false, err
	}
	var (
		stored            core.RunRecord
		replayed, claimed bool
	)
	err = s.tx(ctx, func(tx pgx.Tx) error {
		replayed, claimed = false, false
		tag, err := tx.Exec(ctx, `INSERT INTO run_idempotency (tenant_id, principal_id, agent_id, key, run_id) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING`, r.TenantID, r.PrincipalID, r.AgentID, r.IdempotencyKey, r.RunID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var prev string
			if err := tx.QueryRow(ctx, `SELECT run_id FROM run_idempotency WHERE tenant_id = $1 AND principal_id = $2 AND agent_id = $3 AND key = $4`,
				r.TenantID, r.PrincipalID, r.AgentID, r.IdempotencyKey).Scan(&prev); err != nil {
				return err
			}
			var old core.RunRecord
			found, err := getDoc(ctx, tx, &old, `SELECT doc FROM runs WHERE tenant_id = $1 AND run_id = $2`, r.TenantID, prev)
			if err != nil {
				return err
			}
			if !found {
				return core.NotFound("run", prev)
			}
			if err := core.CheckIdempotentReplay(old, r.IdempotencyKey, r.BodyHash); err != nil {
				return err
			}
			stored, replayed = old, true
			return nil
		}
		var lease []leaseTo
		if claim != nil && !core.RunTerminal(r.Status) {
			claimed = true
			if maxHeld > 0 {
				// The run's own row is not written yet: the count is of the
				// tenant's other runs, as in ClaimRun.
				n, err := lockTenantClaims(ctx, tx, r.TenantID, []string{r.RunID})
				if err != nil {
					return err
				}
				claimed = n < maxHeld
			}
			if claimed {
				lease = append(lease, *claim)
			}
		}
		b := &pgx.Batch{}
		if err := s.writeRun(b, &r, evs, true, lease...); err != nil {
			return err
		}
		if err := sendBatch(ctx, tx, b); err != nil {
			return err
		}
		return appendAuditIf(ctx, tx, audit)
	})
	if err != nil {
		return core.RunRecord{}, nil, false, false, fmt.Errorf("create run: %w", err)
	}
	if replayed {
		return stored, nil, true, false, nil
	}
	return r, evs, false, claimed, nil
}

// FindIdempotent implements core.RunStatePort.
func (s *Store) FindIdempotent(ctx context.Context, tenantID, principalID, agentID, key string) (core.RunRecord, bool, error) {
	return findDoc[core.RunRecord](ctx, s, `SELECT r.doc FROM run_idempotency i JOIN runs r ON r.tenant_id = i.tenant_id AND r.run_id = i.run_id
		WHERE i.tenant_id = $1 AND i.principal_id = $2 AND i.agent_id = $3 AND i.key = $4`, tenantID, principalID, agentID, key)
}

// GetRun implements core.RunStatePort.
func (s *Store) GetRun(ctx context.Context, tenantID, runID string) (core.RunRecord, error) {
	return oneDoc[core.RunRecord](ctx, s, "run", runID, `SELECT doc FROM runs WHERE tenant_id = $1 AND run_id = $2`, tenantID, runID)
}

// ListRuns implements core.RunStatePort (newest first: run ids are ULIDs).
func (s *Store) ListRuns(ctx context.Context, tenantID string, f core.RunFilter) ([]core.Run, string, error) {
	limit := f.PageSize()
	rows, err := s.pool.Query(ctx, `SELECT doc FROM runs WHERE tenant_id = $1
		AND ($2::text = '' OR agent_id = $2) AND ($3::text = '' OR status = $3) AND ($4::text = '' OR run_id < $4)
		ORDER BY run_id DESC LIMIT $5`, tenantID, f.AgentID, f.Status, f.Cursor, limit+1)
	if err != nil {
		return nil, "", dbErr(err)
	}
	recs, err := collectDocs[core.RunRecord](rows)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(recs) > limit {
		recs = recs[:limit]
		next = recs[limit-1].RunID
	}
	out := make([]core.Run, len(recs))
	for i := range recs {
		out[i] = recs[i].Run
	}
	return out, next, nil
}

// AdvanceRun implements core.RunStatePort under the run's row lock.
func (s *Store) AdvanceRun(ctx context.Context, tenantID, runID string, fn func(*core.RunRecord) ([]core.EventDraft, error)) (core.RunRecord, []core.Event, error) {
	var (
		out    core.RunRecord
		events []core.Event
	)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rec, evs, b, err := s.moveRun(ctx, tx, tenantID, runID, func(rec *core.RunRecord, _ time.Time) ([]core.EventDraft, error) {
			return fn(rec)
		})
		if err != nil {
			return err
		}
		out, events = rec, evs
		return sendBatch(ctx, tx, b)
	})
	return out, events, err
}

// moveRun locks the run inside tx, lets draft change it (given the time its
// events will carry), and queues the changed record with the sequenced
// events on the batch it returns for the caller to finish and send.
func (s *Store) moveRun(ctx context.Context, tx pgx.Tx, tenantID, runID string, draft func(*core.RunRecord, time.Time) ([]core.EventDraft, error)) (core.RunRecord, []core.Event, *pgx.Batch, error) {
	rec, err := lockRun(ctx, tx, tenantID, runID)
	if err != nil {
		return rec, nil, nil, err
	}
	now := core.Now()
	drafts, err := draft(&rec, now)
	if err != nil {
		return rec, nil, nil, err
	}
	evs, err := core.SequenceEvents(&rec, drafts, now)
	if err != nil {
		return rec, nil, nil, err
	}
	b := &pgx.Batch{}
	if err := s.writeRun(b, &rec, evs, false); err != nil {
		return rec, nil, nil, err
	}
	return rec, evs, b, nil
}

// appendRunSQL is AppendRun's one statement (one round trip, one implicit
// transaction): the run row moves only while it is non-terminal and still
// at the expected sequence, and the events and the queue exit happen only
// if it did.
const appendRunSQL = `WITH u AS (
	UPDATE runs SET status = $3, last_sequence = $4, doc = $5
	WHERE tenant_id = $1 AND run_id = $2 AND last_sequence = $6 AND status NOT IN ('completed', 'failed', 'canceled')
	RETURNING 1
), ev AS (
	INSERT INTO run_events (tenant_id, run_id, sequence, doc)
	SELECT $1, $2, e.seq, e.doc FROM unnest($7::bigint[], $8::bytea[]) AS e(seq, doc)
	WHERE EXISTS (SELECT 1 FROM u)
	RETURNING 1
), q AS (
	DELETE FROM run_queue WHERE run_id = $2 AND $9::boolean AND EXISTS (SELECT 1 FROM u)
	RETURNING 1
)
SELECT (SELECT count(*) FROM u), CASE WHEN $10 <> '' AND EXISTS (SELECT 1 FROM u) THEN pg_notify($11, $10) END IS NULL`

// AppendRun implements core.RunStatePort: the check and the write are one
// statement (appendRunSQL); when it matched nothing, the stored run says
// why (core.CheckAppend).
func (s *Store) AppendRun(ctx context.Context, rec core.RunRecord, drafts []core.EventDraft) (core.RunRecord, []core.Event, error) {
	expect := rec.LastSequence
	evs, err := core.SequenceEvents(&rec, drafts, core.Now())
	if err != nil {
		return rec, nil, err
	}
	raw, err := encode(rec)
	if err != nil {
		return rec, nil, err
	}
	seqs := make([]int64, len(evs))
	docs := make([][]byte, len(evs))
	for i := range evs {
		seqs[i] = evs[i].Sequence
		if docs[i], err = evs[i].AppendJSON(make([]byte, 0, 448+len(evs[i].Payload))); err != nil {
			return rec, nil, err
		}
	}
	var (
		moved   int64
		ignored bool
		notice  string
	)
	if len(evs) > 0 {
		notice = noticePayload(core.NoticeEvents, rec.TenantID, rec.RunID, rec.LastSequence)
	}
	err = s.pool.QueryRow(ctx, appendRunSQL, rec.TenantID, rec.RunID, rec.Status, rec.LastSequence, raw, expect,
		seqs, docs, core.RunTerminal(rec.Status), notice, s.channel).Scan(&moved, &ignored)
	if err != nil {
		return core.RunRecord{}, nil, dbErr(err)
	}
	if moved == 0 {
		var status string
		var last int64
		err := s.pool.QueryRow(ctx, `SELECT status, last_sequence FROM runs WHERE tenant_id = $1 AND run_id = $2`, rec.TenantID, rec.RunID).Scan(&status, &last)
		if errors.Is(err, pgx.ErrNoRows) {
			return core.RunRecord{}, nil, core.NotFound("run", rec.RunID)
		}
		if err != nil {
			return core.RunRecord{}, nil, dbErr(err)
		}
		if err := core.CheckAppend(rec.RunID, status, last, expect); err != nil {
			return core.RunRecord{}, nil, err
		}
		return core.RunRecord{}, nil, core.Errorf(core.CodeConflict, "run %s changed meanwhile", rec.RunID)
	}
	return rec, evs, nil
}

// CancelRun implements core.RunStatePort with core.CancelRunRecord.
func (s *Store) CancelRun(ctx context.Context, tenantID, runID string, audit *core.AuditRecord) (core.RunRecord, []core.Event, error) {
	var (
		out    core.RunRecord
		events []core.Event
	)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rec, evs, b, err := s.moveRun(ctx, tx, tenantID, runID, core.CancelRunRecord)
		if err != nil {
			return err
		}
		notify(b, s.channel, core.NoticeCancel, rec.TenantID, rec.RunID, rec.LastSequence)
		if err := sendBatch(ctx, tx, b); err != nil {
			return err
		}
		out, events = rec, evs
		return appendAuditIf(ctx, tx, audit)
	})
	return out, events, err
}

// ListEvents implements core.RunStatePort. The events are read first: a
// run has its created event from the start, so rows found prove the run is
// in tenantID, and only an empty answer costs the second query that tells
// "nothing after this sequence" from not_found.
func (s *Store) ListEvents(ctx context.Context, tenantID, runID string, after int64, limit int) ([]core.Event, error) {
	lim := any(nil)
	if limit > 0 {
		lim = limit
	}
	rows, err := s.pool.Query(ctx, `SELECT doc FROM run_events WHERE tenant_id = $1 AND run_id = $2 AND sequence > $3
		ORDER BY sequence LIMIT $4`, tenantID, runID, after, lim)
	if err != nil {
		return nil, dbErr(err)
	}
	evs, err := collectDocs[core.Event](rows)
	if err != nil || len(evs) > 0 {
		return evs, err
	}
	var one int
	err = s.pool.QueryRow(ctx, `SELECT 1 FROM runs WHERE tenant_id = $1 AND run_id = $2`, tenantID, runID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, core.NotFound("run", runID)
	}
	if err != nil {
		return nil, dbErr(err)
	}
	return evs, nil
}

// ActiveRuns implements core.QueuePort (oldest first: run ids are ULIDs).
func (s *Store) ActiveRuns(ctx context.Context) ([]core.RunRef, error) {
	rows, err := s.pool.Query(ctx, `SELECT q.tenant_id, q.run_id, coalesce(r.status, '') FROM run_queue q
		LEFT JOIN runs r ON r.tenant_id = q.tenant_id AND r.run_id = q.run_id ORDER BY q.run_id`)
	if err != nil {
		return nil, dbErr(err)
	}
	defer rows.Close()
	out := []core.RunRef{}
	for rows.Next() {
		var ref core.RunRef
		if err := rows.Scan(&ref.TenantID, &ref.RunID, &ref.Status); err != nil {
			return nil, dbErr(err)
		}
		out = append(out, ref)
	}
	return out, dbErr(rows.Err())
}
