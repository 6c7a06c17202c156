package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// Federation keys.
//
// Tenant data (CONTRACT §6 layout):
//
//	tenant/{tid}/federation/forwards/{sha256(idempotency key)}  ForwardRecord
//	tenant/{tid}/federation/remote_runs/{remote_run_id}          → forwards key suffix
//	tenant/{tid}/federation/runs/{run_id}/events/{sequence}      ingested Event
//	tenant/{tid}/federation/event_ids/{event_id}                 → sequence key
//
// Node-level data (not tenant-owned) in the index bucket:
//
//	fed_peer/{stack_id}     Peer
//	fed_jti/{iss}/{jti}     8-byte big-endian unix expiry
var (
	_ core.PeerRegistryPort   = (*Store)(nil)
	_ core.ForwardIndexPort   = (*Store)(nil)
	_ core.ReplayGuard        = (*Store)(nil)
	_ core.IngestedEventsPort = (*Store)(nil)
)

func peerKey(stackID string) []byte { return []byte("fed_peer/" + stackID) }

// PutPeer implements core.PeerRegistryPort.
func (s *Store) PutPeer(ctx context.Context, p core.Peer) (bool, error) {
	if p.StackID == "" {
		return false, core.Invalid("peer.stack_id", "stack_id is required")
	}
	created := false
	err := s.update(ctx, func(tx *bolt.Tx) error {
		_, found, err := replaceJSON(Index(tx), peerKey(p.StackID), func(prev *core.Peer) core.Peer {
			return core.NextPeer(prev, p, core.Now())
		})
		created = !found
		return err
	})
	return created, err
}

// GetPeer implements core.PeerRegistryPort.
func (s *Store) GetPeer(ctx context.Context, stackID string) (core.Peer, error) {
	return getOne[core.Peer](s, Index, peerKey(stackID), "peer", stackID)
}

// ListPeers implements core.PeerRegistryPort.
func (s *Store) ListPeers(ctx context.Context) ([]core.Peer, error) {
	return listJSON[core.Peer](s, Index, []byte("fed_peer/"))
}

// DeletePeer implements core.PeerRegistryPort.
func (s *Store) DeletePeer(ctx context.Context, stackID string) (core.Peer, error) {
	var p core.Peer
	err := s.update(ctx, func(tx *bolt.Tx) error {
		found, err := getJSON(Index(tx), peerKey(stackID), &p)
		if err != nil {
			return err
		}
		if !found {
			return core.NotFound("peer", stackID)
		}
		return Index(tx).Delete(peerKey(stackID))
	})
	return p, err
}

// idemDigest keeps arbitrary idempotency keys (up to 256 chars, any bytes)
// out of the key path.
func idemDigest(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

func forwardKey(tenantID, idemKey string) []byte {
	return TenantKey(tenantID, "federation", "forwards", idemDigest(idemKey))
}

func remoteRunKey(tenantID, runID string) []byte {
	return TenantKey(tenantID, "federation", "remote_runs", runID)
}

// GetForward implements core.ForwardIndexPort.
func (s *Store) GetForward(ctx context.Context, tenantID, idemKey string) (core.ForwardRecord, bool, error) {
	var rec core.ForwardRecord
	var found bool
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		found, err = getJSON(Data(tx), forwardKey(tenantID, idemKey), &rec)
		return err
	})
	return rec, found, err
}

// PutForward implements core.ForwardIndexPort.
func (s *Store) PutForward(ctx context.Context, rec core.ForwardRecord, audit *core.AuditRecord) (core.ForwardRecord, error) {
	if rec.TenantID == "" || rec.IdempotencyKey == "" || rec.RemoteRunID == "" {
		return rec, fmt.Errorf("put forward: tenant_id, idempotency_key and remote_run_id are required")
	}
	out := rec
	err := s.update(ctx, func(tx *bolt.Tx) error {
		key := forwardKey(rec.TenantID, rec.IdempotencyKey)
		var old core.ForwardRecord
		found, err := getJSON(Data(tx), key, &old)
		if err != nil {
			return err
		}
		if found {
			out = old
			return nil
		}
		if rec.CreatedAt.IsZero() {
			rec.CreatedAt = core.Now()
		}
		out = rec
		if err := putJSON(Data(tx), key, rec); err != nil {
			return err
		}
		if err := Data(tx).Put(remoteRunKey(rec.TenantID, rec.RemoteRunID), []byte(idemDigest(rec.IdempotencyKey))); err != nil {
			return err
		}
		return appendAuditIf(tx, audit)
	})
	return out, err
}

// ForwardByRemoteRun implements core.ForwardIndexPort.
func (s *Store) ForwardByRemoteRun(ctx context.Context, tenantID, runID string) (core.ForwardRecord, error) {
	var rec core.ForwardRecord
	err := s.view(func(tx *bolt.Tx) error {
		digest := Data(tx).Get(remoteRunKey(tenantID, runID))
		if digest == nil {
			return core.NotFound("run", runID)
		}
		found, err := getJSON(Data(tx), TenantKey(tenantID, "federation", "forwards", string(digest)), &rec)
		if err != nil {
			return err
		}
		if !found {
			return core.NotFound("run", runID)
		}
		return nil
	})
	return rec, err
}

func jtiKey(issuer, jti string) []byte { return []byte("fed_jti/" + issuer + "/" + jti) }

// MarkJTI implements core.ReplayGuard. Each call also prunes a few expired
// entries, so the set stays about as large as the assertions alive.
func (s *Store) MarkJTI(ctx context.Context, issuer, jti string, exp time.Time) (bool, error) {
	fresh := false
	now := time.Now().Unix()
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		fresh = false
		key := jtiKey(issuer, jti)
		if v := Index(tx).Get(key); v != nil && len(v) == 8 && int64(binary.BigEndian.Uint64(v)) >= now {
			return nil
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(exp.Unix()))
		if err := Index(tx).Put(key, buf[:]); err != nil {
			return err
		}
		fresh = true
		return pruneJTIs(Index(tx), now, 16)
	})
	return fresh, err
}

func pruneJTIs(b *bolt.Bucket, now int64, max int) error {
	var expired [][]byte
	scanPrefix(b, []byte("fed_jti/"), false, func(k, v []byte) bool {
		if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < now {
			expired = append(expired, append([]byte{}, k...))
		}
		return len(expired) < max
	})
	for _, k := range expired {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func ingestedEventKey(tenantID, runID string, seq int64) []byte {
	return TenantKey(tenantID, "federation", "runs", runID, "events", SeqKey(seq))
}

func ingestedIDKey(tenantID, eventID string) []byte {
	return TenantKey(tenantID, "federation", "event_ids", eventID)
}

// ingestTx is core.IngestTx on a bbolt transaction: an event lives at
// its run's sequence, and its event_id names that key.
type ingestTx struct{ d *bolt.Bucket }

func (t ingestTx) Known(ev core.Event) (bool, error) {
	return t.d.Get(ingestedIDKey(ev.TenantID, ev.EventID)) != nil, nil
}

func (t ingestTx) PutIfFree(ev core.Event) (bool, error) {
	key := ingestedEventKey(ev.TenantID, ev.RunID, ev.Sequence)
	if t.d.Get(key) != nil {
		return false, nil
	}
	if err := putJSON(t.d, key, ev); err != nil {
		return false, err
	}
	return true, t.d.Put(ingestedIDKey(ev.TenantID, ev.EventID), key)
}

// PutEvents implements core.IngestedEventsPort. Callers already send
// chunks (an ingest body, or a relay's coalesced backlog), so this commits
// at once rather than wait out bbolt's batch delay: while one chunk
// commits, the next one grows.
func (s *Store) PutEvents(ctx context.Context, sourceStackID string, events []core.Event) ([]core.IngestOutcome, error) {
	return core.IngestTxFunc(func(fn func(core.IngestTx) error) error {
		return s.update(ctx, func(tx *bolt.Tx) error { return fn(ingestTx{Data(tx)}) })
	}).Ingest(events)
}

// ListIngestedEvents implements core.IngestedEventsPort.
func (s *Store) ListIngestedEvents(ctx context.Context, tenantID, runID string, afterSeq int64) ([]core.Event, error) {
	out := []core.Event{}
	var derr error
	prefix := TenantKey(tenantID, "federation", "runs", runID, "events", "")
	start := ingestedEventKey(tenantID, runID, afterSeq+1)
	err := s.view(func(tx *bolt.Tx) error {
		c := Data(tx).Cursor()
		for k, v := c.Seek(start); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			var ev core.Event
			if err := json.Unmarshal(v, &ev); err != nil {
				derr = fmt.Errorf("decode %s: %w", k, err)
				return derr
			}
			out = append(out, ev)
		}
		return nil
	})
	if err == nil {
		err = derr
	}
	return out, err
}
