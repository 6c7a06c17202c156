// Package pgtest gives tests a fresh, empty PostgreSQL schema on the
// server named by AGENTOS_TEST_POSTGRES_URL (.ci/postgres starts one).
// Without the variable the test is skipped, except under CI=true where a
// missing database is a failure: CI must run the PostgreSQL tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the variable that names the test server.
const EnvURL = "AGENTOS_TEST_POSTGRES_URL"

// ServerURL returns the server's URL, or skips (fails under CI=true).
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must run the PostgreSQL tests (.ci/run starts a server with .ci/postgres)", EnvURL)
		}
		t.Skipf("%s not set: start a server with `eval \"$(bash .ci/postgres start /tmp/agentos-pg 55432)\"` to run the PostgreSQL tests", EnvURL)
	}
	return u
}

// URL creates a schema of its own for t (dropped when t ends) and returns
// the server URL with search_path set to it, so the test sees an empty
// database and tests can run in parallel on one server.
func URL(t testing.TB) string {
	t.Helper()
	base := ServerURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	return WithSearchPath(base, schema)
}

// WithSearchPath returns base with its search_path parameter set.
func WithSearchPath(base, schema string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
