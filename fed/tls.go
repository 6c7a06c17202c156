package fed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Dev PKI file names, written by GenerateDevPKI.
const (
	DevCACertFile   = "ca.pem"
	DevCAKeyFile    = "ca.key"
	DevNodeCertFile = "node.pem"
	DevNodeKeyFile  = "node.key"
)

func loadCAPool(caFile string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("federation TLS CA file %q: %w", caFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("federation TLS CA file %q: no PEM certificate in it", caFile)
	}
	return pool, nil
}

func loadKeyPair(certFile, keyFile, role string) (tls.Certificate, error) {
	for _, f := range []struct{ name, path string }{{"certificate", certFile}, {"key", keyFile}} {
		if f.path == "" {
			return tls.Certificate{}, fmt.Errorf("federation TLS %s %s file is required", role, f.name)
		}
		if _, err := os.Stat(f.path); err != nil {
			return tls.Certificate{}, fmt.Errorf("federation TLS %s %s file %q: %w", role, f.name, f.path, err)
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("federation TLS %s key pair (%q, %q): %w", role, certFile, keyFile, err)
	}
	return cert, nil
}

// ServerTLSConfig is the federation listener's TLS: certFile and keyFile
// are required; with caFile, clients must present a certificate that CA
// signed (mTLS). Missing or unreadable files fail with a message naming them.
func ServerTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := loadKeyPair(certFile, keyFile, "server")
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if caFile != "" {
		pool, err := loadCAPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientTLSConfig is the TLS of outbound calls to peers: caFile (when set)
// replaces the system roots, and certFile/keyFile (both or neither) are
// presented for mTLS.
func ClientTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if certFile != "" || keyFile != "" {
		cert, err := loadKeyPair(certFile, keyFile, "client")
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if caFile != "" {
		pool, err := loadCAPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// GenerateDevPKI writes a local CA (ca.pem, ca.key) and a node certificate
// signed by it (node.pem, node.key) into dir, for testing mTLS between
// peers. The node certificate serves and authenticates as a client, for
// hosts (DNS names or IPs; default localhost and 127.0.0.1). An existing
// CA in dir is reused, so several nodes can share one. Keys are 0600.
func GenerateDevPKI(dir string, hosts []string) error {
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create PKI dir: %w", err)
	}
	caCert, caKey, err := loadOrCreateCA(dir)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate node key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"AgentOS dev node"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("sign node certificate: %w", err)
	}
	if err := writePEM(filepath.Join(dir, DevNodeCertFile), "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode node key: %w", err)
	}
	return writePEM(filepath.Join(dir, DevNodeKeyFile), "PRIVATE KEY", kder, 0o600)
}

func loadOrCreateCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, DevCACertFile), filepath.Join(dir, DevCAKeyFile)
	if craw, err := os.ReadFile(certPath); err == nil {
		kraw, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, nil, fmt.Errorf("CA key %q: %w", keyPath, err)
		}
		cb, _ := pem.Decode(craw)
		kb, _ := pem.Decode(kraw)
		if cb == nil || kb == nil {
			return nil, nil, fmt.Errorf("CA files in %s are not PEM", dir)
		}
		cert, err := x509.ParseCertificate(cb.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("CA certificate %q: %w", certPath, err)
		}
		k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("CA key %q: %w", keyPath, err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, nil, fmt.Errorf("CA key %q: not an ECDSA key", keyPath)
		}
		return cert, ek, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("CA certificate %q: %w", certPath, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "AgentOS dev CA", Organization: []string{"AgentOS"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode CA key: %w", err)
	}
	if err := writePEM(keyPath, "PRIVATE KEY", kder, 0o600); err != nil {
		return nil, nil, err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Chmod(path, mode)
}
