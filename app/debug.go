package app

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// debugServer serves Go's runtime profiles (net/http/pprof) on
// Config.DebugAddr. It is off unless that is set, listens on loopback only
// (Validate refuses anything else) and has its own mux, so nothing of it
// reaches the three API routers.
type debugServer struct {
	srv *http.Server
	url string
}

func startDebugServer(addr string) (*debugServer, error) {
	if err := loopbackAddr(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listener %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	d := &debugServer{url: "http://" + ln.Addr().String(),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the debug listener failing never stops the node
		}
	}()
	return d, nil
}

func (d *debugServer) close() {
	if d != nil {
		_ = d.srv.Close()
	}
}

// DebugURL is the base URL of the pprof listener, "" when it is off.
func (n *Node) DebugURL() string {
	if n.debug == nil {
		return ""
	}
	return n.debug.url
}
