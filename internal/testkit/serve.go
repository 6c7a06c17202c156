package testkit

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
	"github.com/labstack/echo/v4"
)

// AuthFunc is a test's stand-in for the node's authentication: the caller
// of a request, ok false for an anonymous one (a public path), or an error
// the edge's error mapper answers.
type AuthFunc func(c echo.Context) (a core.Auth, ok bool, err error)

// EdgeHandler is a stack's routes (register) behind the pieces of the
// node's edge a stack's own tests need: ed's correlation and request ids
// (nil: a zero Edge), its error mapper, then auth.
func EdgeHandler(ed *edge.Edge, auth AuthFunc, register func(*echo.Echo)) *echo.Echo {
	if ed == nil {
		ed = &edge.Edge{}
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = ed.ErrorHandler
	e.Use(ed.IDs, func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			a, ok, err := auth(c)
			if err != nil {
				return err
			}
			if ok {
				c.SetRequest(c.Request().WithContext(core.WithAuth(c.Request().Context(), a)))
			}
			return next(c)
		}
	})
	register(e)
	return e
}

// ServeCounting is Serve without TLS that also counts the connections
// the server accepts (a pooled client reuses them; a leak dials anew).
func ServeCounting(t testing.TB, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	return serve(t, h, nil, func(srv *httptest.Server) {
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
	}), &conns
}

// Serve serves h on a real listener at 127.0.0.1:0, with TLS when cfg is
// not nil, and closes the server, cutting its connections, when the test
// ends (closing it earlier is fine).
func Serve(t testing.TB, h http.Handler, cfg *tls.Config) *httptest.Server {
	t.Helper()
	return serve(t, h, cfg, nil)
}

func serve(t testing.TB, h http.Handler, cfg *tls.Config, setup func(*httptest.Server)) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	if setup != nil {
		setup(srv)
	}
	if cfg != nil {
		srv.TLS = cfg
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}
