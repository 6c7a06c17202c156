package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentos/agentos/conformance"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/store"
)

// Issue 16: space is reclaimed. Old runs and audit records are swept,
// the file is compacted, and the copy is smaller, passes the open checks
// (quick, since compaction marks it clean) and holds every live record:
// the kept runs with their events, the active run, the audit chain from
// its anchor.
func TestCompact_ReclaimsSpaceAndKeepsEveryLiveRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentos.db")
	s := mustOpen(t, path, store.Options{NoSync: true})
	ctx := context.Background()
	old := time.Now().Add(-60 * 24 * time.Hour)
	recs := make([]core.RunRecord, 3000)
	evs := make([][]core.Event, len(recs))
	for i := range recs {
		recs[i], evs[i] = conformance.FinishedRun("tnt_a", "agt_x", old.Add(time.Duration(i)*time.Second), 4)
	}
	if err := s.ImportRuns(ctx, recs, evs); err != nil {
		t.Fatal(err)
	}
	keep := fillRuns(t, s, 200)
	queued := conformance.OldRun(t, s, "tnt_a", "k-queued", old, core.RunQueued)
	for i := 0; i < 50; i++ {
		if _, err := s.AppendAudit(ctx, conformance.OldAudit("tnt_a", old.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AppendAudit(ctx, conformance.OldAudit("tnt_a", time.Now())); err != nil {
		t.Fatal(err)
	}
	cut := core.Retention{AuditDays: 30, RunsDays: 30}.Cutoffs(time.Now())
	for {
		res, err := s.SweepTenant(ctx, "tnt_a", cut, 2000, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !res.More {
			break
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := store.Compact(path, store.CompactOptions{KeepBackup: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.SizeAfter >= res.SizeBefore/2 || !res.CheckedFull || res.Backup == "" {
		t.Fatalf("compaction %+v: want the file at most half its size, checked in full, the old file kept", res)
	}
	if fi, err := os.Stat(res.Backup); err != nil || fi.Size() != res.SizeBefore {
		t.Fatalf("backup %s: %v", res.Backup, err)
	}
	s = mustOpen(t, path, store.Options{})
	defer s.Close()
	if s.Opened().Full {
		t.Fatal("a compacted file was not marked clean: the open walked everything")
	}
	runs, _, err := s.ListRuns(ctx, "tnt_a", core.RunFilter{Limit: 1000})
	if err != nil || len(runs) != 201 {
		t.Fatalf("runs after compaction: %d %v; want the 200 recent and the queued one", len(runs), err)
	}
	if ev, err := s.ListEvents(ctx, "tnt_a", keep.RunID, 0, 0); err != nil || len(ev) != int(keep.LastSequence) {
		t.Fatalf("events of a kept run: %d %v", len(ev), err)
	}
	if active, _ := s.ActiveRuns(ctx); len(active) != 1 || active[0].RunID != queued.RunID {
		t.Fatalf("active runs after compaction: %+v", active)
	}
	if n, err := s.VerifyAudit(ctx, "tnt_a"); err != nil || n != 1 {
		t.Fatalf("audit chain after compaction: %d %v", n, err)
	}
	if a, _ := s.AuditAnchor(ctx, "tnt_a"); a.Removed != 50 {
		t.Fatalf("anchor after compaction: %+v", a)
	}
}

// A running node holds the file: compaction is refused and changes
// nothing.
func TestCompact_RefusedWhileTheFileIsOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentos.db")
	s := mustOpen(t, path, store.Options{})
	defer s.Close()
	fillRuns(t, s, 100)
	before, _ := os.ReadFile(path)
	_, err := store.Compact(path, store.CompactOptions{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("compact of an open file: %v, want ErrLocked", err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("a refused compaction changed the file")
	}
	if m, _ := filepath.Glob(path + ".*"); len(m) != 0 {
		t.Fatalf("a refused compaction left files: %v", m)
	}
}

// A damaged file is refused before anything is written.
func TestCompact_RefusesADamagedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agentos.db")
	s := mustOpen(t, path, store.Options{})
	fillRuns(t, s, 500)
	crashCopy(t, s, path+".crashed")
	s.Close()
	damageMiddle(t, path+".crashed", path)
	if err := os.Remove(path + ".crashed"); err != nil {
		t.Fatal(err)
	}
	_, err := store.Compact(path, store.CompactOptions{})
	var be *store.BrokenError
	if !errors.As(err, &be) {
		t.Fatalf("compact of a damaged file: %v, want *BrokenError", err)
	}
	if m, _ := filepath.Glob(path + ".*"); len(m) != 0 {
		t.Fatalf("a refused compaction left files: %v", m)
	}
}
