package testkit

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// ServeAt is Serve without TLS on addr, the host:port of a server the
// test has just closed: an upstream coming back where the node already
// points. The port may take a moment to be free again, so the bind is
// retried for up to a second before the test fails.
func ServeAt(t testing.TB, addr string, h http.Handler) *httptest.Server {
	t.Helper()
	var ln net.Listener
	var err error
	WaitEvery(t, "rebinding "+addr, time.Second, 20*time.Millisecond, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	}, func() string { return err.Error() })
	return serve(t, h, nil, func(srv *httptest.Server) {
		srv.Listener.Close()
		srv.Listener = ln
	})
}
