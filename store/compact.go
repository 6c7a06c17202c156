package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt never gives pages back to the file system: records the retention
// sweep removes leave free pages that later writes reuse, but the file
// keeps its size. Compact copies the live records into a new file (full
// pages, no free space) and swaps it in.

// CompactResult reports a compaction.
type CompactResult struct {
	Path        string
	SizeBefore  int64
	SizeAfter   int64
	Keys        int
	Backup      string // the old file, when kept
	Duration    time.Duration
	CheckedFull bool
}

// CompactOptions tune Compact.
type CompactOptions struct {
	// Timeout bounds waiting for the file lock; a node holding the file
	// makes Compact fail with ErrLocked once it passes (zero: 1 s).
	Timeout time.Duration
	// KeepBackup keeps the old file as <path>.pre-compact-<UTC time>.
	KeepBackup bool
}

// Compact rewrites the bbolt file at path without its free pages. The
// node must be stopped: the file's lock is taken for the whole
// compaction, so a running node makes it fail with ErrLocked and a node
// started meanwhile waits or is refused. The source is judged first (a
// damaged file is refused with *BrokenError, untouched); the copy is
// written to <path>.compact, synced, walked in full and compared key for
// key count with the source; only then does it replace path in one
// rename, while a hard link keeps the old file until the swap is done.
func Compact(path string, opt CompactOptions) (CompactResult, error) {
	if opt.Timeout == 0 {
		opt.Timeout = time.Second
	}
	res := CompactResult{Path: path}
	start := time.Now()
	fi, err := os.Stat(path)
	if err != nil {
		return res, fmt.Errorf("compact %s: %w", path, err)
	}
	res.SizeBefore = fi.Size()
	if fi.Size() == 0 {
		return res, &BrokenError{Path: path, Reason: "empty (0 bytes)"}
	}
	// Judge the file first, as Open does (a read-write open of a file
	// without the clean mark rebuilds the freelist on a goroutine of
	// bbolt's own, where a damaged page would crash the process). A
	// running node's exclusive lock refuses even this read-only open.
	if _, err := check(path, opt.Timeout, false); err != nil {
		if errors.Is(err, ErrLocked) {
			return res, fmt.Errorf("compact %s: %w (stop the node first: agentos compact needs the file to itself)", path, ErrLocked)
		}
		return res, err
	}
	// The read-write open takes the exclusive lock for the whole
	// compaction: a node started meanwhile is refused.
	var src *bolt.DB
	err = guard(func() error {
		var err error
		src, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.Timeout, NoFreelistSync: true,
			FreelistType: bolt.FreelistMapType})
		return err
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return res, fmt.Errorf("compact %s: %w (stop the node first: agentos compact needs the file to itself)", path, ErrLocked)
		}
		return res, openError(path, err)
	}
	defer src.Close()
	// Judge the source on this goroutine (a full walk: every key is about
	// to be read anyway) before anything is written.
	if err := guard(func() error {
		return src.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(b) })
		})
	}); err != nil {
		return res, openError(path, err)
	}
	want, err := countKeys(src)
	if err != nil {
		return res, err
	}
	tmp := path + ".compact"
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{NoSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return res, fmt.Errorf("compact: create %s: %w", tmp, err)
	}
	fail := func(err error) (CompactResult, error) {
		dst.Close()
		os.Remove(tmp)
		return res, err
	}
	if err := guard(func() error { return bolt.Compact(dst, src, 64<<20) }); err != nil {
		return fail(fmt.Errorf("compact: copy: %w", err))
	}
	// The copy's commits write the freelist (bbolt's default), so it is
	// marked closed cleanly and the node's next open is the quick one.
	if err := dst.Sync(); err != nil {
		return fail(fmt.Errorf("compact: sync: %w", err))
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("compact: %w", err)
	}
	// Prove the copy before it replaces anything: the open check, a full
	// walk, and the same number of keys in every bucket.
	if _, err := check(tmp, opt.Timeout, false); err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("compact: the copy fails the open check: %w", err)
	}
	if _, err := check(tmp, opt.Timeout, true); err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("compact: the copy fails the full check: %w", err)
	}
	res.CheckedFull = true
	got, err := countFile(tmp)
	if err != nil {
		os.Remove(tmp)
		return res, err
	}
	for name, n := range want {
		if got[name] != n {
			os.Remove(tmp)
			return res, fmt.Errorf("compact: bucket %s has %d keys in the copy, %d in the source; nothing replaced", name, got[name], n)
		}
		res.Keys += n
	}
	// Swap: a hard link keeps the old file while the rename replaces the
	// path atomically (a crash leaves either file at path, never none).
	backup := path + ".pre-compact-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Link(path, backup); err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("compact: keep the old file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(backup)
		os.Remove(tmp)
		return res, fmt.Errorf("compact: swap: %w", err)
	}
	syncDir(filepath.Dir(path))
	if opt.KeepBackup {
		res.Backup = backup
	} else {
		os.Remove(backup)
	}
	if fi, err := os.Stat(path); err == nil {
		res.SizeAfter = fi.Size()
	}
	res.Duration = time.Since(start)
	return res, nil
}

// countKeys counts the keys of each top-level bucket (nested ones too).
func countKeys(db *bolt.DB) (map[string]int, error) {
	out := map[string]int{}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			out[string(name)] = b.Stats().KeyN
			return nil
		})
	})
	return out, err
}

func countFile(path string) (map[string]int, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return countKeys(db)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
