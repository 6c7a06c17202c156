package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/jackc/pgx/v5"
)

// PutPeer implements core.PeerRegistryPort (created_at kept on replace).
func (s *Store) PutPeer(ctx context.Context, p core.Peer) (bool, error) {
	if p.StackID == "" {
		return false, core.Invalid("peer.stack_id", "stack_id is required")
	}
	created := false
	err := s.tx(ctx, func(tx pgx.Tx) error {
		q, raw, found, err := nextDoc(ctx, tx, func(prev *core.Peer) core.Peer { return core.NextPeer(prev, p, core.Now()) },
			`SELECT doc FROM peers WHERE stack_id = $1 FOR UPDATE`, p.StackID)
		if err != nil {
			return err
		}
		created = !found
		_, err = tx.Exec(ctx, `INSERT INTO peers (stack_id, doc) VALUES ($1, $2) ON CONFLICT (stack_id) DO UPDATE SET doc = excluded.doc`, q.StackID, raw)
		return err
	})
	return created, err
}

// GetPeer implements core.PeerRegistryPort.
func (s *Store) GetPeer(ctx context.Context, stackID string) (core.Peer, error) {
	return oneDoc[core.Peer](ctx, s, "peer", stackID, `SELECT doc FROM peers WHERE stack_id = $1`, stackID)
}

// ListPeers implements core.PeerRegistryPort.
func (s *Store) ListPeers(ctx context.Context) ([]core.Peer, error) {
	return listDocs[core.Peer](ctx, s, `SELECT doc FROM peers ORDER BY stack_id`)
}

// DeletePeer implements core.PeerRegistryPort.
func (s *Store) DeletePeer(ctx context.Context, stackID string) (core.Peer, error) {
	return oneDoc[core.Peer](ctx, s, "peer", stackID, `DELETE FROM peers WHERE stack_id = $1 RETURNING doc`, stackID)
}

// GetForward implements core.ForwardIndexPort.
func (s *Store) GetForward(ctx context.Context, tenantID, idemKey string) (core.ForwardRecord, bool, error) {
	return findDoc[core.ForwardRecord](ctx, s, `SELECT doc FROM forwards WHERE tenant_id = $1 AND idempotency_key = $2`, tenantID, idemKey)
}

// PutForward implements core.ForwardIndexPort: the primary key decides the
// first writer; later writers get its record and write no audit.
func (s *Store) PutForward(ctx context.Context, rec core.ForwardRecord, audit *core.AuditRecord) (core.ForwardRecord, error) {
	if rec.TenantID == "" || rec.IdempotencyKey == "" || rec.RemoteRunID == "" {
		return rec, fmt.Errorf("put forward: tenant_id, idempotency_key and remote_run_id are required")
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = core.Now()
	}
	raw, err := encode(rec)
	if err != nil {
		return rec, err
	}
	out := rec
	err = s.tx(ctx, func(tx pgx.Tx) error {
		out = rec
		tag, err := tx.Exec(ctx, `INSERT INTO forwards (tenant_id, idempotency_key, remote_run_id, doc) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id, idempotency_key) DO NOTHING`, rec.TenantID, rec.IdempotencyKey, rec.RemoteRunID, raw)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			_, err := getDoc(ctx, tx, &out, `SELECT doc FROM forwards WHERE tenant_id = $1 AND idempotency_key = $2`, rec.TenantID, rec.IdempotencyKey)
			return err
		}
		return appendAuditIf(ctx, tx, audit)
	})
	return out, err
}

// ForwardByRemoteRun implements core.ForwardIndexPort.
func (s *Store) ForwardByRemoteRun(ctx context.Context, tenantID, runID string) (core.ForwardRecord, error) {
	return oneDoc[core.ForwardRecord](ctx, s, "run", runID, `SELECT doc FROM forwards WHERE tenant_id = $1 AND remote_run_id = $2`, tenantID, runID)
}

// MarkJTI implements core.ReplayGuard in one statement: the insert wins,
// or replaces an expired entry, or finds a live one (a replay). A few
// expired entries are pruned on the way.
func (s *Store) MarkJTI(ctx context.Context, issuer, jti string, exp time.Time) (bool, error) {
	now := time.Now().Unix()
	var fresh bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `INSERT INTO seen_jtis (issuer, jti, exp) VALUES ($1, $2, $3)
			ON CONFLICT (issuer, jti) DO UPDATE SET exp = excluded.exp WHERE seen_jtis.exp < $4 RETURNING 1`,
			issuer, jti, exp.Unix(), now).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			fresh = false
			return nil
		}
		if err != nil {
			return err
		}
		fresh = true
		_, err = tx.Exec(ctx, `DELETE FROM seen_jtis WHERE ctid IN (SELECT ctid FROM seen_jtis WHERE exp < $1 LIMIT 16)`, now)
		return err
	})
	return fresh, err
}

// ingestTx is core.IngestTx inside a PostgreSQL transaction: the
// primary key (tenant, run, sequence) and the unique (tenant, event_id)
// decide who wins when two writers meet.
type ingestTx struct {
	ctx context.Context
	tx  pgx.Tx
}

func (t ingestTx) Known(ev core.Event) (bool, error) {
	var one int
	err := t.tx.QueryRow(t.ctx, `SELECT 1 FROM ingested_events WHERE tenant_id = $1 AND event_id = $2`, ev.TenantID, ev.EventID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (t ingestTx) PutIfFree(ev core.Event) (bool, error) {
	raw, err := encode(ev)
	if err != nil {
		return false, err
	}
	tag, err := t.tx.Exec(t.ctx, `INSERT INTO ingested_events (tenant_id, run_id, sequence, event_id, doc) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING`, ev.TenantID, ev.RunID, ev.Sequence, ev.EventID, raw)
	return err == nil && tag.RowsAffected() > 0, err
}

// PutEvents implements core.IngestedEventsPort.
func (s *Store) PutEvents(ctx context.Context, sourceStackID string, events []core.Event) ([]core.IngestOutcome, error) {
	return core.IngestTxFunc(func(fn func(core.IngestTx) error) error {
		return s.tx(ctx, func(tx pgx.Tx) error { return fn(ingestTx{ctx, tx}) })
	}).Ingest(events)
}

// ListIngestedEvents implements core.IngestedEventsPort.
func (s *Store) ListIngestedEvents(ctx context.Context, tenantID, runID string, afterSeq int64) ([]core.Event, error) {
	return listDocs[core.Event](ctx, s, `SELECT doc FROM ingested_events WHERE tenant_id = $1 AND run_id = $2 AND sequence > $3 ORDER BY sequence`,
		tenantID, runID, afterSeq)
}
