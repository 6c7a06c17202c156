package core

import (
	"context"
	"sync"
	"testing"
	"time"
)

// bus is an in-memory ChangeNoticePort shared by several feeds: every
// announcement reaches every connected listener, in order, like NOTIFY.
type bus struct {
	mu        sync.Mutex
	listeners map[*busListener]bool
}

type busListener struct {
	ch    chan Change
	state func(bool)
	cut   chan struct{}
	down  chan struct{} // closed once the listener has reported the cut
}

func newBus() *bus { return &bus{listeners: map[*busListener]bool{}} }

func (b *bus) port() *busPort {
	return &busPort{b: b, conn: make(chan *busListener, 1), again: make(chan struct{})}
}

type busPort struct {
	b    *bus
	conn chan *busListener
	// hold, when set, delays this node's handling of a change (a slow node).
	hold chan struct{}
	// again lets the listener reconnect after a cut.
	again chan struct{}
}

func (p *busPort) PublishChange(_ context.Context, c Change) error {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	for l := range p.b.listeners {
		l.ch <- c
	}
	return nil
}

func (p *busPort) ListenChanges(ctx context.Context, fn func(Change), state func(bool)) error {
	for {
		l := &busListener{ch: make(chan Change, 1024), state: state, cut: make(chan struct{}), down: make(chan struct{})}
		p.b.mu.Lock()
		p.b.listeners[l] = true
		p.b.mu.Unlock()
		state(true)
		p.conn <- l
	loop:
		for {
			select {
			case <-ctx.Done():
				p.b.mu.Lock()
				delete(p.b.listeners, l)
				p.b.mu.Unlock()
				state(false)
				return nil
			case <-l.cut:
				state(false)
				close(l.down)
				select {
				case <-p.again:
				case <-ctx.Done():
					return nil
				}
				break loop
			case c := <-l.ch:
				if p.hold != nil && c.Kind != changeAck {
					<-p.hold
				}
				fn(c)
			}
		}
	}
}

// cut drops the port's current connection, returning once its listener
// has reported itself down: what is announced until it reconnects never
// reaches it.
func (p *busPort) cut() {
	l := <-p.conn
	p.b.mu.Lock()
	delete(p.b.listeners, l)
	p.b.mu.Unlock()
	close(l.cut)
	<-l.down
}

func startFeed(t *testing.T, p *busPort, node string, members []string) (*SharedChanges, chan Change) {
	t.Helper()
	f := NewSharedChanges(p, node, func(context.Context) ([]string, error) { return members, nil })
	got := make(chan Change, 64)
	f.Subscribe(func(c Change) { got <- c })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Listen(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if c := <-got; c.Kind != ChangeAll {
		t.Fatalf("first change on connect: %+v, want ChangeAll", c)
	}
	return f, got
}

func TestSharedChanges_PublishWaitsForEveryNodeToDropItsCopy(t *testing.T) {
	b := newBus()
	pa, pb := b.port(), b.port()
	pb.hold = make(chan struct{})
	a, gotA := startFeed(t, pa, "node-a", []string{"node-a", "node-b"})
	_, gotB := startFeed(t, pb, "node-b", []string{"node-a", "node-b"})
	// Registered last, so it runs first: a test that fails while B is held
	// releases it, or B's listener would never see its context end.
	releaseB := sync.OnceFunc(func() { close(pb.hold) })
	t.Cleanup(releaseB)
	returned := make(chan struct{})
	go func() {
		a.Publish(context.Background(), Change{Kind: ChangeTenant, TenantID: "tnt_x"})
		close(returned)
	}()
	if c := <-gotA; c.Kind != ChangeTenant || c.TenantID != "tnt_x" {
		t.Fatalf("local subscriber got %+v", c)
	}
	select {
	case <-returned:
		t.Fatal("Publish returned before node B dropped its copy")
	case <-time.After(50 * time.Millisecond):
	}
	releaseB()
	if c := <-gotB; c.Kind != ChangeTenant || c.TenantID != "tnt_x" || c.Origin != "" {
		t.Fatalf("node B's subscriber got %+v", c)
	}
	select {
	case <-returned:
	case <-time.After(EchoWait / 2):
		t.Fatal("Publish did not return once node B acknowledged")
	}
	if a.LateAcks() != 0 {
		t.Fatalf("late acks %d", a.LateAcks())
	}
	select {
	case c := <-gotA:
		t.Fatalf("node A's subscriber saw its own change twice or an ack: %+v", c)
	default:
	}
}

func TestSharedChanges_SilentNodeCostsAtMostEchoWait(t *testing.T) {
	b := newBus()
	a, _ := startFeed(t, b.port(), "node-a", []string{"node-a", "node-gone"})
	start := time.Now()
	a.Publish(context.Background(), Change{Kind: ChangeAgent, TenantID: "tnt_x", ID: "agt_1"})
	// At least EchoWait (it waited for the silent node), and bounded by it
	// (with room for a loaded machine's scheduling), not forever.
	if d := time.Since(start); d < EchoWait || d > EchoWait+5*time.Second {
		t.Fatalf("Publish took %v, want about EchoWait (%v)", d, EchoWait)
	}
	if a.LateAcks() != 1 {
		t.Fatalf("late acks %d, want 1", a.LateAcks())
	}
}

func TestSharedChanges_ReconnectDropsEverything(t *testing.T) {
	b := newBus()
	pa, pb := b.port(), b.port()
	a, _ := startFeed(t, pa, "node-a", nil)
	fb, gotB := startFeed(t, pb, "node-b", nil)
	pb.cut()
	if fb.Listening() {
		t.Fatal("node B still listening after its connection was cut")
	}
	// Announced while B's listener is away: B never hears it...
	a.Publish(context.Background(), Change{Kind: ChangeToken, TenantID: "tnt_x", ID: "tok_1"})
	select {
	case c := <-gotB:
		t.Fatalf("node B heard %+v while cut off", c)
	default:
	}
	// ...so B's reconnect must drop everything.
	close(pb.again)
	if c := <-gotB; c.Kind != ChangeAll {
		t.Fatalf("after the reconnect node B got %+v, want ChangeAll", c)
	}
}
