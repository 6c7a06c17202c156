package core

import (
	"context"
	"time"
)

// TenantPort stores tenants. Each write may carry the audit record of the
// change; the store commits both in one transaction.
type TenantPort interface {
	// CreateTenant returns conflict when the tenant_id exists.
	CreateTenant(ctx context.Context, t Tenant, audit *AuditRecord) error
	// GetTenant returns not_found for an unknown id.
	GetTenant(ctx context.Context, tenantID string) (Tenant, error)
	// ListTenants returns every tenant ordered by id.
	ListTenants(ctx context.Context) ([]Tenant, error)
	// UpdateTenant applies fn to the stored tenant inside one transaction and
	// stores the result; not_found for an unknown id, fn's error aborts.
	UpdateTenant(ctx context.Context, tenantID string, fn func(*Tenant) error, audit *AuditRecord) (Tenant, error)
}

// TokenPort stores API keys as hashes only.
type TokenPort interface {
	// CreateToken stores tok (SecretHash set, secret never); conflict when
	// the token_id exists, not_found when the tenant does not.
	CreateToken(ctx context.Context, tok Token, audit *AuditRecord) error
	// TokenBySecretHash finds the token whose secret hashes to hash;
	// unauthorized when none does (revoked tokens are returned; callers
	// check Active).
	TokenBySecretHash(ctx context.Context, hash string) (Token, error)
	// GetToken returns not_found unless the token is in tenantID.
	GetToken(ctx context.Context, tenantID, tokenID string) (Token, error)
	// ListTokens lists a tenant's tokens, oldest first.
	ListTokens(ctx context.Context, tenantID string) ([]Token, error)
	// RotateToken replaces the secret hash; the old secret stops working in
	// the same transaction. not_found outside tenantID; conflict when revoked.
	RotateToken(ctx context.Context, tenantID, tokenID, newHash string, audit *AuditRecord) (Token, error)
	// RevokeToken marks the token revoked; not_found outside tenantID.
	RevokeToken(ctx context.Context, tenantID, tokenID string, audit *AuditRecord) (Token, error)
	// TouchToken records that the token authenticated a request at at
	// (last_used_at never moves backwards); not_found outside tenantID.
	TouchToken(ctx context.Context, tenantID, tokenID string, at time.Time) error
}

// AuditPort appends and reads the per-tenant audit hash chain.
type AuditPort interface {
	// AppendAudit assigns audit_id, time (when zero), prev_hash and hash,
	// and stores the record; records are never changed afterwards.
	AppendAudit(ctx context.Context, rec AuditRecord) (AuditRecord, error)
	// AppendAudits appends recs as AppendAudit would, all in one
	// transaction (every record stored or none), each tenant's records
	// chained in the order given, and returns them sealed in that order.
	// It is how a writer that queues records (Stack B) stores a queue
	// with one commit instead of one per record.
	AppendAudits(ctx context.Context, recs []AuditRecord) ([]AuditRecord, error)
	// ListAudit returns a tenant's records, newest first.
	ListAudit(ctx context.Context, tenantID string, f AuditFilter) ([]AuditRecord, error)
	// VerifyAudit walks a tenant's chain and returns how many records it
	// checked, or an error naming the first record that does not verify.
	VerifyAudit(ctx context.Context, tenantID string) (int, error)
}
