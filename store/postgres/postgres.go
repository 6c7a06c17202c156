// Package postgres is the PostgreSQL adapter of the core storage ports
// (core.Storage), on pgx's connection pool. The schema is a set of
// versioned SQL migrations embedded in the binary and applied at Open (and
// by `agentos migrate`); a database whose schema is newer than the binary
// is refused. Records are stored as the same JSON the bbolt adapter keeps,
// with the columns that queries, constraints and row locks need beside
// them; every change the ports promise to be atomic is one transaction,
// and where two writers can meet (idempotency keys, event sequences, audit
// chain heads, memory budgets, usage entries) a row lock or a unique
// constraint decides, so several nodes can share one database.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the PostgreSQL adapter.
type Store struct {
	pool *pgxpool.Pool
	desc string
	// channel is the LISTEN/NOTIFY channel of run notices, one per schema
	// (notifications are per database, schemas share them).
	channel string
	// limitsPruned is when the limits tables were last pruned (unix ns).
	limitsPruned atomic.Int64
}

var _ core.Storage = (*Store)(nil)

// Options tune Open.
type Options struct {
	// ConnectTimeout bounds reaching the server at Open; zero means 5 s.
	ConnectTimeout time.Duration
	// MaxConns caps the pool; zero means 32.
	MaxConns int32
	// NoMigrate opens without applying pending migrations: a schema newer
	// than the binary is refused, and so is one that is behind unless
	// AllowBehind (for `agentos migrate`, which applies them itself).
	NoMigrate   bool
	AllowBehind bool
}

// Describe renders url for reports: scheme, user, host, port and
// database, never the password or other parameters.
func Describe(rawURL string) string {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return "postgres (unparsable URL)"
	}
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Path: "/" + cfg.Database}
	if cfg.User != "" {
		u.User = url.User(cfg.User)
	}
	return u.String()
}

// Open connects to the database at rawURL, proves it answers, applies the
// pending migrations and returns the store. An unreachable server is an
// error naming host, port and database (never the password) and what to
// try next.
func Open(ctx context.Context, rawURL string, opt Options) (*Store, error) {
	pcfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store URL %s: %v", Describe(rawURL), redactErr(err, rawURL))
	}
	if opt.ConnectTimeout == 0 {
		opt.ConnectTimeout = 5 * time.Second
	}
	if opt.MaxConns == 0 {
		opt.MaxConns = 32
	}
	pcfg.MaxConns = opt.MaxConns
	pcfg.ConnConfig.ConnectTimeout = opt.ConnectTimeout
	pcfg.HealthCheckPeriod = 5 * time.Second
	where := fmt.Sprintf("PostgreSQL at %s:%d, database %q (user %q)", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, pcfg.ConnConfig.Database, pcfg.ConnConfig.User)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("cannot use %s: %v", where, redactErr(err, rawURL))
	}
	pctx, cancel := context.WithTimeout(ctx, opt.ConnectTimeout)
	err = pool.Ping(pctx)
	cancel()
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot reach %s: %s; next: check that the server is up and accepts connections there (pg_isready -h %s -p %d), that the database exists and the user may log in (password from PGPASSWORD or ~/.pgpass), then start again",
			where, oneLine(redactErr(err, rawURL)), pcfg.ConnConfig.Host, pcfg.ConnConfig.Port)
	}
	s := &Store{pool: pool, desc: Describe(rawURL)}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT coalesce(current_schema(), 'public')`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: %v", where, redactErr(err, rawURL))
	}
	s.channel = noticeChannel + "." + schema
	if opt.NoMigrate {
		err = s.checkSchema(ctx, opt.AllowBehind)
	} else {
		_, err = s.Migrate(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// redactErr strips the password of rawURL from err's text.
func redactErr(err error, rawURL string) error {
	if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
		}
	}
	return err
}

// Pool exposes the connection pool (tests and the cluster's own queries).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close implements core.Storage.
func (s *Store) Close() error { s.pool.Close(); return nil }

// Describe implements core.Storage.
func (s *Store) Describe() string { return s.desc }

// Backup implements core.Storage: PostgreSQL has its own tooling.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	return 0, core.Errorf(core.CodeInvalidRequest, "back up a PostgreSQL store with pg_dump (or the database's own backups), not through agentos")
}

// Ping implements core.Storage: a write that commits.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('ping', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, time.Now().UTC().Format(time.RFC3339Nano))
	return dbErr(err)
}

// GetMeta implements core.MetaPort.
func (s *Store) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return v, dbErr(err)
}

// SetMeta implements core.MetaPort.
func (s *Store) SetMeta(ctx context.Context, key, value string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return dbErr(err)
}

// retryAfter is what a client is told to wait while the database is away.
const retryAfter = 2

// dbErr turns a database failure into the contract's error: a lost or
// refusing server is dependency_unavailable (503 with Retry-After) so the
// edge answers it as such and readiness fails; core errors pass through;
// anything else stays an internal error.
func dbErr(err error) error {
	if err == nil {
		return nil
	}
	var ce *core.Error
	if errors.As(err, &ce) || errors.Is(err, context.Canceled) || errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if unavailable(err) {
		// Clients learn that the database is away, not its address; the
		// driver's error stays in the chain for the logs.
		e := core.Errorf(core.CodeDependencyUnavailable, "the database is unavailable; retry after Retry-After seconds")
		e.RetryAfter = retryAfter
		return &wrapped{e: e, cause: err}
	}
	return err
}

// wrapped keeps the driver's error reachable through errors.As while the
// contract sees a core.Error.
type wrapped struct {
	e     *core.Error
	cause error
}

func (w *wrapped) Error() string   { return w.e.Error() + ": " + oneLine(w.cause) }
func (w *wrapped) Unwrap() []error { return []error{w.e, w.cause} }

func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		c := pgErr.Code
		// 08: connection exception; 57P01-57P03: shutdown, crash,
		// cannot connect now; 53300: too many connections.
		return strings.HasPrefix(c, "08") || c == "57P01" || c == "57P02" || c == "57P03" || c == "53300"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	if errors.As(err, &netErr) || errors.As(err, &connErr) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	// The driver reports a cut connection with new errors of the same text.
	msg := err.Error()
	for _, s := range []string{"EOF", "conn closed", "closed pool", "broken pipe", "connection reset", "connection refused"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

const (
	codeUniqueViolation = "23505"
	codeSerialization   = "40001"
	codeDeadlock        = "40P01"
)

// tx runs fn in a transaction, retrying a few times when PostgreSQL
// resolves a deadlock or serialization failure by aborting this one. fn
// may run more than once and must only touch the transaction.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, fn)
		if c := pgCode(err); c != codeDeadlock && c != codeSerialization {
			return dbErr(err)
		}
	}
	return dbErr(err)
}
