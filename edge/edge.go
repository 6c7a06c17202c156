// Package edge is the HTTP edge every router shares: request and
// correlation ids, trace context, the access log, panic recovery,
// authentication with the per-address failure limit, body rules (size,
// budget, read timeout, content type), OpenAPI validation, and the one
// error mapper that turns any error into the contract's error object.
// app wires one Edge per router; the stacks' test harnesses use the same
// mapper instead of a copy.
package edge

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/openapi"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// Metrics are the HTTP-level series every router shares.
type Metrics struct {
	tenants      *tenantLabels
	requests     *prometheus.CounterVec
	authFailures prometheus.Counter
	quotaRejects *prometheus.CounterVec
}

// DefaultTenantLabelLimit is how many tenants get their own metric label.
const DefaultTenantLabelLimit = 20

// NewMetrics registers the edge's series on reg; tenantLimit is how many
// tenants get their own label value.
func NewMetrics(reg prometheus.Registerer, tenantLimit int) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentos_http_requests_total",
			Help: "HTTP requests answered, by stack, status class and tenant (top N tenants by traffic; the rest are \"other\")."},
			[]string{"stack", "code_class", "tenant"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "agentos_auth_failures_total",
			Help: "Requests refused for a missing, invalid or insufficient credential."}),
		quotaRejects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentos_quota_rejections_total",
			Help: "Requests refused by a quota or rate limit, by kind."}, []string{"kind"}),
	}
	reg.MustRegister(m.requests, m.authFailures, m.quotaRejects)
	m.tenants = newTenantLabels(tenantLimit, time.Minute, func(tenant string) {
		m.requests.DeletePartialMatch(prometheus.Labels{"tenant": tenant})
	})
	return m
}

// Edge is the HTTP edge of one router: ids, limits, auth, validation and
// the one error mapper. Every field may be left zero: a zero Edge has no
// auth, metrics, tracing, body budget or validation, and still maps
// errors as the node does (test harnesses use it so).
type Edge struct {
	Stack     string // stack-a | stack-b | federation
	Log       zerolog.Logger
	Auth      *Authenticator
	PeerAuth  PeerAuthenticator
	Failures  *FailureLimiter
	Validator *openapi.Validator
	BodyLimit int64
	// Bodies is the node-wide budget of buffered request body bytes.
	Bodies *BodyBudget
	// Inflight is the node-wide cap on requests answered at once (Admit);
	// nil: no cap.
	Inflight *InflightGate
	Metrics  *Metrics
	Tracer   trace.Tracer
	// CompatError renders an error on a compatible surface (OpenAI,
	// Anthropic) in that surface's own shape; ok is false for paths that
	// answer the contract's error object.
	CompatError func(path string, ce *core.Error, status int) (body any, ok bool)
	// PublicRead reports a path a tenant may publish: it is read without
	// a credential when the request sends none (the handler decides).
	PublicRead func(path string) bool
}

// Use installs the edge on e in its order, and its error mapper:
// authenticate comes before bodyRules, so no body is read for a caller
// without a valid credential; Admit (the in-flight cap) comes before any
// body is read or any work done.
func (e *Edge) Use(ec *echo.Echo) {
	ec.HTTPErrorHandler = e.ErrorHandler
	ec.Use(e.IDs, e.TraceRequests, e.AccessLog, e.RecoverPanics, e.Authenticate, e.Admit, e.BodyRules, e.Validate)
}

// PublicPath reports the paths that need no credential (§1.4).
func PublicPath(p string) bool {
	switch p {
	case "/healthz", "/readyz", "/metrics", "/openapi.yaml", "/openapi.json", "/v1/health", "/v1/federation/health", "/examples", "/examples/", "/console":
		return true
	}
	return strings.HasPrefix(p, "/examples/") || strings.HasPrefix(p, "/console/")
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

var validTraceparent = func(tp string) bool {
	// version-traceid-parentid-flags, lower hex, 55 chars.
	if len(tp) != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return false
	}
	for i, c := range tp {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return tp[3:35] != strings.Repeat("0", 32) && tp[36:52] != strings.Repeat("0", 16)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewTraceparent mints a sampled W3C traceparent.
func NewTraceparent() string { return "00-" + randHex(16) + "-" + randHex(8) + "-01" }

// IDs assigns request and correlation ids and the trace context.
func (e *Edge) IDs(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		corr := r.Header.Get("X-Correlation-Id")
		if corr == "" || len(corr) > 256 {
			corr = core.NewID(core.PrefixCorrelation)
		}
		reqID := core.NewID(core.PrefixRequest)
		h := c.Response().Header()
		h.Set("X-Correlation-Id", corr)
		h.Set("X-Request-Id", reqID)
		ctx := core.WithCorrelationID(r.Context(), corr)
		ctx = core.WithRequestID(ctx, reqID)
		// With a tracer, TraceRequests sets the request's traceparent (its
		// span's, continuing a valid incoming one); minting one here would
		// be thrown away.
		if e.Tracer == nil {
			tp := r.Header.Get("traceparent")
			if !validTraceparent(tp) {
				tp = NewTraceparent()
			}
			ctx = core.WithTraceparent(ctx, tp)
		}
		c.SetRequest(r.WithContext(ctx))
		return next(c)
	}
}

// RecoverPanics turns a handler panic into internal_error, logging the
// stack server-side only.
func (e *Edge) RecoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				e.Log.Error().Str("correlation_id", core.CorrelationID(c.Request().Context())).
					Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Msg("handler panic recovered")
				err = core.Errorf(core.CodeInternal, "internal error")
			}
		}()
		return next(c)
	}
}

// AccessLog counts and logs each answered request.
func (e *Edge) AccessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		ctx := c.Request().Context()
		tenantID := ""
		if a, ok := core.AuthFrom(ctx); ok {
			tenantID = a.TenantID
		}
		if e.Metrics != nil {
			e.Metrics.requests.WithLabelValues(e.Stack, strconv.Itoa(status/100)+"xx", e.Metrics.tenants.label(tenantID)).Inc()
		}
		// Requests are logged at info, probes and scrapes at debug so they
		// do not drown the log; server errors at warn.
		ev := e.Log.Info()
		if PublicPath(c.Request().URL.Path) {
			ev = e.Log.Debug()
		}
		if status >= 500 {
			ev = e.Log.Warn()
		}
		ev.Str("tenant_id", tenantID).Str("correlation_id", core.CorrelationID(ctx)).
			Str("method", c.Request().Method).Str("path", c.Request().URL.Path).Int("status", status).
			Dur("latency", time.Since(start)).Msg("request")
		return nil
	}
}

func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// BodyBudget is the node-wide allowance of request body bytes buffered at
// once. A body reserves its size before it is read and gives it back when
// its request is answered; one that does not fit is refused unread.
type BodyBudget struct {
	mu    sync.Mutex
	limit int64
	used  int64
}

// NewBodyBudget allows limit bytes of request bodies buffered at once.
func NewBodyBudget(limit int64) *BodyBudget { return &BodyBudget{limit: limit} }

func (b *BodyBudget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *BodyBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// InUse is the bytes reserved now.
func (b *BodyBudget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// BodyDeadline bounds how long a client may take to send a request body:
// the read deadline is set when a request with a body arrives, and cleared
// when the body has been read to its end, so a response that runs long
// (an SSE stream, a slow model call) is never cut by it. A body that is
// never read (the request was refused before) keeps the deadline, which
// also bounds the server's drain of it.
func BodyDeadline(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hasBody(r) {
			db := &deadlineBody{ReadCloser: r.Body}
			if timeout > 0 {
				rc := http.NewResponseController(w)
				if rc.SetReadDeadline(time.Now().Add(timeout)) == nil {
					db.rc = rc
				}
			}
			// A shallow copy: net/http keeps the original request and
			// decides from its own body type how to finish the request.
			r = r.WithContext(r.Context())
			r.Body = db
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody clears the body read deadline once the body is read to its
// end, and tells the error mapper whether it was.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		if b.rc != nil {
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	}
	return n, err
}

// unreadBody reports a request refused before its body was read: the
// answer then closes the connection, so the server neither waits for nor
// drains a body nobody will use.
func unreadBody(r *http.Request) bool {
	db, ok := r.Body.(*deadlineBody)
	return ok && !db.done
}

// BodyRules enforces the size limit (413), the body budget (429), the
// body read timeout (408) and the JSON content type (415), and buffers the
// body so validation and the handler can both read it. It runs after
// authenticate: a request without a valid credential is refused before a
// byte of its body is read, so unauthenticated traffic holds no body
// memory. Public paths take no body.
func (e *Edge) BodyRules(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodDelete && !hasBody(r) || !hasBody(r) || PublicPath(r.URL.Path) {
			return next(c)
		}
		if r.ContentLength > e.BodyLimit {
			return tooLarge(e.BodyLimit)
		}
		reserve := e.BodyLimit
		if r.ContentLength > 0 {
			reserve = r.ContentLength
		}
		if e.Bodies != nil {
			if !e.Bodies.tryAcquire(reserve) {
				return core.RateLimited("request_bodies", 1, "the node is buffering as many request bodies as it allows; retry shortly")
			}
			defer e.Bodies.release(reserve)
		}
		raw, err := readUpTo(r.Body, e.BodyLimit+1, r.ContentLength)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.Response().Header().Set("Connection", "close")
			ce := core.Errorf(core.CodeInvalidRequest, "request body not received in time")
			ce.Status = http.StatusRequestTimeout
			return ce
		}
		if err != nil {
			return core.Invalid("", "could not read the request body: %v", err)
		}
		if int64(len(raw)) > e.BodyLimit {
			return tooLarge(e.BodyLimit)
		}
		if len(raw) > 0 {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
				ce := core.Errorf(core.CodeInvalidRequest, "request body must be application/json")
				ce.Status = http.StatusUnsupportedMediaType
				ce.Details["content_type"] = r.Header.Get("Content-Type")
				return ce
			}
		}
		b := &bufferedBody{raw: raw}
		b.Reset(raw)
		r.Body = b
		r.ContentLength = int64(len(raw))
		return next(c)
	}
}

// bufferedBody is a request body BodyRules has read into memory, so
// validation and DecodeJSON take its bytes as they are instead of reading
// and copying them again.
type bufferedBody struct {
	bytes.Reader
	raw []byte
}

func (*bufferedBody) Close() error { return nil }

// buffered returns the body BodyRules read, when nothing has read it yet.
func buffered(r *http.Request) (*bufferedBody, bool) {
	b, ok := r.Body.(*bufferedBody)
	if !ok || b.Len() != len(b.raw) {
		return nil, false
	}
	return b, true
}

// readUpTo reads r to its end or to limit bytes, whichever comes first,
// into one buffer sized from the declared length when there is one.
func readUpTo(r io.Reader, limit, declared int64) ([]byte, error) {
	size := int64(512)
	if declared > 0 {
		size = min(declared+1, limit) // +1: a body longer than declared shows
	}
	buf := make([]byte, 0, size)
	lr := io.LimitedReader{R: r, N: limit}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func tooLarge(limit int64) *core.Error {
	ce := core.Errorf(core.CodeInvalidRequest, "request body exceeds %d bytes", limit)
	ce.Status = http.StatusRequestEntityTooLarge
	ce.Details["limit_bytes"] = limit
	return ce
}

// Authenticate applies §1.4 to every non-public path, with the per-IP
// failure limit in front.
func (e *Edge) Authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if PublicPath(r.URL.Path) {
			return next(c)
		}
		// A tenant may publish some reads (its A2A agent cards): such a
		// path is read without a credential when none is sent.
		if e.PublicRead != nil && e.PublicRead(r.URL.Path) && r.Header.Get("Authorization") == "" && r.Header.Get("X-API-Key") == "" {
			return next(c)
		}
		ip := clientIP(r)
		if blocked, wait := e.Failures.blocked(ip); blocked {
			e.Metrics.quotaRejects.WithLabelValues("auth_failures").Inc()
			return core.RateLimited("auth_failures", wait, "too many failed or missing credentials from this address")
		}
		var au core.Auth
		var err error
		ok := false
		if e.PeerAuth != nil {
			au, ok, err = e.PeerAuth(r)
		}
		if !ok && err == nil {
			au, err = e.Auth.Authenticate(r)
		}
		if err != nil {
			if code := core.ErrorCode(err); code == core.CodeUnauthorized || code == core.CodeForbidden {
				e.Metrics.authFailures.Inc()
				if code == core.CodeUnauthorized {
					e.Failures.fail(ip)
				}
			}
			return err
		}
		c.SetRequest(r.WithContext(core.WithAuth(r.Context(), au)))
		return next(c)
	}
}

// Validate checks bodies against the OpenAPI document.
func (e *Edge) Validate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if e.Validator == nil {
			return next(c)
		}
		var fe *openapi.FieldError
		if b, ok := buffered(r); ok {
			fe = e.Validator.ValidateRequestBytes(r, b.raw)
		} else {
			fe = e.Validator.ValidateRequest(r)
		}
		if fe != nil {
			if fe.Unavailable != nil {
				return fe.Unavailable // the document's defect, not the client's: 500
			}
			return core.Invalid(fe.Field, "%s", fe.Error())
		}
		return next(c)
	}
}

// ErrorHandler is the router's one error mapper (echo's HTTPErrorHandler):
// every error becomes the contract's error object, or a compatible
// surface's own shape, with Retry-After where the error says so.
func (e *Edge) ErrorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ce := e.ToCoreError(err)
	if e.Metrics != nil {
		e.Metrics.countRefusal(ce)
	}
	if ce.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(ce.RetryAfter))
	}
	if unreadBody(c.Request()) {
		c.Response().Header().Set("Connection", "close")
	}
	status := ce.HTTPStatus()
	if ce.Code == core.CodeInternal {
		e.Log.Error().Err(err).Str("correlation_id", core.CorrelationID(c.Request().Context())).Str("path", c.Request().URL.Path).Msg("internal error")
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	// The compatible surfaces (OpenAI, Anthropic) answer errors in their
	// own shapes.
	if e.CompatError != nil {
		if body, ok := e.CompatError(c.Request().URL.Path, ce, status); ok {
			_ = c.JSON(status, body)
			return
		}
	}
	details := ce.Details
	if details == nil {
		details = map[string]any{}
	}
	_ = c.JSON(status, map[string]any{
		"error":          map[string]any{"code": ce.Code, "message": ce.Message, "retryable": ce.Retryable, "details": details},
		"correlation_id": core.CorrelationID(c.Request().Context()),
	})
}

// ToCoreError turns err into the contract's error: echo's own errors
// (no route, too large, ...) into their codes, anything unknown into
// internal_error.
func (e *Edge) ToCoreError(err error) *core.Error {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			return core.Errorf(core.CodeNotFound, "no such route")
		case http.StatusRequestEntityTooLarge:
			return tooLarge(e.BodyLimit)
		case http.StatusUnsupportedMediaType:
			ce := core.Errorf(core.CodeInvalidRequest, "request body must be application/json")
			ce.Status = http.StatusUnsupportedMediaType
			return ce
		case http.StatusBadRequest:
			return core.Invalid("", "%v", he.Message)
		case http.StatusUnauthorized:
			return core.Errorf(core.CodeUnauthorized, "%v", he.Message)
		case http.StatusForbidden:
			return core.Errorf(core.CodeForbidden, "%v", he.Message)
		case http.StatusServiceUnavailable:
			return core.Errorf(core.CodeDependencyUnavailable, "%v", he.Message)
		}
		if he.Code < 500 {
			ce := core.Errorf(core.CodeForStatus(he.Code), "%v", he.Message)
			return ce
		}
	}
	return core.AsError(err)
}

// countRefusal counts quota and rate-limit refusals by kind and scope
// refusals as auth failures.
func (m *Metrics) countRefusal(ce *core.Error) {
	if ce.Code == core.CodeRateLimited || ce.Code == core.CodeQuotaExceeded {
		kind, _ := ce.Details["kind"].(string)
		if kind == "" {
			kind = ce.Code
		}
		if kind != "auth_failures" {
			m.quotaRejects.WithLabelValues(kind).Inc()
		}
	}
	if ce.Code == core.CodeForbidden {
		if _, ok := ce.Details["scope"]; ok {
			m.authFailures.Inc()
		}
	}
}
