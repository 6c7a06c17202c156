package store_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/agentos/agentos/conformance"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/store"
	bolt "go.etcd.io/bbolt"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s := mustOpen(t, filepath.Join(t.TempDir(), "agentos.db"), store.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStore_Conformance runs the storage suite every adapter passes.
func TestStore_Conformance(t *testing.T) {
	conformance.RunStorageSuite(t, conformance.StorageHarness{
		Open: func(t *testing.T) core.Storage { return openStore(t) },
		TamperAudit: func(t *testing.T, s core.Storage, tenantID, auditID string) error {
			return s.(*store.Store).DB().Update(func(tx *bolt.Tx) error {
				b := store.Data(tx)
				key := store.TenantKey(tenantID, "audit", auditID)
				var rec map[string]any
				if err := json.Unmarshal(b.Get(key), &rec); err != nil {
					return err
				}
				rec["outcome"] = "failure"
				raw, _ := json.Marshal(rec)
				return b.Put(key, raw)
			})
		},
	})
}
