package stacka

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/labstack/echo/v4"
)

// feedWindow is how many recent events of a run the hub keeps for its live
// streams; a stream that falls further behind reads the store instead.
const feedWindow = 1024

// hubEvent is an event with its SSE frame rendered once for every stream.
type hubEvent struct {
	ev    core.Event
	frame []byte
}

func renderFrame(ev core.Event) []byte {
	b := make([]byte, 0, 512+len(ev.Payload))
	b = append(b, "id: "...)
	b = strconv.AppendInt(b, ev.Sequence, 10)
	b = append(b, "\nevent: agentos.event\ndata: {\"event\":"...)
	b, err := ev.AppendJSON(b)
	if err != nil {
		// Not an event encoding/json can write either: send what the
		// client can still use (the id line) rather than a torn frame.
		b = b[:0]
		b = append(b, "id: "...)
		b = strconv.AppendInt(b, ev.Sequence, 10)
		b = append(b, "\nevent: agentos.event\ndata: {\"event\":null"...)
	}
	return append(b, "}\n\n"...)
}

// runFeed is the one fan-out of a run shared by all its streams: publishing
// appends to a bounded window and closes the wake channel, so the executor
// never waits for a reader, however slow.
type runFeed struct {
	mu     sync.RWMutex
	events []hubEvent // ascending sequence
	wake   chan struct{}
	subs   int // guarded by the hub's mutex
}

// eventHub holds a feed for each run that has at least one live stream.
type eventHub struct {
	mu      sync.Mutex
	feeds   map[string]*runFeed
	closed  chan struct{}
	nstream int
	once    sync.Once
}

func newEventHub() *eventHub {
	return &eventHub{feeds: map[string]*runFeed{}, closed: make(chan struct{})}
}

func feedKey(tenantID, runID string) string { return tenantID + "/" + runID }

func (h *eventHub) close() { h.once.Do(func() { close(h.closed) }) }

func (h *eventHub) streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nstream
}

// publish hands committed events to the run's streams, if any.
func (h *eventHub) publish(evs []core.Event) {
	if len(evs) == 0 {
		return
	}
	key := feedKey(evs[0].TenantID, evs[0].RunID)
	h.mu.Lock()
	f := h.feeds[key]
	if f == nil {
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	rendered := make([]hubEvent, len(evs))
	for i, ev := range evs {
		rendered[i] = hubEvent{ev: ev, frame: renderFrame(ev)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, he := range rendered {
		n := len(f.events)
		if n == 0 || f.events[n-1].ev.Sequence < he.ev.Sequence {
			f.events = append(f.events, he)
			continue
		}
		// Two commits of one run published out of order: insert in place.
		i := sort.Search(n, func(i int) bool { return f.events[i].ev.Sequence >= he.ev.Sequence })
		if i < n && f.events[i].ev.Sequence == he.ev.Sequence {
			continue
		}
		f.events = append(f.events, hubEvent{})
		copy(f.events[i+1:], f.events[i:])
		f.events[i] = he
	}
	if len(f.events) > feedWindow {
		f.events = append([]hubEvent(nil), f.events[len(f.events)-feedWindow:]...)
	}
	close(f.wake)
	f.wake = make(chan struct{})
}

// lastSeq reports the newest event the run's feed holds (0 when none yet)
// and whether any stream here follows the run.
func (h *eventHub) lastSeq(tenantID, runID string) (int64, bool) {
	h.mu.Lock()
	f := h.feeds[feedKey(tenantID, runID)]
	h.mu.Unlock()
	if f == nil {
		return 0, false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if n := len(f.events); n > 0 {
		return f.events[n-1].ev.Sequence, true
	}
	return 0, true
}

// keys lists the (tenant, run) pairs streamed here.
func (h *eventHub) keys() [][2]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([][2]string, 0, len(h.feeds))
	for k := range h.feeds {
		t, r, _ := strings.Cut(k, "/")
		out = append(out, [2]string{t, r})
	}
	return out
}

type subscription struct {
	h   *eventHub
	key string
	f   *runFeed
}

func (h *eventHub) subscribe(tenantID, runID string) *subscription {
	key := feedKey(tenantID, runID)
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.feeds[key]
	if f == nil {
		f = &runFeed{wake: make(chan struct{})}
		h.feeds[key] = f
	}
	f.subs++
	h.nstream++
	return &subscription{h: h, key: key, f: f}
}

func (s *subscription) close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.f.subs--
	s.h.nstream--
	if s.f.subs == 0 && s.h.feeds[s.key] == s.f {
		delete(s.h.feeds, s.key)
	}
}

// after returns the buffered events following sequence last (contiguous),
// whether there is a gap the store must fill, and the channel that closes
// at the next publish.
func (s *subscription) after(last int64, buf []hubEvent) ([]hubEvent, bool, <-chan struct{}) {
	s.f.mu.RLock()
	defer s.f.mu.RUnlock()
	evs := s.f.events
	i := sort.Search(len(evs), func(i int) bool { return evs[i].ev.Sequence > last })
	gap := false
	for ; i < len(evs); i++ {
		if evs[i].ev.Sequence != last+1 {
			gap = true
			break
		}
		buf = append(buf, evs[i])
		last++
	}
	return buf, gap, s.f.wake
}

// openStream subscribes to a run's feed and then reads its stored events
// after afterSeq; subscribing first means nothing committed between the
// read and the live tail is missed. The read is also the tenancy check
// (not_found outside tenantID), so opening a stream costs one store read,
// not a read of the run record and then of its events. ended is true when
// nothing more will come: the stored events end with the terminal event,
// or there are none and the run is already terminal (the record is read
// only then). The caller closes the subscription (nil on error).
func (s *Service) openStream(ctx context.Context, tenantID, runID string, afterSeq int64) (*subscription, []core.Event, bool, error) {
	sub := s.hub.subscribe(tenantID, runID)
	evs, err := s.runs.ListEvents(ctx, tenantID, runID, afterSeq, 0)
	if err != nil {
		sub.close()
		return nil, nil, false, err
	}
	if n := len(evs); n > 0 {
		return sub, evs, core.EventTerminal(evs[n-1].Type), nil
	}
	// Nothing after afterSeq: a run always has its created event, so the
	// client has seen everything stored; whether more can come is the
	// run's status.
	rec, err := s.runs.GetRun(ctx, tenantID, runID)
	if err != nil {
		sub.close()
		return nil, nil, false, err
	}
	return sub, nil, core.RunTerminal(rec.Status) && afterSeq >= rec.LastSequence, nil
}

// deliverStored hands the contiguous stored events after last to deliver
// and returns the new last sequence and whether the terminal event was
// among them.
func deliverStored(evs []core.Event, last int64, deliver func(hubEvent) error) (int64, bool, error) {
	for _, ev := range evs {
		if ev.Sequence != last+1 {
			continue
		}
		if err := deliver(hubEvent{ev: ev}); err != nil {
			return last, false, err
		}
		last = ev.Sequence
		if core.EventTerminal(ev.Type) {
			return last, true, nil
		}
	}
	return last, false, nil
}

// follow delivers a run's live events after last from sub, with gaps
// filled from the store and duplicates dropped, until the terminal event,
// ctx or the hub closes. tick, when set, is called on each beat of
// heartbeat.
func (s *Service) follow(ctx context.Context, sub *subscription, tenantID, runID string, last int64,
	deliver func(hubEvent) error, flush func() error, heartbeat <-chan time.Time, tick func() error) error {
	if flush == nil {
		flush = func() error { return nil }
	}
	var buf []hubEvent
	for {
		evs, gap, wake := sub.after(last, buf[:0])
		buf = evs
		for _, he := range evs {
			if err := deliver(he); err != nil {
				return err
			}
			last = he.ev.Sequence
			if core.EventTerminal(he.ev.Type) {
				// No flush: ending the handler sends the buffered frames and
				// the end of the chunked response in one write.
				return nil
			}
		}
		if len(evs) > 0 {
			if err := flush(); err != nil {
				return err
			}
		}
		if gap {
			stored, err := s.runs.ListEvents(ctx, tenantID, runID, last, 0)
			if err != nil {
				return err
			}
			var end bool
			if last, end, err = deliverStored(stored, last, deliver); end || err != nil {
				return err // the caller's return flushes with the end of the response
			}
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil
		case <-s.hub.closed:
			return nil
		case <-heartbeat:
			if tick != nil {
				if err := tick(); err != nil {
					return err
				}
			}
		}
	}
}

// ListEvents returns a run's stored events after afterSeq; not_found when
// the run is not in a's tenant.
func (s *Service) ListEvents(ctx context.Context, a core.Auth, runID string, afterSeq int64) ([]core.Event, error) {
	if err := a.Require(core.ScopeRunsRead); err != nil {
		return nil, err
	}
	return s.runs.ListEvents(ctx, a.TenantID, runID, afterSeq, 0)
}

// StreamEvents calls fn for each event of the run after afterSeq: stored
// events first, then live ones until the terminal event or ctx is done, with
// no gap and no duplicate. not_found when the run is not in a's tenant.
func (s *Service) StreamEvents(ctx context.Context, a core.Auth, runID string, afterSeq int64, fn func(core.Event) error) error {
	if err := a.Require(core.ScopeRunsRead); err != nil {
		return err
	}
	sub, stored, ended, err := s.openStream(ctx, a.TenantID, runID, afterSeq)
	if err != nil {
		return err
	}
	defer sub.close()
	deliver := func(he hubEvent) error { return fn(he.ev) }
	last, end, err := deliverStored(stored, afterSeq, deliver)
	if end || ended || err != nil {
		return err
	}
	return s.follow(ctx, sub, a.TenantID, runID, last, deliver, nil, nil, nil)
}

// parseAfter reads after_sequence or, when absent, Last-Event-ID.
func parseAfter(c echo.Context) (int64, error) {
	raw, field := c.QueryParam("after_sequence"), "after_sequence"
	if raw == "" {
		raw, field = strings.TrimSpace(c.Request().Header.Get("Last-Event-ID")), "Last-Event-ID"
	}
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, core.Invalid(field, "%s must be a non-negative integer", field)
	}
	return n, nil
}

func wantsJSON(r *http.Request) bool {
	acc := r.Header.Get("Accept")
	return strings.Contains(acc, "application/json") && !strings.Contains(acc, "text/event-stream")
}

// ServeEventStream answers GET …/runs/{run_id}/events for a's tenant: the
// SSE stream of §3.4 (replay after after_sequence / Last-Event-ID, live
// tail, ": ping" heartbeats, closed after the terminal event), or the JSON
// listing when the client accepts only application/json.
func (s *Service) ServeEventStream(c echo.Context, a core.Auth, runID string) error {
	ctx := c.Request().Context()
	if err := a.Require(core.ScopeRunsRead); err != nil {
		return err
	}
	after, err := parseAfter(c)
	if err != nil {
		return err
	}
	if wantsJSON(c.Request()) {
		evs, err := s.runs.ListEvents(ctx, a.TenantID, runID, after, 0)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"events": evs, "correlation_id": core.CorrelationID(ctx)})
	}
	// The store read (and its not_found) comes before the stream slot, so
	// an unknown run is 404 even when the slots are taken.
	sub, stored, ended, err := s.openStream(ctx, a.TenantID, runID, after)
	if err != nil {
		return err
	}
	defer sub.close()
	release, err := s.streams.acquire(a.TenantID)
	if err != nil {
		return err
	}
	defer release()
	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	deliver := func(he hubEvent) error {
		frame := he.frame
		if frame == nil {
			frame = renderFrame(he.ev)
		}
		_, err := w.Write(frame)
		return err
	}
	flush := func() error {
		w.Flush()
		return nil
	}
	ping := func() error {
		if _, err := w.Write([]byte(": ping\n\n")); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	// The headers and the stored events go out in one write; a stream that
	// already ends (a finished run) ends with the handler, in that write too.
	last, end, err := deliverStored(stored, after, deliver)
	if end || ended || err != nil {
		return nil
	}
	w.Flush()
	hb := time.NewTicker(s.cfg.HeartbeatInterval)
	defer hb.Stop()
	if err := s.follow(ctx, sub, a.TenantID, runID, last, deliver, flush, hb.C, ping); err != nil {
		s.log.Debug().Err(err).Str("run_id", runID).Msg("event stream ended")
	}
	return nil
}
