package store_test

import (
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

func TestUsagePeriod(t *testing.T) {
	at := time.Date(2026, 11, 25, 17, 30, 59, 0, time.FixedZone("x", 3600))
	for w, want := range map[string]string{core.WindowDay: "2026-11-25", core.WindowHour: "2026-11-25T16", core.WindowMinute: "2026-11-25T16:30"} {
		if got := core.UsagePeriod(w, at); got != want {
			t.Errorf("UsagePeriod(%s) = %s, want %s", w, got, want)
		}
	}
}
