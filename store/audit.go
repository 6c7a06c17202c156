package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// Audit records live at tenant/{id}/audit/{audit_id}; audit ids are ULIDs,
// so key order is append order. The chain head (the newest record's hash)
// is kept in the index so appending does not scan the chain.

func auditHeadKey(tenantID string) []byte { return []byte("audit_head/" + tenantID) }

// auditChain is core.AuditChainTx on a bbolt transaction, whose single
// writer already holds every head.
type auditChain struct{ tx *bolt.Tx }

func (c auditChain) LockHead(tenantID string) (string, error) {
	return string(Index(c.tx).Get(auditHeadKey(tenantID))), nil
}

func (c auditChain) PutAudit(rec core.AuditRecord, raw []byte) error {
	return Data(c.tx).Put(TenantKey(rec.TenantID, "audit", rec.AuditID), raw)
}

func (c auditChain) SetHead(tenantID, hash string) error {
	return Index(c.tx).Put(auditHeadKey(tenantID), []byte(hash))
}

// AppendAuditTx appends rec to its tenant's chain inside tx (sealed by
// core.SealAudit after the head kept in the index); adapters that change a
// record and audit it use it to commit both together.
func AppendAuditTx(tx *bolt.Tx, rec core.AuditRecord) (core.AuditRecord, error) {
	return core.ChainAudit(auditChain{tx}, rec)
}

// auditTx runs a chain's transaction as a write coalesced with concurrent
// writers (AppendAudit and AppendAudits both); the chain stays linear
// because bbolt runs one writer at a time.
func (s *Store) auditTx(ctx context.Context) core.AuditTxFunc {
	return func(fn func(core.AuditChainTx) error) error {
		return s.batch(ctx, func(tx *bolt.Tx) error { return fn(auditChain{tx}) })
	}
}

// AppendAudit implements core.AuditPort.
func (s *Store) AppendAudit(ctx context.Context, rec core.AuditRecord) (core.AuditRecord, error) {
	return s.auditTx(ctx).Append(rec)
}

// AppendAudits implements core.AuditPort: one transaction, each tenant's
// head read once and written once.
func (s *Store) AppendAudits(ctx context.Context, recs []core.AuditRecord) ([]core.AuditRecord, error) {
	return s.auditTx(ctx).AppendAll(recs)
}

// ListAudit implements core.AuditPort (newest first).
func (s *Store) ListAudit(ctx context.Context, tenantID string, f core.AuditFilter) ([]core.AuditRecord, error) {
	limit := f.PageSize()
	out := []core.AuditRecord{}
	var decodeErr error
	err := s.view(func(tx *bolt.Tx) error {
		scanPrefix(Data(tx), TenantKey(tenantID, "audit", ""), true, func(k, v []byte) bool {
			var rec core.AuditRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				decodeErr = fmt.Errorf("decode %s: %w", k, err)
				return false
			}
			if !f.Since.IsZero() && rec.Time.Before(f.Since) {
				return false // newest first: everything after is older
			}
			if f.Action != "" && rec.Action != f.Action {
				return true
			}
			out = append(out, rec)
			return len(out) < limit
		})
		return nil
	})
	if err == nil {
		err = decodeErr
	}
	return out, err
}

// VerifyAudit implements core.AuditPort with core.AuditChainCheck over
// the records in append order, from the retention anchor, to the head
// kept in the index.
func (s *Store) VerifyAudit(ctx context.Context, tenantID string) (int, error) {
	var chk core.AuditChainCheck
	var verr error
	err := s.view(func(tx *bolt.Tx) error {
		// After retention removed the oldest records, the chain is proven
		// from the anchor they left.
		anchor := core.AuditAnchor{}
		if _, err := getJSON(Index(tx), auditAnchorKey(tenantID), &anchor); err != nil {
			return err
		}
		chk.From(anchor)
		scanPrefix(Data(tx), TenantKey(tenantID, "audit", ""), false, func(k, v []byte) bool {
			var rec core.AuditRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				verr = fmt.Errorf("audit record %s: undecodable: %w", k, err)
				return false
			}
			verr = chk.Next(rec)
			return verr == nil
		})
		if verr == nil {
			verr = chk.Done(tenantID, string(Index(tx).Get(auditHeadKey(tenantID))))
		}
		return nil
	})
	if err != nil {
		return chk.N, err
	}
	return chk.N, verr
}
