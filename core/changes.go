package core

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of Change.
const (
	ChangeTenant = "tenant"
	ChangeAgent  = "agent"
	ChangeTool   = "tool"
	ChangeToken  = "token"
	// ChangeAll says every cached object may be stale (a node missed
	// notices while its listener was away): subscribers drop everything.
	ChangeAll = "all"
)

// Change names one stored object whose cached copies are now stale.
type Change struct {
	Kind     string // ChangeTenant, ChangeAgent, ChangeTool or ChangeToken
	TenantID string
	// ID is the agent, tool or token id; empty for a tenant.
	ID string
	// Origin names the Publish call a cluster feed sent this change from
	// ("<feed>/<n>"); empty on a single node. Subscribers ignore it.
	Origin string
}

// ChangeFeed carries invalidations from whoever writes tenants, agents,
// tools and tokens to every cache that holds them (read-your-writes).
//
// Publish is called after the write committed and is synchronous on the
// node: when it returns, every local subscriber has dropped its copy, so
// the next request on this node — the writer's own or anyone's — reads the
// new state. A cluster feed (SharedChanges: several nodes on one
// PostgreSQL, with LISTEN/NOTIFY) implements the same interface: Publish
// also notifies the other nodes, and it calls its local subscribers for
// what they publish. Subscribers must handle ChangeAll (drop everything).
type ChangeFeed interface {
	Publish(ctx context.Context, c Change)
	// Subscribe registers fn for every change published from now on; fn
	// must be quick and must not publish. cancel unregisters it.
	Subscribe(fn func(Change)) (cancel func())
}

// LocalChanges is the in-process ChangeFeed of a single node.
type LocalChanges struct {
	mu   sync.RWMutex
	next int
	subs map[int]func(Change)
}

// NewLocalChanges returns an empty feed.
func NewLocalChanges() *LocalChanges { return &LocalChanges{subs: map[int]func(Change){}} }

// Publish calls every subscriber before it returns.
func (l *LocalChanges) Publish(_ context.Context, c Change) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, fn := range l.subs {
		fn(c)
	}
}

// Subscribe implements ChangeFeed.
func (l *LocalChanges) Subscribe(fn func(Change)) func() {
	l.mu.Lock()
	id := l.next
	l.next++
	l.subs[id] = fn
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.subs, id)
		l.mu.Unlock()
	}
}

// ChangeNoticePort carries changes between the nodes sharing a store.
type ChangeNoticePort interface {
	// PublishChange announces c to every node listening (this one too).
	PublishChange(ctx context.Context, c Change) error
	// ListenChanges calls fn for every change announced until ctx ends,
	// reconnecting after a lost connection; state (if not nil) is called
	// with true each time the listener is (re)connected and with false
	// when it lost its connection: changes announced while it was away are
	// lost, so the caller must treat everything as stale.
	ListenChanges(ctx context.Context, fn func(Change), state func(connected bool)) error
}

// SharedChanges is the ChangeFeed of a node sharing its store with others.
// Publish drops the local copies at once (like LocalChanges), announces
// the change through the store and waits (at most EchoWait) until every
// live node — this one included — has acknowledged it: a node drops its
// copies, then acknowledges. When Publish returns, the change is in force
// on every node for its next request (or, for a node that did not answer
// within EchoWait, once its caches expire). Changes other nodes announce
// reach the local subscribers; after the listener was cut, a ChangeAll
// does (notices were missed meanwhile).
type SharedChanges struct {
	*LocalChanges
	port    ChangeNoticePort
	node    string
	members func(context.Context) ([]string, error)
	seq     atomic.Int64
	// listening is set while the listener is connected; Publish does not
	// wait for acknowledgements that cannot come.
	listening atomic.Bool

	mu      sync.Mutex
	waiters map[string]*changeWaiter
	// failed counts announcements the store refused and lateAcks the
	// Publish calls that gave up waiting for some node.
	failed   atomic.Int64
	lateAcks atomic.Int64
}

type changeWaiter struct {
	pending map[string]bool
	done    chan struct{}
}

// changeAck is the kind of an acknowledgement: ID names the node that
// dropped its copies of the change whose Origin it repeats. Subscribers
// never see it.
const changeAck = "ack"

// EchoWait bounds how long Publish waits for the nodes' acknowledgements.
const EchoWait = time.Second

// NewSharedChanges returns a feed announcing through port; node is this
// node's id (unique among the nodes, without spaces or '/'), and members
// lists the ids of the live nodes whose acknowledgement Publish awaits
// (nil: only this node's own). Call Listen to receive.
func NewSharedChanges(port ChangeNoticePort, node string, members func(context.Context) ([]string, error)) *SharedChanges {
	return &SharedChanges{LocalChanges: NewLocalChanges(), port: port, node: node, members: members, waiters: map[string]*changeWaiter{}}
}

// Publish drops the local copies, then announces c to the other nodes and
// waits for their acknowledgements.
func (s *SharedChanges) Publish(ctx context.Context, c Change) {
	s.LocalChanges.Publish(ctx, c)
	c.Origin = s.node + "/" + strconv.FormatInt(s.seq.Add(1), 10)
	// The write has committed: announce it even if the caller's request
	// is over.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), EchoWait)
	defer cancel()
	var w *changeWaiter
	if s.listening.Load() {
		w = &changeWaiter{pending: map[string]bool{s.node: true}, done: make(chan struct{})}
		if s.members != nil {
			if ids, err := s.members(pctx); err == nil {
				for _, id := range ids {
					w.pending[id] = true
				}
			}
		}
		s.mu.Lock()
		s.waiters[c.Origin] = w
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.waiters, c.Origin)
			s.mu.Unlock()
		}()
	}
	if err := s.port.PublishChange(pctx, c); err != nil {
		s.failed.Add(1)
		return
	}
	if w == nil {
		return
	}
	select {
	case <-w.done:
	case <-pctx.Done():
		s.lateAcks.Add(1)
	}
}

// Failed is how many announcements the store refused so far.
func (s *SharedChanges) Failed() int64 { return s.failed.Load() }

// LateAcks is how many Publish calls stopped waiting for a node that did
// not acknowledge within EchoWait.
func (s *SharedChanges) LateAcks() int64 { return s.lateAcks.Load() }

func (s *SharedChanges) acked(origin, node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.waiters[origin]
	if w == nil || !w.pending[node] {
		return
	}
	delete(w.pending, node)
	if len(w.pending) == 0 {
		close(w.done)
		delete(s.waiters, origin)
	}
}

// Listen feeds the local subscribers with the changes other nodes announce
// (and acknowledges each) until ctx ends. Every (re)connection drops every
// cache (ChangeAll), since changes announced while the listener was away
// are lost.
func (s *SharedChanges) Listen(ctx context.Context) error {
	defer s.listening.Store(false)
	var acks sync.WaitGroup
	defer acks.Wait()
	return s.port.ListenChanges(ctx, func(c Change) {
		from := c.Origin
		if i := strings.LastIndex(from, "/"); i >= 0 {
			from = from[:i]
		}
		switch {
		case c.Kind == changeAck:
			if from == s.node {
				s.acked(c.Origin, c.ID)
			}
			return
		case from == s.node:
			s.acked(c.Origin, s.node) // dropped locally before it was sent
			return
		}
		origin := c.Origin
		c.Origin = ""
		s.LocalChanges.Publish(ctx, c)
		acks.Add(1)
		go func() {
			defer acks.Done()
			actx, cancel := context.WithTimeout(ctx, EchoWait)
			defer cancel()
			_ = s.port.PublishChange(actx, Change{Kind: changeAck, ID: s.node, Origin: origin})
		}()
	}, func(up bool) {
		// Listening first: once a subscriber has seen the ChangeAll of a
		// (re)connection, a Publish waits for the other nodes' acks.
		s.listening.Store(up)
		if up {
			s.LocalChanges.Publish(ctx, Change{Kind: ChangeAll})
		}
	})
}

// Listening reports whether the listener is connected now.
func (s *SharedChanges) Listening() bool { return s.listening.Load() }
