package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// noticeChannel prefixes the LISTEN/NOTIFY channel of run notices (the
// schema follows it). A payload is "<kind> <tenant_id> <run_id> <sequence>"
// (ids never contain spaces).
const noticeChannel = "agentos_runs"

// notify queues the notice on b: NOTIFY inside the transaction is
// delivered at commit, never before the data it announces.
func notify(b *pgx.Batch, channel, kind, tenantID, runID string, seq int64) {
	b.Queue(`SELECT pg_notify($1, $2)`, channel, noticePayload(kind, tenantID, runID, seq))
}

func noticePayload(kind, tenantID, runID string, seq int64) string {
	return kind + " " + tenantID + " " + runID + " " + strconv.FormatInt(seq, 10)
}

func parseNotice(payload string) (core.RunNotice, bool) {
	f := strings.Fields(payload)
	if len(f) != 4 {
		return core.RunNotice{}, false
	}
	seq, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return core.RunNotice{}, false
	}
	return core.RunNotice{Kind: f[0], TenantID: f[1], RunID: f[2], Sequence: seq}, true
}

// InitMeta implements core.MetaInitPort: the first value written wins.
func (s *Store) InitMeta(ctx context.Context, key, value string) (string, error) {
	if _, err := s.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
		return "", dbErr(err)
	}
	return s.GetMeta(ctx, key)
}

func millis(d time.Duration) int64 { return d.Milliseconds() }

// claimLockClass is the first key of the transaction-scoped advisory
// locks that serialise the claims of one tenant (the second is a hash of
// the tenant id; a collision only serialises two tenants' claims).
const claimLockClass = 11011

// lockTenantClaims takes the tenant's claim lock and counts its runs held
// with a live lease, leaving out except. The count runs after the lock is
// held, with a snapshot that sees every claim committed before.
func lockTenantClaims(ctx context.Context, tx pgx.Tx, tenantID string, except []string) (int, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, claimLockClass, tenantID)
	b.Queue(`SELECT count(*) FROM run_queue WHERE tenant_id = $1 AND lease_owner IS NOT NULL AND lease_until >= now()
		AND NOT (run_id = ANY($2))`, tenantID, except)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return 0, err
	}
	var n int
	err := br.QueryRow().Scan(&n)
	return n, err
}

// ClaimRun implements core.RunLeasePort. The run's row is locked first
// (without waiting: a row another node is claiming is not claimable now),
// then the tenant's claim lock; claimers never wait for a row, so the
// locks cannot form a cycle.
func (s *Store) ClaimRun(ctx context.Context, node, tenantID, runID string, lease time.Duration, maxHeld int) (bool, error) {
	claimed := false
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM run_queue WHERE run_id = $2 AND tenant_id = $3
			AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < now()) FOR UPDATE SKIP LOCKED`, node, runID, tenantID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if maxHeld > 0 {
			n, err := lockTenantClaims(ctx, tx, tenantID, []string{runID})
			if err != nil {
				return err
			}
			if n >= maxHeld {
				return nil
			}
		}
		_, err = tx.Exec(ctx, `UPDATE run_queue SET lease_owner = $1, lease_until = now() + $3 * interval '1 millisecond' WHERE run_id = $2`,
			node, runID, millis(lease))
		claimed = err == nil
		return err
	})
	if err != nil {
		return false, dbErr(err)
	}
	return claimed, nil
}

// ClaimRuns implements core.RunLeasePort with FOR UPDATE SKIP LOCKED, so
// nodes claiming at once never wait for each other's rows nor take the
// same run; with capOf, each tenant's claim lock is taken (in tenant
// order) and only the runs below its cap are claimed.
func (s *Store) ClaimRuns(ctx context.Context, node string, lease time.Duration, limit int, own bool, capOf func(string) int) ([]core.RunRef, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []core.RunRef
	err := s.tx(ctx, func(tx pgx.Tx) error {
		out = []core.RunRef{}
		// With caps, look past the first runs: a capped tenant's backlog
		// must not hide the others'.
		look := limit
		if capOf != nil {
			look = 4*limit + 16
		}
		rows, err := tx.Query(ctx, `SELECT tenant_id, run_id FROM run_queue
			WHERE lease_owner IS NULL OR lease_until < now() OR ($2 AND lease_owner = $1)
			ORDER BY run_id LIMIT $3 FOR UPDATE SKIP LOCKED`, node, own, look)
		if err != nil {
			return err
		}
		var cands []core.RunRef
		for rows.Next() {
			var ref core.RunRef
			if err := rows.Scan(&ref.TenantID, &ref.RunID); err != nil {
				rows.Close()
				return err
			}
			cands = append(cands, ref)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(cands) == 0 {
			return nil
		}
		room := map[string]int{} // tenant → runs it may still have claimed; absent: no cap
		if capOf != nil {
			byTenant := map[string][]string{}
			for _, c := range cands {
				byTenant[c.TenantID] = append(byTenant[c.TenantID], c.RunID)
			}
			tenants := slices.Sorted(maps.Keys(byTenant))
			for _, t := range tenants {
				c := capOf(t)
				if c <= 0 {
					continue
				}
				n, err := lockTenantClaims(ctx, tx, t, byTenant[t])
				if err != nil {
					return err
				}
				room[t] = c - n
			}
		}
		ids := []string{}
		for _, c := range cands {
			if len(ids) == limit {
				break
			}
			if r, capped := room[c.TenantID]; capped {
				if r <= 0 {
					continue
				}
				room[c.TenantID] = r - 1
			}
			ids = append(ids, c.RunID)
			out = append(out, c)
		}
		if len(ids) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE run_queue SET lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond' WHERE run_id = ANY($3)`,
			node, millis(lease), ids)
		return err
	})
	if err != nil {
		return nil, dbErr(err)
	}
	return out, nil
}

// RenewLeases implements core.RunLeasePort.
func (s *Store) RenewLeases(ctx context.Context, node string, runIDs []string, lease time.Duration) ([]string, error) {
	if len(runIDs) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `UPDATE run_queue SET lease_until = now() + $3 * interval '1 millisecond'
		WHERE run_id = ANY($2) AND lease_owner = $1 RETURNING run_id`, node, runIDs, millis(lease))
	if err != nil {
		return nil, dbErr(err)
	}
	held := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, dbErr(err)
		}
		held[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbErr(err)
	}
	var lost []string
	for _, id := range runIDs {
		if !held[id] {
			lost = append(lost, id)
		}
	}
	return lost, nil
}

// ReleaseRuns implements core.RunLeasePort.
func (s *Store) ReleaseRuns(ctx context.Context, node string, runIDs []string) error {
	if len(runIDs) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE run_queue SET lease_owner = NULL, lease_until = NULL WHERE run_id = ANY($2) AND lease_owner = $1`, node, runIDs)
	return dbErr(err)
}

// BeatNode implements core.NodeRegistryPort.
func (s *Store) BeatNode(ctx context.Context, n core.NodeInfo) error {
	n.RunsInFlight = 0
	raw, err := encode(n)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO cluster_nodes (node_id, doc, last_seen) VALUES ($1, $2, now())
		ON CONFLICT (node_id) DO UPDATE SET doc = excluded.doc, last_seen = now()`, n.NodeID, raw)
	return dbErr(err)
}

// LiveNodes implements core.NodeRegistryPort.
func (s *Store) LiveNodes(ctx context.Context, window time.Duration) ([]core.NodeInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT n.doc, n.last_seen,
			(SELECT count(*) FROM run_queue q WHERE q.lease_owner = n.node_id AND q.lease_until >= now())
		FROM cluster_nodes n WHERE n.last_seen >= now() - $1 * interval '1 millisecond' ORDER BY n.node_id`, millis(window))
	if err != nil {
		return nil, dbErr(err)
	}
	defer rows.Close()
	out := []core.NodeInfo{}
	for rows.Next() {
		var (
			raw  []byte
			seen time.Time
			n    int
			info core.NodeInfo
		)
		if err := rows.Scan(&raw, &seen, &n); err != nil {
			return nil, dbErr(err)
		}
		if err := decode(raw, &info); err != nil {
			return nil, err
		}
		info.LastSeen, info.RunsInFlight = seen.UTC(), n
		out = append(out, info)
	}
	return out, dbErr(rows.Err())
}

// ListenRuns implements core.RunNoticePort on a connection of its own
// (LISTEN holds it), reconnecting with a pause after a lost connection.
func (s *Store) ListenRuns(ctx context.Context, fn func(core.RunNotice), ready func()) error {
	return s.listen(ctx, s.channel, func(payload string) {
		if rn, ok := parseNotice(payload); ok {
			fn(rn)
		}
	}, func(up bool) {
		if up && ready != nil {
			ready()
		}
	})
}

// changeChannel prefixes the LISTEN/NOTIFY channel of cache invalidations
// (the schema follows it), apart from the run notices so a burst of events
// never delays them. A payload is "<kind> <tenant_id> <id> <origin>", "-"
// standing for an empty field (none contains spaces).
const changeChannel = "agentos_changes"

func (s *Store) changesChannel() string { return changeChannel + s.channel[len(noticeChannel):] }

func changePayload(c core.Change) string {
	f := []string{c.Kind, c.TenantID, c.ID, c.Origin}
	for i, v := range f {
		if v == "" || strings.ContainsAny(v, " \t\n") {
			f[i] = "-"
		}
	}
	return strings.Join(f, " ")
}

func parseChange(payload string) (core.Change, bool) {
	f := strings.Fields(payload)
	if len(f) != 4 {
		return core.Change{}, false
	}
	for i := range f {
		if f[i] == "-" {
			f[i] = ""
		}
	}
	return core.Change{Kind: f[0], TenantID: f[1], ID: f[2], Origin: f[3]}, f[0] != ""
}

// PublishChange implements core.ChangeNoticePort: the notice goes out
// right after the write committed (the publishing store calls it then).
func (s *Store) PublishChange(ctx context.Context, c core.Change) error {
	_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, s.changesChannel(), changePayload(c))
	return dbErr(err)
}

// ListenChanges implements core.ChangeNoticePort on a connection of its
// own, reconnecting with a pause after a lost connection.
func (s *Store) ListenChanges(ctx context.Context, fn func(core.Change), state func(bool)) error {
	return s.listen(ctx, s.changesChannel(), func(payload string) {
		if c, ok := parseChange(payload); ok {
			fn(c)
		}
	}, state)
}

// listen delivers channel's notices to fn until ctx ends, reconnecting
// after a lost connection (state, if set, hears each connect and loss).
func (s *Store) listen(ctx context.Context, channel string, fn func(string), state func(bool)) error {
	for {
		err := s.listenOnce(ctx, channel, fn, state)
		if ctx.Err() != nil {
			return nil
		}
		_ = err
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, channel string, fn func(string), state func(bool)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection carries a LISTEN: never hand it back to the pool.
	defer func(c *pgxpool.Conn) { c.Hijack().Close(context.Background()) }(conn)
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	if state != nil {
		state(true)
		defer state(false)
	}
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return fmt.Errorf("listen: %w", err)
		}
		fn(n.Payload)
	}
}

var (
	_ core.RunLeasePort     = (*Store)(nil)
	_ core.RunNoticePort    = (*Store)(nil)
	_ core.NodeRegistryPort = (*Store)(nil)
	_ core.MetaInitPort     = (*Store)(nil)
	_ core.ChangeNoticePort = (*Store)(nil)
)
