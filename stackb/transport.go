package stackb

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// directTransport calls plain-HTTP upstreams (a local model server, a
// sidecar, the bench's fake) on the calling goroutine: it writes the
// request and reads the answer on a pooled HTTP/1.1 connection itself.
// net/http's Transport hands every request to two goroutines per
// connection (a writer and a reader) and back, which on a node proxying
// thousands of calls a second cost more CPU in scheduling and wake-ups
// than the call itself. Everything else (https, a proxy from the
// environment, Expect or Upgrade requests) goes to Fallback, net/http's
// pooled Transport.
//
// Connections are kept per host, most recently used first, up to
// maxIdlePerHost, for idleTimeout. One taken from the pool is checked
// first (a peek that does not wait): one the server closed, or that holds
// bytes nobody asked for, is dropped rather than used. A request whose
// write fails on a reused connection is sent again once on a new one (the
// server cannot have acted on a request it did not receive whole); any
// other failure is the caller's, as with net/http.
type directTransport struct {
	Fallback       http.RoundTripper
	dialer         net.Dialer
	maxIdlePerHost int
	idleTimeout    time.Duration
	// proxy reports the proxy net/http would use for a request (nil: none).
	proxy func(*http.Request) (*url.URL, error)

	mu   sync.Mutex
	idle map[string][]*upConn
}

func newDirectTransport(fallback *http.Transport) *directTransport {
	return &directTransport{Fallback: fallback, maxIdlePerHost: fallback.MaxIdleConnsPerHost, idleTimeout: fallback.IdleConnTimeout,
		dialer: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}, proxy: fallback.Proxy, idle: map[string][]*upConn{}}
}

// upConn is one pooled connection.
type upConn struct {
	key    string
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

// longAgo is a deadline in the past: setting it interrupts a blocked
// read or write at once.
var longAgo = time.Unix(1, 0)

// RoundTrip implements http.RoundTripper.
func (t *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.direct(req) {
		return t.Fallback.RoundTrip(req)
	}
	key := hostPort(req)
	for attempt := 0; ; attempt++ {
		c, reused, err := t.get(req.Context(), key)
		if err != nil {
			closeReqBody(req)
			return nil, err
		}
		resp, err := t.exchange(req, c)
		if err == nil {
			return resp, nil
		}
		_ = c.conn.Close()
		var we writeError
		if reused && attempt == 0 && errors.As(err, &we) && req.Context().Err() == nil {
			if body, ok := rewind(req); ok {
				req = body
				continue
			}
		}
		if we, ok := err.(writeError); ok {
			err = we.err
		}
		return nil, err
	}
}

// direct reports a request this transport serves itself.
func (t *directTransport) direct(req *http.Request) bool {
	if req.URL.Scheme != "http" || req.Header.Get("Expect") != "" || req.Header.Get("Upgrade") != "" {
		return false
	}
	if t.proxy != nil {
		if u, err := t.proxy(req); err != nil || u != nil {
			return false
		}
	}
	return true
}

func hostPort(req *http.Request) string {
	host, port := req.URL.Hostname(), req.URL.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(host, port)
}

func closeReqBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// rewind gives req again with a fresh body, when its body can be had again.
func rewind(req *http.Request) (*http.Request, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	r := *req
	r.Body = body
	return &r, true
}

// get takes a live idle connection to key, or dials one.
func (t *directTransport) get(ctx context.Context, key string) (*upConn, bool, error) {
	now := time.Now()
	for {
		t.mu.Lock()
		list := t.idle[key]
		if len(list) == 0 {
			t.mu.Unlock()
			break
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[key] = list[:len(list)-1]
		t.mu.Unlock()
		if now.Sub(c.idleAt) < t.idleTimeout && connAlive(c.conn) {
			return c, true, nil
		}
		_ = c.conn.Close()
	}
	conn, err := t.dialer.DialContext(ctx, "tcp", key)
	if err != nil {
		return nil, false, err
	}
	return &upConn{key: key, conn: conn, br: bufio.NewReader(conn), bw: bufio.NewWriter(conn)}, false, nil
}

// put returns c to the pool, or closes it when the pool is full.
func (t *directTransport) put(c *upConn) {
	c.idleAt = time.Now()
	t.mu.Lock()
	if list := t.idle[c.key]; len(list) < t.maxIdlePerHost {
		t.idle[c.key] = append(list, c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	_ = c.conn.Close()
}

// CloseIdleConnections closes the pooled connections (http.Client calls
// it), the fallback's too.
func (t *directTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*upConn{}
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			_ = c.conn.Close()
		}
	}
	if f, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		f.CloseIdleConnections()
	}
}

// writeError is a failure to send the request (nothing of the answer read).
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }
func (e writeError) Unwrap() error { return e.err }

// exchange writes req on c and reads the answer's head; the body reads
// from c and gives c back to the pool once read to its end.
func (t *directTransport) exchange(req *http.Request, c *upConn) (*http.Response, error) {
	ctx := req.Context()
	// A canceled request interrupts whatever is blocked on c; the
	// connection is then not reused.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(longAgo) })
	fail := func(err error) error {
		stop()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if err := req.Write(c.bw); err != nil {
		return nil, writeError{fail(err)}
	}
	if err := c.bw.Flush(); err != nil {
		return nil, writeError{fail(err)}
	}
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, fail(err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue // an interim answer: the final one follows
		}
		b := &upBody{rc: resp.Body, t: t, c: c, stop: stop, ctx: ctx,
			reusable: !resp.Close && !req.Close && resp.ProtoAtLeast(1, 1) && resp.StatusCode != http.StatusSwitchingProtocols}
		if resp.Body == http.NoBody {
			b.eof = true
			b.finish()
			return resp, nil
		}
		resp.Body = b
		return resp, nil
	}
}

// upBody is an answer's body on a pooled connection.
type upBody struct {
	rc       io.ReadCloser
	t        *directTransport
	c        *upConn
	stop     func() bool
	ctx      context.Context
	reusable bool
	eof      bool
	once     sync.Once
}

func (b *upBody) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
		b.finish()
	} else if err != nil && b.ctx.Err() != nil {
		err = b.ctx.Err()
	}
	return n, err
}

// Close ends the body: a connection whose answer was not read to its end
// is closed rather than reused.
func (b *upBody) Close() error {
	b.finish()
	return nil
}

func (b *upBody) finish() {
	b.once.Do(func() {
		// stop is false when the cancel already set the deadline: the
		// connection is spoiled.
		if b.stop() && b.eof && b.reusable {
			b.t.put(b.c)
			return
		}
		_ = b.c.conn.Close()
	})
}
