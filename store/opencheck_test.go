package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentos/agentos/conformance"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/store"
)

// mustOpen opens the store file at path, failing the test when it cannot.
func mustOpen(t testing.TB, path string, o store.Options) *store.Store {
	t.Helper()
	s, err := store.Open(path, o)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return s
}

// fillRuns writes n finished runs of tnt_a (in batches) and returns the
// last one.
func fillRuns(t testing.TB, s *store.Store, n int) core.RunRecord {
	t.Helper()
	at := time.Now().Add(-time.Hour)
	var last core.RunRecord
	for done := 0; done < n; {
		batch := min(5000, n-done)
		recs := make([]core.RunRecord, batch)
		evs := make([][]core.Event, batch)
		for i := range recs {
			recs[i], evs[i] = conformance.FinishedRun("tnt_a", "agt_sample_echo_v1", at.Add(time.Duration(done+i)*time.Millisecond), 0)
		}
		if err := s.ImportRuns(context.Background(), recs, evs); err != nil {
			t.Fatal(err)
		}
		last = recs[batch-1]
		done += batch
	}
	return last
}

// Issue 16: a restart must not cost O(file). After a clean Close, Open
// judges the file by a few dozen pages whatever its size; the store's
// runs are all there.
func TestOpen_AfterCleanCloseChecksFewPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentos.db")
	s := mustOpen(t, path, store.Options{NoSync: true})
	last := fillRuns(t, s, 10000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	s = mustOpen(t, path, store.Options{})
	defer s.Close()
	oc := s.Opened()
	if oc.Full || oc.Pages == 0 || oc.Pages > 64 {
		t.Fatalf("open of a cleanly closed %d MiB store: %+v, want a quick check of at most 64 pages", fi.Size()>>20, oc)
	}
	if got, err := s.GetRun(context.Background(), "tnt_a", last.RunID); err != nil || got.Status != core.RunCompleted {
		t.Fatalf("last run: %v", err)
	}
	if evs, err := s.ListEvents(context.Background(), "tnt_a", last.RunID, 0, 0); err != nil || len(evs) != int(last.LastSequence) {
		t.Fatalf("last run's events: %d %v", len(evs), err)
	}
	// Writes after a quick open reuse the loaded freelist, and the next
	// clean close still leaves a file the quick check accepts.
	fillRuns(t, s, 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Check(path, time.Second); err != nil {
		t.Fatalf("full check after writes on a quickly opened store: %v", err)
	}
}

// crashCopy copies the file of an open store: what a kill -9 leaves
// (every commit is synced, but no freelist was written).
func crashCopy(t *testing.T, s *store.Store, dst string) {
	t.Helper()
	raw, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteFile(t, dst, raw, 0o600)
}

// damageMiddle writes to dst a copy of the store file src with the middle
// third of its pages zeroed: data pages, far from the top, which only a
// full walk reads.
func damageMiddle(t *testing.T, src, dst string) {
	t.Helper()
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	third := len(raw) / 3 / 4096 * 4096
	clear(raw[third : 2*third])
	testkit.WriteFile(t, dst, raw, 0o600)
}

// crashedFile is a store file of runs finished runs as a crash leaves it
// (copied while open, so without the clean mark).
func crashedFile(t *testing.T, runs int) string {
	t.Helper()
	dir := t.TempDir()
	s := mustOpen(t, filepath.Join(dir, "live.db"), store.Options{})
	defer s.Close()
	fillRuns(t, s, runs)
	crashed := filepath.Join(dir, "crashed.db")
	crashCopy(t, s, crashed)
	return crashed
}

// After a crash the file carries no clean mark: Open walks all of it (and
// so refuses a damaged page anywhere), then a clean close makes the next
// open quick again.
func TestOpen_AfterCrashWalksEverything(t *testing.T) {
	crashed := crashedFile(t, 2000)

	c := mustOpen(t, crashed, store.Options{})
	if !c.Opened().Full {
		t.Fatalf("open after a crash: %+v, want the full walk", c.Opened())
	}
	c.Close()
	c = mustOpen(t, crashed, store.Options{})
	if c.Opened().Full {
		t.Fatal("open after a clean close walked everything again")
	}
	c.Close()
}

// A damaged leaf deep in the data bucket of a crashed file is refused
// (the full walk reads it), not found later by a request.
func TestOpen_CrashedFileWithDamagedLeafRefused(t *testing.T) {
	crashed := crashedFile(t, 2000)
	damageMiddle(t, crashed, crashed)
	wantBroken(t, crashed, "crashed file with damaged leaves")
}

// The quick check reads the structure near the top: a damaged freelist,
// root, bucket root or first-level page is refused even after a clean
// close.
func TestOpen_QuickCheckRefusesDamageNearTheTop(t *testing.T) {
	dir := t.TempDir()
	pristine := filepath.Join(dir, "pristine.db")
	s := mustOpen(t, pristine, store.Options{})
	fillRuns(t, s, 2000)
	s.Close()
	pages := store.TopPages(t, pristine)
	if len(pages) < 4 {
		t.Fatalf("top pages %v: want the freelist, the root and bucket pages", pages)
	}
	raw, err := os.ReadFile(pristine)
	if err != nil {
		t.Fatal(err)
	}
	// The freelist, the root, the bucket roots, and the last first-level
	// page (the others are alike).
	if len(pages) > 6 {
		pages = append(pages[:5], pages[len(pages)-1])
	}
	for _, p := range pages {
		b := append([]byte(nil), raw...)
		clear(b[p*4096 : p*4096+4096])
		wantBroken(t, testkit.WriteFile(t, filepath.Join(dir, "damaged.db"), b, 0o600), "zeroed top page")
	}
}
