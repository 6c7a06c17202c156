// Package jsonhttp is the one JSON-over-HTTP client of AgentOS. The
// operator CLI, Stack A's client of a remote Stack B, federation's peer
// calls and the bench harness all send a call and read its answer through
// it, so the rules are written once: a JSON body goes out with its
// Content-Type, the answer is read whole up to a bound, a non-2xx answer
// is a *StatusError that keeps status, headers and body, and a failed
// round trip is a *TransportError (the callers map these to their own
// error codes). It imports only the standard library, so any package of
// the module may use it without bending the dependency rule.
package jsonhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
)

// DefaultLimit bounds how much of an answer is read when a Call names no
// Limit.
const DefaultLimit = 8 << 20

// Call is one request.
type Call struct {
	Method string
	URL    string
	// Header is sent as given (credentials, tenant, trace propagation).
	// Content-Type (when there is a body) and Accept default to
	// application/json unless Header sets them.
	Header http.Header
	// Body is nil (no body, as is a nil []byte), a []byte or
	// json.RawMessage (sent as is) or any other value (sent JSON-encoded).
	Body any
	// Limit bounds how many bytes of the answer are read: 0 means
	// DefaultLimit, a negative value no bound (the caller trusts the
	// server, as Stack A trusts its own Stack B).
	Limit int64
}

// Response is an answer, its body read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// OK reports whether the status is 2xx.
func (r Response) OK() bool { return r.Status/100 == 2 }

// StatusError is a non-2xx answer to Do.
type StatusError struct {
	Method, URL string
	Response
}

func (e *StatusError) Error() string {
	code, msg := ErrorOf(e.Body)
	if code == "" {
		return fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.Status)
	}
	return fmt.Sprintf("%s %s: HTTP %d %s: %s", e.Method, e.URL, e.Status, code, msg)
}

// TransportError is a round trip that failed, or an answer that could not
// be read: the server may never have seen the call, so it is the kind of
// failure a caller may retry. Err keeps the cause (a context error, a
// net.Error).
type TransportError struct {
	Method, URL string
	Err         error
}

func (e *TransportError) Error() string { return fmt.Sprintf("%s %s: %v", e.Method, e.URL, e.Err) }
func (e *TransportError) Unwrap() error { return e.Err }

// DecodeError is a 2xx answer whose body did not decode into Do's out.
type DecodeError struct {
	URL string
	Err error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("decode %s: %v", e.URL, e.Err) }
func (e *DecodeError) Unwrap() error { return e.Err }

// ErrorOf reads the error of an error answer: the contract's
// {"error":{"code","message"}}, or OpenAI's shape, whose code may be
// absent or not a string and whose type then names the error. Both are
// "" for a body of neither shape.
func ErrorOf(body []byte) (code, message string) {
	var eo struct {
		Error struct {
			Code    any    `json:"code"`
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eo) != nil {
		return "", ""
	}
	code, _ = eo.Error.Code.(string)
	if code == "" {
		code = eo.Error.Type
	}
	return code, eo.Error.Message
}

// Send makes the call with hc (nil: http.DefaultClient) and returns the
// answer whatever its status. Its errors are a *TransportError, or a call
// that could not be built (its body would not encode, its URL is bad), in
// which case nothing was sent.
func Send(ctx context.Context, hc *http.Client, c Call) (Response, error) {
	var rd io.Reader
	switch b := c.Body.(type) {
	case nil:
	case []byte:
		if b != nil {
			rd = bytes.NewReader(b)
		}
	case json.RawMessage:
		if b != nil {
			rd = bytes.NewReader(b)
		}
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return Response{}, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, c.URL, rd)
	if err != nil {
		return Response{}, err
	}
	maps.Copy(req.Header, c.Header)
	if rd != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Response{}, &TransportError{Method: c.Method, URL: c.URL, Err: err}
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	switch {
	case c.Limit == 0:
		body = io.LimitReader(resp.Body, DefaultLimit)
	case c.Limit > 0:
		body = io.LimitReader(resp.Body, c.Limit)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return Response{}, &TransportError{Method: c.Method, URL: c.URL, Err: err}
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}, nil
}

// Do is Send for a call that wants a 2xx answer: it decodes the body into
// out (nil: the body is dropped). A non-2xx answer is a *StatusError, a
// body that does not decode a *DecodeError.
func Do(ctx context.Context, hc *http.Client, c Call, out any) error {
	resp, err := Send(ctx, hc, c)
	if err != nil {
		return err
	}
	if !resp.OK() {
		return &StatusError{Method: c.Method, URL: c.URL, Response: resp}
	}
	if out != nil {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return &DecodeError{URL: c.URL, Err: err}
		}
	}
	return nil
}

// Bearer is a header with Authorization: Bearer key (none when key is "").
func Bearer(key string) http.Header {
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	return h
}
