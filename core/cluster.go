package core

import (
	"context"
	"time"
)

// Several nodes may share one store (PostgreSQL): they are one installation
// and differ only in their node id. The ports below are what a shared store
// adds to the single-node ones; a store that is only ever opened by one
// process (bbolt) implements none of them and the node keeps its
// single-node behaviour (it owns every run in its queue).

// MetaFederationKey is the Meta key holding a cluster's Ed25519 federation
// key (PKCS#8 PEM): every node of the cluster signs with it.
const MetaFederationKey = "federation_key"

// MetaInitPort initialises a meta value once for all nodes.
type MetaInitPort interface {
	// InitMeta stores value under key unless a value is already there and
	// returns the value in force, so nodes starting at the same moment
	// agree on one stack id and one key.
	InitMeta(ctx context.Context, key, value string) (string, error)
}

// RunLeasePort hands a shared store's runs to nodes: a node claims a run
// for lease and renews the lease while it holds it (queued locally or
// executing); a run whose lease has expired (its node died) may be
// claimed by any node. Lease times are the store's clock, so nodes'
// clocks need not agree.
type RunLeasePort interface {
	// ClaimRun claims one non-terminal run for node unless another node
	// holds a live lease on it, or maxHeld (> 0) of the tenant's other
	// runs are held with a live lease already (by any node: the tenant's
	// max_concurrent_runs across the cluster); ok reports whether node
	// holds it now. Claims of one tenant are serialised, so nodes claiming
	// at once never hold more than maxHeld together.
	ClaimRun(ctx context.Context, node, tenantID, runID string, lease time.Duration, maxHeld int) (bool, error)
	// ClaimRuns claims up to limit non-terminal runs that nobody holds or
	// whose lease expired (and, with own, those node itself held before a
	// restart), oldest first, and returns them. With capOf, a tenant's
	// runs are claimed only while fewer than capOf(tenant) (> 0) of its
	// runs are held, as in ClaimRun.
	ClaimRuns(ctx context.Context, node string, lease time.Duration, limit int, own bool, capOf func(tenantID string) int) ([]RunRef, error)
	// RenewLeases extends node's leases on runIDs and returns the ids it no
	// longer holds (taken over by another node or terminal).
	RenewLeases(ctx context.Context, node string, runIDs []string, lease time.Duration) ([]string, error)
	// ReleaseRuns gives up node's leases on runIDs (graceful shutdown) so
	// another node may claim them at once.
	ReleaseRuns(ctx context.Context, node string, runIDs []string) error
}

// NodeRegistryPort records the live nodes of a shared store.
type NodeRegistryPort interface {
	// BeatNode records n as alive now (its URLs and start time).
	BeatNode(ctx context.Context, n NodeInfo) error
	// LiveNodes lists the nodes seen within the last window, each with the
	// runs it holds a live lease on, ordered by node id.
	LiveNodes(ctx context.Context, window time.Duration) ([]NodeInfo, error)
}

// Run notice kinds.
const (
	// NoticeEvents: events of the run up to Sequence are committed.
	NoticeEvents = "events"
	// NoticeCancel: the run was canceled; its executor must stop.
	NoticeCancel = "cancel"
)

// RunNotice tells every node of a shared store that a run changed.
type RunNotice struct {
	Kind     string
	TenantID string
	RunID    string
	Sequence int64
}

// RunNoticePort delivers the notices a shared store sends when run events
// commit (in the committing transaction, so a notice never precedes its
// data) and when a run is canceled.
type RunNoticePort interface {
	// ListenRuns calls fn for every notice until ctx ends, reconnecting
	// after a lost connection; ready (if not nil) is called each time the
	// listener is (re)connected, since notices sent while it was away are
	// lost and the caller must look at the store again.
	ListenRuns(ctx context.Context, fn func(RunNotice), ready func()) error
}

// NodeInfo is one live node of a cluster as operators see it.
type NodeInfo struct {
	NodeID       string    `json:"node_id"`
	StackAURL    string    `json:"stack_a_url,omitempty"`
	StartedAt    time.Time `json:"started_at"`
	LastSeen     time.Time `json:"last_seen"`
	RunsInFlight int       `json:"runs_in_flight"`
}
