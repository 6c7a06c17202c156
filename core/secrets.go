package core

import (
	"context"
	"strings"
	"time"
)

// TenantSecret describes one secret of a tenant's secret store. The value
// is never part of it: it is written through the admin API, read only by
// the node (to sign a tool's webhook calls) and never returned.
type TenantSecret struct {
	TenantID  string    `json:"tenant_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SecretPort is the per-tenant secret store, at
// tenant/{tenant_id}/secrets/{name}. Each write commits with its audit
// record in one transaction.
type SecretPort interface {
	// PutSecret creates or replaces a secret; not_found when the tenant
	// does not exist. created reports whether it is new.
	PutSecret(ctx context.Context, tenantID, name string, value []byte, audit *AuditRecord) (s TenantSecret, created bool, err error)
	// DeleteSecret removes a secret; not_found when there is none.
	DeleteSecret(ctx context.Context, tenantID, name string, audit *AuditRecord) (TenantSecret, error)
	// ListSecrets lists a tenant's secrets by name, without values.
	ListSecrets(ctx context.Context, tenantID string) ([]TenantSecret, error)
	// SecretValue returns a secret's value; not_found when there is none.
	SecretValue(ctx context.Context, tenantID, name string) ([]byte, error)
}

// SecretRefPrefix starts a tenant's reference to its own secret store
// (secret:<name>), the only secret_ref a tenant may give.
const SecretRefPrefix = "secret:"

// MaxSecretBytes bounds one secret value.
const MaxSecretBytes = 8 << 10

// ValidSecretName reports whether name may name a tenant secret: letters,
// digits, '_', '.', '-', starting with a letter or digit, at most 128
// characters. It holds no path separator and cannot be "." or "..", so it
// is safe as a file name under a directory.
func ValidSecretName(name string) bool { return ValidName(name, 128, "_.-") }

// ParseSecretRef returns the name of a secret:<name> reference and whether
// ref is one with a valid name.
func ParseSecretRef(ref string) (string, bool) {
	name, ok := strings.CutPrefix(ref, SecretRefPrefix)
	return name, ok && ValidSecretName(name)
}
