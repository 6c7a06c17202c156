package store

import (
	"context"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// Tenant secrets live at tenant/{t}/secrets/{name}: the metadata and the
// value in one record; only SecretValue hands the value out.

var _ core.SecretPort = (*Store)(nil)

type secretRecord struct {
	core.TenantSecret
	Value []byte `json:"value"`
}

func secretKey(tenantID, name string) []byte { return TenantKey(tenantID, "secrets", name) }

// getSecret reads tenantID's secret name; not_found when there is none.
func getSecret(tx *bolt.Tx, tenantID, name string) (secretRecord, error) {
	var rec secretRecord
	ok, err := getJSON(Data(tx), secretKey(tenantID, name), &rec)
	if err != nil {
		return rec, err
	}
	if !ok {
		return rec, core.NotFound("secret", name)
	}
	return rec, nil
}

// PutSecret implements core.SecretPort.
func (s *Store) PutSecret(ctx context.Context, tenantID, name string, value []byte, audit *core.AuditRecord) (core.TenantSecret, bool, error) {
	var out core.TenantSecret
	created := false
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if _, err := GetTenantTx(tx, tenantID); err != nil {
			return err
		}
		var prev secretRecord
		ok, err := getJSON(Data(tx), secretKey(tenantID, name), &prev)
		if err != nil {
			return err
		}
		now := core.Now()
		rec := secretRecord{TenantSecret: core.TenantSecret{TenantID: tenantID, Name: name, CreatedAt: now, UpdatedAt: now}, Value: value}
		if ok {
			rec.CreatedAt = prev.CreatedAt
		}
		created = !ok
		if err := putJSON(Data(tx), secretKey(tenantID, name), rec); err != nil {
			return err
		}
		out = rec.TenantSecret
		return appendAuditIf(tx, audit)
	})
	return out, created, err
}

// DeleteSecret implements core.SecretPort.
func (s *Store) DeleteSecret(ctx context.Context, tenantID, name string, audit *core.AuditRecord) (core.TenantSecret, error) {
	var out core.TenantSecret
	err := s.update(ctx, func(tx *bolt.Tx) error {
		rec, err := getSecret(tx, tenantID, name)
		if err != nil {
			return err
		}
		if err := Data(tx).Delete(secretKey(tenantID, name)); err != nil {
			return err
		}
		out = rec.TenantSecret
		return appendAuditIf(tx, audit)
	})
	return out, err
}

// ListSecrets implements core.SecretPort.
func (s *Store) ListSecrets(ctx context.Context, tenantID string) ([]core.TenantSecret, error) {
	return listJSONAs(s, Data, TenantKey(tenantID, "secrets", ""), func(rec secretRecord) core.TenantSecret { return rec.TenantSecret })
}

// SecretValue implements core.SecretPort.
func (s *Store) SecretValue(ctx context.Context, tenantID, name string) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		rec, err := getSecret(tx, tenantID, name)
		if err != nil {
			return err
		}
		out = rec.Value
		return nil
	})
	return out, err
}
