package core

import (
	"context"
	"fmt"
	"time"
)

// Federation capability names of CONTRACT.md §5.1, as a target selector's
// required_capabilities names them.
const (
	CapRunsForward     = "runs_forward"
	CapEventsStream    = "events_stream"
	CapTenantIsolation = "tenant_isolation"
	CapToolHosting     = "tool_hosting"
)

// Peer is one entry of a node's peer registry (§5.4): who the peer is, where
// its federation router listens, the Ed25519 key its assertions must verify
// against, and the tenants this node accepts from it.
type Peer struct {
	StackID        string    `json:"stack_id"`
	FederationURL  string    `json:"federation_url"`
	StackAURL      string    `json:"stack_a_url,omitempty"`
	PublicKey      string    `json:"public_key"`
	Region         string    `json:"region,omitempty"`
	TrustedTenants []string  `json:"trusted_tenants"`
	CreatedAt      time.Time `json:"created_at,omitempty"`
	UpdatedAt      time.Time `json:"updated_at,omitempty"`
}

// Trusts reports whether the peer may act for tenantID on this node.
func (p Peer) Trusts(tenantID string) bool {
	for _, t := range p.TrustedTenants {
		if t == tenantID || t == "*" {
			return true
		}
	}
	return false
}

// PeerEndpoints are the base URLs of a node's stacks.
type PeerEndpoints struct {
	StackABaseURL     string `json:"stack_a_base_url"`
	StackBBaseURL     string `json:"stack_b_base_url"`
	FederationBaseURL string `json:"federation_base_url,omitempty"`
}

// PeerBuild identifies the binary a node runs.
type PeerBuild struct {
	Version   string `json:"version"`
	GitSHA    string `json:"git_sha"`
	Timestamp string `json:"timestamp"`
}

// PeerInfo is the `peer` object of GET /v1/federation/peer (§5.1, §5.4).
type PeerInfo struct {
	StackID     string        `json:"stack_id"`
	Environment string        `json:"environment"`
	Region      string        `json:"region"`
	APIVersions []string      `json:"api_versions"`
	Endpoints   PeerEndpoints `json:"endpoints"`
	Build       PeerBuild     `json:"build"`
	PublicKey   string        `json:"public_key"`
}

// CapabilitySupports says which federation features a node offers.
type CapabilitySupports struct {
	RunsForward     bool `json:"runs_forward"`
	EventsStream    bool `json:"events_stream"`
	TenantIsolation bool `json:"tenant_isolation"`
	ToolHosting     bool `json:"tool_hosting"`
}

// Has reports whether the named capability (runs_forward, events_stream,
// tenant_isolation, tool_hosting) is supported; unknown names are not.
func (s CapabilitySupports) Has(name string) bool {
	switch name {
	case CapRunsForward:
		return s.RunsForward
	case CapEventsStream:
		return s.EventsStream
	case CapTenantIsolation:
		return s.TenantIsolation
	case CapToolHosting:
		return s.ToolHosting
	}
	return false
}

// CapabilityLimits are a node's federation-wide limits.
type CapabilityLimits struct {
	MaxConcurrentRuns int `json:"max_concurrent_runs"`
	MaxEventStreams   int `json:"max_event_streams"`
}

// CapabilityModels summarise the models a node can route to.
type CapabilityModels struct {
	Tiers            []string `json:"tiers"`
	Backends         []string `json:"backends"`
	MaxContextTokens int      `json:"max_context_tokens"`
}

// Capabilities is the `capabilities` object of GET
// /v1/federation/peer/capabilities (§5.1).
type Capabilities struct {
	Supports CapabilitySupports `json:"supports"`
	Limits   CapabilityLimits   `json:"limits"`
	Models   CapabilityModels   `json:"models"`
}

// PeerRegistryPort stores the peers a node trusts. Peers are node-level,
// not tenant data.
type PeerRegistryPort interface {
	// PutPeer creates or replaces the peer with p.StackID; created reports
	// which. invalid_request when stack_id is empty.
	PutPeer(ctx context.Context, p Peer) (created bool, err error)
	// GetPeer returns not_found for an unknown stack_id.
	GetPeer(ctx context.Context, stackID string) (Peer, error)
	// ListPeers returns every peer ordered by stack_id.
	ListPeers(ctx context.Context) ([]Peer, error)
	// DeletePeer removes a peer; not_found for an unknown stack_id.
	DeletePeer(ctx context.Context, stackID string) (Peer, error)
}

// ForwardRecord maps a tenant's idempotency key to the run a peer made for
// it, so one key never makes two remote runs.
type ForwardRecord struct {
	TenantID        string    `json:"tenant_id"`
	IdempotencyKey  string    `json:"idempotency_key"`
	RequestHash     string    `json:"request_hash"`
	PrincipalID     string    `json:"principal_id"`
	AgentID         string    `json:"agent_id"`
	RemoteStackID   string    `json:"remote_stack_id"`
	RemoteRunID     string    `json:"remote_run_id"`
	RemoteEventsURL string    `json:"remote_events_url"`
	Status          string    `json:"status"`
	CreatedAt       time.Time `json:"created_at"`
}

// ForwardIndexPort is the forwarding node's persistent record of forwards.
type ForwardIndexPort interface {
	// GetForward returns the record of (tenantID, idempotencyKey); found is
	// false when there is none.
	GetForward(ctx context.Context, tenantID, idempotencyKey string) (rec ForwardRecord, found bool, err error)
	// PutForward stores rec and its audit record in one transaction. When a
	// record for the key already exists it is kept and returned instead
	// (first writer wins), so callers always answer with the stored one.
	PutForward(ctx context.Context, rec ForwardRecord, audit *AuditRecord) (ForwardRecord, error)
	// ForwardByRemoteRun finds the record whose remote run is runID in
	// tenantID; not_found otherwise (also for another tenant's run).
	ForwardByRemoteRun(ctx context.Context, tenantID, runID string) (ForwardRecord, error)
}

// ReplayGuard remembers peer assertion ids (jti) until they expire.
type ReplayGuard interface {
	// MarkJTI records (issuer, jti) until exp and reports whether it was
	// unseen; false means a replay. Expired entries may be pruned.
	MarkJTI(ctx context.Context, issuer, jti string, exp time.Time) (fresh bool, err error)
}

// IngestOutcome is what the store did with one ingested event.
type IngestOutcome int

// Outcomes of IngestedEventsPort.PutEvents.
const (
	IngestStored    IngestOutcome = iota // new event, stored
	IngestDuplicate                      // same event_id already stored: accepted once
	IngestConflict                       // another event holds that run's sequence: rejected
)

// IngestEvents applies the ingest rule to events in order, inside the
// caller's transaction: an event whose event_id is stored is a duplicate
// (accepted once); else one whose run sequence already holds another event
// is a conflict; else it is stored. known reports whether an event_id is
// stored; putIfFree stores ev unless its run sequence is taken and reports
// whether it did. The first error stops the batch.
func IngestEvents(events []Event, known, putIfFree func(ev Event) (bool, error)) ([]IngestOutcome, error) {
	out := make([]IngestOutcome, len(events))
	for i, ev := range events {
		dup, err := known(ev)
		if err != nil {
			return nil, err
		}
		if dup {
			out[i] = IngestDuplicate
			continue
		}
		stored, err := putIfFree(ev)
		if err != nil {
			return nil, err
		}
		if !stored {
			out[i] = IngestConflict
			continue
		}
		out[i] = IngestStored
	}
	return out, nil
}

// IngestTx is an adapter's access, inside one transaction, to the events
// stored from peers: what IngestEvents asks of it.
type IngestTx interface {
	// Known reports whether ev's event_id is stored under its tenant.
	Known(ev Event) (bool, error)
	// PutIfFree stores ev unless its run's sequence already holds an
	// event, and reports whether it did.
	PutIfFree(ev Event) (bool, error)
}

// IngestTxFunc runs fn inside one of an adapter's write transactions,
// giving it that transaction's IngestTx. IngestedEventsPort.PutEvents is
// an IngestTxFunc's Ingest.
type IngestTxFunc func(fn func(IngestTx) error) error

// Ingest applies IngestEvents to events in one transaction: one outcome
// per event, in order, or an error and nothing stored.
func (run IngestTxFunc) Ingest(events []Event) ([]IngestOutcome, error) {
	var out []IngestOutcome
	err := run(func(tx IngestTx) error {
		var err error
		out, err = IngestEvents(events, tx.Known, tx.PutIfFree)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store ingested events: %w", err)
	}
	return out, nil
}

// IngestedEventsPort stores events that arrived from peers (ingest, or a
// relayed remote stream), tenant-scoped and deduplicated by event_id.
type IngestedEventsPort interface {
	// PutEvents stores events in one transaction (each under its own
	// tenant) and returns one outcome per event, in order.
	PutEvents(ctx context.Context, sourceStackID string, events []Event) ([]IngestOutcome, error)
	// ListIngestedEvents returns a run's stored events with sequence >
	// afterSeq in sequence order; empty (no error) when there are none.
	ListIngestedEvents(ctx context.Context, tenantID, runID string, afterSeq int64) ([]Event, error)
}
