package fed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"

	"github.com/agentos/agentos/core"
)

// peersFile is the --peers-file document (§5.4).
type peersFile struct {
	Peers []core.Peer `json:"peers"`
}

// ValidatePeer checks a registry entry; the error names the bad field
// under prefix (e.g. "peers[1].public_key").
func ValidatePeer(p core.Peer, prefix string) error {
	if p.StackID == "" {
		return core.Invalid(prefix+".stack_id", "%s.stack_id is required", prefix)
	}
	if !core.HasPrefix(p.StackID, core.PrefixStack) {
		return core.Invalid(prefix+".stack_id", "%s.stack_id %q must look like stk_…", prefix, p.StackID)
	}
	u, err := url.Parse(p.FederationURL)
	if p.FederationURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return core.Invalid(prefix+".federation_url", "%s.federation_url %q must be an http(s) URL", prefix, p.FederationURL)
	}
	if p.StackAURL != "" {
		if u, err := url.Parse(p.StackAURL); err != nil || u.Host == "" {
			return core.Invalid(prefix+".stack_a_url", "%s.stack_a_url %q is not a URL", prefix, p.StackAURL)
		}
	}
	if _, err := ParsePublicKey(p.PublicKey); err != nil {
		return core.Invalid(prefix+".public_key", "%s.public_key: %v", prefix, err)
	}
	for i, t := range p.TrustedTenants {
		if t == "" {
			return core.Invalid(fmt.Sprintf("%s.trusted_tenants[%d]", prefix, i), "%s.trusted_tenants[%d] is empty", prefix, i)
		}
	}
	return nil
}

// LoadPeersFile reads a peers file and puts every peer in the registry. A
// file that does not parse or holds a bad peer fails with a message that
// names the field; nothing is stored then.
func (n *Node) LoadPeersFile(ctx context.Context, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("peers file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var f peersFile
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("peers file %s: %w", path, err)
	}
	if f.Peers == nil {
		return fmt.Errorf("peers file %s: field peers is required", path)
	}
	seen := map[string]bool{}
	for i, p := range f.Peers {
		field := fmt.Sprintf("peers[%d]", i)
		if err := ValidatePeer(p, field); err != nil {
			return fmt.Errorf("peers file %s: %s", path, core.AsError(err).Message)
		}
		if p.StackID == n.d.StackID {
			return fmt.Errorf("peers file %s: %s.stack_id %s is this node's own stack_id", path, field, p.StackID)
		}
		if seen[p.StackID] {
			return fmt.Errorf("peers file %s: %s.stack_id %s is listed twice", path, field, p.StackID)
		}
		seen[p.StackID] = true
	}
	for _, p := range f.Peers {
		if p.TrustedTenants == nil {
			p.TrustedTenants = []string{}
		}
		if _, err := n.d.Peers.PutPeer(ctx, p); err != nil {
			return fmt.Errorf("peers file: store peer %s: %w", p.StackID, err)
		}
	}
	n.log.Info().Int("peers", len(f.Peers)).Str("file", path).Msg("peers file loaded")
	return nil
}
