package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one embedded schema step.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations are the embedded steps in version order. A file is named
// NNNN_what.sql; versions start at 1 and have no gaps.
func Migrations() []Migration {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	var out []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			panic("postgres: migration file without a version: " + e.Name())
		}
		raw, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			panic(err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(raw)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			panic(fmt.Sprintf("postgres: migration versions must be 1..n without gaps, found %d at %d", m.Version, i+1))
		}
	}
	return out
}

// SchemaVersion is the newest schema this binary knows.
func SchemaVersion() int { return len(Migrations()) }

// migrationLock is the advisory lock that makes nodes starting together
// apply the migrations once.
const migrationLock = 7_365_821_004

const createVersions = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// Migrate applies the pending migrations, each in its own transaction,
// under an advisory lock, and returns what it applied ("0001_init"). A
// schema newer than the binary is refused before anything changes.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, dbErr(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return nil, dbErr(err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLock)
	if _, err := conn.Exec(ctx, createVersions); err != nil {
		return nil, fmt.Errorf("migrate: %w", dbErr(err))
	}
	current, err := currentVersion(ctx, conn.Conn())
	if err != nil {
		return nil, err
	}
	if err := refuseNewer(current); err != nil {
		return nil, err
	}
	var applied []string
	for _, m := range Migrations() {
		if m.Version <= current {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, dbErr(err))
		}
		applied = append(applied, fmt.Sprintf("%04d_%s", m.Version, m.Name))
	}
	return applied, nil
}

func currentVersion(ctx context.Context, conn *pgx.Conn) (int, error) {
	var v int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", dbErr(err))
	}
	return v, nil
}

func refuseNewer(current int) error {
	if known := SchemaVersion(); current > known {
		return fmt.Errorf("the database schema is version %d, newer than this binary knows (%d): it was migrated by a newer agentos; run that release (or newer) against it, or point --store at another database", current, known)
	}
	return nil
}

// checkSchema is Open without migrating: the schema must be exactly the
// binary's.
func (s *Store) checkSchema(ctx context.Context, allowBehind bool) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return dbErr(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, createVersions); err != nil {
		return dbErr(err)
	}
	v, err := currentVersion(ctx, conn.Conn())
	if err != nil {
		return err
	}
	if err := refuseNewer(v); err != nil {
		return err
	}
	if v < SchemaVersion() && !allowBehind {
		return fmt.Errorf("the database schema is version %d, this binary needs %d: run `agentos migrate --store …` first", v, SchemaVersion())
	}
	return nil
}
