package operator

import (
	"io"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/rs/zerolog"
)

// logBuffer batches the node's log lines into few large writes. Every
// answered request logs a line; written straight to stderr, each line was
// a system call under the file's write lock, and under load hundreds of
// request goroutines queued on it. Lines collect here (a short critical
// section on a memory append) and reach the writer when the buffer passes
// flushAt, every interval, on a warning or worse at once, and on Close.
type logBuffer struct {
	w       io.Writer
	mu      sync.Mutex
	buf     []byte
	spare   []byte
	flushMu sync.Mutex // one writer to w at a time, in order
	flushAt int
	flusher *core.Flusher
}

func newLogBuffer(w io.Writer, interval time.Duration) *logBuffer {
	b := &logBuffer{w: w, flushAt: 32 << 10}
	b.flusher = core.StartFlusher(interval, b.Flush)
	return b
}

// Write queues p (one log line).
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.buf = append(b.buf, p...)
	full := len(b.buf) >= b.flushAt
	b.mu.Unlock()
	if full {
		b.Flush()
	}
	return len(p), nil
}

// WriteLevel implements zerolog.LevelWriter: warnings and errors are
// written through at once, with everything queued before them.
func (b *logBuffer) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	n, err := b.Write(p)
	if l >= zerolog.WarnLevel && l != zerolog.NoLevel {
		b.Flush()
	}
	return n, err
}

// Flush writes everything queued so far.
func (b *logBuffer) Flush() {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	out := b.buf
	b.buf = b.spare[:0]
	b.mu.Unlock()
	if len(out) > 0 {
		_, _ = b.w.Write(out)
	}
	b.mu.Lock()
	if cap(out) <= 1<<20 {
		b.spare = out[:0]
	}
	b.mu.Unlock()
}

// Close flushes and stops the timer; later writes go straight through.
func (b *logBuffer) Close() {
	b.flusher.Stop()
	b.mu.Lock()
	b.flushAt = 0
	b.mu.Unlock()
}
