package testkit

import (
	"sync/atomic"
	"testing"
)

// Every f(i) runs exactly once, and AtOnce returns only after all of them.
func TestAtOnce_RunsEachOnceAndWaits(t *testing.T) {
	const n = 50
	var ran [n]atomic.Int32
	AtOnce(n, func(i int) { ran[i].Add(1) })
	for i := range ran {
		if got := ran[i].Load(); got != 1 {
			t.Fatalf("f(%d) ran %d times", i, got)
		}
	}
}
