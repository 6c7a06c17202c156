package testkit

import (
	"testing"
	"time"
)

// pollEvery is how often WaitFor looks again.
const pollEvery = 10 * time.Millisecond

// WaitFor polls cond until it holds, failing the test after limit with
// what (and whatever explain adds). Use it only where the condition has
// no event to await: a metric moving, a file appearing, another process.
func WaitFor(t testing.TB, what string, limit time.Duration, cond func() bool, explain ...func() string) {
	t.Helper()
	WaitEvery(t, what, limit, pollEvery, cond, explain...)
}

// WaitEvery is WaitFor looking again every `every`: for a condition whose
// check costs something (a request that itself probes a backend).
func WaitEvery(t testing.TB, what string, limit, every time.Duration, cond func() bool, explain ...func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			why := ""
			for _, e := range explain {
				why += " " + e()
			}
			t.Fatalf("timed out after %v waiting for %s%s", limit, what, why)
		}
		time.Sleep(every)
	}
}

// Await waits for ch to yield or close, failing the test after limit.
func Await[T any](t testing.TB, what string, limit time.Duration, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(limit):
		t.Fatalf("timed out after %v waiting for %s", limit, what)
		var zero T
		return zero
	}
}
