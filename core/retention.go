package core

import (
	"context"
	"time"

	"github.com/oklog/ulid/v2"
)

// Retention: how long the records a node writes per request are kept.
// The kinds are a tenant's audit records, its usage detail (the minute
// and hour ledger entries and the stored model answers replayed by
// request_id; daily entries are kept), and its finished runs with their
// events and idempotency keys. A sweeper removes what passed its time in
// small batches through RetentionPort; the rules of what may go are here,
// so every adapter removes the same records.

// Retention is how long each kind of record stays, in days; 0 keeps it.
type Retention struct {
	AuditDays       int `json:"audit_days"`
	UsageDetailDays int `json:"usage_detail_days"`
	RunsDays        int `json:"runs_days"`
}

// DefaultRetention is the node's default when nothing is configured.
var DefaultRetention = Retention{AuditDays: 90, UsageDetailDays: 30, RunsDays: 30}

// MinRetentionDays is the shortest retention a setting may ask for: an
// idempotency key (a run's, or a model request_id's) is honoured for at
// least this long, since it goes with the record it points at.
const MinRetentionDays = 1

// MaxRetentionDays bounds a setting (100 years) so day arithmetic cannot
// overflow.
const MaxRetentionDays = 36500

// RetentionQuotas is the tenant's override of the node's retention
// (quotas.retention); nil fields take the node's setting.
type RetentionQuotas struct {
	AuditDays       *int `json:"audit_days,omitempty"`
	UsageDetailDays *int `json:"usage_detail_days,omitempty"`
	RunsDays        *int `json:"runs_days,omitempty"`
}

// EffectiveRetention is the tenant's retention: its quotas.retention
// fields over the node's.
func (t Tenant) EffectiveRetention(node Retention) Retention {
	r := node
	if q := t.Quotas.Retention; q != nil {
		setInt(&r.AuditDays, q.AuditDays)
		setInt(&r.UsageDetailDays, q.UsageDetailDays)
		setInt(&r.RunsDays, q.RunsDays)
	}
	return r
}

// SweepCutoffs are the instants before which a tenant's records may go;
// a zero instant keeps that kind.
type SweepCutoffs struct {
	Audit       time.Time
	UsageDetail time.Time
	Runs        time.Time
}

// Cutoffs turns r into instants before now. A setting below
// MinRetentionDays counts as MinRetentionDays; 0 keeps the kind.
func (r Retention) Cutoffs(now time.Time) SweepCutoffs {
	at := func(days int) time.Time {
		if days <= 0 {
			return time.Time{}
		}
		days = max(days, MinRetentionDays)
		days = min(days, MaxRetentionDays)
		return now.UTC().Add(-time.Duration(days) * 24 * time.Hour)
	}
	return SweepCutoffs{Audit: at(r.AuditDays), UsageDetail: at(r.UsageDetailDays), Runs: at(r.RunsDays)}
}

// SweptRun is what a sweep reads of a stored run document: enough to
// decide whether the run goes (Sweepable) and to remove its index entries
// and idempotency key with it. Every adapter decodes a run into it, so the
// fields a sweep depends on are named once.
type SweptRun struct {
	Status         string     `json:"status"`
	CompletedAt    *time.Time `json:"completed_at"`
	AgentID        string     `json:"agent_id"`
	PrincipalID    string     `json:"principal_id"`
	IdempotencyKey string     `json:"idempotency_key"`
}

// Sweepable says whether the run may be removed by a sweep with cutoff:
// only a finished run (completed, failed or canceled) that finished
// before it. A queued or running run is never removed, whatever its age.
func (r SweptRun) Sweepable(cutoff time.Time) bool {
	if cutoff.IsZero() || !RunTerminal(r.Status) || r.CompletedAt == nil {
		return false
	}
	return r.CompletedAt.Before(cutoff)
}

// AuditSweepable says whether an audit record of time at may be removed.
// Records go oldest first and a sweep stops at the first record it keeps,
// so what remains is always an unbroken tail of the chain.
func AuditSweepable(at, cutoff time.Time) bool {
	return !cutoff.IsZero() && at.Before(cutoff)
}

// UsagePeriodSweepable says whether the ledger entry of window and period
// is usage detail past cutoff: minute and hour entries whose period
// began before the cutoff's hour. Daily entries are kept.
func UsagePeriodSweepable(window, period string, cutoff time.Time) bool {
	if cutoff.IsZero() || (window != WindowMinute && window != WindowHour) {
		return false
	}
	return period < UsagePeriod(WindowHour, cutoff)
}

// IDFloor is the smallest id of prefix minted at t: every id minted
// before t's millisecond sorts below it (adapters bound scans with it).
func IDFloor(prefix string, t time.Time) string {
	var id ulid.ULID
	_ = id.SetTime(ulid.Timestamp(t))
	return prefix + "_" + id.String()
}

// IDAt returns a new id of prefix whose time part is t (imports and test
// fixtures that need records of a given age).
func IDAt(prefix string, t time.Time) string {
	return prefix + "_" + ulid.MustNew(ulid.Timestamp(t), ulid.DefaultEntropy()).String()
}

// AuditAnchor is where a tenant's audit chain starts after retention
// removed its oldest records: the hash, id and time of the newest record
// removed, and how many were removed in all. The first record kept has
// PrevHash == Hash, so the chain is still proven from there.
type AuditAnchor struct {
	TenantID string    `json:"tenant_id"`
	Hash     string    `json:"hash"`
	AuditID  string    `json:"audit_id"`
	Time     time.Time `json:"time"`
	Removed  int64     `json:"removed"`
}

// Advance moves the anchor past rec, a record being removed.
func (a AuditAnchor) Advance(rec AuditRecord) AuditAnchor {
	a.TenantID, a.Hash, a.AuditID, a.Time = rec.TenantID, rec.Hash, rec.AuditID, rec.Time
	a.Removed++
	return a
}

// From starts the check at anchor: the first record must follow it.
func (c *AuditChainCheck) From(anchor AuditAnchor) { c.prev = anchor.Hash }

// SweepResult counts what one sweep call removed; More is set when the
// limit stopped it before everything due was removed.
type SweepResult struct {
	Runs    int  `json:"runs"`
	Events  int  `json:"events"`
	Audit   int  `json:"audit"`
	Usage   int  `json:"usage"`
	Replays int  `json:"replays"`
	More    bool `json:"-"`
}

// Add sums two results.
func (r SweepResult) Add(o SweepResult) SweepResult {
	return SweepResult{Runs: r.Runs + o.Runs, Events: r.Events + o.Events, Audit: r.Audit + o.Audit,
		Usage: r.Usage + o.Usage, Replays: r.Replays + o.Replays, More: r.More || o.More}
}

// Total is how many records r removed.
func (r SweepResult) Total() int { return r.Runs + r.Events + r.Audit + r.Usage + r.Replays }

// RetentionPort removes a tenant's records past their retention. Every
// call is one short transaction, so a sweep never holds the store for
// long and a sweep cut off mid-way leaves a consistent store.
type RetentionPort interface {
	// SweepTenant removes, in one transaction, at most about
	// SweepBudget(limit) of
	// tenantID's records older than c (each kind by its own cutoff, by
	// the rules above): finished runs with their events, idempotency key
	// and index entries; the oldest audit records, moving the tenant's
	// AuditAnchor past them in the same transaction; minute and hour
	// ledger entries and stored model answers. It touches only tenantID's
	// keys. More reports that records due remain. When the call removed
	// something and audit is not nil, the record audit returns for what
	// was removed is appended to tenantID's chain in the same
	// transaction, so no removal goes unaudited, even if the process dies
	// right after.
	SweepTenant(ctx context.Context, tenantID string, c SweepCutoffs, limit int, audit func(SweepResult) *AuditRecord) (SweepResult, error)
	// AuditAnchor returns where tenantID's chain starts (the zero anchor
	// when no record was ever removed). VerifyAudit starts from it.
	AuditAnchor(ctx context.Context, tenantID string) (AuditAnchor, error)
}

// SweepLocker is implemented by storage that several nodes share: only
// the node holding the lock sweeps. TrySweepLock returns ok=false when
// another node holds it; release gives it back.
type SweepLocker interface {
	TrySweepLock(ctx context.Context) (release func(), ok bool, err error)
}

// SweepBudget is how many records one SweepTenant call may remove for
// limit: 1000 when it is not positive.
func SweepBudget(limit int) int {
	if limit <= 0 {
		return 1000
	}
	return limit
}
