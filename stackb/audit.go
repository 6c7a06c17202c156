package stackb

import (
	"context"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/rs/zerolog"
)

// auditWriter takes audit records off the request path: records queue in
// memory and a flusher stores each queue with one AppendAudits, so a
// flush is one transaction and one fsync however many requests it covers.
// A failed flush (the store unavailable) keeps the records queued for the
// next one, up to maxQueuedAudit records.
type auditWriter struct {
	port    core.AuditPort
	log     zerolog.Logger
	mu      sync.Mutex
	buf     []core.AuditRecord
	flushMu sync.Mutex
	flusher *core.Flusher
}

// maxQueuedAudit bounds the records held while the store refuses writes;
// past it the oldest are dropped, each drop logged.
const maxQueuedAudit = 100_000

func newAuditWriter(port core.AuditPort, log zerolog.Logger, interval time.Duration) *auditWriter {
	w := &auditWriter{port: port, log: log}
	w.flusher = core.StartFlusher(interval, w.flush)
	return w
}

func (w *auditWriter) add(rec core.AuditRecord) {
	if w.port == nil {
		return
	}
	if rec.TenantID == "" {
		// It could never be stored, and would fail the batch it is in.
		w.log.Error().Str("action", rec.Action).Msg("audit record without tenant_id dropped")
		return
	}
	if rec.Time.IsZero() {
		rec.Time = core.Now()
	}
	w.mu.Lock()
	w.buf = append(w.buf, rec)
	w.mu.Unlock()
}

// flush appends everything queued so far in one transaction; it returns
// when it is stored (or has failed and is queued again).
func (w *auditWriter) flush() {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	recs := w.buf
	w.buf = nil
	w.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	if _, err := w.port.AppendAudits(context.Background(), recs); err != nil {
		w.log.Error().Err(err).Int("records", len(recs)).Msg("audit flush failed; will retry")
		w.mu.Lock()
		w.buf = append(recs, w.buf...)
		if over := len(w.buf) - maxQueuedAudit; over > 0 {
			w.log.Error().Int("records", over).Msg("audit queue full while the store refuses writes; oldest records dropped")
			w.buf = append(w.buf[:0:0], w.buf[over:]...)
		}
		w.mu.Unlock()
	}
}

func (w *auditWriter) close() { w.flusher.Stop() }
