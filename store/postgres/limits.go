package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/jackc/pgx/v5"
)

// HoldTTL is how long a budget hold lives unsettled: a node that died
// mid-call leaves its holds behind, and they stop counting after this.
// It is longer than any model call the gateway lets run.
const HoldTTL = 15 * time.Minute

// seedUsed reads a window's settled use from the usage ledger ($1 tenant,
// $2 window, $3 period), for a budget window row created now.
const seedUsed = `coalesce((SELECT (convert_from(doc, 'UTF8')::jsonb->>'total_tokens')::bigint FROM usage WHERE tenant_id = $1 AND win = $2 AND period = $3), 0),
	coalesce((SELECT (convert_from(doc, 'UTF8')::jsonb->>'cost_usd')::float8 FROM usage WHERE tenant_id = $1 AND win = $2 AND period = $3), 0)`

// asyncCommit makes the transaction it opens commit without waiting for
// its WAL flush: a hold or a settle lost to a database crash is harmless
// (a hold expires; the ledger, written by the nodes' usage flush with a
// synchronous commit, still has the use), and the model call path saves
// a disk sync per reservation and per settle.
const asyncCommit = `SELECT set_config('synchronous_commit', 'off', true)`

// ReserveBudget implements core.LimitsPort in one round trip: the first
// statement creates or locks the window's row (nodes reserving at once
// queue there), the second — with a snapshot taken once the lock is held —
// sums the live holds and adds this one if it fits.
func (s *Store) ReserveBudget(ctx context.Context, h core.BudgetHold, maxTokens int64, maxCostUSD float64) (core.BudgetUse, bool, error) {
	s.pruneLimits(ctx)
	b := &pgx.Batch{}
	b.Queue(asyncCommit)
	b.Queue(`INSERT INTO budget_windows (tenant_id, win, period, used_tokens, used_cost) SELECT $1, $2, $3, `+seedUsed+`
		ON CONFLICT (tenant_id, win, period) DO UPDATE SET touched = now()`, h.TenantID, h.Window, h.Period)
	b.Queue(`WITH h AS (SELECT coalesce(sum(tokens), 0)::bigint AS t, coalesce(sum(cost), 0)::float8 AS c FROM budget_holds
			WHERE tenant_id = $1 AND win = $2 AND period = $3 AND expires_at > now()),
		w AS (SELECT used_tokens, used_cost FROM budget_windows WHERE tenant_id = $1 AND win = $2 AND period = $3),
		fit AS (SELECT w.used_tokens, w.used_cost, h.t, h.c,
			($7::bigint <= 0 OR w.used_tokens + h.t + $5::bigint <= $7::bigint) AND ($8::float8 <= 0 OR w.used_cost + h.c + $6::float8 <= $8::float8) AS ok FROM w, h),
		ins AS (INSERT INTO budget_holds (hold_id, tenant_id, win, period, tokens, cost, expires_at)
			SELECT $4, $1, $2, $3, $5, $6, now() + $9 * interval '1 millisecond' FROM fit WHERE ok RETURNING 1)
		SELECT used_tokens, used_cost, t, c, ok FROM fit`,
		h.TenantID, h.Window, h.Period, h.HoldID, h.Tokens, h.CostUSD, maxTokens, maxCostUSD, millis(HoldTTL))
	br := s.pool.SendBatch(ctx, b)
	var use core.BudgetUse
	var ok bool
	_, err := br.Exec()
	if err == nil {
		_, err = br.Exec()
	}
	if err == nil {
		err = br.QueryRow().Scan(&use.UsedTokens, &use.UsedCostUSD, &use.ReservedTokens, &use.ReservedCostUSD, &ok)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return core.BudgetUse{}, false, dbErr(err)
	}
	return use, ok, nil
}

// SettleBudget implements core.LimitsPort: the hold goes and the use is
// added, in one transaction.
func (s *Store) SettleBudget(ctx context.Context, h core.BudgetHold, usedTokens int64, usedCostUSD float64) error {
	b := &pgx.Batch{}
	b.Queue(asyncCommit)
	b.Queue(`DELETE FROM budget_holds WHERE hold_id = $1`, h.HoldID)
	b.Queue(`INSERT INTO budget_windows AS bw (tenant_id, win, period, used_tokens, used_cost) SELECT $1, $2, $3, `+seedUsed+`
		ON CONFLICT (tenant_id, win, period) DO UPDATE SET used_tokens = bw.used_tokens + $4, used_cost = bw.used_cost + $5, touched = now()`,
		h.TenantID, h.Window, h.Period, usedTokens, usedCostUSD)
	return dbErr(s.pool.SendBatch(ctx, b).Close())
}

// ReleaseBudget implements core.LimitsPort.
func (s *Store) ReleaseBudget(ctx context.Context, h core.BudgetHold) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM budget_holds WHERE hold_id = $1`, h.HoldID)
	return dbErr(err)
}

// CountInWindow implements core.LimitsPort with one conditional upsert:
// the row lock orders concurrent callers, and the count never passes
// limit.
func (s *Store) CountInWindow(ctx context.Context, tenantID, name, window string, limit int) (int, bool, error) {
	if limit <= 0 {
		return 0, false, nil
	}
	s.pruneLimits(ctx)
	b := &pgx.Batch{}
	b.Queue(asyncCommit) // a count lost to a database crash allows one call more
	b.Queue(`INSERT INTO rate_windows AS r (tenant_id, name, win, n) VALUES ($1, $2, $3, 1)
		ON CONFLICT (tenant_id, name, win) DO UPDATE SET n = r.n + 1 WHERE r.n < $4 RETURNING n`, tenantID, name, window, limit)
	br := s.pool.SendBatch(ctx, b)
	var n int
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&n)
	}
	// No row back means refused, unless the batch itself failed.
	if cerr := br.Close(); cerr != nil && (err == nil || errors.Is(err, pgx.ErrNoRows)) {
		err = cerr
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return limit, false, nil
	}
	if err != nil {
		return 0, false, dbErr(err)
	}
	return n, true, nil
}

// pruneLimits deletes, at most once a minute per node, what no limit looks
// at any more: expired holds, budget windows untouched for two days (a
// day's period is over by then), rate windows older than an hour.
func (s *Store) pruneLimits(ctx context.Context) {
	now := time.Now().UnixNano()
	last := s.limitsPruned.Load()
	if now-last < int64(time.Minute) || !s.limitsPruned.CompareAndSwap(last, now) {
		return
	}
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM budget_holds WHERE expires_at < now()`)
	b.Queue(`DELETE FROM budget_windows WHERE touched < now() - interval '2 days'`)
	b.Queue(`DELETE FROM rate_windows WHERE created < now() - interval '1 hour'`)
	_ = s.pool.SendBatch(ctx, b).Close()
}

var _ core.LimitsPort = (*Store)(nil)
