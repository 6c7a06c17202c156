package testkit

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// WaitRun polls GET base/v1/runs/{runID} with key until the run's status
// is one of want (any terminal status when want is empty), and returns the
// run object. It fails the test after limit, naming the last status seen.
// A run has no event a client can await without a stream; where the test
// reads the stream anyway, Stream is the better wait.
func WaitRun(t testing.TB, base, key, runID string, limit time.Duration, want ...string) map[string]any {
	t.Helper()
	var run map[string]any
	WaitFor(t, "run "+runID+" to reach "+statusList(want), limit, func() bool {
		r := Do(t, "GET", base+"/v1/runs/"+runID, key, nil, "Accept", "application/json")
		if r.Status != 200 {
			t.Fatalf("get run %s: %d %s", runID, r.Status, r.Body)
		}
		run, _ = r.JSON(t)["run"].(map[string]any)
		st, _ := run["status"].(string)
		if len(want) == 0 {
			return core.RunTerminal(st)
		}
		return slices.Contains(want, st)
	}, func() string { return "(last status " + status(run) + ")" })
	return run
}

func status(run map[string]any) string {
	st, _ := run["status"].(string)
	return st
}

func statusList(want []string) string {
	if len(want) == 0 {
		return "a terminal status"
	}
	return "status " + strings.Join(want, " or ")
}
