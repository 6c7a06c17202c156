package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/jsonhttp"
	"github.com/agentos/agentos/internal/sse"
)

// apiClient is the operator CLI's HTTP client of a running node: it holds
// a credential and speaks the contract's JSON.
type apiClient struct {
	http *http.Client
	key  string
	// tenant, when set, goes out as X-Tenant-Id (platform admin acting as
	// another tenant).
	tenant string
}

func newAPIClient(key string) *apiClient {
	return &apiClient{http: &http.Client{Timeout: 15 * time.Second}, key: key}
}

// statusOf is the HTTP status of a non-2xx answer (a
// *jsonhttp.StatusError), or 0.
func statusOf(err error) int {
	var se *jsonhttp.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// header is what every call of c carries: its key and, when set, the
// tenant it acts as.
func (c *apiClient) header() http.Header {
	h := jsonhttp.Bearer(c.key)
	if c.tenant != "" {
		h.Set("X-Tenant-Id", c.tenant)
	}
	return h
}

// do sends body (JSON-encoded when not nil) and decodes a 2xx answer into
// out (when not nil). Anything else is a *jsonhttp.StatusError (the
// contract's error object in its body) or a transport error.
func (c *apiClient) do(ctx context.Context, method, url string, body, out any) error {
	return jsonhttp.Do(ctx, c.http, jsonhttp.Call{Method: method, URL: url, Header: c.header(), Body: body}, out)
}

// sseEvent is one decoded event envelope of a run's stream.
type sseEvent struct {
	Sequence int            `json:"sequence"`
	Type     string         `json:"type"`
	RunID    string         `json:"run_id"`
	TenantID string         `json:"tenant_id"`
	Payload  map[string]any `json:"payload"`
}

// streamEventLimit bounds one line, and one event's data, of a run's
// stream as the operator reads it.
const streamEventLimit = 4 << 20

// streamEvents reads a run's SSE stream (internal/sse) until its terminal
// event, calling fn for each event, whatever its name. It returns the
// events seen; an event whose data is not an envelope, a stream that ends
// first (a last event without its blank line still counts) or one over
// streamEventLimit is an error.
func (c *apiClient) streamEvents(ctx context.Context, url string, fn func(sseEvent)) ([]sseEvent, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header = c.header()
	req.Header.Set("Accept", "text/event-stream")
	hc := &http.Client{Transport: c.http.Transport} // no overall timeout: ctx bounds the stream
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, &jsonhttp.StatusError{Method: http.MethodGet, URL: url,
			Response: jsonhttp.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}}
	}
	var events []sseEvent
	rd := sse.NewReader(resp.Body, streamEventLimit)
	rd.DispatchAtEOF = true
	for {
		msg, err := rd.Next()
		if err == io.EOF {
			return events, errors.New("stream ended before a terminal event")
		}
		if err != nil {
			return events, err
		}
		var env struct {
			Event sseEvent `json:"event"`
		}
		if err := json.Unmarshal(msg.Data, &env); err != nil {
			return events, fmt.Errorf("decode event: %w", err)
		}
		events = append(events, env.Event)
		if fn != nil {
			fn(env.Event)
		}
		switch env.Event.Type {
		case "agentos.run.completed", "agentos.run.failed", "agentos.run.canceled":
			return events, nil
		}
	}
}

// getPublic fetches url without credentials (health endpoints) and returns
// the status code and decoded object.
func getPublic(ctx context.Context, url string) (int, map[string]any, error) {
	return getPublicWith(ctx, &http.Client{Timeout: 5 * time.Second}, url)
}

// getPublicWith is getPublic through hc (a remote target's TLS settings
// and timeout). Any status is an answer; a body that is not a JSON object
// is nil.
func getPublicWith(ctx context.Context, hc *http.Client, url string) (int, map[string]any, error) {
	resp, err := jsonhttp.Send(ctx, hc, jsonhttp.Call{Method: http.MethodGet, URL: url, Limit: 1 << 20})
	if err != nil {
		return 0, nil, err
	}
	var body map[string]any
	_ = json.Unmarshal(resp.Body, &body)
	return resp.Status, body, nil
}

// nodeTarget is where operator commands find the node and which key they
// use: --url / node.json for the URLs, --api-key / AGENTOS_API_KEY /
// credentials.json for the platform admin key.
type nodeTarget struct {
	Node  app.NodeFile
	Creds app.Credentials
	// AdminKey is the platform admin key to use.
	AdminKey string
	// HTTP carries the TLS settings and timeout of a remote target; nil
	// means the defaults of a local node.
	HTTP *http.Client
	// Remote is set when the node was named by --target-* URLs: nothing
	// of a data dir is read, and the smoke gates bring their own probe
	// agent into the key's tenant.
	Remote bool
}

// client is an API client with key through the target's HTTP settings.
func (t nodeTarget) client(key string) *apiClient {
	c := newAPIClient(key)
	if t.HTTP != nil {
		c.http = t.HTTP
	}
	return c
}

// httpClient is the target's client for public probes.
func (t nodeTarget) httpClient() *http.Client {
	if t.HTTP != nil {
		return t.HTTP
	}
	return &http.Client{Timeout: 5 * time.Second}
}

// resolveTarget reads node.json and credentials.json of the data dir and
// applies the overrides.
func resolveTarget(cfg app.Config, urlOverride, keyOverride string) (nodeTarget, error) {
	var t nodeTarget
	nf, nfErr := app.ReadNodeFile(cfg.DataDir)
	t.Node = nf
	if urlOverride != "" {
		t.Node.StackAURL = strings.TrimRight(urlOverride, "/")
	} else if nfErr != nil {
		return t, fmt.Errorf("no running node found (%s: %v): start one with `agentos up`, or pass --url", cfg.Path("node.json"), nfErr)
	}
	t.Creds, _ = app.ReadCredentials(cfg.DataDir)
	t.AdminKey = keyOverride
	if t.AdminKey == "" {
		t.AdminKey = os.Getenv("AGENTOS_API_KEY")
	}
	if t.AdminKey == "" {
		t.AdminKey = t.Creds.PlatformAdmin.APIKey
	}
	return t, nil
}
