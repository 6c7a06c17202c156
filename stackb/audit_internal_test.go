package stackb

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/rs/zerolog"
)

// flakyAudit is an AuditPort that refuses batches while down and records
// what it stored, batch by batch.
type flakyAudit struct {
	core.AuditPort
	mu      sync.Mutex
	down    bool
	batches [][]core.AuditRecord
}

func (f *flakyAudit) AppendAudits(_ context.Context, recs []core.AuditRecord) ([]core.AuditRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errors.New("store unavailable")
	}
	f.batches = append(f.batches, append([]core.AuditRecord(nil), recs...))
	return recs, nil
}

// A flush is one AppendAudits of everything queued; a refused flush keeps
// the records, in order, for the next one.
func TestAuditWriter_OneBatchPerFlushAndRetryKeepsOrder(t *testing.T) {
	port := &flakyAudit{down: true}
	w := newAuditWriter(port, zerolog.Nop(), time.Hour)
	defer w.close()
	for i := 0; i < 5; i++ {
		w.add(core.AuditRecord{TenantID: "tnt_a", Action: "model.invoke", ObjectID: string(rune('a' + i))})
	}
	w.add(core.AuditRecord{Action: "no tenant"}) // dropped, never poisons a batch
	w.flush()
	if len(port.batches) != 0 {
		t.Fatalf("stored while down: %v", port.batches)
	}
	for i := 5; i < 8; i++ {
		w.add(core.AuditRecord{TenantID: "tnt_a", Action: "model.invoke", ObjectID: string(rune('a' + i))})
	}
	port.mu.Lock()
	port.down = false
	port.mu.Unlock()
	w.flush()
	if len(port.batches) != 1 || len(port.batches[0]) != 8 {
		t.Fatalf("want one batch of 8 after recovery, got %d batches %v", len(port.batches), port.batches)
	}
	for i, rec := range port.batches[0] {
		if rec.ObjectID != string(rune('a'+i)) || rec.Time.IsZero() {
			t.Fatalf("record %d: %+v (order or time lost)", i, rec)
		}
	}
}
