package testkit

import "sync"

// AtOnce runs f(0) … f(n-1), each in its own goroutine, lets them all go
// together once every one is started (so they really race: same key on
// two nodes, writers on one chain) and returns when all have returned. f
// runs off the test's goroutine: it may call t.Error, never t.Fatal.
func AtOnce(n int, f func(i int)) {
	var started, done sync.WaitGroup
	start := make(chan struct{})
	started.Add(n)
	for i := range n {
		done.Go(func() {
			started.Done()
			<-start
			f(i)
		})
	}
	started.Wait()
	close(start)
	done.Wait()
}
