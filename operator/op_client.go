package operator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agentos/agentos/app"
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

// apiError is a non-2xx answer: the contract's error object plus status.
type apiError struct {
	Status  int
	Code    string
	Message string
	URL     string
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s: HTTP %d", e.URL, e.Status)
	}
	return fmt.Sprintf("%s: HTTP %d %s: %s", e.URL, e.Status, e.Code, e.Message)
}

// statusOf is the HTTP status of an apiError, or 0.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// do sends body (JSON-encoded when not nil) and decodes a 2xx answer into
// out (when not nil). Anything else is an *apiError or a transport error.
func (c *apiClient) do(ctx context.Context, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if c.tenant != "" {
		req.Header.Set("X-Tenant-Id", c.tenant)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &apiError{Status: resp.StatusCode, URL: method + " " + url}
		var eo struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &eo) == nil {
			ae.Code, ae.Message = eo.Error.Code, eo.Error.Message
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode %s: %w", url, err)
		}
	}
	return nil
}

// sseEvent is one decoded event envelope of a run's stream.
type sseEvent struct {
	Sequence int            `json:"sequence"`
	Type     string         `json:"type"`
	RunID    string         `json:"run_id"`
	TenantID string         `json:"tenant_id"`
	Payload  map[string]any `json:"payload"`
}

// streamEvents reads a run's SSE stream until its terminal event, calling
// fn for each event. It returns the events seen.
func (c *apiClient) streamEvents(ctx context.Context, url string, fn func(sseEvent)) ([]sseEvent, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.key)
	if c.tenant != "" {
		req.Header.Set("X-Tenant-Id", c.tenant)
	}
	hc := &http.Client{Transport: c.http.Transport} // no overall timeout: ctx bounds the stream
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &apiError{Status: resp.StatusCode, URL: "GET " + url}
	}
	var events []sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue
		}
		var env struct {
			Event sseEvent `json:"event"`
		}
		if err := json.Unmarshal([]byte(strings.TrimSpace(data)), &env); err != nil {
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
	if err := sc.Err(); err != nil {
		return events, err
	}
	return events, errors.New("stream ended before a terminal event")
}

// metricsSnapshot sums every sample of each metric family of a Prometheus
// text page (labels folded), enough to see counters move.
func metricsSnapshot(ctx context.Context, hc *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if j := strings.LastIndexByte(rest, ' '); j >= 0 {
			rest = rest[j+1:]
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}

// getJSON fetches url without credentials (health endpoints) and returns
// the status code and decoded object.
func getPublic(ctx context.Context, url string) (int, map[string]any, error) {
	return getPublicWith(ctx, &http.Client{Timeout: 5 * time.Second}, url)
}

// getPublicWith is getPublic through hc (a remote target's TLS settings
// and timeout).
func getPublicWith(ctx context.Context, hc *http.Client, url string) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
	return resp.StatusCode, body, nil
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
