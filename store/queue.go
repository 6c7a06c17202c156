package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// The durable queue is the index "active/{run_id}" → tenant_id: an entry is
// written in the run's create transaction and deleted in the transaction that
// makes it terminal, so after a crash the index names exactly the runs that
// still need work. Run ids are ULIDs, so the index is in creation order.

func activeKey(runID string) []byte { return []byte("active/" + runID) }

var _ core.QueuePort = (*Store)(nil)

// ActiveRuns implements core.QueuePort.
func (s *Store) ActiveRuns(ctx context.Context) ([]core.RunRef, error) {
	out := []core.RunRef{}
	err := s.view(func(tx *bolt.Tx) error {
		prefix := []byte("active/")
		scanPrefix(Index(tx), prefix, false, func(k, v []byte) bool {
			ref := core.RunRef{TenantID: string(v), RunID: string(k[len(prefix):])}
			var rec struct {
				Status string `json:"status"`
			}
			if ok, err := getJSON(Data(tx), runKey(ref.TenantID, ref.RunID), &rec); err == nil && ok {
				ref.Status = rec.Status
			}
			out = append(out, ref)
			return true
		})
		return nil
	})
	return out, err
}

// groupCommit coalesces the store's small writes (the run executor's
// commits, run creates, audit and usage appends) into shared transactions
// without a timer: whoever arrives while a commit is in flight joins the
// next one, which starts as soon as the previous one ends. Under load a
// commit carries every writer that is ready, so one fsync pair serves
// hundreds of state changes; when idle a write commits at once. (bbolt's
// DB.Batch waits a fixed MaxBatchDelay and cannot grow a batch that is
// waiting for the writer lock, which caps throughput when fsync is slow;
// and a second, separate batcher would pay its own fsyncs.)
//
// Each function is all or nothing: one that fails after writing has its
// commit rolled back and redone without it, so its writes never land
// (bbolt has no savepoints). A function that fails before writing says so
// with noWrites and costs the others nothing.
type groupCommit struct {
	mu      sync.Mutex
	pending []*commitReq
	leading bool
}

type commitReq struct {
	fn   func(tx *bolt.Tx) error
	done chan error
}

// appendFill is the page fill of splits in the run commit path.
const appendFill = 0.95

// committer is the store's group committer.
func (s *Store) committer() *groupCommit { return &s.commits }

// noWriteError is an error a group function returns before it wrote
// anything (a failed precondition).
type noWriteError struct{ err error }

func (e *noWriteError) Error() string { return e.err.Error() }
func (e *noWriteError) Unwrap() error { return e.err }

// noWrites marks err as found before the function wrote anything, so the
// shared commit goes on without a rollback; err reaches the caller as is.
func noWrites(err error) error {
	if err == nil {
		return nil
	}
	return &noWriteError{err}
}

// errRedo rolls a shared transaction back so it is redone without the
// function that failed in it.
var errRedo = errors.New("store: redo the shared commit without a failed writer")

// group runs fn in a shared transaction and returns fn's error or the
// commit's. fn may run more than once (when another function of its
// commit fails) and must only touch tx; when it fails, nothing it wrote
// is committed.
func (s *Store) group(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g := s.committer()
	req := &commitReq{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, req)
	if !g.leading {
		g.leading = true
		go g.lead(s.db)
	}
	g.mu.Unlock()
	return s.writeErr(<-req.done)
}

func (g *groupCommit) lead(db *bolt.DB) {
	for {
		g.mu.Lock()
		batch := g.pending
		g.pending = nil
		if len(batch) == 0 {
			g.leading = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		commitGroup(db, batch)
	}
}

// commitGroup commits batch in one transaction, redoing it without each
// function that fails after writing, and answers every request.
func commitGroup(db *bolt.DB, batch []*commitReq) {
	errs := make([]error, len(batch))
	for len(batch) > 0 {
		failed := -1
		err := db.Update(func(tx *bolt.Tx) error {
			// Run, event and index keys are appended in ULID/sequence
			// order, so full pages split best: bbolt's default of half-full
			// splits would double the file and the bytes each fsync writes.
			Data(tx).FillPercent = appendFill
			Index(tx).FillPercent = appendFill
			for i, r := range batch {
				err := safeCall(r.fn, tx)
				var nw *noWriteError
				switch {
				case err == nil:
					errs[i] = nil
				case errors.As(err, &nw):
					errs[i] = nw.err
				default:
					errs[i], failed = err, i
					return errRedo
				}
			}
			return nil
		})
		if failed >= 0 && errors.Is(err, errRedo) {
			batch[failed].done <- errs[failed]
			batch = append(batch[:failed:failed], batch[failed+1:]...)
			errs = append(errs[:failed:failed], errs[failed+1:]...)
			continue
		}
		for i, r := range batch {
			if err != nil {
				r.done <- err
			} else {
				r.done <- errs[i]
			}
		}
		return
	}
}

func safeCall(fn func(tx *bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in store transaction: %v", p)
		}
	}()
	return fn(tx)
}
