package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/sse"
)

// SSE is one message of a server-sent event stream.
type SSE struct {
	// ID is the last event ID when the message came, as a browser's
	// EventSource reports it: the latest id field so far (the message's
	// own or an earlier one's), "" when none came.
	ID    string
	Name  string // the "event:" field
	Data  string // "data:" lines joined by newlines
	Event core.Event
}

// sseLimit bounds a line, and a message's data, of a stream a test reads.
const sseLimit = 1 << 20

// ReadSSE reads an SSE stream (internal/sse, the WHATWG framing) until it
// ends or each returns false, and returns the messages, decoding each
// data field as an event envelope ({"event": …}) into SSE.Event when it
// is one, and the number of comment lines (": ping") seen. A message the
// stream ends in the middle of is not one; a line or data over 1 MiB ends
// the read with an error wrapping sse.ErrTooLong.
func ReadSSE(r io.Reader, each func(SSE) bool) (msgs []SSE, comments int, err error) {
	rd := sse.NewReader(r, sseLimit)
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			return msgs, rd.Comments(), nil
		}
		if err != nil {
			return msgs, rd.Comments(), err
		}
		m := SSE{ID: string(ev.ID), Name: string(ev.Name), Data: string(ev.Data)}
		var env struct {
			Event *core.Event `json:"event"`
		}
		if json.Unmarshal(ev.Data, &env) == nil && env.Event != nil {
			m.Event = *env.Event
		}
		msgs = append(msgs, m)
		if each != nil && !each(m) {
			return msgs, rd.Comments(), nil
		}
	}
}

// OpenStream opens GET url as an event stream with client (nil:
// http.DefaultClient): Accept: text/event-stream, key (when not empty) as
// a bearer, then hdr as name/value pairs (which may override either).
// The request lives until ctx ends or the body is closed; the body is
// closed when the test ends at the latest. The answer is returned
// whatever its status; a transport error fails the test.
func OpenStream(t testing.TB, ctx context.Context, client *http.Client, url, key string, hdr ...string) *http.Response {
	t.Helper()
	resp, err := send(ctx, client, http.MethodGet, url, key, nil, append([]string{"Accept", "text/event-stream"}, hdr...))
	if err != nil {
		t.Fatalf("stream %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// Stream opens GET url as an event stream with key (OpenStream) and reads
// it until its terminal event, calling each per message; it fails the
// test when the stream does not open with 200, ends before a terminal
// event or takes longer than limit.
func Stream(t testing.TB, client *http.Client, url, key string, limit time.Duration, each func(SSE)) []SSE {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	resp := OpenStream(t, ctx, client, url, key)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream %s: %d %s", url, resp.StatusCode, raw)
	}
	msgs, _, err := ReadSSE(resp.Body, func(m SSE) bool {
		if each != nil {
			each(m)
		}
		return !core.EventTerminal(m.Event.Type)
	})
	if len(msgs) == 0 || !core.EventTerminal(msgs[len(msgs)-1].Event.Type) {
		t.Fatalf("stream %s: ended without a terminal event within %v (%d messages, %v)", url, limit, len(msgs), err)
	}
	return msgs
}

// Sequences lists the events' sequence numbers and types (for asserting
// a gapless stream).
func Sequences(msgs []SSE) (seqs []int64, types []string) {
	for _, m := range msgs {
		seqs = append(seqs, m.Event.Sequence)
		types = append(types, m.Event.Type)
	}
	return seqs, types
}

// Gapless reports, as an error naming the first fault, whether msgs hold
// the events after `after` rising by one to a terminal event.
func Gapless(msgs []SSE, after int64) error {
	if len(msgs) == 0 {
		return fmt.Errorf("no events")
	}
	for i, m := range msgs {
		if want := after + int64(i) + 1; m.Event.Sequence != want {
			return fmt.Errorf("event %d: sequence %d, want %d", i, m.Event.Sequence, want)
		}
	}
	if last := msgs[len(msgs)-1].Event.Type; !core.EventTerminal(last) {
		return fmt.Errorf("stream ended with %s, not a terminal event", last)
	}
	return nil
}
