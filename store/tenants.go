package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// tenant/{id} holds the tenant object itself.

func tenantKey(id string) []byte { return TenantKey(id) }

// GetTenantTx reads a tenant inside tx; not_found when absent.
func GetTenantTx(tx *bolt.Tx, tenantID string) (core.Tenant, error) {
	var t core.Tenant
	ok, err := getJSON(Data(tx), tenantKey(tenantID), &t)
	if err != nil {
		return t, err
	}
	if !ok {
		return t, core.NotFound("tenant", tenantID)
	}
	return t, nil
}

func appendAuditIf(tx *bolt.Tx, audit *core.AuditRecord) error {
	if audit == nil {
		return nil
	}
	_, err := AppendAuditTx(tx, *audit)
	return err
}

// CreateTenant implements core.TenantPort.
func (s *Store) CreateTenant(ctx context.Context, t core.Tenant, audit *core.AuditRecord) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if Data(tx).Get(tenantKey(t.TenantID)) != nil {
			return core.Errorf(core.CodeConflict, "tenant %s already exists", t.TenantID).With("tenant_id", t.TenantID)
		}
		if err := putJSON(Data(tx), tenantKey(t.TenantID), t); err != nil {
			return err
		}
		return appendAuditIf(tx, audit)
	})
}

// GetTenant implements core.TenantPort.
func (s *Store) GetTenant(ctx context.Context, tenantID string) (core.Tenant, error) {
	var t core.Tenant
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		t, err = GetTenantTx(tx, tenantID)
		return err
	})
	return t, err
}

// ListTenants implements core.TenantPort. The tenant object is the only key
// with exactly two path segments, so the scan skips everything below it.
func (s *Store) ListTenants(ctx context.Context) ([]core.Tenant, error) {
	out := []core.Tenant{}
	err := s.view(func(tx *bolt.Tx) error {
		c := Data(tx).Cursor()
		prefix := []byte("tenant/")
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); {
			rest := k[len(prefix):]
			if !containsSlash(rest) {
				var t core.Tenant
				if err := json.Unmarshal(v, &t); err != nil {
					return fmt.Errorf("decode %s: %w", k, err)
				}
				out = append(out, t)
				// Jump past this tenant's sub-keys.
				k, v = c.Seek(append(append([]byte{}, k...), '/', 0xff))
				continue
			}
			k, v = c.Next()
		}
		return nil
	})
	return out, err
}

func containsSlash(b []byte) bool {
	for _, c := range b {
		if c == '/' {
			return true
		}
	}
	return false
}

// UpdateTenant implements core.TenantPort.
func (s *Store) UpdateTenant(ctx context.Context, tenantID string, fn func(*core.Tenant) error, audit *core.AuditRecord) (core.Tenant, error) {
	var out core.Tenant
	err := s.update(ctx, func(tx *bolt.Tx) error {
		t, err := GetTenantTx(tx, tenantID)
		if err != nil {
			return err
		}
		if err := fn(&t); err != nil {
			return err
		}
		t.TenantID = tenantID // the id never changes
		t.UpdatedAt = core.Now()
		if err := putJSON(Data(tx), tenantKey(tenantID), t); err != nil {
			return err
		}
		out = t
		return appendAuditIf(tx, audit)
	})
	return out, err
}
