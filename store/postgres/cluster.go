package postgres

import (
	"context"
	"errors"
	"fmt"
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

// ClaimRun implements core.RunLeasePort.
func (s *Store) ClaimRun(ctx context.Context, node, tenantID, runID string, lease time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE run_queue SET lease_owner = $1, lease_until = now() + $4 * interval '1 millisecond'
		WHERE run_id = $2 AND tenant_id = $3 AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < now())`,
		node, runID, tenantID, millis(lease))
	if err != nil {
		return false, dbErr(err)
	}
	return tag.RowsAffected() == 1, nil
}

// ClaimRuns implements core.RunLeasePort with FOR UPDATE SKIP LOCKED, so
// nodes claiming at once never wait for each other nor take the same run.
func (s *Store) ClaimRuns(ctx context.Context, node string, lease time.Duration, limit int, own bool) ([]core.RunRef, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `UPDATE run_queue q SET lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond'
		FROM (SELECT run_id FROM run_queue
			WHERE lease_owner IS NULL OR lease_until < now() OR ($4 AND lease_owner = $1)
			ORDER BY run_id LIMIT $3 FOR UPDATE SKIP LOCKED) c
		WHERE q.run_id = c.run_id
		RETURNING q.tenant_id, q.run_id`, node, millis(lease), limit, own)
	if err != nil {
		return nil, dbErr(err)
	}
	defer rows.Close()
	out := []core.RunRef{}
	for rows.Next() {
		var ref core.RunRef
		if err := rows.Scan(&ref.TenantID, &ref.RunID); err != nil {
			return nil, dbErr(err)
		}
		out = append(out, ref)
	}
	return out, dbErr(rows.Err())
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
