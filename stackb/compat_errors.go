package stackb

import (
	"strings"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stackb/wire"
)

// Surfaces whose answers, errors included, take another API's shape.
const (
	// OpenAIBase is the base URL path to give OpenAI SDKs.
	OpenAIBase = "/openai/v1"
	// AnthropicBase is the base URL path to give Anthropic SDKs (they add
	// /v1 themselves).
	AnthropicBase = "/anthropic"
)

// CompatError renders ce in the shape of the surface path belongs to:
// OpenAI's {"error": {message, type, param, code}} under /openai/ and on
// the /v1/chat/completions and /v1/embeddings aliases, Anthropic's
// {"type": "error", "error": {type, message}} under /anthropic/. ok is
// false for the canonical surface. The status stays the contract's, which
// is the one each SDK maps to its exception class.
func CompatError(path string, ce *core.Error, status int) (body any, ok bool) {
	switch {
	case strings.HasPrefix(path, OpenAIBase+"/") || path == "/v1/chat/completions" || path == "/v1/embeddings":
		return openAIError(ce, status), true
	case strings.HasPrefix(path, AnthropicBase+"/"):
		return wire.AnthropicErrorBody{Type: "error", Error: wire.AnthropicError{Type: anthropicErrorType(status), Message: ce.Message}}, true
	}
	return nil, false
}

func openAIError(ce *core.Error, status int) wire.ErrorBody {
	typ := "api_error"
	switch status {
	case 400, 413, 415, 422:
		typ = "invalid_request_error"
	case 401:
		typ = "authentication_error"
	case 403:
		typ = "permission_error"
	case 404:
		typ = "not_found_error"
	case 409:
		typ = "conflict_error"
	case 429:
		typ = "rate_limit_error"
		if ce.Code == core.CodeQuotaExceeded {
			typ = "insufficient_quota"
		}
	}
	var param any
	if f, ok := ce.Details["field"].(string); ok && f != "" {
		param = f
	}
	return wire.ErrorBody{Error: wire.ErrorDetail{Message: ce.Message, Type: typ, Param: param, Code: ce.Code}}
}

func anthropicErrorType(status int) string {
	switch status {
	case 400, 415, 422:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 503, 529:
		return "overloaded_error"
	}
	return "api_error"
}
