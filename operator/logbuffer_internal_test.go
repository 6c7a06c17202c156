package operator

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/internal/testkit"
	"github.com/rs/zerolog"
)

type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines written concurrently all arrive whole, in far fewer writes.
func TestLogBuffer_ConcurrentLinesArriveWholeAndBatched(t *testing.T) {
	var out lockedBuffer
	b := newLogBuffer(&out, time.Hour)
	log := zerolog.New(b)
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				log.Info().Int("w", w).Int("i", i).Msg("request")
			}
		}()
	}
	wg.Wait()
	b.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != workers*each {
		t.Fatalf("%d lines, want %d", len(lines), workers*each)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if !strings.HasPrefix(l, `{"level":"info","w":`) || !strings.HasSuffix(l, `"message":"request"}`) || seen[l] {
			t.Fatalf("torn or repeated line %q", l)
		}
		seen[l] = true
	}
	if out.writes > workers*each/10 {
		t.Fatalf("%d writes for %d lines: not batched", out.writes, len(lines))
	}
}

// A warning goes out at once, after everything queued before it; the
// timer flushes the rest.
func TestLogBuffer_WarnFlushesAtOnceAndTimerFlushes(t *testing.T) {
	var out lockedBuffer
	b := newLogBuffer(&out, 20*time.Millisecond)
	defer b.Close()
	log := zerolog.New(b)
	log.Info().Msg("first")
	log.Warn().Msg("second")
	if got := out.String(); got != "{\"level\":\"info\",\"message\":\"first\"}\n{\"level\":\"warn\",\"message\":\"second\"}\n" {
		t.Fatalf("after a warning: %q", got)
	}
	log.Info().Msg("third")
	testkit.WaitFor(t, "the timer to flush an info line", 5*time.Second, func() bool { return strings.Contains(out.String(), "third") })
	b.Close()
	log.Info().Msg(fmt.Sprint("after close"))
	if !strings.Contains(out.String(), "after close") {
		t.Fatal("a line after Close was not written through")
	}
}
