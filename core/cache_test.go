package core_test

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// A value lives its TTL by the cache's clock, then is read again.
func TestCache_EntriesExpire(t *testing.T) {
	clock := time.Unix(1000, 0)
	c := core.NewCache[string, int](time.Second, 10, func() time.Time { return clock })
	reads := 0
	load := func() (int, error) { reads++; return 7, nil }
	for range 3 {
		if v, err := c.Load("k", load); v != 7 || err != nil {
			t.Fatalf("Load: %d, %v", v, err)
		}
	}
	clock = clock.Add(time.Second)
	if _, ok := c.Get("k"); ok {
		t.Fatal("entry still served at its expiry")
	}
	_, _ = c.Load("k", load)
	if reads != 2 {
		t.Fatalf("reads across one expiry: %d, want 2", reads)
	}
}

// A fill that started before an invalidation is not kept: it may hold the
// state the invalidated write replaced.
func TestCache_FillRacingAnInvalidationIsDropped(t *testing.T) {
	for name, invalidate := range map[string]func(c *core.Cache[string, string]){
		"Forget":      func(c *core.Cache[string, string]) { c.Forget("other") },
		"ForgetAll":   func(c *core.Cache[string, string]) { c.ForgetAll() },
		"ForgetWhere": func(c *core.Cache[string, string]) { c.ForgetWhere(func(string, string) bool { return false }) },
	} {
		t.Run(name, func(t *testing.T) {
			c := core.NewCache[string, string](time.Hour, 10, nil)
			v, err := c.Load("k", func() (string, error) {
				invalidate(c) // the write commits while the old state is in hand
				return "old", nil
			})
			if v != "old" || err != nil {
				t.Fatalf("the racing read itself: %q, %v", v, err)
			}
			if _, ok := c.Get("k"); ok {
				t.Fatal("a fill that raced an invalidation was kept")
			}
			c.Put(c.Generation(), "k", "new")
			if v, ok := c.Get("k"); !ok || v != "new" {
				t.Fatalf("a fill after the invalidation: %q, %v", v, ok)
			}
		})
	}
}

func TestCache_ForgetDropsWhatItNames(t *testing.T) {
	c := core.NewCache[string, int](time.Hour, 10, nil)
	for i := range 4 {
		c.Put(c.Generation(), strconv.Itoa(i), i)
	}
	c.Forget("0")
	c.ForgetWhere(func(_ string, v int) bool { return v%2 == 1 })
	for i, want := range []bool{false, false, true, false} {
		if _, ok := c.Get(strconv.Itoa(i)); ok != want {
			t.Errorf("entry %d kept %v, want %v", i, ok, want)
		}
	}
	c.ForgetAll()
	if _, ok := c.Get("2"); ok {
		t.Error("entry kept after ForgetAll")
	}
}

// Errors are returned and never kept; a TTL ≤ 0 keeps nothing; past max
// entries the cache starts over rather than grow.
func TestCache_Limits(t *testing.T) {
	c := core.NewCache[string, int](time.Hour, 10, nil)
	boom := errors.New("store down")
	if _, err := c.Load("k", func() (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("Load error: %v", err)
	}
	if _, ok := c.Get("k"); ok {
		t.Fatal("a failed read was kept")
	}

	off := core.NewCache[string, int](0, 10, nil)
	off.Put(off.Generation(), "k", 1)
	if _, ok := off.Get("k"); ok {
		t.Fatal("a zero-TTL cache kept a value")
	}

	for i := range 25 {
		c.Put(c.Generation(), strconv.Itoa(i), i)
	}
	kept := 0
	for i := range 25 {
		if _, ok := c.Get(strconv.Itoa(i)); ok {
			kept++
		}
	}
	if kept > 10 || kept == 0 {
		t.Fatalf("%d entries kept with max 10", kept)
	}
}

// Readers, fillers and invalidations at once (run with -race).
func TestCache_ConcurrentUse(t *testing.T) {
	c := core.NewCache[int, int](time.Hour, 100, nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := (w*500 + i) % 150
				if v, err := c.Load(k, func() (int, error) { return k * 2, nil }); err != nil || v != k*2 {
					t.Errorf("Load(%d) = %d, %v", k, v, err)
					return
				}
				if i%50 == 0 {
					c.Forget(k)
				}
			}
		})
	}
	wg.Wait()
}
