package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// The ledger lives at tenant/{id}/usage/{window}/{period} (CONTRACT §6);
// stored model answers for request_id replay at
// tenant/{id}/model_requests/{request_id}.

var _ core.UsagePort = (*Store)(nil)

func usageKey(tenantID, window, period string) []byte {
	return TenantKey(tenantID, "usage", window, period)
}

func replayKey(tenantID, requestID string) []byte {
	return TenantKey(tenantID, "model_requests", requestID)
}

// GetUsage implements core.UsagePort.
func (s *Store) GetUsage(ctx context.Context, tenantID, window, period string) (core.UsageRecord, error) {
	rec := core.UsageRecord{TenantID: tenantID, Window: window, Period: period}
	err := s.view(func(tx *bolt.Tx) error {
		_, err := getJSON(Data(tx), usageKey(tenantID, window, period), &rec)
		return err
	})
	if err != nil {
		return rec, fmt.Errorf("get usage: %w", err)
	}
	return rec, nil
}

// ListUsage implements core.UsagePort.
func (s *Store) ListUsage(ctx context.Context, tenantID string, limit int) ([]core.UsageRecord, error) {
	limit = core.UsagePageSize(limit)
	out := []core.UsageRecord{}
	var decodeErr error
	err := s.view(func(tx *bolt.Tx) error {
		for _, w := range []string{core.WindowDay, core.WindowHour, core.WindowMinute} {
			scanPrefix(Data(tx), TenantKey(tenantID, "usage", w, ""), true, func(k, v []byte) bool {
				var rec core.UsageRecord
				if err := json.Unmarshal(v, &rec); err != nil {
					decodeErr = fmt.Errorf("decode %s: %w", k, err)
					return false
				}
				out = append(out, rec)
				return len(out) < limit
			})
			if decodeErr != nil || len(out) >= limit {
				break
			}
		}
		return nil
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return nil, fmt.Errorf("list usage: %w", err)
	}
	return out, nil
}

// RecordUsage implements core.UsagePort. It goes through s.batch so that
// concurrent flushes share one fsync; the function only touches tx, so a
// retried batch applies the deltas exactly once.
func (s *Store) RecordUsage(ctx context.Context, deltas []core.UsageDelta, replays []core.ModelReplay) error {
	if len(deltas) == 0 && len(replays) == 0 {
		return nil
	}
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		b := Data(tx)
		for _, d := range deltas {
			key := usageKey(d.TenantID, d.Window, d.Period)
			rec := core.UsageRecord{TenantID: d.TenantID, Window: d.Window, Period: d.Period}
			if _, err := getJSON(b, key, &rec); err != nil {
				return err
			}
			rec.Add(d)
			if err := putJSON(b, key, rec); err != nil {
				return err
			}
		}
		for _, r := range replays {
			key := replayKey(r.TenantID, r.RequestID)
			if b.Get(key) != nil {
				continue
			}
			if err := putJSON(b, key, r); err != nil {
				return err
			}
			// The time index lets the retention sweep find old answers.
			at := r.CreatedAt
			if at.IsZero() {
				at = time.Now()
			}
			if err := b.Put(replayTimeKey(r.TenantID, at, r.RequestID), []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	return nil
}

// GetReplay implements core.UsagePort.
func (s *Store) GetReplay(ctx context.Context, tenantID, requestID string) (core.ModelReplay, error) {
	var r core.ModelReplay
	var found bool
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		found, err = getJSON(Data(tx), replayKey(tenantID, requestID), &r)
		return err
	})
	if err != nil {
		return r, fmt.Errorf("get replay: %w", err)
	}
	if !found {
		return r, core.NotFound("request", requestID)
	}
	return r, nil
}
