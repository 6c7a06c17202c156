package stacka

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
)

// errShutdown is the cancel cause of runs interrupted by Close: they stay
// running in the store and resume at the next Start.
var errShutdown = errors.New("node shutting down")

// errUserCanceled is the cancel cause of runs canceled through the API; the
// cancel transaction has already written their terminal state.
var errUserCanceled = errors.New("run canceled")

type queuedRun struct {
	tenantID string
	runID    string
	cap      int
	// rec is the record as created (nil after recovery); the executor's
	// first commit re-checks it against the store.
	rec *core.RunRecord
}

// scheduler is the in-memory side of the durable queue: runs waiting for a
// worker by priority, the per-tenant count of running runs (capped by
// max_concurrent_runs) and of active (queued or running) runs, and the
// cancel function of each executing run.
type scheduler struct {
	s       *Service
	workers int

	mu      sync.Mutex
	cond    *sync.Cond
	queues  [3][]queuedRun // high, normal, low
	running map[string]int
	active  map[string]int
	cancels map[string]context.CancelCauseFunc
	// held are the runs (id → tenant) this cluster node holds a lease on,
	// queued here or executing; empty on a single node.
	held     map[string]string
	nRunning int
	stopping bool

	base   context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
}

func newScheduler(s *Service, workers int) *scheduler {
	sc := &scheduler{s: s, workers: workers, running: map[string]int{}, active: map[string]int{},
		cancels: map[string]context.CancelCauseFunc{}, held: map[string]string{}}
	sc.cond = sync.NewCond(&sc.mu)
	sc.base, sc.cancel = context.WithCancelCause(context.Background())
	return sc
}

func priorityIndex(p string) int {
	switch p {
	case "high":
		return 0
	case "low":
		return 2
	}
	return 1
}

func (sc *scheduler) start() {
	for i := 0; i < sc.workers; i++ {
		sc.wg.Add(1)
		go sc.work()
	}
}

// reserve counts one more active run of tenantID unless it already has cap;
// release undoes it when the create does not happen.
func (sc *scheduler) reserve(tenantID string, cap int) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.active[tenantID] >= cap {
		return false
	}
	sc.active[tenantID]++
	return true
}

func (sc *scheduler) release(tenantID string) {
	sc.mu.Lock()
	sc.active[tenantID]--
	if sc.active[tenantID] <= 0 {
		delete(sc.active, tenantID)
	}
	sc.mu.Unlock()
	sc.cond.Broadcast()
}

func (sc *scheduler) queued() int {
	n := 0
	for _, q := range sc.queues {
		n += len(q)
	}
	return n
}

// enqueue queues a stored run; recovered runs were not reserved at create.
func (sc *scheduler) enqueue(rec core.RunRecord, cap int, recovered bool) {
	sc.mu.Lock()
	if recovered {
		sc.active[rec.TenantID]++
	}
	i := priorityIndex(rec.Priority)
	it := queuedRun{tenantID: rec.TenantID, runID: rec.RunID, cap: cap}
	if !recovered {
		it.rec = &rec
	}
	sc.queues[i] = append(sc.queues[i], it)
	sc.s.metrics.queueDepth.Set(float64(sc.queued()))
	sc.mu.Unlock()
	sc.cond.Signal()
}

// full reports whether the queue is at its global cap.
func (sc *scheduler) full() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.queued() >= sc.s.cfg.MaxQueued
}

// next blocks until a run may execute (its tenant below its running cap) or
// the scheduler stops.
func (sc *scheduler) next() (queuedRun, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for {
		if sc.stopping {
			return queuedRun{}, false
		}
		for p := range sc.queues {
			for i, it := range sc.queues[p] {
				if sc.running[it.tenantID] < max(it.cap, 1) {
					sc.queues[p] = append(sc.queues[p][:i], sc.queues[p][i+1:]...)
					sc.running[it.tenantID]++
					sc.nRunning++
					sc.s.metrics.queueDepth.Set(float64(sc.queued()))
					sc.s.metrics.active.Set(float64(sc.nRunning))
					return it, true
				}
			}
		}
		sc.cond.Wait()
	}
}

func (sc *scheduler) finished(it queuedRun, terminal bool) {
	sc.mu.Lock()
	sc.running[it.tenantID]--
	if sc.running[it.tenantID] <= 0 {
		delete(sc.running, it.tenantID)
	}
	sc.nRunning--
	sc.s.metrics.active.Set(float64(sc.nRunning))
	sc.mu.Unlock()
	if terminal {
		sc.release(it.tenantID)
	} else {
		sc.cond.Broadcast()
	}
}

func (sc *scheduler) work() {
	defer sc.wg.Done()
	for {
		it, ok := sc.next()
		if !ok {
			return
		}
		terminal := sc.s.execute(sc.base, it)
		sc.finished(it, terminal)
		// A worker and a slot of the tenant are free: in a cluster, runs
		// waiting unclaimed (their tenant was at its cap) may go now.
		sc.s.nudgeClaim()
		if sc.unhold(it.runID) && !terminal {
			// Stopped without ending (shutdown, lost lease, store down):
			// let another node (or this one) claim it again at once.
			c := sc.s.cluster
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = c.Leases.ReleaseRuns(ctx, c.NodeID, []string{it.runID})
			cancel()
		}
	}
}

func (sc *scheduler) register(runID string, cancel context.CancelCauseFunc) {
	sc.mu.Lock()
	sc.cancels[runID] = cancel
	sc.mu.Unlock()
}

func (sc *scheduler) unregister(runID string) {
	sc.mu.Lock()
	delete(sc.cancels, runID)
	sc.mu.Unlock()
}

// abort stops an executing run's in-flight call, or drops a queued run from
// the queue; it reports whether the run was found queued.
func (sc *scheduler) abort(tenantID, runID string) {
	sc.mu.Lock()
	if c, ok := sc.cancels[runID]; ok {
		sc.mu.Unlock()
		c(errUserCanceled)
		return
	}
	found := false
	for p := range sc.queues {
		for i, it := range sc.queues[p] {
			if it.runID == runID {
				sc.queues[p] = append(sc.queues[p][:i], sc.queues[p][i+1:]...)
				found = true
				break
			}
		}
	}
	sc.s.metrics.queueDepth.Set(float64(sc.queued()))
	sc.mu.Unlock()
	if found {
		sc.unhold(runID)
		sc.release(tenantID)
	}
}

// hold records a run this node claimed; false when it holds it already.
func (sc *scheduler) hold(runID, tenantID string) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if _, ok := sc.held[runID]; ok {
		return false
	}
	sc.held[runID] = tenantID
	return true
}

// unhold forgets a held run; it reports whether it was held.
func (sc *scheduler) unhold(runID string) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	_, ok := sc.held[runID]
	delete(sc.held, runID)
	return ok
}

func (sc *scheduler) heldIDs() []string {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	out := make([]string, 0, len(sc.held))
	for id := range sc.held {
		out = append(out, id)
	}
	return out
}

// free is how many more runs this node could start now.
func (sc *scheduler) free() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.workers - sc.nRunning - sc.queued()
}

// drop stops the local work on a run this node no longer holds: the
// executing call is canceled with cause, a queued run leaves the queue.
func (sc *scheduler) drop(runID string, cause error) {
	sc.mu.Lock()
	if c, ok := sc.cancels[runID]; ok {
		sc.mu.Unlock()
		c(cause)
		return
	}
	tenantID, found := "", false
	for p := range sc.queues {
		for i, it := range sc.queues[p] {
			if it.runID == runID {
				sc.queues[p] = append(sc.queues[p][:i], sc.queues[p][i+1:]...)
				tenantID, found = it.tenantID, true
				break
			}
		}
	}
	sc.s.metrics.queueDepth.Set(float64(sc.queued()))
	delete(sc.held, runID)
	sc.mu.Unlock()
	if found {
		sc.release(tenantID)
	}
}

func (sc *scheduler) counts() (queued, running int) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.queued(), sc.nRunning
}

// stop cancels executing runs with errShutdown and waits for the workers
// (each finishes its store transaction in flight) or for ctx.
func (sc *scheduler) stop(ctx context.Context) error {
	sc.mu.Lock()
	sc.stopping = true
	sc.mu.Unlock()
	sc.cond.Broadcast()
	sc.cancel(errShutdown)
	done := make(chan struct{})
	go func() { sc.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
