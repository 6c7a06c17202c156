package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/jackc/pgx/v5"
)

func encode(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return raw, nil
}

func decode(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

// getDoc reads one doc column into v; found is false when no row matched.
func getDoc(ctx context.Context, q pgx.Tx, v any, sql string, args ...any) (bool, error) {
	var raw []byte
	var err error
	if q != nil {
		err = q.QueryRow(ctx, sql, args...).Scan(&raw)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, decode(raw, v)
}

// nextDoc reads the doc query selects (a SELECT … FOR UPDATE, so the row
// stays locked until the transaction ends) and returns what next makes of
// it (prev nil when no row matched), encoded, and whether a row matched:
// the caller writes raw with an UPDATE or an INSERT accordingly.
func nextDoc[T any](ctx context.Context, tx pgx.Tx, next func(prev *T) T, query string, args ...any) (v T, raw []byte, found bool, err error) {
	var prev T
	if found, err = getDoc(ctx, tx, &prev, query, args...); err != nil {
		return v, nil, false, err
	}
	var before *T
	if found {
		before = &prev
	}
	v = next(before)
	raw, err = encode(v)
	return v, raw, found, err
}

// auditChain is core.AuditChainTx inside a PostgreSQL transaction: a
// head row is locked (created on first use) so concurrent appends, from
// this node or another, chain in order, and a tenant's records and its
// head's move go in one round trip.
type auditChain struct {
	ctx context.Context
	tx  pgx.Tx
	seq int64
	b   *pgx.Batch
}

func (c *auditChain) LockHead(tenantID string) (string, error) {
	if _, err := c.tx.Exec(c.ctx, `INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, '') ON CONFLICT DO NOTHING`, tenantID); err != nil {
		return "", err
	}
	var head string
	if err := c.tx.QueryRow(c.ctx, `SELECT seq, hash FROM audit_heads WHERE tenant_id = $1 FOR UPDATE`, tenantID).Scan(&c.seq, &head); err != nil {
		return "", err
	}
	c.b = &pgx.Batch{}
	return head, nil
}

func (c *auditChain) PutAudit(rec core.AuditRecord, raw []byte) error {
	c.seq++
	c.b.Queue(`INSERT INTO audit (tenant_id, seq, audit_id, at, action, doc) VALUES ($1, $2, $3, $4, $5, $6)`,
		rec.TenantID, c.seq, rec.AuditID, rec.Time, rec.Action, raw)
	return nil
}

func (c *auditChain) SetHead(tenantID, hash string) error {
	c.b.Queue(`UPDATE audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1`, tenantID, c.seq, hash)
	return c.tx.SendBatch(c.ctx, c.b).Close()
}

// appendAudit appends rec to its tenant's chain inside tx.
func appendAudit(ctx context.Context, tx pgx.Tx, rec core.AuditRecord) (core.AuditRecord, error) {
	return core.ChainAudit(&auditChain{ctx: ctx, tx: tx}, rec)
}

func appendAuditIf(ctx context.Context, tx pgx.Tx, audit *core.AuditRecord) error {
	if audit == nil {
		return nil
	}
	_, err := appendAudit(ctx, tx, *audit)
	return err
}

// auditTx runs a chain's transaction (AppendAudit and AppendAudits both).
func (s *Store) auditTx(ctx context.Context) core.AuditTxFunc {
	return func(fn func(core.AuditChainTx) error) error {
		return s.tx(ctx, func(tx pgx.Tx) error { return fn(&auditChain{ctx: ctx, tx: tx}) })
	}
}

// AppendAudit implements core.AuditPort.
func (s *Store) AppendAudit(ctx context.Context, rec core.AuditRecord) (core.AuditRecord, error) {
	return s.auditTx(ctx).Append(rec)
}

// AppendAudits implements core.AuditPort in one transaction: each
// tenant's head row is locked once (tenants in id order, so two nodes'
// batches cannot deadlock on each other), its records sealed in the order
// given and inserted in one round trip, and the head moved once.
func (s *Store) AppendAudits(ctx context.Context, recs []core.AuditRecord) ([]core.AuditRecord, error) {
	return s.auditTx(ctx).AppendAll(recs)
}

// ListAudit implements core.AuditPort (newest first).
func (s *Store) ListAudit(ctx context.Context, tenantID string, f core.AuditFilter) ([]core.AuditRecord, error) {
	limit := f.PageSize()
	var since *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	return listDocs[core.AuditRecord](ctx, s, `SELECT doc FROM audit WHERE tenant_id = $1
		AND ($2::text = '' OR action = $2) AND ($3::timestamptz IS NULL OR at >= $3)
		ORDER BY seq DESC LIMIT $4`, tenantID, f.Action, since, limit)
}

// VerifyAudit implements core.AuditPort with core.AuditChainCheck.
func (s *Store) VerifyAudit(ctx context.Context, tenantID string) (int, error) {
	var chk core.AuditChainCheck
	var verr error
	err := s.tx(ctx, func(tx pgx.Tx) error {
		chk, verr = core.AuditChainCheck{}, nil
		// One snapshot for the anchor, the records and the head.
		if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`); err != nil {
			return err
		}
		anchor := core.AuditAnchor{}
		if _, err := getDoc(ctx, tx, &anchor, `SELECT doc FROM audit_anchors WHERE tenant_id = $1`, tenantID); err != nil {
			return err
		}
		chk.From(anchor)
		rows, err := tx.Query(ctx, `SELECT audit_id, doc FROM audit WHERE tenant_id = $1 ORDER BY seq`, tenantID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var raw []byte
			if err := rows.Scan(&id, &raw); err != nil {
				rows.Close()
				return err
			}
			var rec core.AuditRecord
			if err := json.Unmarshal(raw, &rec); err != nil {
				verr = fmt.Errorf("audit record %s: undecodable: %w", id, err)
				break
			}
			if verr = chk.Next(rec); verr != nil {
				break
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if verr != nil {
			return nil
		}
		var head string
		err = tx.QueryRow(ctx, `SELECT hash FROM audit_heads WHERE tenant_id = $1`, tenantID).Scan(&head)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		verr = chk.Done(tenantID, head)
		return nil
	})
	if err != nil {
		return chk.N, err
	}
	return chk.N, verr
}

// collectDocs decodes every row's single doc column.
func collectDocs[T any](rows pgx.Rows) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, dbErr(err)
		}
		var v T
		if err := decode(raw, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, dbErr(rows.Err())
}

// findDoc reads the document query selects (one doc column); found is
// false, with no error, when there is none.
func findDoc[T any](ctx context.Context, s *Store, query string, args ...any) (v T, found bool, err error) {
	var raw []byte
	err = s.pool.QueryRow(ctx, query, args...).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, false, nil
	}
	if err != nil {
		return v, false, dbErr(err)
	}
	return v, true, decode(raw, &v)
}

// oneDoc reads the document query selects (one doc column), not_found
// naming kind and id when there is none.
func oneDoc[T any](ctx context.Context, s *Store, kind, id, query string, args ...any) (T, error) {
	v, found, err := findDoc[T](ctx, s, query, args...)
	if err == nil && !found {
		return v, core.NotFound(kind, id)
	}
	return v, err
}

// listDocs reads the documents query selects (one doc column).
func listDocs[T any](ctx context.Context, s *Store, query string, args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, dbErr(err)
	}
	return collectDocs[T](rows)
}

// CreateTenant implements core.TenantPort.
func (s *Store) CreateTenant(ctx context.Context, t core.Tenant, audit *core.AuditRecord) error {
	raw, err := encode(t)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO tenants (tenant_id, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING`, t.TenantID, raw)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return core.Errorf(core.CodeConflict, "tenant %s already exists", t.TenantID).With("tenant_id", t.TenantID)
		}
		return appendAuditIf(ctx, tx, audit)
	})
}

// GetTenant implements core.TenantPort.
func (s *Store) GetTenant(ctx context.Context, tenantID string) (core.Tenant, error) {
	return oneDoc[core.Tenant](ctx, s, "tenant", tenantID, `SELECT doc FROM tenants WHERE tenant_id = $1`, tenantID)
}

// ListTenants implements core.TenantPort.
func (s *Store) ListTenants(ctx context.Context) ([]core.Tenant, error) {
	return listDocs[core.Tenant](ctx, s, `SELECT doc FROM tenants ORDER BY tenant_id`)
}

// UpdateTenant implements core.TenantPort.
func (s *Store) UpdateTenant(ctx context.Context, tenantID string, fn func(*core.Tenant) error, audit *core.AuditRecord) (core.Tenant, error) {
	var out core.Tenant
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var t core.Tenant
		found, err := getDoc(ctx, tx, &t, `SELECT doc FROM tenants WHERE tenant_id = $1 FOR UPDATE`, tenantID)
		if err != nil {
			return err
		}
		if !found {
			return core.NotFound("tenant", tenantID)
		}
		if err := fn(&t); err != nil {
			return err
		}
		t.TenantID = tenantID
		t.UpdatedAt = core.Now()
		raw, err := encode(t)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE tenants SET doc = $2 WHERE tenant_id = $1`, tenantID, raw); err != nil {
			return err
		}
		out = t
		return appendAuditIf(ctx, tx, audit)
	})
	return out, err
}

// tokenRecord is a token as stored: the hash travels in its own column
// and in the doc (core.Token does not encode it).
type tokenRecord struct {
	core.Token
	SecretHash string `json:"secret_hash"`
}

func tokenOf(raw []byte) (core.Token, error) {
	var rec tokenRecord
	if err := decode(raw, &rec); err != nil {
		return core.Token{}, err
	}
	rec.Token.SecretHash = rec.SecretHash
	return rec.Token, nil
}

func putToken(ctx context.Context, tx pgx.Tx, tok core.Token) error {
	raw, err := encode(tokenRecord{Token: tok, SecretHash: tok.SecretHash})
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE tokens SET doc = $3, secret_hash = $4, revoked = $5 WHERE tenant_id = $1 AND token_id = $2`,
		tok.TenantID, tok.TokenID, raw, tok.SecretHash, tok.RevokedAt != nil)
	return err
}

func lockToken(ctx context.Context, tx pgx.Tx, tenantID, tokenID string) (core.Token, error) {
	var raw []byte
	err := tx.QueryRow(ctx, `SELECT doc FROM tokens WHERE tenant_id = $1 AND token_id = $2 FOR UPDATE`, tenantID, tokenID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return core.Token{}, core.NotFound("token", tokenID)
	}
	if err != nil {
		return core.Token{}, err
	}
	return tokenOf(raw)
}

// CreateToken implements core.TokenPort.
func (s *Store) CreateToken(ctx context.Context, tok core.Token, audit *core.AuditRecord) error {
	if tok.SecretHash == "" {
		return fmt.Errorf("create token: empty secret hash")
	}
	raw, err := encode(tokenRecord{Token: tok, SecretHash: tok.SecretHash})
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM tenants WHERE tenant_id = $1 FOR SHARE`, tok.TenantID).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return core.NotFound("tenant", tok.TenantID)
		} else if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO tokens (tenant_id, token_id, secret_hash, revoked, doc) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, token_id) DO NOTHING`, tok.TenantID, tok.TokenID, tok.SecretHash, tok.RevokedAt != nil, raw)
		if pgCode(err) == codeUniqueViolation {
			return core.Errorf(core.CodeConflict, "token secret already in use")
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return core.Errorf(core.CodeConflict, "token %s already exists", tok.TokenID)
		}
		return appendAuditIf(ctx, tx, audit)
	})
}

// TokenBySecretHash implements core.TokenPort. Revoked tokens no longer
// authenticate (as on bbolt, whose index drops them).
func (s *Store) TokenBySecretHash(ctx context.Context, hash string) (core.Token, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT doc FROM tokens WHERE secret_hash = $1 AND NOT revoked`, hash).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return core.Token{}, core.Errorf(core.CodeUnauthorized, "unknown API key")
	}
	if err != nil {
		return core.Token{}, dbErr(err)
	}
	return tokenOf(raw)
}

// GetToken implements core.TokenPort.
func (s *Store) GetToken(ctx context.Context, tenantID, tokenID string) (core.Token, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT doc FROM tokens WHERE tenant_id = $1 AND token_id = $2`, tenantID, tokenID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return core.Token{}, core.NotFound("token", tokenID)
	}
	if err != nil {
		return core.Token{}, dbErr(err)
	}
	return tokenOf(raw)
}

// ListTokens implements core.TokenPort (token ids are ULIDs: oldest first).
func (s *Store) ListTokens(ctx context.Context, tenantID string) ([]core.Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT doc FROM tokens WHERE tenant_id = $1 ORDER BY token_id`, tenantID)
	if err != nil {
		return nil, dbErr(err)
	}
	recs, err := collectDocs[tokenRecord](rows)
	if err != nil {
		return nil, err
	}
	out := make([]core.Token, len(recs))
	for i, r := range recs {
		r.Token.SecretHash = r.SecretHash
		out[i] = r.Token
	}
	return out, nil
}

// RotateToken implements core.TokenPort.
func (s *Store) RotateToken(ctx context.Context, tenantID, tokenID, newHash string, audit *core.AuditRecord) (core.Token, error) {
	var out core.Token
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tok, err := lockToken(ctx, tx, tenantID, tokenID)
		if err != nil {
			return err
		}
		if tok.RevokedAt != nil {
			return core.Errorf(core.CodeConflict, "token %s is revoked", tokenID)
		}
		tok.SecretHash = newHash
		if err := putToken(ctx, tx, tok); err != nil {
			if pgCode(err) == codeUniqueViolation {
				return core.Errorf(core.CodeConflict, "token secret already in use")
			}
			return err
		}
		out = tok
		return appendAuditIf(ctx, tx, audit)
	})
	return out, err
}

// RevokeToken implements core.TokenPort. Revoking twice is harmless.
func (s *Store) RevokeToken(ctx context.Context, tenantID, tokenID string, audit *core.AuditRecord) (core.Token, error) {
	var out core.Token
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tok, err := lockToken(ctx, tx, tenantID, tokenID)
		if err != nil {
			return err
		}
		if tok.RevokedAt == nil {
			now := core.Now()
			tok.RevokedAt = &now
		}
		if err := putToken(ctx, tx, tok); err != nil {
			return err
		}
		out = tok
		return appendAuditIf(ctx, tx, audit)
	})
	return out, err
}

// TouchToken implements core.TokenPort (last_used_at never moves back).
func (s *Store) TouchToken(ctx context.Context, tenantID, tokenID string, at time.Time) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		tok, err := lockToken(ctx, tx, tenantID, tokenID)
		if err != nil {
			return err
		}
		if tok.LastUsedAt != nil && !at.After(*tok.LastUsedAt) {
			return nil
		}
		at := at.UTC()
		tok.LastUsedAt = &at
		return putToken(ctx, tx, tok)
	})
}
