package stackb

import (
	"context"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/rs/zerolog"
)

// auditWriter takes audit records off the request path: records queue in
// memory and a flusher appends them concurrently, so the store's batched
// transactions give them one fsync per flush instead of one per request.
type auditWriter struct {
	port     core.AuditPort
	log      zerolog.Logger
	mu       sync.Mutex
	buf      []core.AuditRecord
	flushMu  sync.Mutex
	stop     chan struct{}
	done     chan struct{}
	interval time.Duration
}

func newAuditWriter(port core.AuditPort, log zerolog.Logger, interval time.Duration) *auditWriter {
	w := &auditWriter{port: port, log: log, stop: make(chan struct{}), done: make(chan struct{}), interval: interval}
	go w.loop()
	return w
}

func (w *auditWriter) add(rec core.AuditRecord) {
	if w.port == nil {
		return
	}
	if rec.Time.IsZero() {
		rec.Time = core.Now()
	}
	w.mu.Lock()
	w.buf = append(w.buf, rec)
	w.mu.Unlock()
}

func (w *auditWriter) loop() {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.flush()
		case <-w.stop:
			w.flush()
			return
		}
	}
}

// flush appends everything queued so far; it returns when it is stored.
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
	sem := make(chan struct{}, 128)
	var wg sync.WaitGroup
	for _, rec := range recs {
		sem <- struct{}{}
		wg.Add(1)
		go func(rec core.AuditRecord) {
			defer func() { <-sem; wg.Done() }()
			if _, err := w.port.AppendAudit(context.Background(), rec); err != nil {
				w.log.Error().Err(err).Str("tenant_id", rec.TenantID).Str("action", rec.Action).Msg("audit append failed")
			}
		}(rec)
	}
	wg.Wait()
}

func (w *auditWriter) close() {
	close(w.stop)
	<-w.done
}
