package app

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/fed"
	"github.com/agentos/agentos/stacka"
)

// NodeIDFileName keeps a node's generated id in its data dir, so a
// restarted node reclaims the runs it held.
const NodeIDFileName = "node.id"

// validNodeID: 1-64 letters, digits, '.', '_' or '-', beginning with a
// letter or digit.
func validNodeID(id string) bool { return core.ValidName(id, 64, "._-") }

// resolveNodeID returns --node-id, else the id in <data-dir>/node.id,
// else a new one written there.
func resolveNodeID(cfg Config) (string, error) {
	if cfg.NodeID != "" {
		if !validNodeID(cfg.NodeID) {
			return "", fmt.Errorf("config node_id: %q is not 1-64 letters, digits, '.', '_' or '-'", cfg.NodeID)
		}
		return cfg.NodeID, nil
	}
	path := cfg.Path(NodeIDFileName)
	raw, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(raw))
		if !validNodeID(id) {
			return "", fmt.Errorf("%s: %q is not a node id; remove the file to get a new one", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	id := core.NewID("node")
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return id, nil
}

// clustered reports whether the store is shared by several nodes (it
// claims runs with leases and announces changes).
func (n *Node) clustered() bool {
	_, l := n.store.(core.RunLeasePort)
	_, no := n.store.(core.RunNoticePort)
	return l && no
}

// clusterFedKey returns the federation key a shared store keeps for all
// its nodes (created by the first node), or nil on a single node, whose
// key stays in its data dir.
func (n *Node) clusterFedKey(ctx context.Context) (ed25519.PrivateKey, error) {
	mi, ok := n.store.(core.MetaInitPort)
	if !ok || !n.clustered() {
		return nil, nil
	}
	stored, err := n.store.GetMeta(ctx, core.MetaFederationKey)
	if err != nil {
		return nil, fmt.Errorf("read federation key: %w", err)
	}
	if stored == "" {
		raw, err := fed.NewKeyPEM()
		if err != nil {
			return nil, err
		}
		if stored, err = mi.InitMeta(ctx, core.MetaFederationKey, string(raw)); err != nil {
			return nil, fmt.Errorf("store federation key: %w", err)
		}
	}
	priv, err := fed.ParseKeyPEM([]byte(stored))
	if err != nil {
		return nil, fmt.Errorf("federation key in the store: %w", err)
	}
	return priv, nil
}

// metaJWTSecret keeps a cluster's HS256 secret, so a JWT one node signs
// (or its Stack A sends to Stack B) verifies on every node.
const metaJWTSecret = "jwt_secret"

// clusterSecret returns the HS256 secret the nodes of a shared store
// share (the first node's), or own on a single node.
func (n *Node) clusterSecret(ctx context.Context, own []byte) ([]byte, error) {
	mi, ok := n.store.(core.MetaInitPort)
	if !ok || !n.clustered() {
		return own, nil
	}
	stored, err := mi.InitMeta(ctx, metaJWTSecret, hex.EncodeToString(own))
	if err != nil {
		return nil, fmt.Errorf("cluster JWT secret: %w", err)
	}
	b, err := hex.DecodeString(stored)
	if err != nil || len(b) < 32 {
		return nil, errors.New("cluster JWT secret in the store: want 64 hex characters")
	}
	return b, nil
}

// clusterConfig is Stack A's view of the cluster, nil on a single node.
func (n *Node) clusterConfig() *stacka.Cluster {
	if !n.clustered() {
		return nil
	}
	c := &stacka.Cluster{NodeID: n.nodeID, Leases: n.store.(core.RunLeasePort), Notices: n.store.(core.RunNoticePort),
		Lease: n.Config.RunLease, Info: func() core.NodeInfo {
			return core.NodeInfo{NodeID: n.nodeID, StackAURL: n.URL(StackA), StartedAt: n.started}
		}}
	if nr, ok := n.store.(core.NodeRegistryPort); ok {
		c.Nodes = nr
	}
	return c
}

// LiveNodes lists the cluster's live nodes (seen within three lease
// periods) with the runs each holds; a single node lists itself.
func (n *Node) LiveNodes(ctx context.Context) ([]core.NodeInfo, error) {
	if nr, ok := n.store.(core.NodeRegistryPort); ok && n.clustered() {
		return nr.LiveNodes(ctx, 3*n.Config.RunLease)
	}
	st, err := n.stacks.runs.Stats(ctx)
	if err != nil {
		return nil, err
	}
	return []core.NodeInfo{{NodeID: n.nodeID, StackAURL: n.URL(StackA), StartedAt: n.started, LastSeen: time.Now().UTC(),
		RunsInFlight: st.ActiveRuns + st.QueueDepth}}, nil
}

// ClusterNodes opens cfg's store and lists the live nodes of its cluster
// (ok=false when the store is not shared: bbolt belongs to one process).
func ClusterNodes(ctx context.Context, cfg Config) ([]core.NodeInfo, bool, error) {
	if StorePostgresURL(cfg) == "" {
		return nil, false, nil
	}
	st, err := OpenStorage(ctx, cfg, OpenOptions{})
	if err != nil {
		return nil, true, err
	}
	defer st.Close()
	nr, ok := st.(core.NodeRegistryPort)
	if !ok {
		return nil, false, nil
	}
	lease := cfg.RunLease
	if lease <= 0 {
		lease = DefaultConfig().RunLease
	}
	nodes, err := nr.LiveNodes(ctx, 3*lease)
	return nodes, true, err
}
