package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agentos/agentos/internal/jsonhttp"
	"github.com/agentos/agentos/internal/sse"
)

// NewClient is the HTTP client of a bench run: a pool wide enough for the
// rate (an open-loop sender must not queue behind its own pool), and no
// redirects, so nothing is ever sent to an address it was not given.
func NewClient(maxConns int) *http.Client {
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
		return errors.New("bench follows no redirects")
	}}
}

// BaseURL checks a base URL given on the command line: http or https, a
// host, nothing after the path.
func BaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("url %q: want http(s)://host[:port][/path] with no query, fragment or user info", raw)
	}
	return u, nil
}

// outcomeOf names a failed answer by its status and error code: the
// contract's {"error":{"code"}} and OpenAI's {"error":{"code"|"type"}}
// both carry one.
func outcomeOf(status int, body []byte) string {
	code := strconv.Itoa(status)
	if c, _ := jsonhttp.ErrorOf(body); c != "" {
		return code + " " + c
	}
	return code
}

func transportCode(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "transport"
}

// Gateway sends OpenAI-style chat completions to base (Stack B, or any
// OpenAI-compatible server for a baseline) with model.
type Gateway struct {
	Client *http.Client
	Base   *url.URL
	APIKey string
	Model  string
	// MaxTokens asks for this many output tokens at most.
	MaxTokens int
}

// Do implements Request.
func (g *Gateway) Do(ctx context.Context, seq int) Outcome {
	body := map[string]any{
		"model":      g.Model,
		"messages":   []map[string]string{{"role": "user", "content": "bench request " + strconv.Itoa(seq)}},
		"max_tokens": g.MaxTokens,
	}
	resp, err := jsonhttp.Send(ctx, g.Client, jsonhttp.Call{Method: http.MethodPost, URL: g.Base.String() + "/chat/completions",
		Header: jsonhttp.Bearer(g.APIKey), Body: body})
	if err != nil {
		return Outcome{Code: transportCode(ctx, err)}
	}
	if resp.Status != http.StatusOK {
		return Outcome{Code: outcomeOf(resp.Status, resp.Body)}
	}
	var out struct {
		Choices []json.RawMessage `json:"choices"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		return Outcome{Code: transportCode(ctx, err)}
	}
	if len(out.Choices) == 0 {
		return Outcome{Code: "200 no choices"}
	}
	return Outcome{Code: "ok"}
}

// Runs creates a run of Agent on Stack A at base and follows its event
// stream until the terminal event.
type Runs struct {
	Client *http.Client
	Base   *url.URL
	APIKey string
	Agent  string
	// Tag makes idempotency keys unique to this bench invocation.
	Tag string
	// Nodes, when it names several Stack A URLs (the nodes of a cluster),
	// spreads the runs over them: run seq is created on Nodes[seq%n] and
	// its events are read from the next node, so every stream crosses
	// nodes. Empty: everything goes to Base.
	Nodes []*url.URL
}

// nodesOf returns the node that creates run seq and the one its events are
// read from.
func (r *Runs) nodesOf(seq int) (create, follow *url.URL) {
	if n := len(r.Nodes); n > 0 {
		return r.Nodes[seq%n], r.Nodes[(seq+1)%n]
	}
	return r.Base, r.Base
}

// Do implements Request.
func (r *Runs) Do(ctx context.Context, seq int) Outcome {
	body := map[string]any{
		"input":           map[string]string{"type": "text", "text": "bench run " + strconv.Itoa(seq)},
		"idempotency_key": "bench-" + r.Tag + "-" + strconv.Itoa(seq),
	}
	create, follow := r.nodesOf(seq)
	resp, err := jsonhttp.Send(ctx, r.Client, jsonhttp.Call{Method: http.MethodPost,
		URL: create.String() + "/v1/agents/" + url.PathEscape(r.Agent) + "/runs", Header: jsonhttp.Bearer(r.APIKey), Body: body})
	if err != nil {
		return Outcome{Code: transportCode(ctx, err)}
	}
	if resp.Status != http.StatusCreated {
		return Outcome{Code: outcomeOf(resp.Status, resp.Body)}
	}
	var created struct {
		Run struct {
			RunID     string `json:"run_id"`
			Status    string `json:"status"`
			EventsURL string `json:"events_url"`
		} `json:"run"`
	}
	err = json.Unmarshal(resp.Body, &created)
	first := time.Now()
	if err != nil {
		return Outcome{Code: transportCode(ctx, err), First: first}
	}
	events, err := eventsURL(create, follow, created.Run.EventsURL, created.Run.RunID)
	if err != nil {
		return Outcome{Code: "refused events_url", First: first}
	}
	code := r.follow(ctx, events)
	return Outcome{Code: code, First: first}
}

// eventsURL resolves a run's events_url against the node that created it,
// refuses one that points anywhere else, and reads it from follow.
func eventsURL(create, follow *url.URL, raw, runID string) (string, error) {
	if raw == "" {
		raw = "/v1/runs/" + url.PathEscape(runID) + "/events"
	}
	u, err := create.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != create.Scheme || u.Host != create.Host {
		return "", fmt.Errorf("events_url %q is not on %s", raw, create.Host)
	}
	u.Scheme, u.Host = follow.Scheme, follow.Host
	return u.String(), nil
}

// followEventLimit bounds one line, and one event's data, of a followed
// run stream.
const followEventLimit = 4 << 20

// follow reads the SSE stream to the run's terminal event. It is a load
// generator's hot path: events are framed by internal/sse without
// allocating and their data scanned for a terminal type, not decoded. A
// last event without its blank line still counts.
func (r *Runs) follow(ctx context.Context, events string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, events, nil)
	if err != nil {
		return "transport"
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+r.APIKey)
	resp, err := r.Client.Do(req)
	if err != nil {
		return transportCode(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return "events " + outcomeOf(resp.StatusCode, raw)
	}
	rd := sse.NewReader(resp.Body, followEventLimit)
	rd.DispatchAtEOF = true
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			return "stream ended early"
		}
		if err != nil {
			return transportCode(ctx, err)
		}
		switch {
		case bytes.Contains(ev.Data, []byte(`"agentos.run.completed"`)):
			return "ok"
		case bytes.Contains(ev.Data, []byte(`"agentos.run.failed"`)):
			return "run failed"
		case bytes.Contains(ev.Data, []byte(`"agentos.run.canceled"`)):
			return "run canceled"
		}
	}
}
