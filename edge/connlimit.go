package edge

import (
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxConnections is the default of --max-connections, per router.
// A connection costs the node its buffers and a goroutine (tens of KiB)
// whether or not it carries a request; the cap keeps an overload of
// clients (an open-loop client opens one per request it is waiting for)
// from growing memory without bound. It sits above the event stream cap
// (1000 per router), so streams are refused by their own rule first.
const DefaultMaxConnections = 2048

// overloadBody is the contract's rate_limited error, answered on a
// connection refused over the cap so clients back off.
const overloadBody = `{"error":{"code":"rate_limited","message":"the node holds as many connections as it allows; retry shortly","retryable":true,"details":{"kind":"connections","applies_to":"node","retry_after_s":1}}}`

var overloadAnswer = []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
	strconv.Itoa(len(overloadBody)) + "\r\n\r\n" + overloadBody)

// LimitConnections caps the connections ln holds open at once to max
// (max ≤ 0: no cap). A connection accepted over the cap is answered at
// once — the JSON 429 of overloadBody when answer is true (plain HTTP), nothing on a
// TLS port — and closed, so the node never holds more than max, and a
// client is told to back off rather than left waiting.
func LimitConnections(ln net.Listener, max int, answer bool) net.Listener {
	if max <= 0 {
		return ln
	}
	return &connLimitListener{Listener: ln, max: int64(max), answer: answer}
}

type connLimitListener struct {
	net.Listener
	max    int64
	answer bool
	open   atomic.Int64
}

func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			go l.refuse(c)
			continue
		}
		return &countedConn{Conn: c, l: l}, nil
	}
}

// refuse answers and closes a connection over the cap; the write is
// bounded so a client that reads nothing cannot hold it.
func (l *connLimitListener) refuse(c net.Conn) {
	if l.answer {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write(overloadAnswer)
		// Closing with the request unread would reset the connection and
		// could drop the answer: finish sending, then read briefly.
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = io.CopyN(io.Discard, c, 64<<10)
	}
	_ = c.Close()
}

// OpenConnections is how many connections l holds now (0 for a listener
// LimitConnections did not wrap).
func OpenConnections(ln net.Listener) int64 {
	if l, ok := ln.(*connLimitListener); ok {
		return l.open.Load()
	}
	return 0
}

type countedConn struct {
	net.Conn
	l    *connLimitListener
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
