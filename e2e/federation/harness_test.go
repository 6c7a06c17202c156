// Package federation_test proves federation between two real processes:
// it builds the agentos binary once, starts two nodes on loopback, makes
// each the other's peer through the admin API, and drives forwards,
// relayed event streams, assertions and ingest over real HTTP (and mTLS).
package federation_test

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/e2e/testbinary"
	"github.com/agentos/agentos/internal/testkit"
)

func TestMain(m *testing.M) { testbinary.Main(m, "") }

// node is one running `agentos serve` process.
type node struct {
	*testbinary.Node
	stackID string
	dataDir string
	stackA  string
	stackB  string
	fed     string
	admin   string       // platform admin key of tnt_demo
	key     string       // tenant admin key of tnt_demo
	client  *http.Client // talks to the federation port (mTLS when on)
	stream  *http.Client // same transport, no overall timeout (SSE)
	tls     *tlsFiles
}

// tlsFiles are the mTLS files a node is started with.
type tlsFiles struct{ cert, key, ca string }

// launchNode starts the process; wait makes it usable.
func launchNode(t *testing.T, stackID string, tf *tlsFiles, storeFlags ...string) *node {
	t.Helper()
	args := []string{"--stack-id", stackID, "--log-level", "warn", "--workers", "8"}
	if tf != nil {
		args = append(args, "--fed-tls-cert", tf.cert, "--fed-tls-key", tf.key, "--fed-tls-ca", tf.ca)
	}
	n := testbinary.Launch(t, t.TempDir(), append(args, storeFlags...)...)
	return &node{Node: n, stackID: stackID, dataDir: n.DataDir, tls: tf}
}

// wait waits for node.json naming this process, then reads the URLs and
// the seeded credentials.
func (n *node) wait(t *testing.T) {
	t.Helper()
	n.Wait(t, 20*time.Second)
	if n.StackID != n.stackID {
		t.Fatalf("node.json says stack_id %q, want %q", n.StackID, n.stackID)
	}
	n.stackA, n.stackB, n.fed = n.StackAURL, n.StackBURL, n.FedURL
	creds := testbinary.ReadCredentials(t, n.dataDir)
	n.admin, n.key = creds.PlatformAdmin.APIKey, creds.TenantAdmin.APIKey

	tr := http.DefaultTransport.(*http.Transport).Clone()
	if n.tls != nil {
		tr.TLSClientConfig = clientTLS(t, n.tls)
	}
	t.Cleanup(tr.CloseIdleConnections)
	n.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	n.stream = &http.Client{Transport: tr}
}

// clientTLS is what a caller holding the dev PKI presents.
func clientTLS(t *testing.T, tf *tlsFiles) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(tf.cert, tf.key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(tf.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// privateKey reads the node's federation signing key from its data dir
// (node_ed25519.key, PKCS#8 PEM).
func (n *node) privateKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(n.dataDir, "node_ed25519.key"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatal("node key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		t.Fatalf("node key is %T", k)
	}
	return priv
}

// answer is one HTTP exchange's outcome.
type answer = testkit.Response

// do sends a JSON request accepting JSON (testkit.DoWith, plain when c is
// nil); key goes in Authorization unless empty, and extra headers are
// name/value pairs.
func do(t *testing.T, c *http.Client, method, url, key string, body any, headers ...string) answer {
	t.Helper()
	if c == nil {
		c = plain
	}
	return testkit.DoWith(t, c, method, url, key, body, append([]string{"Accept", "application/json"}, headers...)...)
}

// plain talks to the Stack A and Stack B ports (never TLS).
var plain = &http.Client{Timeout: 30 * time.Second}

// must fails unless the answer has one of the wanted statuses.
func must(t *testing.T, a answer, what string, want ...int) answer {
	t.Helper()
	return a.Expect(t, what, want...)
}

// peerInfo is the part of GET /v1/federation/peer the test uses.
type peerInfo struct {
	StackID   string `json:"stack_id"`
	PublicKey string `json:"public_key"`
	Endpoints struct {
		FederationBaseURL string `json:"federation_base_url"`
	} `json:"endpoints"`
}

func (n *node) info(t *testing.T) peerInfo {
	t.Helper()
	var out struct {
		Peer peerInfo `json:"peer"`
	}
	must(t, do(t, n.client, "GET", n.fed+"/v1/federation/peer", n.admin, nil), n.stackID+" peer info", 200).Decode(t, &out)
	if out.Peer.StackID != n.stackID || out.Peer.PublicKey == "" {
		t.Fatalf("%s peer info: %+v", n.stackID, out.Peer)
	}
	return out.Peer
}

// register makes other a peer of n, reachable at fedURL, trusted for the
// given tenants.
func (n *node) register(t *testing.T, other peerInfo, fedURL string, tenants ...string) {
	t.Helper()
	var out struct {
		Peer struct {
			StackID        string   `json:"stack_id"`
			FederationURL  string   `json:"federation_url"`
			TrustedTenants []string `json:"trusted_tenants"`
		} `json:"peer"`
	}
	must(t, do(t, n.client, "POST", n.fed+"/v1/federation/peers", n.admin, map[string]any{"peer": map[string]any{
		"stack_id": other.StackID, "federation_url": fedURL, "public_key": other.PublicKey, "trusted_tenants": tenants,
	}}), "register "+other.StackID+" on "+n.stackID, 201).Decode(t, &out)
	if out.Peer.StackID != other.StackID || out.Peer.FederationURL != fedURL {
		t.Fatalf("registered peer: %+v", out.Peer)
	}
}

// metric reads one sample of the node's /metrics on the federation port
// (0 when absent). name includes the label set, e.g. `x{outcome="ok"}`.
func (n *node) metric(t *testing.T, name string) float64 {
	t.Helper()
	v, _ := testkit.Scrape(t, n.client, n.fed+"/metrics").Value(name)
	return v
}

// event is the part of an event the assertions look at.
type event struct {
	EventID  string `json:"event_id"`
	Sequence int64  `json:"sequence"`
	Type     string `json:"type"`
	TenantID string `json:"tenant_id"`
	RunID    string `json:"run_id"`
}

// sse is one parsed server-sent event.
type sse struct {
	id    string
	event event
	raw   json.RawMessage
}

// streamEvents reads GET url as SSE until the terminal event
// (testkit.Stream), calling onEvent for each. It fails the test when the
// stream ends before the terminal event or takes longer than timeout.
func streamEvents(t *testing.T, c *http.Client, url, key string, timeout time.Duration, onEvent func(sse)) []sse {
	t.Helper()
	var out []sse
	testkit.Stream(t, c, url, key, timeout, func(m testkit.SSE) {
		cur := sse{id: m.ID, raw: json.RawMessage(m.Data)}
		var env struct {
			Event *event `json:"event"`
		}
		if err := json.Unmarshal(cur.raw, &env); err != nil || env.Event == nil {
			t.Errorf("SSE data is not an event envelope: %s", cur.raw)
			return
		}
		cur.event = *env.Event
		out = append(out, cur)
		if onEvent != nil {
			onEvent(cur)
		}
	})
	return out
}

// checkGapless fails unless evs are sequences 1..n of runID in tenant, no
// event_id twice, the SSE id equal to the sequence, and exactly one
// terminal event, last.
func checkGapless(t *testing.T, evs []sse, tenant, runID string) {
	t.Helper()
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	seen := map[string]bool{}
	for i, e := range evs {
		ev := e.event
		if ev.Sequence != int64(i+1) {
			t.Fatalf("event %d has sequence %d (gap or duplicate)", i, ev.Sequence)
		}
		if e.id != "" && e.id != strconv.FormatInt(ev.Sequence, 10) {
			t.Fatalf("event %d: SSE id %q, sequence %d", i, e.id, ev.Sequence)
		}
		if seen[ev.EventID] || ev.EventID == "" {
			t.Fatalf("event %d: event_id %q repeated or empty", i, ev.EventID)
		}
		seen[ev.EventID] = true
		if ev.TenantID != tenant || ev.RunID != runID {
			t.Fatalf("event %d belongs to %s/%s, want %s/%s", i, ev.TenantID, ev.RunID, tenant, runID)
		}
		if core.EventTerminal(ev.Type) != (i == len(evs)-1) {
			t.Fatalf("event %d (%s): terminal events must be exactly the last", i, ev.Type)
		}
	}
}

// proxy is a TCP proxy in front of a node's federation port whose live
// connections the test can cut.
type proxy struct {
	ln       net.Listener
	target   string
	mu       sync.Mutex
	conns    map[net.Conn]bool
	accepted int // connections proxied so far
	wg       sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = true, true
		p.accepted++
		p.mu.Unlock()
		p.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(out, in)
		go pipe(in, out)
	}
}

// counts says how many connections are live and how many were proxied.
func (p *proxy) counts() (live, accepted int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2, p.accepted
}

// cut closes every live connection through the proxy and says how many
// there were; new connections are still accepted.
func (p *proxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	return n
}
