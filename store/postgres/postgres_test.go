package postgres_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentos/agentos/conformance"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/store/postgres"
	"github.com/agentos/agentos/store/postgres/pgtest"
)

func open(t *testing.T) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), pgtest.URL(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPostgres_Conformance runs the storage suite every adapter passes.
func TestPostgres_Conformance(t *testing.T) {
	conformance.RunStorageSuite(t, conformance.StorageHarness{
		Open: func(t *testing.T) core.Storage { return open(t) },
		TamperAudit: func(t *testing.T, s core.Storage, tenantID, auditID string) error {
			pool := s.(*postgres.Store).Pool()
			ctx := context.Background()
			var raw []byte
			if err := pool.QueryRow(ctx, `SELECT doc FROM audit WHERE tenant_id = $1 AND audit_id = $2`, tenantID, auditID).Scan(&raw); err != nil {
				return err
			}
			var rec map[string]any
			if err := json.Unmarshal(raw, &rec); err != nil {
				return err
			}
			rec["outcome"] = "failure"
			raw, _ = json.Marshal(rec)
			_, err := pool.Exec(ctx, `UPDATE audit SET doc = $3 WHERE tenant_id = $1 AND audit_id = $2`, tenantID, auditID, raw)
			return err
		},
	})
}

func TestPostgres_MigrateIsIdempotentAndRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if applied, err := s.Migrate(ctx); err != nil || len(applied) != 0 {
		t.Fatalf("second migrate applied %v (%v), want nothing", applied, err)
	}
	next := postgres.SchemaVersion() + 1
	if _, err := s.Pool().Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future')`, next); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctx, url, postgres.Options{})
	if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("open of a newer schema: %v", err)
	}
}

func TestPostgres_UnreachableServerNamesWhereAndWhatNext(t *testing.T) {
	// A loopback port nothing listens on (reserved by the kernel for us
	// to close again would race; port 1 is privileged and unused here).
	_, err := postgres.Open(context.Background(), "postgres://agentos:s3cret-pw@127.0.0.1:1/agentosdb?sslmode=disable", postgres.Options{})
	if err == nil {
		t.Fatal("open of an unreachable server succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"127.0.0.1:1", `"agentosdb"`, "pg_isready"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cret-pw") || strings.Contains(msg, "\n") {
		t.Errorf("message leaks the password or spans lines: %q", msg)
	}
}

func TestPostgres_DescribeHidesPassword(t *testing.T) {
	got := postgres.Describe("postgres://u:pw@db.example:6543/agentos?sslmode=require")
	if got != "postgres://u@db.example:6543/agentos" {
		t.Fatalf("describe: %q", got)
	}
}
