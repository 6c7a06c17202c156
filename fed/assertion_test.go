package fed_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentos/agentos/fed"
	"github.com/golang-jwt/jwt/v5"
)

type assertionClaims struct {
	iss, aud, sub, tenant, jti string
	scopes                     []string
	exp                        time.Time
}

func (c assertionClaims) jwt() jwt.MapClaims {
	m := jwt.MapClaims{"iss": c.iss, "aud": c.aud, "sub": c.sub, "tenant_id": c.tenant, "scopes": c.scopes,
		"exp": c.exp.Unix(), "iat": time.Now().Unix()}
	if c.jti != "" {
		m["jti"] = c.jti
	}
	return m
}

func sign(t testing.TB, key ed25519.PrivateKey, c assertionClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c.jwt()).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signHS(t testing.TB, c assertionClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c.jwt()).SignedString([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// readNodeKey reads a node's key the way an operator would find it.
func readNodeKey(t testing.TB, dir string) ed25519.PrivateKey {
	t.Helper()
	path := filepath.Join(dir, fed.KeyFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	block, _ := pem.Decode(raw)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
}

func TestPublicKey_RoundTrip(t *testing.T) {
	pub, _ := newKey(t)
	s := fed.EncodePublicKey(pub)
	got, err := fed.ParsePublicKey(s)
	if err != nil || !got.Equal(pub) {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range []string{"", "rsa:AAAA", "ed25519:!!!", "ed25519:AAAA"} {
		if _, err := fed.ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", bad)
		}
	}
}
