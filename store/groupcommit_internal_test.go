package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A shared commit is all or nothing per writer: a writer that fails after
// writing (an error or a panic) has none of its keys committed while every
// other writer of the same commit lands, and one that fails before writing
// (noWrites) gets its own error back without costing the others a redo.
func TestGroupCommit_FailedWriterLeavesNothing(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "g.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	// Hold the leader inside a commit so that every writer below queues
	// up and they all share the next commit.
	entered, release := make(chan struct{}), make(chan struct{})
	holdDone := make(chan error, 1)
	go func() {
		holdDone <- s.group(ctx, func(tx *bolt.Tx) error {
			close(entered)
			<-release
			return Data(tx).Put([]byte("hold"), []byte("1"))
		})
	}()
	<-entered

	errBefore := errors.New("precondition failed")
	const writers = 60
	var (
		wg    sync.WaitGroup
		runs  [writers]atomic.Int32
		errsM sync.Map
	)
	kind := func(i int) string {
		switch {
		case i%10 == 3:
			return "fail-after-write"
		case i%10 == 6:
			return "panic-after-write"
		case i%10 == 8:
			return "fail-before-write"
		}
		return "ok"
	}
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.batch(ctx, func(tx *bolt.Tx) error {
				runs[i].Add(1)
				k := kind(i)
				if k == "fail-before-write" {
					return noWrites(fmt.Errorf("writer %d: %w", i, errBefore))
				}
				for j := 0; j < 3; j++ {
					if err := Data(tx).Put([]byte(fmt.Sprintf("w/%02d/%d", i, j)), []byte("v")); err != nil {
						return err
					}
				}
				switch k {
				case "fail-after-write":
					return fmt.Errorf("writer %d failed after writing", i)
				case "panic-after-write":
					panic(fmt.Sprintf("writer %d panicked after writing", i))
				}
				return nil
			})
			errsM.Store(i, err)
		}()
	}
	// Wait until all of them are queued, then let the first commit end.
	for {
		s.commits.mu.Lock()
		n := len(s.commits.pending)
		s.commits.mu.Unlock()
		if n == writers {
			break
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if err := <-holdDone; err != nil {
		t.Fatal(err)
	}

	err = s.db.View(func(tx *bolt.Tx) error {
		for i := 0; i < writers; i++ {
			v, _ := errsM.Load(i)
			werr, _ := v.(error)
			k := kind(i)
			present := 0
			for j := 0; j < 3; j++ {
				if Data(tx).Get([]byte(fmt.Sprintf("w/%02d/%d", i, j))) != nil {
					present++
				}
			}
			switch k {
			case "ok":
				if werr != nil || present != 3 {
					t.Errorf("writer %d (%s): err %v, %d of 3 keys", i, k, werr, present)
				}
			case "fail-before-write":
				var nw *noWriteError
				if !errors.Is(werr, errBefore) || errors.As(werr, &nw) || present != 0 {
					t.Errorf("writer %d (%s): err %v (want the writer's own error, unwrapped), %d keys", i, k, werr, present)
				}
			default:
				if werr == nil || present != 0 {
					t.Errorf("writer %d (%s): err %v, %d of 3 keys committed (want none)", i, k, werr, present)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Everyone shared one commit, redone once per writer that failed
	// after writing: writers before a failure ran again, none ran more
	// often than there were such failures plus one.
	redos := 0
	for i := 0; i < writers; i++ {
		if k := kind(i); k == "fail-after-write" || k == "panic-after-write" {
			redos++
		}
	}
	for i := 0; i < writers; i++ {
		if n := int(runs[i].Load()); n < 1 || n > redos+1 {
			t.Errorf("writer %d ran %d times (redos %d)", i, n, redos)
		}
	}
}
