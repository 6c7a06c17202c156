// Package cluster_test runs three real `agentos serve` processes on one
// PostgreSQL database and proves they act as one installation: runs
// created round-robin, streamed from another node, a cancel through a
// third node, and a node killed with -9 whose runs the others finish.
package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/e2e/testbinary"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/store/postgres/pgtest"
)

func TestMain(m *testing.M) { testbinary.Main(m, "") }

func startNode(t *testing.T, store string, lease time.Duration) *testbinary.Node {
	t.Helper()
	return testbinary.Serve(t, t.TempDir(), 30*time.Second, "--store", store, "--run-lease", lease.String(), "--log-level", "warn", "--workers", "16")
}

type seen struct {
	seq  int64
	typ  string
	at   time.Time // when this client received it
	time time.Time // the event's own time (committed on the executing node)
	err  string
}

// stream reads a run's SSE stream to its end; it resumes with
// Last-Event-ID when the connection drops, like a client would.
func stream(ctx context.Context, url, key string) ([]seen, error) {
	var out []seen
	for attempt := 0; attempt < 5; attempt++ {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Accept", "text/event-stream")
		if n := len(out); n > 0 {
			req.Header.Set("Last-Event-ID", fmt.Sprint(out[n-1].seq))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return out, err
			}
			continue
		}
		var bad error
		testkit.ReadSSE(resp.Body, func(m testkit.SSE) bool {
			if m.Event.Type == "" {
				bad = fmt.Errorf("SSE data is not an event envelope: %s", m.Data)
				return false
			}
			out = append(out, seen{seq: m.Event.Sequence, typ: m.Event.Type, at: time.Now(), time: m.Event.Time,
				err: string(m.Event.Payload)})
			return true
		})
		if bad != nil {
			resp.Body.Close()
			return out, bad
		}
		resp.Body.Close()
		if n := len(out); n > 0 && core.EventTerminal(out[n-1].typ) {
			return out, nil
		}
	}
	return out, fmt.Errorf("stream ended without a terminal event after %d events", len(out))
}

func checkRun(id string, evs []seen) error {
	n := 0
	for i, e := range evs {
		if e.seq != int64(i+1) {
			return fmt.Errorf("run %s: event %d has sequence %d (gap or duplicate)", id, i, e.seq)
		}
		if core.EventTerminal(e.typ) {
			n++
			if i != len(evs)-1 {
				return fmt.Errorf("run %s: terminal event %s is not last", id, e.typ)
			}
		}
	}
	if n != 1 {
		return fmt.Errorf("run %s: %d terminal events, want 1", id, n)
	}
	return nil
}

func TestCluster_ThreeNodesOneDatabase(t *testing.T) {
	slow := testkit.StartSlowWebhook(t, 400*time.Millisecond)
	hang := testkit.StartHeldWebhook(t)

	store := pgtest.URL(t)
	lease := 3 * time.Second
	nodes := []*testbinary.Node{startNode(t, store, lease)}
	nodes = append(nodes, startNode(t, store, lease), startNode(t, store, lease))
	creds := testbinary.ReadCredentials(t, nodes[0].DataDir)
	admin, key := creds.PlatformAdmin.APIKey, creds.TenantAdmin.APIKey
	ids := map[string]bool{}
	for _, n := range nodes {
		var h map[string]any
		if s := testkit.Call(t, "GET", n.StackAURL+"/v1/health", "", nil, &h); s != 200 || h["node_id"] != n.NodeID {
			t.Fatalf("health of %s: %d %v", n.StackAURL, s, h)
		}
		ids[n.NodeID] = true
	}
	if len(ids) != 3 {
		t.Fatalf("node ids are not distinct: %v", ids)
	}

	a := nodes[0].StackAURL
	testkit.PatchTenant(t, a, admin, "tnt_demo", map[string]any{
		"entitlements": map[string]any{"tool_ids_allowed": []string{"tool.echo", "tool.slow", "tool.hang"}},
		"quotas":       map[string]any{"runs": map[string]any{"run_create_qps": 1000, "run_create_burst": 1000, "max_concurrent_runs": 1000}},
	})
	testkit.PutWebhookAgent(t, a, key, "tool.slow", "agt_slow", slow.URL)
	testkit.PutWebhookAgent(t, a, key, "tool.hang", "agt_hang", hang.URL)

	// A cancel sent to a third node stops a slow tool call on the node
	// executing the run (its creator claims it), streamed from another.
	var created struct {
		Run struct {
			RunID string `json:"run_id"`
		} `json:"run"`
	}
	if s := testkit.Call(t, "POST", nodes[0].StackAURL+"/v1/agents/agt_hang/runs", key, map[string]any{
		"input": map[string]any{"type": "text", "text": "hang"}, "idempotency_key": "hang-1"}, &created); s != 201 {
		t.Fatalf("create hang run: %d", s)
	}
	hangID := created.Run.RunID
	testkit.Await(t, "the hanging tool's call", 20*time.Second, hang.Hit)
	hangStream := make(chan []seen, 1)
	go func() {
		evs, _ := stream(context.Background(), nodes[1].StackAURL+"/v1/runs/"+hangID+"/events", key)
		hangStream <- evs
	}()
	canceledAt := time.Now()
	if s := testkit.Call(t, "POST", nodes[2].StackAURL+"/v1/runs/"+hangID+":cancel", key, nil, nil); s != 200 {
		t.Fatalf("cancel on the third node: %d", s)
	}
	at := testkit.Await(t, "the tool call to stop after the cancel on another node", 2*time.Second, hang.Gone)
	t.Logf("cancel on node 3 stopped the tool call on node 1 after %v", at.Sub(canceledAt))
	if at.Sub(canceledAt) > 2*time.Second {
		t.Fatalf("the call stopped %v after the cancel, want within 2 s", at.Sub(canceledAt))
	}
	if evs := <-hangStream; checkRun(hangID, evs) != nil || evs[len(evs)-1].typ != "agentos.run.canceled" {
		t.Fatalf("hang run stream: %v (%v)", evs, checkRun(hangID, evs))
	}

	// 200 runs created round-robin, each streamed from a node other than
	// its creator (never the one that will be killed).
	const runs = 200
	victim := 2
	type runInfo struct {
		id      string
		creator int
		evs     []seen
		err     error
	}
	infos := make([]*runInfo, runs)
	var wg sync.WaitGroup
	killed := false
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	for i := 0; i < runs; i++ {
		creator := i % 3
		if killed && creator == victim {
			creator = 0 // the load balancer has taken the dead node out
		}
		reader := (creator + 1) % 3
		if reader == victim {
			reader = (reader + 1) % 3
		}
		var out struct {
			Run struct {
				RunID string `json:"run_id"`
			} `json:"run"`
		}
		s := testkit.Call(t, "POST", nodes[creator].StackAURL+"/v1/agents/agt_slow/runs", key, map[string]any{
			"input": map[string]any{"type": "text", "text": fmt.Sprintf("job %d", i)}, "idempotency_key": fmt.Sprintf("job-%d", i)}, &out)
		if s != 201 {
			t.Fatalf("create run %d on node %d: %d", i, creator+1, s)
		}
		ri := &runInfo{id: out.Run.RunID, creator: creator}
		infos[i] = ri
		wg.Add(1)
		go func() {
			defer wg.Done()
			ri.evs, ri.err = stream(ctx, nodes[reader].StackAURL+"/v1/runs/"+ri.id+"/events", key)
		}()
		if i == runs/2 {
			// Kill the victim once its share of the work is in flight.
			testkit.WaitFor(t, "30 slow tool calls", 30*time.Second, func() bool { return slow.Calls.Load() >= 30 })
			killAt := time.Now()
			if err := nodes[victim].Cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			nodes[victim].Cmd.Wait()
			t.Logf("killed node 3 (-9) after %d runs created, %d slow calls made", i+1, slow.Calls.Load())
			victimKilledAt, killed = killAt, true
		}
	}
	wg.Wait()
	elapsed := time.Since(start)

	var lat []time.Duration
	taken, interrupted := 0, 0
	var takeover time.Duration
	for _, ri := range infos {
		if ri.err != nil {
			t.Fatalf("run %s: %v", ri.id, ri.err)
		}
		if err := checkRun(ri.id, ri.evs); err != nil {
			t.Fatal(err)
		}
		for _, e := range ri.evs {
			if d := e.at.Sub(e.time); d >= 0 {
				lat = append(lat, d)
			}
			if strings.Contains(e.err, "takeover") {
				interrupted++
			}
		}
		if ri.creator == victim {
			// Did this run still have events to come when its node died?
			last := ri.evs[len(ri.evs)-1]
			if last.time.After(victimKilledAt) {
				taken++
				for _, e := range ri.evs {
					if e.time.After(victimKilledAt) {
						if d := e.time.Sub(victimKilledAt); d > takeover {
							takeover = d
						}
						break
					}
				}
			}
		}
	}
	if taken == 0 {
		t.Fatal("no run of the killed node was finished by another node; the test proved nothing")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("%d runs in %v; %d runs of the killed node finished by the others (%d steps reported as interrupted by the takeover); slowest takeover %v after the kill",
		runs, elapsed.Round(time.Millisecond), taken, interrupted, takeover.Round(time.Millisecond))
	t.Logf("cross-node event delivery (event time on the executing node to receipt on another node): p50 %v, p99 %v over %d events",
		lat[len(lat)/2], lat[len(lat)*99/100], len(lat))
	// The operator's view: `agentos status` on a node lists the live nodes.
	st := exec.Command(testbinary.Binary, "status", "--data-dir", nodes[0].DataDir, "--store", store, "--api-key", admin)
	st.Dir = t.TempDir()
	out, _ := st.CombinedOutput()
	for _, n := range nodes[:2] {
		if !bytes.Contains(out, []byte(n.NodeID)) || !bytes.Contains(out, []byte("live node(s)")) {
			t.Fatalf("agentos status does not list live node %s:\n%s", n.NodeID, out)
		}
	}
	t.Logf("agentos status:\n%s", out)
	if takeover > lease+5*time.Second {
		t.Fatalf("takeover took %v, lease is %v", takeover, lease)
	}
}

var victimKilledAt time.Time
