// Package testcerts creates throwaway TLS certificates for tests: an ECDSA P-256
// certificate authority and one server certificate signed by it.
//
// The server certificate names only the DNS names the caller gives (no IP SANs), so a
// client that verifies it against an IP address fails exactly like a client that takes
// an Azure cluster topology (IP addresses) at face value.
//
// Nothing here ever sets InsecureSkipVerify.
package testcerts

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
	"time"
)

// Validity bounds of every certificate relative to the time New is called:
// valid from now-NotBeforeSkew until now+Lifetime.
const (
	NotBeforeSkew = time.Hour
	Lifetime      = 24 * time.Hour
)

// Bundle holds a throwaway CA and a server leaf certificate signed by it.
// A Bundle is immutable after New and safe for concurrent use.
type Bundle struct {
	caCert  *x509.Certificate
	caPEM   []byte
	leaf    tls.Certificate
	leafPEM []byte
	names   []string
}

// New creates a CA and a server certificate for the given DNS names (at least one).
// The leaf has no IP SANs. Certificates are valid from now-1h to now+24h.
func New(dnsNames ...string) (*Bundle, error) {
	if len(dnsNames) == 0 {
		return nil, errors.New("testcerts: at least one DNS name is required")
	}
	now := time.Now()
	notBefore, notAfter := now.Add(-NotBeforeSkew), now.Add(Lifetime)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testcerts: generate CA key: %w", err)
	}
	caSerial, err := serial()
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          caSerial,
		Subject:               pkix.Name{CommonName: "entraredis throwaway test CA", Organization: []string{"entraredis tests"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("testcerts: create CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("testcerts: parse CA certificate: %w", err)
	}

	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testcerts: generate server key: %w", err)
	}
	leafSerial, err := serial()
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: leafSerial,
		Subject:      pkix.Name{CommonName: dnsNames[0], Organization: []string{"entraredis tests"}},
		DNSNames:     append([]string(nil), dnsNames...),
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("testcerts: create server certificate: %w", err)
	}
	leafCert, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, fmt.Errorf("testcerts: parse server certificate: %w", err)
	}

	return &Bundle{
		caCert: caCert,
		caPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		leaf: tls.Certificate{
			Certificate: [][]byte{leafDER},
			PrivateKey:  leafKey,
			Leaf:        leafCert,
		},
		leafPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		names:   append([]string(nil), dnsNames...),
	}, nil
}

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("testcerts: serial number: %w", err)
	}
	return n, nil
}

// ServerTLS returns a new server configuration presenting the leaf certificate,
// with MinVersion TLS 1.2. Each call returns a fresh config the caller may modify.
func (b *Bundle) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{b.leaf},
	}
}

// ClientTLS returns a new client configuration that trusts only the throwaway CA,
// verifies the server certificate against serverName, and requires TLS 1.2 or later.
// An empty serverName leaves ServerName unset (crypto/tls then verifies against the
// dialed host). Each call returns a fresh config the caller may modify.
func (b *Bundle) ClientTLS(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    b.CertPool(),
		ServerName: serverName,
	}
}

// CertPool returns a new pool holding only the CA certificate.
func (b *Bundle) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(b.caCert)
	return pool
}

// CAPEM returns the CA certificate, PEM-encoded (a copy).
func (b *Bundle) CAPEM() []byte { return append([]byte(nil), b.caPEM...) }

// CACert returns the parsed CA certificate. Callers must not modify it.
func (b *Bundle) CACert() *x509.Certificate { return b.caCert }

// ServerCertPEM returns the server leaf certificate, PEM-encoded (a copy).
func (b *Bundle) ServerCertPEM() []byte { return append([]byte(nil), b.leafPEM...) }

// DNSNames returns the DNS names the server certificate is valid for (a copy).
func (b *Bundle) DNSNames() []string { return append([]string(nil), b.names...) }
