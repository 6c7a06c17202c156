package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
)

// The audit hash chain: every tenant's records form one chain in append
// order, each record's hash covering the previous record's hash and the
// record itself. Adapters keep the chain head (the newest hash) under a
// lock or in the same transaction as the append, call SealAudit, and store
// what it returns; VerifyAudit walks the chain with an AuditChainCheck.

// AuditHash is the hash of rec chained to rec.PrevHash: SHA-256 over the
// previous hash and the canonical JSON of the record with Hash cleared.
func AuditHash(rec AuditRecord) (string, error) {
	h, _, err := auditHashJSON(rec)
	return h, err
}

// auditHashJSON is AuditHash, and also the record's JSON with Hash empty
// and Time in UTC (what the hash covers).
func auditHashJSON(rec AuditRecord) (string, []byte, error) {
	rec.Hash = ""
	rec.Time = rec.Time.UTC()
	raw, err := json.Marshal(rec)
	if err != nil {
		return "", nil, fmt.Errorf("encode audit record: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(rec.PrevHash))
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil)), raw, nil
}

// SealAudit completes rec for appending after the chain head prevHash: it
// assigns audit_id and time when unset (time is kept in UTC), normalises
// details to what JSON reads back (so the hash verifies after a round trip
// through any store), and sets prev_hash and hash.
func SealAudit(rec AuditRecord, prevHash string) (AuditRecord, error) {
	rec, _, err := SealAuditJSON(rec, prevHash)
	return rec, err
}

// SealAuditJSON is SealAudit, and also the sealed record's JSON exactly as
// json.Marshal renders it, for adapters to store without encoding the
// record a second time.
func SealAuditJSON(rec AuditRecord, prevHash string) (AuditRecord, []byte, error) {
	if rec.TenantID == "" {
		return rec, nil, fmt.Errorf("audit record without tenant_id")
	}
	if rec.AuditID == "" {
		rec.AuditID = NewID(PrefixAudit)
	}
	if rec.Time.IsZero() {
		rec.Time = Now()
	}
	rec.Time = rec.Time.UTC()
	if rec.Details == nil {
		rec.Details = map[string]any{}
	}
	// Details made only of what JSON reads back as itself (strings,
	// numbers that survive float64, bools, and maps and lists of them)
	// already hash as they will read back; anything else (structs, large
	// integers) is put through JSON once.
	if !jsonStable(rec.Details, 0) {
		if raw, err := json.Marshal(rec.Details); err == nil {
			var d map[string]any
			if json.Unmarshal(raw, &d) == nil {
				rec.Details = d
			}
		}
	}
	rec.PrevHash = prevHash
	h, raw, err := auditHashJSON(rec)
	if err != nil {
		return rec, nil, err
	}
	rec.Hash = h
	// Hash is the record's last field: the hashed form ends in "hash":""}
	// and the stored one differs only by the hash between the quotes.
	const tail = `"hash":""}`
	if !bytes.HasSuffix(raw, []byte(tail)) {
		out, err := json.Marshal(rec)
		return rec, out, err
	}
	out := make([]byte, 0, len(raw)+len(h))
	out = append(out, raw[:len(raw)-2]...)
	out = append(out, h...)
	out = append(out, `"}`...)
	return rec, out, nil
}

// AuditChainTx is an adapter's access, inside one transaction, to the
// chains an AuditBatch appends to.
type AuditChainTx interface {
	// LockHead reads a tenant's chain head (the newest record's hash, ""
	// for an empty chain) and holds it against other writers until the
	// transaction ends.
	LockHead(tenantID string) (string, error)
	// PutAudit stores a sealed record; raw is its JSON.
	PutAudit(rec AuditRecord, raw []byte) error
	// SetHead moves a tenant's chain head to hash once its records are put.
	SetHead(tenantID, hash string) error
}

// ChainAudit seals rec onto its tenant's chain through tx and returns it
// sealed: one record is a batch of one, without the grouping.
func ChainAudit(tx AuditChainTx, rec AuditRecord) (AuditRecord, error) {
	if rec.TenantID == "" {
		return rec, fmt.Errorf("audit record without tenant_id")
	}
	head, err := tx.LockHead(rec.TenantID)
	if err != nil {
		return rec, err
	}
	rec, raw, err := SealAuditJSON(rec, head)
	if err != nil {
		return rec, err
	}
	if err := tx.PutAudit(rec, raw); err != nil {
		return rec, err
	}
	return rec, tx.SetHead(rec.TenantID, rec.Hash)
}

// AuditBatch is a batch of audit records grouped for appending: the
// tenants in id order (one lock order for every writer, so two batches
// cannot deadlock on each other's chain heads), each with its records in
// the order given, which is the order its chain takes them.
type AuditBatch struct {
	recs     []AuditRecord
	tenants  []string
	byTenant map[string][]int
}

// GroupAudits groups recs for appending. A record without a tenant fails
// the batch before anything is written.
func GroupAudits(recs []AuditRecord) (AuditBatch, error) {
	b := AuditBatch{recs: recs, byTenant: map[string][]int{}}
	for i, rec := range recs {
		if rec.TenantID == "" {
			return AuditBatch{}, fmt.Errorf("audit record without tenant_id")
		}
		if _, ok := b.byTenant[rec.TenantID]; !ok {
			b.tenants = append(b.tenants, rec.TenantID)
		}
		b.byTenant[rec.TenantID] = append(b.byTenant[rec.TenantID], i)
	}
	slices.Sort(b.tenants)
	return b, nil
}

// Chain seals the batch onto its tenants' chains through tx, each head
// locked once and moved once, and returns the sealed records in the order
// they were given.
func (b AuditBatch) Chain(tx AuditChainTx) ([]AuditRecord, error) {
	out := make([]AuditRecord, len(b.recs))
	for _, tenantID := range b.tenants {
		head, err := tx.LockHead(tenantID)
		if err != nil {
			return nil, err
		}
		for _, i := range b.byTenant[tenantID] {
			rec, raw, err := SealAuditJSON(b.recs[i], head)
			if err != nil {
				return nil, err
			}
			if err := tx.PutAudit(rec, raw); err != nil {
				return nil, err
			}
			head, out[i] = rec.Hash, rec
		}
		if err := tx.SetHead(tenantID, head); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AuditTxFunc runs fn inside one of an adapter's write transactions,
// giving it that transaction's chain access. AuditPort's two appends are
// an AuditTxFunc's Append and AppendAll: the adapter writes only the
// transaction and its AuditChainTx.
type AuditTxFunc func(fn func(AuditChainTx) error) error

// Append seals rec onto its tenant's chain in one transaction
// (ChainAudit).
func (run AuditTxFunc) Append(rec AuditRecord) (AuditRecord, error) {
	var out AuditRecord
	err := run(func(tx AuditChainTx) error {
		var err error
		out, err = ChainAudit(tx, rec)
		return err
	})
	return out, err
}

// AppendAll seals recs onto their tenants' chains in one transaction
// (GroupAudits, then AuditBatch.Chain) and returns them sealed, in the
// order given; no records is nil, nil without a transaction.
func (run AuditTxFunc) AppendAll(recs []AuditRecord) ([]AuditRecord, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	batch, err := GroupAudits(recs)
	if err != nil {
		return nil, err
	}
	var out []AuditRecord
	err = run(func(tx AuditChainTx) error {
		var err error
		out, err = batch.Chain(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// maxExactFloat is the largest integer every smaller one of which float64
// holds exactly (2^53).
const maxExactFloat = 1 << 53

// jsonStable reports whether v encodes to the same JSON after a round trip
// through encoding/json into any (so a hash over its encoding verifies
// after the record is read back). depth bounds the walk.
func jsonStable(v any, depth int) bool {
	if depth > 16 {
		return false
	}
	switch x := v.(type) {
	case nil, bool, string, float64:
		return true
	case int:
		return x > -maxExactFloat && x < maxExactFloat
	case int64:
		return x > -maxExactFloat && x < maxExactFloat
	case int32, int16, int8, uint8, uint16, uint32:
		return true
	case []string:
		return true
	case []any:
		for _, e := range x {
			if !jsonStable(e, depth+1) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range x {
			if !jsonStable(e, depth+1) {
				return false
			}
		}
		return true
	case map[string]string:
		return true
	}
	return false
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
