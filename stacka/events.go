package stacka

import (
	"bytes"
	"context"
	"encoding/json"
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
	raw, _ := json.Marshal(core.EventEnvelope{Event: ev})
	var b bytes.Buffer
	b.Grow(len(raw) + 48)
	b.WriteString("id: ")
	b.WriteString(strconv.FormatInt(ev.Sequence, 10))
	b.WriteString("\nevent: agentos.event\ndata: ")
	b.Write(raw)
	b.WriteString("\n\n")
	return b.Bytes()
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

// streamRun delivers a run's events after afterSeq: stored ones first, then
// live ones, with gaps filled from the store and duplicates dropped, until
// the terminal event, ctx or the hub closes. tick, when set, is called on
// each beat of heartbeat.
func (s *Service) streamRun(ctx context.Context, rec core.RunRecord, afterSeq int64,
	deliver func(hubEvent) error, flush func() error, heartbeat <-chan time.Time, tick func() error) error {
	if flush == nil {
		flush = func() error { return nil }
	}
	sub := s.hub.subscribe(rec.TenantID, rec.RunID)
	defer sub.close()
	last := afterSeq
	fromStore := func() (bool, error) {
		evs, err := s.runs.ListEvents(ctx, rec.TenantID, rec.RunID, last, 0)
		if err != nil {
			return false, err
		}
		for _, ev := range evs {
			if ev.Sequence != last+1 {
				continue
			}
			if err := deliver(hubEvent{ev: ev}); err != nil {
				return false, err
			}
			last = ev.Sequence
			if core.EventTerminal(ev.Type) {
				return true, nil // the caller's return flushes with the end of the response
			}
		}
		return false, flush()
	}
	if end, err := fromStore(); end || err != nil {
		return err
	}
	if core.RunTerminal(rec.Status) && last >= rec.LastSequence {
		return nil
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
			if end, err := fromStore(); end || err != nil {
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
	rec, err := s.runs.GetRun(ctx, a.TenantID, runID)
	if err != nil {
		return err
	}
	return s.streamRun(ctx, rec, afterSeq, func(he hubEvent) error { return fn(he.ev) }, nil, nil, nil)
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
	rec, err := s.runs.GetRun(ctx, a.TenantID, runID)
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
	w.Flush()
	hb := time.NewTicker(s.cfg.HeartbeatInterval)
	defer hb.Stop()
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
	if err := s.streamRun(ctx, rec, after, deliver, flush, hb.C, ping); err != nil {
		s.log.Debug().Err(err).Str("run_id", runID).Msg("event stream ended")
	}
	return nil
}
