package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/jackc/pgx/v5"
)

// PutMemory implements core.MemoryPort. The tenant's usage row is locked
// for the whole put, so the budget check (core.CheckMemoryBudget) and the
// new total cannot race, even across nodes. An item's size is the bytes of
// its stored record, as on bbolt.
func (s *Store) PutMemory(ctx context.Context, tenantID string, it core.MemoryItem, maxBytes int64) (core.MemoryItem, error) {
	var out core.MemoryItem
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO memory_usage (tenant_id, bytes) VALUES ($1, 0) ON CONFLICT DO NOTHING`, tenantID); err != nil {
			return err
		}
		var used int64
		if err := tx.QueryRow(ctx, `SELECT bytes FROM memory_usage WHERE tenant_id = $1 FOR UPDATE`, tenantID).Scan(&used); err != nil {
			return err
		}
		var oldSize int64
		var oldRaw []byte
		err := tx.QueryRow(ctx, `SELECT size, doc FROM memory WHERE tenant_id = $1 AND namespace = $2 AND key = $3`, tenantID, it.Namespace, it.Key).Scan(&oldSize, &oldRaw)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		now := core.Now()
		item := it
		item.CreatedAt, item.UpdatedAt = now, now
		if oldRaw != nil {
			var prev core.MemoryItem
			if decode(oldRaw, &prev) == nil {
				item.CreatedAt = prev.CreatedAt
			}
		}
		raw, err := encode(item)
		if err != nil {
			return err
		}
		next, err := core.CheckMemoryBudget(tenantID, used, oldSize, int64(len(raw)), maxBytes)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO memory (tenant_id, namespace, key, size, doc) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET size = excluded.size, doc = excluded.doc`,
			tenantID, it.Namespace, it.Key, len(raw), raw)
		b.Queue(`UPDATE memory_usage SET bytes = $2 WHERE tenant_id = $1`, tenantID, next)
		out = item
		return sendBatch(ctx, tx, b)
	})
	return out, err
}

// GetMemory implements core.MemoryPort.
func (s *Store) GetMemory(ctx context.Context, tenantID, ns, key string) (core.MemoryItem, error) {
	it, found, err := findDoc[core.MemoryItem](ctx, s, `SELECT doc FROM memory WHERE tenant_id = $1 AND namespace = $2 AND key = $3`, tenantID, ns, key)
	if err == nil && !found {
		return it, core.Errorf(core.CodeNotFound, "memory %s/%s not found", ns, key).With("namespace", ns).With("key", key)
	}
	return it, err
}

// ListMemory implements core.MemoryPort (ordered by key).
func (s *Store) ListMemory(ctx context.Context, tenantID, ns string) ([]core.MemoryItem, error) {
	return listDocs[core.MemoryItem](ctx, s, `SELECT doc FROM memory WHERE tenant_id = $1 AND namespace = $2 ORDER BY key`, tenantID, ns)
}

// MemoryUsage implements core.MemoryPort.
func (s *Store) MemoryUsage(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT bytes FROM memory_usage WHERE tenant_id = $1`, tenantID).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return n, dbErr(err)
}

// GetUsage implements core.UsagePort.
func (s *Store) GetUsage(ctx context.Context, tenantID, window, period string) (core.UsageRecord, error) {
	rec := core.UsageRecord{TenantID: tenantID, Window: window, Period: period}
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT doc FROM usage WHERE tenant_id = $1 AND win = $2 AND period = $3`, tenantID, window, period).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, nil
	}
	if err != nil {
		return rec, fmt.Errorf("get usage: %w", dbErr(err))
	}
	return rec, decode(raw, &rec)
}

// ListUsage implements core.UsagePort: days, then hours, then minutes,
// newest period first within each.
func (s *Store) ListUsage(ctx context.Context, tenantID string, limit int) ([]core.UsageRecord, error) {
	limit = core.UsagePageSize(limit)
	rows, err := s.pool.Query(ctx, `SELECT doc FROM usage WHERE tenant_id = $1
		ORDER BY CASE win WHEN 'day' THEN 0 WHEN 'hour' THEN 1 ELSE 2 END, period DESC LIMIT $2`, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("list usage: %w", dbErr(err))
	}
	return collectDocs[core.UsageRecord](rows)
}

// RecordUsage implements core.UsagePort: every entry is settled under its
// row lock (taken in key order, so two flushes cannot deadlock) and every
// replay inserted unless its request id is stored, in one transaction.
func (s *Store) RecordUsage(ctx context.Context, deltas []core.UsageDelta, replays []core.ModelReplay) error {
	if len(deltas) == 0 && len(replays) == 0 {
		return nil
	}
	ds := append([]core.UsageDelta(nil), deltas...)
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.TenantID != b.TenantID {
			return a.TenantID < b.TenantID
		}
		if a.Window != b.Window {
			return a.Window < b.Window
		}
		return a.Period < b.Period
	})
	err := s.tx(ctx, func(tx pgx.Tx) error {
		for _, d := range ds {
			rec := core.UsageRecord{TenantID: d.TenantID, Window: d.Window, Period: d.Period}
			found, err := getDoc(ctx, tx, &rec, `SELECT doc FROM usage WHERE tenant_id = $1 AND win = $2 AND period = $3 FOR UPDATE`, d.TenantID, d.Window, d.Period)
			if err != nil {
				return err
			}
			if !found {
				// Create the row, then lock whichever row won.
				if _, err := tx.Exec(ctx, `INSERT INTO usage (tenant_id, win, period, doc) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
					d.TenantID, d.Window, d.Period, mustEncode(rec)); err != nil {
					return err
				}
				if _, err := getDoc(ctx, tx, &rec, `SELECT doc FROM usage WHERE tenant_id = $1 AND win = $2 AND period = $3 FOR UPDATE`, d.TenantID, d.Window, d.Period); err != nil {
					return err
				}
			}
			rec.Add(d)
			raw, err := encode(rec)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE usage SET doc = $4 WHERE tenant_id = $1 AND win = $2 AND period = $3`, d.TenantID, d.Window, d.Period, raw); err != nil {
				return err
			}
		}
		if len(replays) == 0 {
			return nil
		}
		b := &pgx.Batch{}
		for _, r := range replays {
			raw, err := encode(r)
			if err != nil {
				return err
			}
			at := r.CreatedAt
			if at.IsZero() {
				at = time.Now()
			}
			b.Queue(`INSERT INTO model_replays (tenant_id, request_id, doc, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, r.TenantID, r.RequestID, raw, at)
		}
		return sendBatch(ctx, tx, b)
	})
	if err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	return nil
}

func mustEncode(v any) []byte {
	raw, err := encode(v)
	if err != nil {
		panic(err)
	}
	return raw
}

// GetReplay implements core.UsagePort.
func (s *Store) GetReplay(ctx context.Context, tenantID, requestID string) (core.ModelReplay, error) {
	var r core.ModelReplay
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT doc FROM model_replays WHERE tenant_id = $1 AND request_id = $2`, tenantID, requestID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, core.NotFound("request", requestID)
	}
	if err != nil {
		return r, fmt.Errorf("get replay: %w", dbErr(err))
	}
	return r, decode(raw, &r)
}
