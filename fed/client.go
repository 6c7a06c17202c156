package fed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/jsonhttp"
)

// peerCallTimeout bounds one non-streaming call to a peer.
const peerCallTimeout = 15 * time.Second

// remoteError is the error object a peer answers with.
type remoteError struct {
	Error *core.Error `json:"error"`
}

// peerHeader is what every request to a peer carries: a fresh assertion
// (a new jti) per attempt, correlation id and traceparent propagated.
func (n *Node) peerHeader(ctx context.Context, a core.Auth, peer core.Peer) (http.Header, error) {
	tok, err := n.SignAssertion(a, peer.StackID)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set(AssertionHeader, tok)
	if id := core.CorrelationID(ctx); id != "" {
		h.Set("X-Correlation-Id", id)
	}
	if tp := core.Traceparent(ctx); tp != "" {
		h.Set("traceparent", tp)
	}
	return h, nil
}

// peerURL is path on the peer's federation router.
func peerURL(peer core.Peer, path string) string {
	return strings.TrimRight(peer.FederationURL, "/") + path
}

// peerRequest builds a signed GET of a peer's stream (callPeer makes the
// JSON calls).
func (n *Node) peerRequest(ctx context.Context, a core.Auth, peer core.Peer, path string) (*http.Request, error) {
	h, err := n.peerHeader(ctx, a, peer)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL(peer, path), nil)
	if err != nil {
		return nil, fmt.Errorf("build peer request: %w", err)
	}
	req.Header = h
	return req, nil
}

// callPeer sends a JSON call and decodes a 2xx answer into out. It retries
// with exponential backoff on network errors and 5xx answers only; a 4xx
// comes back as the peer's own *core.Error. Exhausted retries are 503
// dependency_unavailable (504 timeout when the deadline ran out).
func (n *Node) callPeer(ctx context.Context, a core.Auth, peer core.Peer, op, method, path string, body []byte, out any) error {
	backoff := n.d.RetryBase
	var last error
	for attempt := 0; attempt <= n.d.Retries; attempt++ {
		if attempt > 0 {
			n.m.peerCalls.WithLabelValues(op, "retry").Inc()
			select {
			case <-ctx.Done():
				return peerDown(peer, ctx.Err())
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		retry, err := n.callPeerOnce(ctx, a, peer, method, path, body, out)
		if err == nil {
			n.m.peerCalls.WithLabelValues(op, "ok").Inc()
			return nil
		}
		last = err
		if !retry {
			n.m.peerCalls.WithLabelValues(op, "error").Inc()
			return err
		}
		n.log.Debug().Err(err).Str("peer", peer.StackID).Str("op", op).Int("attempt", attempt+1).Msg("peer call failed")
	}
	n.m.peerCalls.WithLabelValues(op, "error").Inc()
	return peerDown(peer, last)
}

func peerDown(peer core.Peer, err error) error {
	if e, ok := err.(*core.Error); ok && e.Details["peer_stack_id"] == peer.StackID &&
		(e.Code == core.CodeDependencyUnavailable || e.Code == core.CodeTimeout) {
		// Already this peer's outage (callPeer's verdict): do not name the
		// peer twice in the message.
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return core.Errorf(core.CodeTimeout, "peer %s did not answer in time", peer.StackID).With("peer_stack_id", peer.StackID)
	}
	msg := "unreachable"
	if e, ok := err.(*core.Error); ok {
		msg = e.Message
	}
	return core.Errorf(core.CodeDependencyUnavailable, "peer %s: %s", peer.StackID, msg).With("peer_stack_id", peer.StackID)
}

func (n *Node) callPeerOnce(ctx context.Context, a core.Auth, peer core.Peer, method, path string, body []byte, out any) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, peerCallTimeout)
	defer cancel()
	h, err := n.peerHeader(ctx, a, peer)
	if err != nil {
		return false, err
	}
	err = jsonhttp.Do(ctx, n.client, jsonhttp.Call{Method: method, URL: peerURL(peer, path), Header: h, Body: body, Limit: 4 << 20}, out)
	return jsonhttp.Retryable(err), jsonhttp.Failures{
		// callPeer retries a transport failure, then peerDown words it.
		Transport: func(cause error) error { return cause },
		Status: func(r jsonhttp.Response) error {
			if r.Status >= 500 {
				return core.Errorf(core.CodeDependencyUnavailable, "answered %d", r.Status)
			}
			return decodeRemoteError(peer, r.Status, r.Body)
		},
		Decode: func(error) error {
			return core.Errorf(core.CodeDependencyUnavailable, "peer %s answered an undecodable body", peer.StackID).With("peer_stack_id", peer.StackID)
		},
		Build: func(err error) error { return fmt.Errorf("build peer request: %w", err) },
	}.Map(err)
}

// decodeRemoteError turns a peer's error answer into a *core.Error with the
// peer's code and message, noting which peer said it.
func decodeRemoteError(peer core.Peer, status int, raw []byte) error {
	if status == http.StatusUnauthorized {
		// Our client's credential was fine; the peer refused this node.
		return core.Errorf(core.CodeDependencyUnavailable, "peer %s refused this node's assertion (is this node in its peer registry?)", peer.StackID).
			With("peer_stack_id", peer.StackID)
	}
	var re remoteError
	if json.Unmarshal(raw, &re) == nil && re.Error != nil && re.Error.Code != "" {
		e := re.Error
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		e.Status = status
		e = e.With("peer_stack_id", peer.StackID)
		e.Message = "peer " + peer.StackID + ": " + e.Message
		return e
	}
	e := core.Errorf(core.CodeForStatus(status), "peer %s answered %d", peer.StackID, status).With("peer_stack_id", peer.StackID)
	return e
}

// peerCapabilities reads a peer's live capabilities with an assertion for a.
func (n *Node) peerCapabilities(ctx context.Context, a core.Auth, peer core.Peer) (core.Capabilities, error) {
	var out struct {
		Capabilities core.Capabilities `json:"capabilities"`
	}
	err := n.callPeer(ctx, a, peer, "capabilities", http.MethodGet, "/v1/federation/peer/capabilities", nil, &out)
	return out.Capabilities, err
}
