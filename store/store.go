// Package store is the bbolt adapter of the core ports. Every persisted key
// is tenant-scoped as CONTRACT.md §6 lays out ("tenant/{tenant_id}/runs/…"),
// kept in one bucket so a tenant's data is one contiguous key range; global
// lookups (a token's secret hash, the run queue) live in index buckets that
// point back into the tenant range. Every change that writes several records
// does it in one bbolt transaction.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// Buckets.
var (
	bucketData  = []byte("data")  // tenant/{tenant_id}/... keys of §6
	bucketIndex = []byte("index") // global lookups pointing into data
	bucketMeta  = []byte("meta")  // node metadata (stack id, schema version)
)

// Options tune the store.
type Options struct {
	// Timeout bounds waiting for the file lock (another process holding
	// the database); zero means 2 s.
	Timeout time.Duration
	// NoSync skips fsync on commit; only for benchmarks and tests that
	// measure something else.
	NoSync bool
}

// Store is the bbolt-backed adapter of the ports.
type Store struct {
	db *bolt.DB
	// commits groups the hot run and event writes of concurrent callers
	// into shared transactions (see queue.go).
	commits groupCommit
	// fullUntil (unix nanoseconds) is when the store counts as writable
	// again after a write failed for lack of space (see writeErr).
	fullUntil atomic.Int64
	// opened is how Open judged the existing file.
	opened OpenCheck
	// limits holds budget reservations and rate windows in memory: a bbolt
	// file belongs to one process, so nothing else needs to see them.
	limits *core.LocalLimits
}

// FullBackoff is how long the store reports itself not writable after a
// write failed for lack of space. Each new failure starts it again; once
// it passes without one, readiness returns by itself.
var FullBackoff = 5 * time.Second

// storageFull reports a write that failed because the volume (or the
// process's file size limit, or a quota) has no room.
func storageFull(err error) bool {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EFBIG, syscall.EDQUOT} {
		// bbolt wraps some of these with %s ("file resize error: file
		// too large"), so the text is matched too.
		if errors.Is(err, errno) || strings.Contains(err.Error(), errno.Error()) {
			return true
		}
	}
	return false
}

// writeErr turns a write that failed for lack of space into the contract's
// dependency_unavailable (503, retryable, details.reason "storage_full")
// and marks the store not writable for FullBackoff. Other errors pass.
func (s *Store) writeErr(err error) error {
	if err == nil || !storageFull(err) {
		return err
	}
	s.fullUntil.Store(time.Now().Add(FullBackoff).UnixNano())
	retry := int(FullBackoff.Seconds())
	if retry < 1 {
		retry = 1
	}
	ce := core.Errorf(core.CodeDependencyUnavailable, "the store cannot write: no space left for the database (%v)", err)
	ce.RetryAfter = retry
	return ce.With("dependency", "store").With("reason", "storage_full")
}

// Writable reports an error while writes are failing for lack of space
// (readiness uses it next to Ping, whose small write may still fit).
func (s *Store) Writable() error {
	if until := s.fullUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return errors.New("storage full: recent writes failed for lack of space")
	}
	return nil
}

// The bbolt file is a complete core.Storage.
var _ core.Storage = (*Store)(nil)

// ErrLocked is returned by Open when another process holds the database.
var ErrLocked = errors.New("locked by another process")

// BrokenError is returned by Open for a database file that exists but is
// not a usable bbolt database: empty (0 bytes), not bbolt at all, or with a
// damaged page. The node refuses to start on it rather than silently
// beginning a new, empty node (new stack_id, new seed) or crashing.
type BrokenError struct {
	Path   string
	Reason string
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("database %s is %s: restore it from a backup, or start with --reset to move it aside and begin a new, empty node", e.Path, e.Reason)
}

// Open opens (creating if needed) the bbolt file at path. An existing file
// is checked first (see check): a broken one is refused with *BrokenError,
// one held by another process with ErrLocked.
func Open(path string, opt Options) (*Store, error) {
	if opt.Timeout == 0 {
		opt.Timeout = 2 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	fi, err := os.Stat(path)
	var opened OpenCheck
	switch {
	case err == nil && fi.Size() == 0:
		return nil, &BrokenError{Path: path, Reason: "empty (0 bytes)"}
	case err == nil:
		if opened, err = check(path, opt.Timeout, false); err != nil {
			return nil, err
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	var db *bolt.DB
	err = guard(func() error {
		var err error
		// The freelist is not written by each commit (NoFreelistSync:
		// fewer bytes per fsync) but by Close (markClean), so after a
		// clean stop PreLoadFreelist reads one page; after a crash it
		// rebuilds the list by walking every page, which check has just
		// done safely. Either way it happens here, under guard, rather
		// than in the first write transaction.
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.Timeout, NoFreelistSync: true,
			FreelistType: bolt.FreelistMapType, PreLoadFreelist: true})
		return err
	})
	if err != nil {
		return nil, openError(path, err)
	}
	db.NoSync = opt.NoSync
	err = guard(func() error {
		return db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketData, bucketIndex, bucketMeta} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		db.Close()
		if be := (*BrokenError)(nil); errors.As(err, &be) {
			be.Path = path
			return nil, be
		}
		return nil, fmt.Errorf("init store %s: %w", path, err)
	}
	s := &Store{db: db, opened: opened}
	s.limits = core.NewLocalLimits(s)
	return s, nil
}

// Opened says how Open judged the existing file: a quick check after a
// clean stop, a full walk otherwise (zero for a new file).
func (s *Store) Opened() OpenCheck { return s.opened }

func openError(path string, err error) error {
	var be *BrokenError
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return fmt.Errorf("open store %s: %w", path, ErrLocked)
	case errors.As(err, &be):
		be.Path = path
		return be
	}
	var pe *fs.PathError
	var errno syscall.Errno
	if errors.As(err, &pe) || errors.As(err, &errno) {
		// The system refused (permissions, memory): not the file's fault.
		return fmt.Errorf("open store %s: %w", path, err)
	}
	// Anything bbolt itself rejects (invalid or mismatched meta pages, a
	// file too small to hold them) is the file's content.
	return &BrokenError{Path: path, Reason: "not a valid database (" + err.Error() + ")"}
}

// guard runs fn on this goroutine with memory faults turned into panics,
// and turns a panic (bbolt panics on damaged pages; a page pointer past
// the end of the file faults) into a *BrokenError.
func guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if p := recover(); p != nil {
			err = &BrokenError{Reason: fmt.Sprintf("damaged (%v)", p)}
		}
	}()
	return fn()
}

// check opens an existing file read-only and judges it. A file closed
// cleanly gets the quick check (quickCheck: a few dozen pages); any other
// file, or any file when full is set, has every bucket, key and value
// walked on this goroutine, so a damaged page is found here, where it can
// be reported, instead of in bbolt's own freelist scan (which panics on
// another goroutine, or faults). See docs/security.md for what the quick
// check does not see.
func check(path string, timeout time.Duration, full bool) (OpenCheck, error) {
	var db *bolt.DB
	err := guard(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: true})
		return err
	})
	if err != nil {
		return OpenCheck{}, openError(path, err)
	}
	defer db.Close()
	if !full {
		pages, err := quickCheck(path)
		switch {
		case err == nil:
			return OpenCheck{Pages: pages}, nil
		case !errors.Is(err, errNoFreelist):
			return OpenCheck{}, &BrokenError{Path: path, Reason: "damaged (" + err.Error() + ")"}
		}
	}
	err = guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(b) })
		})
	})
	if err != nil {
		return OpenCheck{}, openError(path, err)
	}
	return OpenCheck{Full: true}, nil
}

// Check walks every page of the bbolt file at path (read-only; the node
// must not hold it, or it waits up to timeout and returns ErrLocked) and
// returns a *BrokenError for a damaged file: `agentos store check`.
func Check(path string, timeout time.Duration) error {
	if fi, err := os.Stat(path); err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	} else if fi.Size() == 0 {
		return &BrokenError{Path: path, Reason: "empty (0 bytes)"}
	}
	if _, err := check(path, timeout, false); err != nil {
		return err
	}
	_, err := check(path, timeout, true)
	return err
}

// walk touches every key and value of b and its nested buckets.
func walk(b *bolt.Bucket) error {
	var sum byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				if err := walk(nb); err != nil {
					return err
				}
			}
			continue
		}
		if len(v) > 0 {
			sum ^= v[0] ^ v[len(v)-1]
		}
	}
	_ = sum
	return nil
}

// Close marks the file closed cleanly and closes it. The mark is bbolt's
// own freelist, written by one last commit (commits during the run skip
// it): its presence is what lets the next Open check the file quickly
// instead of walking it, and its absence after a crash is what makes the
// next Open walk it.
func (s *Store) Close() error {
	err := s.markClean()
	if cerr := s.db.Close(); cerr != nil {
		return cerr
	}
	return err
}

// markClean commits one transaction that writes the freelist. Setting
// NoFreelistSync inside the transaction is safe: bbolt reads it in Commit,
// under the writer lock every other commit also holds.
func (s *Store) markClean() error {
	if s.db.IsReadOnly() {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		tx.DB().NoFreelistSync = false
		return Meta(tx).Put([]byte("closed_at"), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	})
	if err != nil && !errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return fmt.Errorf("close store: mark clean: %w", err)
	}
	return nil
}

// DB exposes the bbolt handle to the adapters in this package's files.
func (s *Store) DB() *bolt.DB { return s.db }

// Path is the database file.
func (s *Store) Path() string { return s.db.Path() }

// Describe implements core.Storage: "bbolt <path>".
func (s *Store) Describe() string { return "bbolt " + s.db.Path() }

// Backup implements core.Storage: a consistent copy of the whole file,
// taken in one read transaction while the node keeps serving.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Ping proves the store is writable (readiness): no write failed for lack
// of space within FullBackoff, and a small write commits.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.Writable(); err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte("ping"), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	})
}

// TenantKey builds "tenant/{tenant_id}/part/part…".
func TenantKey(tenantID string, parts ...string) []byte {
	var b strings.Builder
	b.Grow(8 + len(tenantID) + 16*len(parts))
	b.WriteString("tenant/")
	b.WriteString(tenantID)
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(p)
	}
	return []byte(b.String())
}

// SeqKey renders a sequence so that byte order is numeric order.
func SeqKey(seq int64) string { return fmt.Sprintf("%020d", seq) }

// seqKeyLen is the length of a SeqKey.
const seqKeyLen = 20

// update runs fn in a read-write transaction of its own. It fails fast
// when ctx is done. fn's error comes back without a noWrites mark (which
// only the shared commits of batch act on), so fn may use helpers that
// mark.
func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(fn)
	if nw, ok := err.(*noWriteError); ok {
		err = nw.err
	}
	return s.writeErr(err)
}

// batch runs fn in a transaction shared with concurrent writers (the
// group committer of queue.go: one fsync for many small writes). fn may
// run more than once, so it must only touch the transaction; when it
// fails, nothing it wrote is committed.
func (s *Store) batch(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	return s.group(ctx, fn)
}

func (s *Store) view(fn func(tx *bolt.Tx) error) error { return s.db.View(fn) }

// Data returns the data bucket of tx.
func Data(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketData) }

// Index returns the index bucket of tx.
func Index(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketIndex) }

// Meta returns the meta bucket of tx.
func Meta(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketMeta) }

// getJSON reads key of b into v; found is false when the key is absent.
func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

// replaceJSON stores at key of b what next makes of the record stored
// there (prev nil when there is none) and returns it, and whether there
// was one; the caller's write transaction keeps other writers out between
// the read and the write.
func replaceJSON[T any](b *bolt.Bucket, key []byte, next func(prev *T) T) (T, bool, error) {
	var prev T
	found, err := getJSON(b, key, &prev)
	if err != nil {
		var zero T
		return zero, false, err
	}
	var before *T
	if found {
		before = &prev
	}
	v := next(before)
	return v, found, putJSON(b, key, v)
}

// getOne reads the JSON record at key of the bucket that bucket picks,
// not_found naming kind and id when there is none.
func getOne[T any](s *Store, bucket func(*bolt.Tx) *bolt.Bucket, key []byte, kind, id string) (T, error) {
	var out T
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := getJSON(bucket(tx), key, &out)
		if err == nil && !ok {
			err = core.NotFound(kind, id)
		}
		return err
	})
	return out, err
}

// listJSON decodes every JSON record under prefix of the bucket that
// bucket picks, in key order.
func listJSON[T any](s *Store, bucket func(*bolt.Tx) *bolt.Bucket, prefix []byte) ([]T, error) {
	return listJSONAs(s, bucket, prefix, func(v T) T { return v })
}

// listJSONAs is listJSON for records stored as R and listed as what conv
// makes of each.
func listJSONAs[R, T any](s *Store, bucket func(*bolt.Tx) *bolt.Bucket, prefix []byte, conv func(R) T) ([]T, error) {
	out := []T{}
	var derr error
	err := s.view(func(tx *bolt.Tx) error {
		scanPrefix(bucket(tx), prefix, false, func(k, v []byte) bool {
			var rec R
			if err := json.Unmarshal(v, &rec); err != nil {
				derr = fmt.Errorf("decode %s: %w", k, err)
				return false
			}
			out = append(out, conv(rec))
			return true
		})
		return derr
	})
	return out, err
}

// putJSON writes v as JSON under key of b.
func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, raw)
}

// scanPrefix calls fn for each key of b under prefix, in key order (or
// reverse order), until fn returns false.
func scanPrefix(b *bolt.Bucket, prefix []byte, reverse bool, fn func(k, v []byte) bool) {
	c := b.Cursor()
	if !reverse {
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			if !fn(k, v) {
				return
			}
		}
		return
	}
	// Seek to just past the prefix range, then walk back.
	end := append(append([]byte{}, prefix...), 0xff)
	k, v := c.Seek(end)
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && hasPrefix(k, prefix); k, v = c.Prev() {
		if !fn(k, v) {
			return
		}
	}
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

// GetMeta implements core.MetaPort.
func (s *Store) GetMeta(ctx context.Context, key string) (string, error) {
	var out string
	err := s.view(func(tx *bolt.Tx) error {
		out = string(Meta(tx).Get([]byte(key)))
		return nil
	})
	return out, err
}

// SetMeta implements core.MetaPort.
func (s *Store) SetMeta(ctx context.Context, key, value string) error {
	return s.update(ctx, func(tx *bolt.Tx) error { return Meta(tx).Put([]byte(key), []byte(value)) })
}
