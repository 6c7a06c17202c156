package stacka_test

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// Opening a stream reads the run's events, not its record: the read is the
// tenancy check, and a run with nothing after the client's position ends
// the stream at once only when the run is finished.
func TestEvents_OpenWithoutRecordRead(t *testing.T) {
	n := newNode(t)
	n.putAgent("tok-a", "agt_a")
	id := n.createRun("tok-a", "agt_a", "hi")["run_id"].(string)
	all := collect(t, first(n.stream("tok-a", id)), 10*time.Second)
	if len(all) == 0 || all[len(all)-1].data.Event.Type != core.EventRunCompleted {
		t.Fatalf("stream of a run: %d events", len(all))
	}
	last := all[len(all)-1].data.Event.Sequence
	// Positioned at the terminal event, or past it: nothing to send, and
	// the stream ends (it does not wait for events that cannot come).
	for _, after := range []int64{last, last + 5} {
		ch, resp, cancel := n.stream("tok-a", id, "Last-Event-ID", strconv.FormatInt(after, 10))
		if resp.StatusCode != 200 {
			t.Fatalf("after %d: %d", after, resp.StatusCode)
		}
		if got := collect(t, ch, 5*time.Second); len(got) != 0 {
			t.Fatalf("after %d: %d events, want none", after, len(got))
		}
		cancel()
	}
	// Positioned one before the end: exactly the terminal event.
	got := collect(t, first(n.stream("tok-a", id, "Last-Event-ID", strconv.FormatInt(last-1, 10))), 5*time.Second)
	if len(got) != 1 || got[0].data.Event.Sequence != last {
		t.Fatalf("after %d: %+v", last-1, got)
	}
	// Another tenant's run and an unknown run are 404, never a stream.
	for _, tc := range []struct{ token, run string }{{"tok-b", id}, {"tok-a", "run_01JUNKNOWN0000000000000000"}} {
		_, resp, cancel := n.stream(tc.token, tc.run)
		cancel()
		if resp.StatusCode != 404 {
			t.Fatalf("%s %s: %d, want 404", tc.token, tc.run, resp.StatusCode)
		}
	}
}

// A queued run's stream positioned past its last event stays open (more
// will come), and gets the run's events once it runs.
func TestEvents_QueuedRunPositionedAtEndWaits(t *testing.T) {
	n := newNodeAt(t, filepath.Join(t.TempDir(), "agentos.db"), false)
	n.putAgent("tok-a", "agt_a")
	id := n.createRun("tok-a", "agt_a", "hi")["run_id"].(string)
	ch, resp, cancel := n.stream("tok-a", id, "Last-Event-ID", "1")
	defer cancel()
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	select {
	case m, ok := <-ch:
		t.Fatalf("queued run: got %v (open %v) before the run started", m.data.Event.Type, ok)
	case <-time.After(300 * time.Millisecond):
	}
	if err := n.svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := collect(t, ch, 10*time.Second)
	if len(got) == 0 || got[0].data.Event.Sequence != 2 || got[len(got)-1].data.Event.Type != core.EventRunCompleted {
		t.Fatalf("after start: %d events", len(got))
	}
	for i, m := range got {
		if m.data.Event.Sequence != int64(i+2) {
			t.Fatalf("gap or duplicate at %d: %d", i, m.data.Event.Sequence)
		}
	}
}

// With every stream slot taken, a stream of an unknown or foreign run is
// still 404 (the store read comes first), and a known run's is 429.
func TestEvents_NotFoundBeforeStreamCap(t *testing.T) {
	n, runA, runB := streamCapNode(t, 1, 1)
	_, resp, cancel := n.stream("tok-a", runA)
	defer cancel()
	if resp.StatusCode != 200 {
		t.Fatalf("first stream: %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		token, run string
		want       int
	}{{"tok-a", runB, 404}, {"tok-a", "run_01JUNKNOWN0000000000000000", 404}, {"tok-a", runA, 429}, {"tok-b", runB, 429}} {
		_, resp, cancel := n.stream(tc.token, tc.run)
		cancel()
		if resp.StatusCode != tc.want {
			t.Fatalf("%s %s: %d, want %d", tc.token, tc.run, resp.StatusCode, tc.want)
		}
	}
}

func first[A, B, C any](a A, _ B, _ C) A { return a }
