package core

import (
	"context"
	"io"
)

// MetaPort holds node-level settings that are not tenant data: the stack
// id, the federation identity of a cluster, the schema version. Keys are
// short ASCII names; values are opaque strings.
type MetaPort interface {
	// GetMeta returns the value of key, "" when it was never set.
	GetMeta(ctx context.Context, key string) (string, error)
	// SetMeta stores value under key, replacing any earlier value.
	SetMeta(ctx context.Context, key, value string) error
}

// Storage is everything a node keeps: every storage port plus the hooks
// the node itself needs (readiness, a description for reports, backup and
// close). app opens one Storage from configuration and hands its ports to
// the stacks; nothing outside app knows which adapter it is.
//
// Adapters only store and load: the rules of what may change (sequencing,
// envelopes, cancel and terminal states, idempotency, the audit chain,
// quotas) are the functions of this package that every adapter calls (see
// runrules.go, auditchain.go), so two adapters cannot disagree on them.
// conformance.RunStorageSuite is the test every adapter must pass.
type Storage interface {
	TenantPort
	TokenPort
	AuditPort
	AgentPort
	ToolRegistryPort
	RunStatePort
	QueuePort
	MemoryPort
	UsagePort
	PeerRegistryPort
	ForwardIndexPort
	ReplayGuard
	IngestedEventsPort
	MetaPort
	RetentionPort
	LimitsPort

	// Ping proves the storage can commit a write now (readiness). When it
	// cannot be reached it returns dependency_unavailable.
	Ping(ctx context.Context) error
	// Describe names the storage for reports and logs ("bbolt
	// /var/lib/agentos/agentos.db", "postgres://agentos@db:5432/agentos"),
	// never a password.
	Describe() string
	// Backup writes a consistent copy of everything to w and returns the
	// bytes written; adapters whose database has its own backup tooling
	// return invalid_request naming it.
	Backup(ctx context.Context, w io.Writer) (int64, error)
	// Close releases files and connections.
	Close() error
}

// Meta keys every adapter stores.
const (
	// MetaStackID is the node's (or cluster's) stable stack id.
	MetaStackID = "stack_id"
)
