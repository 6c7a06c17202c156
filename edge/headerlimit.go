package edge

import (
	"encoding/json"
	"net/http"

	"github.com/agentos/agentos/core"
)

// headerLimit caps a request's line and headers (bytes as sent, roughly:
// each header line's name, value and separators). Over it the answer is
// 431 with the contract's error object.
const headerLimit = 64 << 10

// ServerHeaderCap is net/http's own cap (http.Server.MaxHeaderBytes). It
// sits above headerLimit so that requests between the two are read and
// answered in JSON by LimitHeaders; beyond it net/http answers 431 in
// plain text itself, before any handler runs, as it does for a request
// line or header it cannot parse (400). It also bounds what one
// connection's headers can hold in memory, below net/http's 1 MiB default.
const ServerHeaderCap = 256 << 10

// requestHeaderBytes estimates the size of r's request line and headers.
func requestHeaderBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	n += len(r.Host) + len("Host: \r\n")
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// LimitHeaders answers 431 invalid_request (the contract's error object,
// with X-Correlation-Id and X-Request-Id) to requests whose headers
// exceed headerLimit, before routing, authentication or any body read.
func LimitHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size := requestHeaderBytes(r)
		if size <= headerLimit {
			next.ServeHTTP(w, r)
			return
		}
		cid := core.NewID(core.PrefixCorrelation)
		e := core.Errorf(core.CodeInvalidRequest, "request headers are %d bytes, over the limit of %d", size, headerLimit).
			With("limit_bytes", headerLimit)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("X-Correlation-Id", cid)
		h.Set("X-Request-Id", core.NewID(core.PrefixRequest))
		h.Set("Connection", "close")
		w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": e, "correlation_id": cid})
	})
}
