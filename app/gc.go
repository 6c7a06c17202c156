package app

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/agentos/agentos/core"
)

// GCHeadroom is the least garbage a serving node lets accumulate between
// collections. Go's default (GOGC=100) collects when the heap doubles; a
// node under load keeps only a few MiB live (the in-flight requests and
// caches), so doubling meant a collection every few MiB allocated: at
// 1,000 proxied requests/s the collector and its write barriers took a
// fifth of the node's CPU. With a floor of 32 MiB the collector runs up to
// four times less often while live memory is small, and behaves as
// the default once live memory passes the floor (GOGC never below 100),
// so a large heap is not let to grow more than the default lets it.
const GCHeadroom = 32 << 20

// TuneGC keeps at least headroom bytes of allocation between collections
// for as long as ctx lives, by setting GOGC from the live heap after each
// change of it (checked every interval): GOGC = 100·headroom/live, between
// 100 and 400. It does nothing when the operator set GOGC or GOMEMLIMIT in
// the environment: their choice stands. The serve command calls it; nodes
// opened in tests keep the runtime's default.
func TuneGC(ctx context.Context, headroom uint64, interval time.Duration) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" || headroom == 0 {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	last := -1
	apply := func() {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		if pct := gcPercentFor(sample[0].Value.Uint64(), headroom); pct != last {
			debug.SetGCPercent(pct)
			last = pct
		}
	}
	apply()
	go func() {
		core.Every(ctx, 0, interval, func(context.Context) bool {
			apply()
			return true
		})
		debug.SetGCPercent(100)
	}()
}

// gcPercentFor is the GOGC that lets headroom bytes be allocated on top of
// live before the next collection, kept between 100 (the default) and 400 (at
// most five times the live heap).
func gcPercentFor(live, headroom uint64) int {
	if live == 0 {
		return 400
	}
	pct := headroom * 100 / live
	return int(max(100, min(400, pct)))
}
