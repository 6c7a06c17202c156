package fed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/agentos/agentos/core"
)

// Ingest stores events a peer pushes. It needs a peer assertion (401
// otherwise) and events:ingest (403). Each event (envelope or bare) is
// accepted when it is well formed and of the asserted tenant, which the
// peer must be trusted for; duplicates by event_id are accepted once and
// stored once; everything else counts as rejected.
func (n *Node) Ingest(ctx context.Context, a core.Auth, req IngestRequest) (accepted, rejected int, err error) {
	src, ok := peerOf(a)
	if !ok {
		return 0, 0, core.Errorf(core.CodeUnauthorized, "events:ingest needs a peer assertion (%s)", AssertionHeader)
	}
	if err := a.Require(core.ScopeEventsIngest); err != nil {
		return 0, 0, err
	}
	if req.Peer != nil && req.Peer.StackID != "" && req.Peer.StackID != src {
		return 0, 0, core.Errorf(core.CodeForbidden, "peer.stack_id %s is not the asserting peer %s", req.Peer.StackID, src).With("field", "peer.stack_id")
	}
	if req.Ingest != nil {
		if req.Ingest.SourceStackID != "" && req.Ingest.SourceStackID != src {
			return 0, 0, core.Errorf(core.CodeForbidden, "ingest.source_stack_id %s is not the asserting peer %s", req.Ingest.SourceStackID, src).
				With("field", "ingest.source_stack_id")
		}
		if d := req.Ingest.Dedupe; d != nil && d.Mode != "" && d.Mode != "event_id" {
			return 0, 0, core.Invalid("ingest.dedupe.mode", `dedupe.mode must be "event_id"`)
		}
	}
	if req.Events == nil {
		return 0, 0, core.Invalid("events", "events is required")
	}
	peer, err := n.d.Peers.GetPeer(ctx, src)
	if err != nil {
		return 0, 0, core.Errorf(core.CodeUnauthorized, "peer %s is no longer registered", src)
	}
	valid := make([]core.Event, 0, len(req.Events))
	for _, raw := range req.Events {
		ev, err := decodeEventData(raw)
		if err != nil || !wellFormed(ev) || ev.TenantID != a.TenantID || !peer.Trusts(ev.TenantID) {
			rejected++
			continue
		}
		valid = append(valid, ev)
	}
	outcomes, err := n.d.Events.PutEvents(ctx, src, valid)
	if err != nil {
		return 0, 0, err
	}
	stored, dup := 0, 0
	for _, o := range outcomes {
		switch o {
		case core.IngestStored:
			stored++
		case core.IngestDuplicate:
			dup++
		default:
			rejected++
		}
	}
	accepted = stored + dup
	n.m.ingestEvents.WithLabelValues("stored").Add(float64(stored))
	n.m.ingestEvents.WithLabelValues("duplicate").Add(float64(dup))
	n.m.ingestEvents.WithLabelValues("rejected").Add(float64(rejected))
	n.audit(ctx, core.NewAudit(a, "federation.events.ingest", "events", src, "success",
		map[string]any{"source_stack_id": src, "accepted": accepted, "rejected": rejected, "stored": stored}))
	n.log.Debug().Str("tenant_id", a.TenantID).Str("source_stack_id", src).Str("correlation_id", core.CorrelationID(ctx)).
		Str("counts", fmt.Sprintf("%d/%d", accepted, rejected)).Msg("events ingested")
	return accepted, rejected, nil
}

func wellFormed(ev core.Event) bool {
	return ev.EventID != "" && ev.Sequence >= 1 && ev.Type != "" && ev.TenantID != "" && ev.RunID != ""
}

// PushEvents sends events to a peer's events:ingest, signed for a (which
// must hold events:ingest), with this node's peer info. It returns the
// peer's counts; errors as for calls to peers (not_found for an unknown
// stack_id, the peer's 4xx, dependency_unavailable when it stays down).
func (n *Node) PushEvents(ctx context.Context, a core.Auth, stackID string, events []core.Event) (accepted, rejected int, err error) {
	peer, err := n.d.Peers.GetPeer(ctx, stackID)
	if err != nil {
		return 0, 0, err
	}
	items := make([]core.EventEnvelope, len(events))
	for i, ev := range events {
		items[i] = core.EventEnvelope{Event: ev}
	}
	body, err := json.Marshal(map[string]any{"peer": n.Info(), "events": items, "traceparent": core.Traceparent(ctx)})
	if err != nil {
		return 0, 0, fmt.Errorf("encode ingest: %w", err)
	}
	var out struct {
		Accepted int `json:"accepted"`
		Rejected int `json:"rejected"`
	}
	if err := n.callPeer(ctx, a, peer, "ingest", http.MethodPost, "/v1/federation/events:ingest", body, &out); err != nil {
		return 0, 0, err
	}
	return out.Accepted, out.Rejected, nil
}
