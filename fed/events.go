package fed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
)

// runSource says where a run's events come from.
type runSource struct {
	kind    sourceKind
	forward core.ForwardRecord // kind == sourceForwarded
}

type sourceKind int

const (
	sourceLocal     sourceKind = iota // this node's Stack A runs it
	sourceForwarded                   // forwarded from here; a peer runs it
	sourceIngested                    // only events a peer pushed are here
)

// resolveRun finds runID in a's tenant: a run this node forwarded, a local
// run, or a run known only by ingested events. not_found otherwise, also
// when the run belongs to another tenant.
func (n *Node) resolveRun(ctx context.Context, a core.Auth, runID string) (runSource, error) {
	rec, err := n.d.Forward.ForwardByRemoteRun(ctx, a.TenantID, runID)
	if err == nil {
		return runSource{kind: sourceForwarded, forward: rec}, nil
	}
	if !core.IsCode(err, core.CodeNotFound) {
		return runSource{}, fmt.Errorf("read forward index: %w", err)
	}
	if _, err := n.d.Runs.GetRun(ctx, a, runID); err == nil {
		return runSource{kind: sourceLocal}, nil
	} else if !core.IsCode(err, core.CodeNotFound) {
		return runSource{}, err
	}
	evs, err := n.d.Events.ListIngestedEvents(ctx, a.TenantID, runID, 0)
	if err != nil {
		return runSource{}, fmt.Errorf("read ingested events: %w", err)
	}
	if len(evs) > 0 {
		return runSource{kind: sourceIngested}, nil
	}
	return runSource{}, core.NotFound("run", runID)
}

// ListRunEvents returns the events of runID after afterSeq (the JSON form
// of the events endpoint). Errors: forbidden without runs:read, not_found,
// and for forwarded runs the peer's errors.
func (n *Node) ListRunEvents(ctx context.Context, a core.Auth, runID string, afterSeq int64) ([]core.Event, error) {
	if err := a.Require(core.ScopeRunsRead); err != nil {
		return nil, err
	}
	src, err := n.resolveRun(ctx, a, runID)
	if err != nil {
		return nil, err
	}
	switch src.kind {
	case sourceLocal:
		return n.d.Runs.ListEvents(ctx, a, runID, afterSeq)
	case sourceForwarded:
		peer, err := n.d.Peers.GetPeer(ctx, src.forward.RemoteStackID)
		if err != nil {
			return n.d.Events.ListIngestedEvents(ctx, a.TenantID, runID, afterSeq)
		}
		var out struct {
			Events []core.Event `json:"events"`
		}
		path := "/v1/federation/runs/" + url.PathEscape(runID) + "/events?after_sequence=" + strconv.FormatInt(afterSeq, 10)
		if err := n.callPeer(ctx, a, peer, "events_list", http.MethodGet, path, nil, &out); err != nil {
			return nil, err
		}
		if out.Events == nil {
			out.Events = []core.Event{}
		}
		return out.Events, nil
	default:
		return n.d.Events.ListIngestedEvents(ctx, a.TenantID, runID, afterSeq)
	}
}

// StreamRunEvents calls fn with each event of runID after afterSeq, in
// sequence order with no gap and no duplicate, until the terminal event or
// ctx ends: a local run from Stack A's stream, a forwarded run relayed from
// its peer (reconnecting after drops), an ingested-only run from the store.
// The errors before the first event are those of ListRunEvents; later ones
// (a peer that stays down past RelayGiveUp) end the stream.
func (n *Node) StreamRunEvents(ctx context.Context, a core.Auth, runID string, afterSeq int64, fn func(core.Event) error) error {
	if err := a.Require(core.ScopeRunsRead); err != nil {
		return err
	}
	src, err := n.resolveRun(ctx, a, runID)
	if err != nil {
		return err
	}
	return n.streamSource(ctx, a, runID, src, afterSeq, fn, nil)
}

// streamSource streams from src. flush, when set, is called whenever the
// relay has delivered all it has read (fn may then buffer).
func (n *Node) streamSource(ctx context.Context, a core.Auth, runID string, src runSource, afterSeq int64, fn func(core.Event) error, flush func()) error {
	switch src.kind {
	case sourceLocal:
		return n.d.Runs.StreamEvents(ctx, a, runID, afterSeq, fn)
	case sourceForwarded:
		return n.relay(ctx, a, src.forward, afterSeq, fn, flush)
	default:
		evs, err := n.d.Events.ListIngestedEvents(ctx, a.TenantID, runID, afterSeq)
		if err != nil {
			return err
		}
		last := afterSeq
		for _, ev := range evs {
			if ev.Sequence != last+1 {
				break // never deliver across a gap
			}
			if err := fn(ev); err != nil {
				return err
			}
			last = ev.Sequence
		}
		return nil
	}
}

// errRelayDone ends relayOnce when the terminal event went out.
var errRelayDone = errors.New("relay done")

// relayState is one relay's ordering and dedupe state.
type relayState struct {
	tenantID string
	runID    string
	last     int64
	seen     map[string]bool
	pending  map[int64]core.Event
	fn       func(core.Event) error
	persist  *persister
	// flush sends what fn buffered.
	flush func()
	// delivered counts events handed to fn (nil: not counted).
	delivered interface{ Inc() }
}

// clientGone wraps a failure of the reader's callback: the reader left, so
// the relay ends rather than reconnect.
type clientGone struct{ err error }

func (c clientGone) Error() string { return "deliver event: " + c.err.Error() }
func (c clientGone) Unwrap() error { return c.err }

// offer takes an event from the peer: duplicates (by event_id, or a
// sequence already delivered) are dropped, early ones wait for the gap to
// fill, and each in-order event goes out. errRelayDone after the terminal.
func (s *relayState) offer(ev core.Event) error {
	if ev.TenantID != s.tenantID || ev.RunID != s.runID {
		// Never deliver across a tenant or run boundary; a peer that mixes
		// streams is not retried.
		e := core.Errorf(core.CodeDependencyUnavailable, "peer sent an event of another run on the stream of run %s", s.runID)
		e.Retryable = false
		return e
	}
	if s.seen[ev.EventID] || ev.Sequence <= s.last {
		return nil
	}
	s.pending[ev.Sequence] = ev
	for {
		next, ok := s.pending[s.last+1]
		if !ok {
			return nil
		}
		delete(s.pending, next.Sequence)
		s.seen[next.EventID] = true
		s.last = next.Sequence
		if s.persist != nil {
			s.persist.add(next)
		}
		if err := s.fn(next); err != nil {
			return clientGone{err}
		}
		if s.delivered != nil {
			s.delivered.Inc()
		}
		if core.EventTerminal(next.Type) {
			return errRelayDone
		}
	}
}

// relay streams a forwarded run from its peer. It first replays what an
// earlier relay stored, then follows the peer from the last delivered
// sequence, reconnecting with backoff after every drop, until the terminal
// event, ctx ends, or RelayGiveUp passes with no progress.
func (n *Node) relay(ctx context.Context, a core.Auth, rec core.ForwardRecord, afterSeq int64, fn func(core.Event) error, flush func()) error {
	if flush == nil {
		flush = func() {}
	}
	log := n.log.With().Str("tenant_id", a.TenantID).Str("run_id", rec.RemoteRunID).Str("correlation_id", core.CorrelationID(ctx)).Logger()
	st := &relayState{tenantID: rec.TenantID, runID: rec.RemoteRunID, last: afterSeq,
		seen: map[string]bool{}, pending: map[int64]core.Event{}, fn: fn, delivered: n.m.relayEvents}
	stored, err := n.d.Events.ListIngestedEvents(ctx, rec.TenantID, rec.RemoteRunID, afterSeq)
	if err != nil {
		return fmt.Errorf("read relayed events: %w", err)
	}
	for _, ev := range stored {
		if ev.Sequence != st.last+1 {
			break
		}
		if err := st.offer(ev); errors.Is(err, errRelayDone) {
			flush()
			return nil
		} else if err != nil {
			return err
		}
	}
	flush()
	st.flush = flush
	peer, err := n.d.Peers.GetPeer(ctx, rec.RemoteStackID)
	if err != nil {
		return fmt.Errorf("peer %s of run %s: %w", rec.RemoteStackID, rec.RemoteRunID, err)
	}
	st.persist = n.newPersister(context.WithoutCancel(ctx), peer.StackID)
	defer st.persist.close()

	backoff := n.d.RetryBase
	lastProgress := time.Now()
	for {
		before := st.last
		err := n.relayOnce(ctx, a, peer, st)
		if errors.Is(err, errRelayDone) {
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		var gone clientGone
		if errors.As(err, &gone) {
			return gone.err
		}
		if e, ok := err.(*core.Error); ok && !e.Retryable {
			log.Warn().Err(err).Msg("relay stopped: peer refused the stream")
			return err
		}
		if st.last > before {
			lastProgress = time.Now()
			backoff = n.d.RetryBase
		}
		if time.Since(lastProgress) > n.d.RelayGiveUp {
			log.Warn().Err(err).Int64("last_sequence", st.last).Msg("relay gave up")
			return peerDown(peer, err)
		}
		n.m.relayReconnects.Inc()
		log.Debug().Err(err).Int64("last_sequence", st.last).Dur("backoff", backoff).Msg("relay reconnecting")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// relayOnce follows one connection of the peer's stream from st.last.
func (n *Node) relayOnce(ctx context.Context, a core.Auth, peer core.Peer, st *relayState) error {
	path := "/v1/federation/runs/" + url.PathEscape(st.runID) + "/events?after_sequence=" + strconv.FormatInt(st.last, 10)
	req, err := n.peerRequest(ctx, a, peer, path)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.FormatInt(st.last, 10))
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return core.Errorf(core.CodeDependencyUnavailable, "peer %s answered %d", peer.StackID, resp.StatusCode)
		}
		return decodeRemoteError(peer, resp.StatusCode, raw)
	}
	rd := newSSEReader(resp.Body)
	for {
		ev, err := rd.next()
		if err != nil {
			return err
		}
		err = st.offer(ev)
		if rd.idle() || err != nil {
			st.flush()
		}
		if err != nil {
			return err
		}
	}
}

// persister stores relayed events in the background, in chunks, so a slow
// disk never holds up the stream; close flushes what is left.
type persister struct {
	ch   chan core.Event
	done chan struct{}
	once sync.Once
}

func (n *Node) newPersister(ctx context.Context, source string) *persister {
	p := &persister{ch: make(chan core.Event, 1024), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		batch := make([]core.Event, 0, 256)
		for ev := range p.ch {
			batch = append(batch[:0], ev)
		drain:
			for len(batch) < cap(batch) {
				select {
				case ev, ok := <-p.ch:
					if !ok {
						break drain
					}
					batch = append(batch, ev)
				default:
					break drain
				}
			}
			if _, err := n.d.Events.PutEvents(ctx, source, batch); err != nil {
				n.log.Error().Err(err).Str("tenant_id", batch[0].TenantID).Str("run_id", batch[0].RunID).Msg("store relayed events")
			}
		}
	}()
	return p
}

func (p *persister) add(ev core.Event) { p.ch <- ev }

func (p *persister) close() {
	p.once.Do(func() { close(p.ch) })
	<-p.done
}
