package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
)

// Error codes of CONTRACT.md §1.2.
const (
	CodeInvalidRequest        = "invalid_request"
	CodeUnauthorized          = "unauthorized"
	CodeForbidden             = "forbidden"
	CodeNotFound              = "not_found"
	CodeConflict              = "conflict"
	CodeRateLimited           = "rate_limited"
	CodeQuotaExceeded         = "quota_exceeded"
	CodePolicyBlocked         = "policy_blocked"
	CodeDependencyUnavailable = "dependency_unavailable"
	CodeTimeout               = "timeout"
	CodeInternal              = "internal_error"
)

// Error is the one coded error of the project. Handlers and ports return it
// (or wrap it); the error mapper of each router renders it as the contract's
// error object. Anything that is not an *Error renders as internal_error.
type Error struct {
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	Retryable bool           `json:"retryable"`
	Details   map[string]any `json:"details"`
	// Status overrides the code's HTTP status where the contract allows
	// several (invalid_request is 400, 413 or 415).
	Status int `json:"-"`
	// RetryAfter, in seconds, is sent as the Retry-After header when > 0.
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// HTTPStatus is the status of the contract's table for this error.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return StatusForCode(e.Code)
}

// With returns a copy of e with one more detail.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Details = make(map[string]any, len(e.Details)+1)
	maps.Copy(c.Details, e.Details)
	c.Details[key] = value
	return &c
}

// StatusForCode maps an error code to its HTTP status.
func StatusForCode(code string) int {
	switch code {
	case CodeInvalidRequest:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden, CodePolicyBlocked:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodeRateLimited, CodeQuotaExceeded:
		return http.StatusTooManyRequests
	case CodeDependencyUnavailable:
		return http.StatusServiceUnavailable
	case CodeTimeout:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// CodeForStatus is the inverse of StatusForCode for statuses that come back
// from a remote AgentOS or an upstream without an error object.
func CodeForStatus(status int) string {
	switch status {
	case 400, 413, 415, 422:
		return CodeInvalidRequest
	case 401:
		return CodeUnauthorized
	case 403:
		return CodeForbidden
	case 404:
		return CodeNotFound
	case 409:
		return CodeConflict
	case 429:
		return CodeRateLimited
	case 502, 503:
		return CodeDependencyUnavailable
	case 504:
		return CodeTimeout
	default:
		return CodeInternal
	}
}

func retryableCode(code string) bool {
	switch code {
	case CodeRateLimited, CodeDependencyUnavailable, CodeTimeout, CodeInternal:
		return true
	}
	return false
}

// Errorf builds an *Error with the code's default retryability.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Retryable: retryableCode(code), Details: map[string]any{}}
}

// Invalid is a 400 invalid_request naming the JSON path of the bad field.
func Invalid(field, format string, args ...any) *Error {
	e := Errorf(CodeInvalidRequest, format, args...)
	e.Details["field"] = field
	return e
}

// NotFound is the 404 answered for unknown objects and for objects of
// another tenant alike, so existence never leaks.
func NotFound(kind, id string) *Error {
	e := Errorf(CodeNotFound, "%s %s not found", kind, id)
	if id != "" {
		e.Details[kind+"_id"] = id
	}
	return e
}

// RateLimited is a 429 rate_limited with Retry-After seconds.
func RateLimited(kind string, retryAfter int, format string, args ...any) *Error {
	if retryAfter < 1 {
		retryAfter = 1
	}
	e := Errorf(CodeRateLimited, format, args...)
	e.Details["kind"] = kind
	e.Details["retry_after_s"] = retryAfter
	e.RetryAfter = retryAfter
	return e
}

// AsError returns the *Error inside err. A context deadline becomes timeout,
// a cancellation stays as such for callers to check, and anything unknown is
// internal_error with a generic message (never a stack trace).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Errorf(CodeTimeout, "deadline exceeded")
	}
	return &Error{Code: CodeInternal, Message: "internal error", Retryable: true, Details: map[string]any{}}
}

// ErrorCode is the contract code of err ("" for nil).
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	return AsError(err).Code
}

// IsCode reports whether err carries the given contract code.
func IsCode(err error, code string) bool { return err != nil && ErrorCode(err) == code }
