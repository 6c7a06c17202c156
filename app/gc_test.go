package app

import "testing"

func TestGCPercentFor_KeepsHeadroomWithinBounds(t *testing.T) {
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{0, 32 << 20, 400},        // nothing live yet: the most headroom
		{2 << 20, 32 << 20, 400},  // 1600% would be needed: capped at 400
		{8 << 20, 32 << 20, 400},  // 32 MiB on top of 8 MiB live
		{16 << 20, 32 << 20, 200}, // 32 MiB on top of 16 MiB live
		{64 << 20, 32 << 20, 100}, // past the floor: the runtime's default
		{1 << 30, 32 << 20, 100},  // a large heap is never let grow more than the default lets it
	} {
		if got := gcPercentFor(c.live, c.headroom); got != c.want {
			t.Errorf("gcPercentFor(%d MiB live, %d MiB) = %d, want %d", c.live>>20, c.headroom>>20, got, c.want)
		}
	}
}
