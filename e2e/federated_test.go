package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/agentos/agentos/internal/testkit"
)

// TestUpFederated: `up --profile federated` checks every peer of the
// peers file in its wire phase; an unreachable peer fails `up` with the
// failing check, the log tail and the next command.
func TestUpFederated(t *testing.T) {
	t.Parallel()
	peer := newWorkdir(t)
	if r := peer.run("up"); r.Code != 0 {
		t.Fatalf("peer up: %s", r)
	}
	pn := peer.node()
	var info struct {
		Peer struct {
			StackID   string `json:"stack_id"`
			PublicKey string `json:"public_key"`
		} `json:"peer"`
	}
	if code := testkit.Call(t, http.MethodGet, pn.FedURL+"/v1/federation/peer", peer.creds().PlatformAdmin.APIKey, nil, &info); code != http.StatusOK || info.Peer.PublicKey == "" {
		t.Fatalf("peer info: HTTP %d %+v", code, info)
	}
	deadPub, _, _ := ed25519.GenerateKey(rand.Reader)
	reachable := map[string]any{"stack_id": info.Peer.StackID, "federation_url": pn.FedURL, "stack_a_url": pn.StackAURL,
		"public_key": info.Peer.PublicKey, "region": "local", "trusted_tenants": []string{"tnt_demo"}}
	dead := map[string]any{"stack_id": "stk_01DEADPEER0000000000000000", "federation_url": "http://" + closedPort(t),
		"public_key": "ed25519:" + base64.StdEncoding.EncodeToString(deadPub), "region": "local", "trusted_tenants": []string{"tnt_demo"}}

	w := newWorkdir(t)
	write := func(name string, peers ...map[string]any) string {
		raw, _ := json.Marshal(map[string]any{"peers": peers})
		return testkit.WriteFile(t, w.path(name), raw, 0o600)
	}
	bad := w.run("up", "--profile", "federated", "--peers-file", write("peers-bad.json", reachable, dead))
	if bad.Code == 0 {
		t.Fatalf("up with an unreachable peer passed: %s", bad)
	}
	mustContain(t, bad, "peers reachable 1/2", "FAIL peer stk_01DEADPEER", "up FAILED", "last log lines", "next: ")
	if !strings.Contains(bad.Stdout, "ok   peer "+info.Peer.StackID) {
		t.Errorf("reachable peer not reported ok:\n%s", bad)
	}

	good := w.mustRun(t, "redeploy", "--profile", "federated", "--peers-file", write("peers-good.json", reachable))
	mustContain(t, good, "peers reachable 1/1", "links up 3/3", "smoke 7/7")
	if r := w.run("nuke", "--yes-really"); r.Code != 0 {
		t.Errorf("nuke: %s", r)
	}
	if r := peer.run("nuke", "--yes-really"); r.Code != 0 {
		t.Errorf("peer nuke: %s", r)
	}
}
