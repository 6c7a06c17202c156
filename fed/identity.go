package fed

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/golang-jwt/jwt/v5"
)

// AssertionHeader carries a peer assertion on node-to-node calls.
const AssertionHeader = "X-AgentOS-Peer-Assertion"

// MaxAssertionTTL is the longest life an assertion may claim (§5.2).
const MaxAssertionTTL = 5 * time.Minute

// assertionTTL is what this node signs: short, well under the maximum.
const assertionTTL = 2 * time.Minute

// clockSkew is tolerated between peers' clocks.
const clockSkew = 30 * time.Second

// KeyFileName is the node key's file in the data dir.
const KeyFileName = "node_ed25519.key"

// peerTokenPrefix marks an Auth that a peer assertion authenticated: its
// TokenID is "peer:<issuer stack_id>".
const peerTokenPrefix = "peer:"

// NewKeyPEM makes a fresh node key in the PEM (PKCS #8) form the key file
// and a cluster's shared store keep it in.
func NewKeyPEM() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate federation key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode federation key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKeyPEM reads a node key from its PEM form (see NewKeyPEM).
func ParseKeyPEM(raw []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("not an Ed25519 key")
	}
	return priv, nil
}

func loadOrCreateKey(dataDir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dataDir, KeyFileName)
	raw, err := os.ReadFile(path)
	if err == nil {
		priv, err := ParseKeyPEM(raw)
		if err != nil {
			return nil, fmt.Errorf("federation key %s: %w", path, err)
		}
		return priv, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read federation key: %w", err)
	}
	raw, err = NewKeyPEM()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// O_EXCL: when two starts race, one key wins and the loser re-reads it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return loadOrCreateKey(dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("write federation key: %w", err)
	}
	if _, err := f.Write(raw); err != nil {
		f.Close()
		return nil, fmt.Errorf("write federation key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write federation key: %w", err)
	}
	return ParseKeyPEM(raw)
}

// EncodePublicKey renders a key as "ed25519:<base64 of the 32 bytes>".
func EncodePublicKey(pub ed25519.PublicKey) string {
	return "ed25519:" + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads the "ed25519:<base64>" form (standard or URL
// base64, padded or not).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(s, "ed25519:")
	if !ok {
		return nil, errors.New(`public key must start with "ed25519:"`)
	}
	b64 = strings.TrimRight(b64, "=")
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(b64); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("public key: bad base64: %w", err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key: %d bytes, want %d", len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// assertionClaims are the claims of a peer assertion (§5.2).
type assertionClaims struct {
	TenantID      string   `json:"tenant_id"`
	Scopes        []string `json:"scopes"`
	PrincipalType string   `json:"principal_type,omitempty"`
	jwt.RegisteredClaims
}

// exportScopes are the scopes an assertion may carry: what the principal
// holds here, minus the admin powers that never cross nodes.
func exportScopes(a core.Auth) []string {
	out := []string{}
	for _, s := range core.AllScopes {
		if s == core.ScopeTenantsAdmin || s == core.ScopeTenantsActAs {
			continue
		}
		if a.Can(s) {
			out = append(out, s)
		}
	}
	return out
}

// SignAssertion signs an assertion for a, addressed to the peer aud.
func (n *Node) SignAssertion(a core.Auth, aud string) (string, error) {
	now := n.d.Now()
	ptype := a.Principal.PrincipalType
	if ptype == "" {
		ptype = "service"
	}
	claims := assertionClaims{
		TenantID:      a.TenantID,
		Scopes:        exportScopes(a),
		PrincipalType: ptype,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    n.d.StackID,
			Subject:   a.Principal.PrincipalID,
			Audience:  jwt.ClaimStrings{aud},
			ID:        core.NewID("jti"),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(assertionTTL)),
		},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(n.key)
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	return tok, nil
}

// AuthenticatePeer authenticates a node-to-node call by its peer assertion.
// ok is false when the request has no assertion (app then falls back to
// API keys and JWTs). An unknown issuer, a bad signature, a wrong audience,
// an expired or too long-lived assertion, or a replayed jti is 401
// unauthorized; a tenant that does not exist, is disabled, or is not
// trusted for the issuing peer is 403 forbidden. The Auth carries the
// assertion's tenant, principal (sub) and scopes, and TokenID
// "peer:<issuer>".
func (n *Node) AuthenticatePeer(r *http.Request) (core.Auth, bool, error) {
	raw := r.Header.Get(AssertionHeader)
	if raw == "" {
		return core.Auth{}, false, nil
	}
	a, err := n.verifyAssertion(r.Context(), raw)
	if err != nil {
		outcome := "unauthorized"
		if core.IsCode(err, core.CodeForbidden) {
			outcome = "forbidden"
		}
		n.m.assertions.WithLabelValues(outcome).Inc()
		n.log.Info().Err(err).Str("correlation_id", r.Header.Get("X-Correlation-Id")).Msg("peer assertion refused")
		return core.Auth{}, true, err
	}
	n.m.assertions.WithLabelValues("ok").Inc()
	return a, true, nil
}

func unauthorized(format string, args ...any) error {
	return core.Errorf(core.CodeUnauthorized, format, args...)
}

func (n *Node) verifyAssertion(ctx context.Context, raw string) (core.Auth, error) {
	var claims assertionClaims
	var peer core.Peer
	now := n.d.Now()
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithAudience(n.d.StackID),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(clockSkew),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	_, err := parser.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		iss := claims.Issuer
		if iss == "" {
			return nil, errors.New("assertion has no iss")
		}
		p, err := n.d.Peers.GetPeer(ctx, iss)
		if err != nil {
			return nil, fmt.Errorf("unknown peer %s", iss)
		}
		pub, err := ParsePublicKey(p.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", iss, err)
		}
		peer = p
		return pub, nil
	})
	if err != nil {
		return core.Auth{}, unauthorized("peer assertion refused: %v", err)
	}
	if claims.ExpiresAt.Time.After(now.Add(MaxAssertionTTL + clockSkew)) {
		return core.Auth{}, unauthorized("peer assertion lives longer than %s", MaxAssertionTTL)
	}
	if claims.ID == "" {
		return core.Auth{}, unauthorized("peer assertion has no jti")
	}
	if claims.Subject == "" || claims.TenantID == "" {
		return core.Auth{}, unauthorized("peer assertion lacks sub or tenant_id")
	}
	t, err := n.d.Tenants.GetTenant(ctx, claims.TenantID)
	if err != nil || !peer.Trusts(claims.TenantID) {
		return core.Auth{}, core.Errorf(core.CodeForbidden, "tenant %s is not trusted for peer %s", claims.TenantID, peer.StackID).
			With("tenant_id", claims.TenantID).With("peer_stack_id", peer.StackID)
	}
	if t.Status == core.TenantDisabled {
		return core.Auth{}, core.Errorf(core.CodeForbidden, "tenant %s is disabled", claims.TenantID).With("tenant_id", claims.TenantID)
	}
	fresh, err := n.d.JTIs.MarkJTI(ctx, peer.StackID, claims.ID, claims.ExpiresAt.Time.Add(clockSkew))
	if err != nil {
		return core.Auth{}, fmt.Errorf("record assertion id: %w", err)
	}
	if !fresh {
		return core.Auth{}, unauthorized("peer assertion replayed (jti %s)", claims.ID)
	}
	ptype := claims.PrincipalType
	if ptype != "user" {
		ptype = "service"
	}
	scopes := slices.DeleteFunc(slices.Clone(claims.Scopes), func(s string) bool {
		return s == core.ScopeTenantsAdmin || s == core.ScopeTenantsActAs
	})
	return core.Auth{
		TenantID:      claims.TenantID,
		Principal:     core.Principal{PrincipalID: claims.Subject, PrincipalType: ptype},
		Scopes:        scopes,
		PolicyContext: core.DefaultPolicyContext(n.d.Region),
		TokenID:       peerTokenPrefix + peer.StackID,
	}, nil
}

// peerOf returns the issuing peer when a peer assertion authenticated a.
func peerOf(a core.Auth) (string, bool) {
	return strings.CutPrefix(a.TokenID, peerTokenPrefix)
}
