package e2e

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agentos/agentos/e2e/testbinary"
	"github.com/agentos/agentos/store/postgres/pgtest"
)

// TestUpValidateStatusOnPostgres: the operator path with --store
// postgres://…: up brings the node up on the database (smoke runs
// included), validate passes, status and the reports name the store
// without its password, migrate has nothing left to apply, and a second
// up after nuke finds the same data in the database.
func TestUpValidateStatusOnPostgres(t *testing.T) {
	if !slices.Contains(testbinary.Stores(), "postgres") {
		t.Skip("no PostgreSQL test server (AGENTOS_TEST_POSTGRES_URL)")
	}
	t.Parallel()
	store := pgtest.URL(t)
	u, _ := url.Parse(store)
	u.User = url.UserPassword(u.User.Username(), "pw-not-shown") // trust auth ignores it
	store = u.String()
	w := newWorkdir(t)
	up := w.mustRun(t, "up", "--store", store)
	mustContain(t, up, "store postgres://", "smoke 7/7")
	w.mustRun(t, "validate", "--store", store)
	st := w.mustRun(t, "status", "--store", store)
	mustContain(t, st, "store       postgres://")
	// A second `up` on the same database joins the running node: its boot
	// phase names the node it joined, and its status (reading the store
	// from the launch it recorded) lists both.
	w2 := newWorkdir(t)
	up2 := w2.run("up", "--store", store)
	if up2.Code != 0 {
		t.Fatalf("second up on the same store: %s", up2)
	}
	mustContain(t, up2, "joined 1 live node(s)", "cluster of 2 live node(s)", "smoke 7/7")
	st2 := w2.run("status")
	if st2.Code != 0 {
		t.Fatalf("status of the second node: %s", st2)
	}
	mustContain(t, st2, "store       postgres://", "cluster     2 live node(s)")
	m := w.run("migrate", "--store", store)
	if m.Code != 0 || !strings.Contains(m.Stdout, "nothing to apply") {
		t.Fatalf("migrate on a current schema: %s", m)
	}
	for _, r := range []result{up, st, m, up2, st2} {
		if strings.Contains(r.Stdout+r.Stderr, "pw-not-shown") {
			t.Fatalf("output shows the password:\n%s", r)
		}
	}
	for _, rep := range w.reports("up") {
		raw, _ := os.ReadFile(rep)
		if strings.Contains(string(raw), "pw-not-shown") || !strings.Contains(string(raw), "postgres://") {
			t.Fatalf("report %s: password shown or store not named", filepath.Base(rep))
		}
	}
	// Nothing of the store lives in the data dir.
	if _, err := os.Stat(w.path(".agentos", "agentos.db")); err == nil {
		t.Fatal("a bbolt file appeared in the data dir of a postgres node")
	}
}

// TestServeRefusesUnreachablePostgres: one line on stderr naming host,
// port and database, a non-zero exit, no password.
func TestServeRefusesUnreachablePostgres(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	w := newWorkdir(t)
	r := w.run("serve", "--store", "postgres://agentos:topsecret@"+addr+"/agentos_main?sslmode=disable")
	if r.Code == 0 {
		t.Fatalf("serve on an unreachable database exited 0: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	last := lines[len(lines)-1]
	_, port, _ := net.SplitHostPort(addr)
	for _, want := range []string{"127.0.0.1", port, "agentos_main", "next:"} {
		if !strings.Contains(last, want) {
			t.Errorf("last stderr line lacks %q: %s", want, last)
		}
	}
	if strings.Contains(r.Stderr, "topsecret") {
		t.Errorf("stderr shows the password: %s", r.Stderr)
	}
}
