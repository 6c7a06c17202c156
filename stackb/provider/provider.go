// Package provider holds Stack B's model backends behind one small
// interface: the offline builtin models, any OpenAI-compatible server, and
// Anthropic's Messages API.
package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/jsonhttp"
)

// ChatResult is a provider's answer to a chat call.
type ChatResult struct {
	Message   core.ChatMessage
	ToolCalls []core.ToolCall
	Usage     core.Usage
}

// EmbedResult is a provider's answer to an embed call.
type EmbedResult struct {
	Vectors [][]float64
	Usage   core.Usage
}

// ChatCall is what the gateway asks of a chat model: input already through
// policy, max output tokens already capped by the tenant's limits.
type ChatCall struct {
	Model       string
	Messages    []core.ChatMessage
	Tools       []core.ModelTool
	ToolChoice  string
	Temperature *float64
	TopP        *float64
	MaxTokens   int
	// OnDelta, when set, asks a streaming-capable backend to stream and
	// receives each piece of answer text as it arrives.
	OnDelta func(text string) error
}

// Provider is one backend. Errors are *core.Error: dependency_unavailable
// when the backend cannot be reached or fails, timeout when ctx's deadline
// passes, invalid_request when the backend rejects the request itself.
type Provider interface {
	Chat(ctx context.Context, call ChatCall) (ChatResult, error)
	Embed(ctx context.Context, model string, texts []string) (EmbedResult, error)
}

// Spec is what a provider kind builds a backend from: one provider of the
// providers file, its key already read.
type Spec struct {
	Name    string
	BaseURL string
	APIKey  string
	Client  *http.Client
}

// Kind is a provider kind of the providers file. Each kind registers itself
// from its own file (init), so adding one is one file plus its conformance
// test (see conformance_test.go).
type Kind struct {
	// Name is the providers file's "kind".
	Name string
	// New builds a backend; its errors name the field at fault relative to
	// the provider ("base_url: required for kind openai").
	New func(Spec) (Provider, error)
}

var kinds = map[string]Kind{}

// Register adds a kind; registering a name twice is a programming error.
func Register(k Kind) {
	if _, dup := kinds[k.Name]; dup {
		panic("provider: kind " + k.Name + " registered twice")
	}
	kinds[k.Name] = k
}

// Lookup finds a registered kind.
func Lookup(name string) (Kind, bool) {
	k, ok := kinds[name]
	return k, ok
}

// Kinds lists the registered kind names, sorted.
func Kinds() []string {
	return slices.Sorted(maps.Keys(kinds))
}

// TokensOf estimates tokens as ceil(bytes/4), the builtin counting rule.
func TokensOf(s string) int { return (len(s) + 3) / 4 }

// transportError maps a failed HTTP round trip to the contract's codes.
func transportError(ctx context.Context, backend string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded {
		return core.Errorf(core.CodeTimeout, "backend %s: deadline exceeded", backend).With("backend", backend)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return core.Errorf(core.CodeTimeout, "backend %s: timed out", backend).With("backend", backend)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return core.Errorf(core.CodeDependencyUnavailable, "backend %s unreachable", backend).With("backend", backend)
}

// statusError maps an upstream error status: the caller's fault stays
// invalid_request, everything else makes the backend unavailable (so the
// router may fall back).
func statusError(backend string, status int, msg string) error {
	if msg == "" {
		msg = http.StatusText(status)
	}
	switch {
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity || status == http.StatusRequestEntityTooLarge:
		return core.Errorf(core.CodeInvalidRequest, "backend %s rejected the request: %s", backend, msg).With("backend", backend)
	case status == http.StatusGatewayTimeout || status == http.StatusRequestTimeout:
		return core.Errorf(core.CodeTimeout, "backend %s timed out: %s", backend, msg).With("backend", backend)
	default:
		e := core.Errorf(core.CodeDependencyUnavailable, "backend %s answered %d: %s", backend, status, msg).With("backend", backend)
		return e.With("upstream_status", status)
	}
}

// postJSON sends body (JSON, already encoded) to url with the headers
// header sets (on the request's own header map), adding
// Content-Type and the caller's traceparent, and returns a 2xx response
// (the caller closes its body). Other statuses become statusError with
// the upstream's error.message (OpenAI's and Anthropic's error shapes
// both carry one), transport failures transportError.
func postJSON(ctx context.Context, hc *http.Client, backend, url string, body []byte, header func(http.Header)) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, core.Errorf(core.CodeDependencyUnavailable, "backend %s: bad base_url: %v", backend, err)
	}
	if header != nil {
		header(req.Header)
	}
	req.Header.Set("Content-Type", "application/json")
	if tp := core.Traceparent(ctx); tp != "" {
		req.Header["Traceparent"] = []string{tp} // canonical: Set would rebuild the name
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, transportError(ctx, backend, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_, msg := jsonhttp.ErrorOf(raw)
		return nil, statusError(backend, resp.StatusCode, msg)
	}
	return resp, nil
}

func decodeErr(backend string, err error) error {
	return core.Errorf(core.CodeDependencyUnavailable, "backend %s: undecodable answer: %v", backend, err).With("backend", backend)
}

var errNoEmbed = fmt.Errorf("embeddings not supported")

// answerBufs hold upstream answers while they are decoded (json.Unmarshal
// copies what it keeps, so a buffer is free again once decoded).
var answerBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeAnswer reads a whole upstream answer and decodes its JSON into
// out, as json.Decoder.Decode would: only the first value counts, so an
// answer with bytes after it (which json.Unmarshal refuses before it
// writes anything into out) is decoded again by a Decoder.
func decodeAnswer(r io.Reader, out any) error {
	buf := answerBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer answerBufs.Put(buf)
	if _, err := buf.ReadFrom(r); err != nil {
		return err
	}
	err := json.Unmarshal(buf.Bytes(), out)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return json.NewDecoder(bytes.NewReader(buf.Bytes())).Decode(out)
	}
	return err
}
