package fed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/sse"
)

// sseEventName is the SSE event name of every run event (§3.4).
const sseEventName = "agentos.event"

// sseWriter writes SSE messages; pings come from another goroutine, so
// writes are serialised.
type sseWriter struct {
	mu  sync.Mutex
	w   io.Writer
	f   http.Flusher
	buf bytes.Buffer
}

func newSSEWriter(w http.ResponseWriter) *sseWriter {
	f, _ := w.(http.Flusher)
	return &sseWriter{w: w, f: f}
}

// event writes one run event as `id`, `event`, `data` lines and flushes.
func (s *sseWriter) event(ev core.Event) error { return s.write(ev, true) }

// eventNoFlush writes one event and leaves it buffered; the relay flushes
// once it has nothing more to read, so a burst costs one syscall.
func (s *sseWriter) eventNoFlush(ev core.Event) error { return s.write(ev, false) }

// flush sends what is buffered.
func (s *sseWriter) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Flush()
	}
}

func (s *sseWriter) write(ev core.Event, flush bool) error {
	data, err := json.Marshal(core.EventEnvelope{Event: ev})
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Reset()
	s.buf.WriteString("id: ")
	s.buf.WriteString(strconv.FormatInt(ev.Sequence, 10))
	s.buf.WriteString("\nevent: " + sseEventName + "\ndata: ")
	s.buf.Write(data)
	s.buf.WriteString("\n\n")
	if _, err := s.w.Write(s.buf.Bytes()); err != nil {
		return err
	}
	if flush && s.f != nil {
		s.f.Flush()
	}
	return nil
}

// ping writes the keep-alive comment.
func (s *sseWriter) ping() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := io.WriteString(s.w, ": ping\n\n"); err != nil {
		return err
	}
	if s.f != nil {
		s.f.Flush()
	}
	return nil
}

// relayEventLimit bounds one line, and one event's data, of a peer's
// stream: a peer sending more is broken, and the relay reconnects rather
// than buffer without end.
const relayEventLimit = 4 << 20

// sseReader reads the run events of a peer's SSE stream, framed by
// internal/sse; comments and other event names are skipped.
type sseReader struct {
	rd *sse.Reader
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{rd: sse.NewReader(r, relayEventLimit)}
}

// idle reports whether nothing more is buffered: the next read may block.
func (s *sseReader) idle() bool { return s.rd.Buffered() == 0 }

// next returns the next run event (named sseEventName, or unnamed); io.EOF
// (or the read error) when the stream ends, an event cut off by the end
// included. An event whose data does not decode is an error: the relay
// reconnects rather than deliver something half-read.
func (s *sseReader) next() (core.Event, error) {
	for {
		ev, err := s.rd.Next()
		if err != nil {
			return core.Event{}, err
		}
		if len(ev.Name) == 0 || string(ev.Name) == sseEventName {
			return decodeEventData(ev.Data)
		}
	}
}

// decodeEventData accepts an envelope ({"event": {...}}) or a bare event.
func decodeEventData(data []byte) (core.Event, error) {
	var env struct {
		Event *core.Event `json:"event"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return core.Event{}, fmt.Errorf("decode event: %w", err)
	}
	if env.Event != nil {
		return *env.Event, nil
	}
	var ev core.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return core.Event{}, fmt.Errorf("decode event: %w", err)
	}
	return ev, nil
}
