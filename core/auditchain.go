package core

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// The audit hash chain: every tenant's records form one chain in append
// order, each record's hash covering the previous record's hash and the
// record itself. Adapters keep the chain head (the newest hash) under a
// lock or in the same transaction as the append, call SealAudit, and store
// what it returns; VerifyAudit walks the chain with an AuditChainCheck.

// AuditHash is the hash of rec chained to rec.PrevHash: SHA-256 over the
// previous hash and the canonical JSON of the record with Hash cleared.
func AuditHash(rec AuditRecord) (string, error) {
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

// SealAudit completes rec for appending after the chain head prevHash: it
// assigns audit_id and time when unset, normalises details to what JSON
// reads back (so the hash verifies after a round trip through any store),
// and sets prev_hash and hash.
func SealAudit(rec AuditRecord, prevHash string) (AuditRecord, error) {
	if rec.TenantID == "" {
		return rec, fmt.Errorf("audit record without tenant_id")
	}
	if rec.AuditID == "" {
		rec.AuditID = NewID(PrefixAudit)
	}
	if rec.Time.IsZero() {
		rec.Time = Now()
	}
	if rec.Details == nil {
		rec.Details = map[string]any{}
	}
	if raw, err := json.Marshal(rec.Details); err == nil {
		var d map[string]any
		if json.Unmarshal(raw, &d) == nil {
			rec.Details = d
		}
	}
	rec.PrevHash = prevHash
	h, err := AuditHash(rec)
	if err != nil {
		return rec, err
	}
	rec.Hash = h
	return rec, nil
}

// AuditChainCheck verifies a tenant's chain one record at a time, oldest
// first. Feed every record to Next, then call Done with the stored head.
type AuditChainCheck struct {
	prev string
	// N is how many records verified so far.
	N int
}

// Next checks that rec points at the record before it and that its hash
// matches its content.
func (c *AuditChainCheck) Next(rec AuditRecord) error {
	if rec.PrevHash != c.prev {
		return fmt.Errorf("audit record %s: prev_hash does not match the record before it", rec.AuditID)
	}
	h, err := AuditHash(rec)
	if err != nil {
		return err
	}
	if h != rec.Hash {
		return fmt.Errorf("audit record %s: hash mismatch (record altered)", rec.AuditID)
	}
	c.prev = rec.Hash
	c.N++
	return nil
}

// Done checks that the stored chain head is the newest record's hash: a
// head ahead of the records means records were removed from the end.
func (c *AuditChainCheck) Done(tenantID, head string) error {
	if head != c.prev {
		return fmt.Errorf("audit chain of %s: head does not match the newest record (records removed)", tenantID)
	}
	return nil
}
