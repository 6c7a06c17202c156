package stacka

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
)

// errLeaseLost is the cancel cause of a run whose lease another node took
// over (this node stalled past the lease): it must write nothing more.
var errLeaseLost = errors.New("run lease taken over by another node")

// DefaultRunLease is how long a node's claim on a run lasts without renewal;
// after a node dies its runs are taken over within about this long.
const DefaultRunLease = 10 * time.Second

// Cluster makes the service one node of several sharing a store: runs are
// claimed with a lease instead of owned, notices from the store wake the
// event streams and cancels of runs executing here. Nil on a single node.
type Cluster struct {
	// NodeID names this node (leases, node registry, logs).
	NodeID string
	// Leases claims, renews and releases runs; required.
	Leases core.RunLeasePort
	// Notices delivers other nodes' event commits and cancels; required.
	Notices core.RunNoticePort
	// Nodes records this node as alive (optional).
	Nodes core.NodeRegistryPort
	// Lease is the claim's life (DefaultRunLease when zero); it is renewed
	// every Lease/3 and expired claims are looked for every Lease/5 (at
	// most every second).
	Lease time.Duration
	// Info describes this node for the node registry (URL, start time).
	Info func() core.NodeInfo
}

func (c *Cluster) lease() time.Duration {
	if c.Lease <= 0 {
		return DefaultRunLease
	}
	return c.Lease
}

// clusterLoops runs the renew, claim and listen loops of a cluster node.
type clusterLoops struct {
	s      *Service
	c      *Cluster
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	pullMu  sync.Mutex
	pending map[string]core.RunNotice
	pullC   chan struct{}
	// claimC asks for a claim pass now (a run ended here: a slot of its
	// tenant and a worker are free).
	claimC chan struct{}
}

// claimCap is the tenant's max_concurrent_runs as a claim cap: a node
// claims a tenant's run only while fewer of its runs are held across the
// cluster (queued on a node or executing).
func (s *Service) claimCap(ctx context.Context) func(string) int {
	return func(tenantID string) int { return max(s.tenantRunCap(ctx, tenantID), 1) }
}

// nudgeClaim asks the claim loop for a pass now.
func (s *Service) nudgeClaim() {
	if s.claimC == nil {
		return
	}
	select {
	case s.claimC <- struct{}{}:
	default:
	}
}

func (s *Service) startCluster(ctx context.Context) error {
	c := s.cluster
	// Runs this node held before a restart, and runs nobody holds, first.
	refs, err := c.Leases.ClaimRuns(ctx, c.NodeID, c.lease(), s.cfg.Workers, true, s.claimCap(ctx))
	if err != nil {
		return err
	}
	// Set before the workers start: they nudge the claim loop through it.
	s.claimC = make(chan struct{}, 1)
	s.sched.start()
	s.adoptClaimed(ctx, refs)
	if len(refs) > 0 {
		s.log.Info().Int("runs", len(refs)).Msg("cluster: claimed non-terminal runs at start")
	}
	lctx, cancel := context.WithCancel(context.Background())
	l := &clusterLoops{s: s, c: c, ctx: lctx, cancel: cancel, pending: map[string]core.RunNotice{}, pullC: make(chan struct{}, 1),
		claimC: s.claimC}
	s.loops = l
	l.beat()
	l.wg.Add(4)
	go l.renew()
	go l.claim()
	go l.listen()
	go l.pull()
	return nil
}

// adoptClaimed queues runs this node has just claimed.
func (s *Service) adoptClaimed(ctx context.Context, refs []core.RunRef) {
	for _, ref := range refs {
		if !s.sched.hold(ref.RunID, ref.TenantID) {
			continue // already queued or executing here
		}
		rec, err := s.runs.GetRun(ctx, ref.TenantID, ref.RunID)
		if err != nil {
			s.log.Error().Err(err).Str("tenant_id", ref.TenantID).Str("run_id", ref.RunID).Msg("cluster: cannot load claimed run")
			s.sched.unhold(ref.RunID)
			continue
		}
		if core.RunTerminal(rec.Status) {
			s.sched.unhold(ref.RunID)
			continue
		}
		s.sched.enqueue(rec, s.tenantRunCap(ctx, rec.TenantID), true)
	}
}

// RunCreateClaimer is a store that can create a run already claimed by
// the creating node, in the create's own transaction (as ClaimRun would
// claim it: at most maxHeld of the tenant's runs held with a live lease);
// claimed is false when the cap is reached or on a replay. A cluster node
// whose lease port and run store are one such store (PostgreSQL) pays one
// commit per created run instead of a create and then a claim.
type RunCreateClaimer interface {
	CreateRunClaimed(ctx context.Context, rec core.RunRecord, drafts []core.EventDraft, audit *core.AuditRecord,
		node string, lease time.Duration, maxHeld int) (stored core.RunRecord, evs []core.Event, replayed, claimed bool, err error)
}

// createClaimer is the run store as a RunCreateClaimer when it is also the
// cluster's lease port (so the claim is the one the leases see).
func (s *Service) createClaimer() (RunCreateClaimer, bool) {
	if s.cluster == nil {
		return nil, false
	}
	cc, ok := s.cluster.Leases.(RunCreateClaimer)
	if !ok || any(s.cluster.Leases) != any(s.runs) {
		return nil, false
	}
	return cc, true
}

// claimCreated claims a run this node has just created; false when another
// node got it first (or the store failed: the claim loops of the cluster
// will pick it up).
func (s *Service) claimCreated(ctx context.Context, rec core.RunRecord) bool {
	c := s.cluster
	ok, err := c.Leases.ClaimRun(ctx, c.NodeID, rec.TenantID, rec.RunID, c.lease(), max(s.tenantRunCap(ctx, rec.TenantID), 1))
	if err != nil {
		s.log.Warn().Err(err).Str("run_id", rec.RunID).Msg("cluster: claim of a created run failed; another node's claim loop will take it")
		return false
	}
	return ok && s.sched.hold(rec.RunID, rec.TenantID)
}

func (l *clusterLoops) stop(ctx context.Context) {
	l.cancel()
	l.wg.Wait()
}

// every calls fn each period d, and at once whenever wake fires (nil:
// never), until the loops stop.
func (l *clusterLoops) every(d time.Duration, wake <-chan struct{}, fn func()) {
	defer l.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		fn()
	}
}

// beat records this node as alive in the node registry.
func (l *clusterLoops) beat() {
	if l.c.Nodes == nil {
		return
	}
	info := core.NodeInfo{NodeID: l.c.NodeID}
	if l.c.Info != nil {
		info = l.c.Info()
		info.NodeID = l.c.NodeID
	}
	if err := l.c.Nodes.BeatNode(l.ctx, info); err != nil && l.ctx.Err() == nil {
		l.s.log.Warn().Err(err).Msg("cluster: heartbeat failed")
	}
}

// renew extends the leases of every run held here and stops the local work
// on those another node has taken over.
func (l *clusterLoops) renew() {
	l.every(l.c.lease()/3, nil, func() {
		l.beat()
		ids := l.s.sched.heldIDs()
		lost, err := l.c.Leases.RenewLeases(l.ctx, l.c.NodeID, ids, l.c.lease())
		if err != nil {
			if l.ctx.Err() == nil {
				l.s.log.Warn().Err(err).Int("runs", len(ids)).Msg("cluster: lease renewal failed")
			}
			return
		}
		for _, id := range lost {
			l.s.sched.drop(id, errLeaseLost)
		}
	})
}

// claim takes over runs nobody holds (their node died, their creator could
// not claim them, or their tenant was at its cap) while this node has free
// workers: every period, and at once when a run ended here.
func (l *clusterLoops) claim() {
	l.every(min(l.c.lease()/5, time.Second), l.claimC, l.claimOnce)
}

func (l *clusterLoops) claimOnce() {
	free := l.s.sched.free()
	if free <= 0 {
		return
	}
	refs, err := l.c.Leases.ClaimRuns(l.ctx, l.c.NodeID, l.c.lease(), free, false, l.s.claimCap(l.ctx))
	if err != nil {
		if l.ctx.Err() == nil {
			l.s.log.Warn().Err(err).Msg("cluster: claim failed")
		}
		return
	}
	if len(refs) > 0 {
		l.s.log.Debug().Int("runs", len(refs)).Msg("cluster: claimed runs nobody held")
		l.s.adoptClaimed(l.ctx, refs)
	}
}

// listen turns the store's notices into live events for the streams open
// here and into aborts of the runs executing here.
func (l *clusterLoops) listen() {
	defer l.wg.Done()
	first := true
	_ = l.c.Notices.ListenRuns(l.ctx, func(n core.RunNotice) {
		if n.Kind == core.NoticeCancel {
			l.s.sched.abort(n.TenantID, n.RunID)
		}
		l.want(n)
	}, func() {
		if first {
			first = false
			return
		}
		// Reconnected: notices sent meanwhile are lost; look at every run
		// streamed here.
		for _, k := range l.s.hub.keys() {
			l.want(core.RunNotice{Kind: core.NoticeEvents, TenantID: k[0], RunID: k[1], Sequence: -1})
		}
	})
}

// want asks the puller to load the run's events if a stream here waits
// for them.
func (l *clusterLoops) want(n core.RunNotice) {
	last, ok := l.s.hub.lastSeq(n.TenantID, n.RunID)
	if !ok || (n.Sequence >= 0 && last >= n.Sequence) {
		return // nobody streams it here, or this node published it already
	}
	l.pullMu.Lock()
	k := feedKey(n.TenantID, n.RunID)
	if p, ok := l.pending[k]; !ok || n.Sequence < 0 || p.Sequence >= 0 && n.Sequence > p.Sequence {
		l.pending[k] = n
	}
	l.pullMu.Unlock()
	select {
	case l.pullC <- struct{}{}:
	default:
	}
}

// pull loads the announced events from the store and publishes them to the
// local hub, which drops what it already has.
func (l *clusterLoops) pull() {
	defer l.wg.Done()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.pullC:
		}
		l.pullMu.Lock()
		batch := l.pending
		l.pending = map[string]core.RunNotice{}
		l.pullMu.Unlock()
		for _, n := range batch {
			last, ok := l.s.hub.lastSeq(n.TenantID, n.RunID)
			if !ok {
				continue
			}
			if last == 0 && n.Sequence > 0 {
				// An empty window: the streams fill anything older from the
				// store themselves, the hub only needs the recent events.
				last = max(0, n.Sequence-2*maxPending)
			}
			evs, err := l.s.runs.ListEvents(l.ctx, n.TenantID, n.RunID, last, 0)
			if err != nil {
				if l.ctx.Err() == nil {
					l.s.log.Warn().Err(err).Str("run_id", n.RunID).Msg("cluster: load announced events")
				}
				continue
			}
			l.s.hub.publish(evs)
		}
	}
}

// NodeID is this node's id ("" on a node without one).
func (s *Service) NodeID() string { return s.nodeID }
