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
	"os"
	"path/filepath"
	"strings"
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
}

// The bbolt file is a complete core.Storage.
var _ core.Storage = (*Store)(nil)

// Open opens (creating if needed) the bbolt file at path.
func Open(path string, opt Options) (*Store, error) {
	if opt.Timeout == 0 {
		opt.Timeout = 2 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.Timeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: locked by another process", path)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.NoSync = opt.NoSync
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketData, bucketIndex, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init store: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the database file.
func (s *Store) Close() error { return s.db.Close() }

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

// Ping proves the store is writable (readiness).
func (s *Store) Ping(ctx context.Context) error {
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

// update runs fn in a read-write transaction. It fails fast when ctx is done.
func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

// batch runs fn in a transaction that bbolt may coalesce with concurrent
// callers (one fsync for many small writes). fn may run more than once, so
// it must only touch the transaction.
func (s *Store) batch(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Batch(fn)
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
