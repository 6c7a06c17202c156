package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// Audit records live at tenant/{id}/audit/{audit_id}; audit ids are ULIDs,
// so key order is append order. The chain head (the newest record's hash)
// is kept in the index so appending does not scan the chain.

func auditHeadKey(tenantID string) []byte { return []byte("audit_head/" + tenantID) }

// AuditHash is the hash of rec chained to rec.PrevHash: SHA-256 over the
// previous hash and the canonical JSON of the record with Hash cleared.
func AuditHash(rec core.AuditRecord) (string, error) {
	rec.Hash = ""
	rec.Time = rec.Time.UTC()
	raw, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encode audit record: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(rec.PrevHash))
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// AppendAuditTx appends rec to its tenant's chain inside tx; adapters that
// change a record and audit it use it to commit both together.
func AppendAuditTx(tx *bolt.Tx, rec core.AuditRecord) (core.AuditRecord, error) {
	if rec.TenantID == "" {
		return rec, fmt.Errorf("audit record without tenant_id")
	}
	if rec.AuditID == "" {
		rec.AuditID = core.NewID(core.PrefixAudit)
	}
	if rec.Time.IsZero() {
		rec.Time = core.Now()
	}
	if rec.Details == nil {
		rec.Details = map[string]any{}
	}
	// Round-trip details through JSON so the hash is computed over exactly
	// what is stored and later read back.
	if raw, err := json.Marshal(rec.Details); err == nil {
		var d map[string]any
		if json.Unmarshal(raw, &d) == nil {
			rec.Details = d
		}
	}
	rec.PrevHash = string(Index(tx).Get(auditHeadKey(rec.TenantID)))
	h, err := AuditHash(rec)
	if err != nil {
		return rec, err
	}
	rec.Hash = h
	if err := putJSON(Data(tx), TenantKey(rec.TenantID, "audit", rec.AuditID), rec); err != nil {
		return rec, err
	}
	return rec, Index(tx).Put(auditHeadKey(rec.TenantID), []byte(h))
}

// AppendAudit implements core.AuditPort. Concurrent appends are coalesced
// into shared transactions; the chain stays linear because bbolt runs one
// writer at a time.
func (s *Store) AppendAudit(ctx context.Context, rec core.AuditRecord) (core.AuditRecord, error) {
	var out core.AuditRecord
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = AppendAuditTx(tx, rec)
		return err
	})
	return out, err
}

// ListAudit implements core.AuditPort (newest first).
func (s *Store) ListAudit(ctx context.Context, tenantID string, f core.AuditFilter) ([]core.AuditRecord, error) {
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
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

// VerifyAudit implements core.AuditPort: it recomputes every hash in append
// order and checks each record points at the one before.
func (s *Store) VerifyAudit(ctx context.Context, tenantID string) (int, error) {
	n := 0
	var verr error
	err := s.view(func(tx *bolt.Tx) error {
		prev := ""
		scanPrefix(Data(tx), TenantKey(tenantID, "audit", ""), false, func(k, v []byte) bool {
			var rec core.AuditRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				verr = fmt.Errorf("audit record %s: undecodable: %w", k, err)
				return false
			}
			if rec.PrevHash != prev {
				verr = fmt.Errorf("audit record %s: prev_hash does not match the record before it", rec.AuditID)
				return false
			}
			h, err := AuditHash(rec)
			if err != nil {
				verr = err
				return false
			}
			if h != rec.Hash {
				verr = fmt.Errorf("audit record %s: hash mismatch (record altered)", rec.AuditID)
				return false
			}
			prev = rec.Hash
			n++
			return true
		})
		if verr == nil {
			if head := Index(tx).Get(auditHeadKey(tenantID)); !bytes.Equal(head, []byte(prev)) {
				verr = fmt.Errorf("audit chain of %s: head does not match the newest record (records removed)", tenantID)
			}
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, verr
}
