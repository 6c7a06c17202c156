package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// Memory lives at tenant/{t}/memory/{ns}/{key}; the tenant's byte total is
// kept in the index ("memusage/{t}") and changed in the same transaction as
// the item, so the quota check cannot race.

var _ core.MemoryPort = (*Store)(nil)

func memoryKey(tenantID, ns, key string) []byte { return TenantKey(tenantID, "memory", ns, key) }
func memUsageKey(tenantID string) []byte        { return []byte("memusage/" + tenantID) }

func memUsageTx(tx *bolt.Tx, tenantID string) int64 {
	n, _ := strconv.ParseInt(string(Index(tx).Get(memUsageKey(tenantID))), 10, 64)
	return n
}

// PutMemory implements core.MemoryPort. An item's size is the bytes of its
// stored record.
func (s *Store) PutMemory(ctx context.Context, tenantID string, it core.MemoryItem, maxBytes int64) (core.MemoryItem, error) {
	var out core.MemoryItem
	err := s.update(ctx, func(tx *bolt.Tx) error {
		k := memoryKey(tenantID, it.Namespace, it.Key)
		old := Data(tx).Get(k)
		now := core.Now()
		item := it
		item.CreatedAt, item.UpdatedAt = now, now
		if old != nil {
			var prev core.MemoryItem
			if err := json.Unmarshal(old, &prev); err == nil {
				item.CreatedAt = prev.CreatedAt
			}
		}
		raw, err := json.Marshal(item)
		if err != nil {
			return fmt.Errorf("encode memory item: %w", err)
		}
		used := memUsageTx(tx, tenantID)
		next, err := core.CheckMemoryBudget(tenantID, used, int64(len(old)), int64(len(raw)), maxBytes)
		if err != nil {
			return err
		}
		if err := Data(tx).Put(k, raw); err != nil {
			return err
		}
		out = item
		return Index(tx).Put(memUsageKey(tenantID), []byte(strconv.FormatInt(next, 10)))
	})
	return out, err
}

// GetMemory implements core.MemoryPort.
func (s *Store) GetMemory(ctx context.Context, tenantID, ns, key string) (core.MemoryItem, error) {
	var out core.MemoryItem
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := getJSON(Data(tx), memoryKey(tenantID, ns, key), &out)
		if err == nil && !ok {
			err = core.Errorf(core.CodeNotFound, "memory %s/%s not found", ns, key).With("namespace", ns).With("key", key)
		}
		return err
	})
	return out, err
}

// ListMemory implements core.MemoryPort.
func (s *Store) ListMemory(ctx context.Context, tenantID, ns string) ([]core.MemoryItem, error) {
	return listJSON[core.MemoryItem](s, Data, TenantKey(tenantID, "memory", ns, ""))
}

// MemoryUsage implements core.MemoryPort.
func (s *Store) MemoryUsage(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) error { n = memUsageTx(tx, tenantID); return nil })
	return n, err
}
