package fed_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/agentos/agentos/fed"
)

// The node key's PEM form is written by one function and read by one, for
// the key file and a cluster's shared key alike.
func TestKeyPEM_RoundTripAndRefusals(t *testing.T) {
	raw, err := fed.NewKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := fed.ParseKeyPEM(raw)
	if err != nil {
		t.Fatal(err)
	}
	again, err := fed.ParseKeyPEM(raw)
	if err != nil || !priv.Equal(again) {
		t.Fatalf("the same PEM read twice gave different keys (%v)", err)
	}
	other, _ := fed.NewKeyPEM()
	if k, _ := fed.ParseKeyPEM(other); k.Equal(priv) {
		t.Fatal("two fresh keys are the same")
	}

	if _, err := fed.ParseKeyPEM([]byte("not a key")); err == nil || err.Error() != "not PEM" {
		t.Fatalf("garbage: %v", err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	if _, err := fed.ParseKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err == nil || err.Error() != "not an Ed25519 key" {
		t.Fatalf("an ECDSA key: %v", err)
	}
	if _, err := fed.ParseKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")})); err == nil || strings.Contains(err.Error(), "Ed25519") {
		t.Fatalf("a PEM block that is no PKCS #8 key: %v", err)
	}
}
