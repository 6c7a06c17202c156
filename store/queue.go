package store

import (
	"context"
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

// groupCommit coalesces the run executor's small writes into shared
// transactions without a timer: whoever arrives while a commit is in flight
// joins the next one, which starts as soon as the previous one ends. Under
// load a commit carries every worker that is ready, so one fsync pair
// serves hundreds of state changes; when idle a write commits at once.
// (bbolt's DB.Batch waits a fixed MaxBatchDelay and cannot grow a batch
// that is waiting for the writer lock, which caps throughput when fsync is
// slow.)
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

// group runs fn in a shared transaction. fn must return an error only
// before it writes anything: a failing fn is left out of the commit, the
// others go on.
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
		errs := make([]error, len(batch))
		err := db.Update(func(tx *bolt.Tx) error {
			// Run, event and index keys are appended in ULID/sequence
			// order, so full pages split best: bbolt's default of half-full
			// splits would double the file and the bytes each fsync writes.
			Data(tx).FillPercent = appendFill
			Index(tx).FillPercent = appendFill
			for i, r := range batch {
				errs[i] = safeCall(r.fn, tx)
			}
			return nil
		})
		for i, r := range batch {
			if err != nil {
				r.done <- err
			} else {
				r.done <- errs[i]
			}
		}
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
