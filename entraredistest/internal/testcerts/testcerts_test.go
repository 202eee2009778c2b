package testcerts

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// serve accepts one connection at a time on a loopback listener with the bundle's server
// config, completes the handshake, writes "ok" and closes. It returns the address.
func serve(t *testing.T, b *Bundle) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", b.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if err := c.(*tls.Conn).Handshake(); err == nil {
				_, _ = c.Write([]byte("ok"))
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func dial(addr string, cfg *tls.Config) (string, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	return string(got), err
}

func TestHandshakeWithHostName(t *testing.T) {
	b, err := New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, b)
	got, err := dial(addr, b.ClientTLS("localhost"))
	if err != nil {
		t.Fatalf("handshake with ServerName localhost: %v", err)
	}
	if got != "ok" {
		t.Fatalf("read %q, want ok", got)
	}
}

func TestHandshakeWithIPFails(t *testing.T) {
	b, err := New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, b)
	for _, name := range []string{"127.0.0.1", ""} {
		// "" => crypto/tls verifies against the dialed host, the IP 127.0.0.1:
		// this is what a cluster client does with IP topology and no ServerName.
		_, err := dial(addr, b.ClientTLS(name))
		if err == nil {
			t.Fatalf("ServerName %q: handshake succeeded, want a certificate name error", name)
		}
		var hErr x509.HostnameError
		if !errors.As(err, &hErr) {
			t.Fatalf("ServerName %q: error %v (%T), want x509.HostnameError", name, err, err)
		}
		if !strings.Contains(err.Error(), "not valid for") && !strings.Contains(err.Error(), "doesn't contain any IP SANs") {
			t.Fatalf("ServerName %q: error %q lacks the certificate-name wording", name, err)
		}
	}
}

func TestHandshakeWithOtherCAFails(t *testing.T) {
	b, err := New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	other, err := New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, b)
	_, err = dial(addr, other.ClientTLS("localhost"))
	var uaErr x509.UnknownAuthorityError
	if !errors.As(err, &uaErr) {
		t.Fatalf("error %v, want x509.UnknownAuthorityError", err)
	}
}

func TestTLSVersionFloor(t *testing.T) {
	b, err := New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, b)
	cfg := b.ClientTLS("localhost")
	cfg.MinVersion = tls.VersionTLS10
	cfg.MaxVersion = tls.VersionTLS11
	if _, err := dial(addr, cfg); err == nil {
		t.Fatal("TLS 1.1 handshake succeeded, want failure (server MinVersion TLS 1.2)")
	}
	if v := b.ServerTLS().MinVersion; v != tls.VersionTLS12 {
		t.Fatalf("server MinVersion %x", v)
	}
	if c := b.ClientTLS("x"); c.MinVersion != tls.VersionTLS12 || c.ServerName != "x" || c.InsecureSkipVerify {
		t.Fatalf("client config %+v", c)
	}
}

func TestCertificateContents(t *testing.T) {
	before := time.Now()
	b, err := New("localhost", "example.test")
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(b.CAPEM())
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("CA PEM malformed")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA {
		t.Fatal("CA is not a CA")
	}
	block, _ = pem.Decode(b.ServerCertPEM())
	if block == nil {
		t.Fatal("server PEM malformed")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.IPAddresses) != 0 {
		t.Fatalf("leaf has IP SANs %v", leaf.IPAddresses)
	}
	if got := strings.Join(leaf.DNSNames, ","); got != "localhost,example.test" {
		t.Fatalf("DNS names %q", got)
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("leaf not signed by CA: %v", err)
	}
	for _, c := range []*x509.Certificate{ca, leaf} {
		if c.PublicKeyAlgorithm != x509.ECDSA {
			t.Fatalf("key algorithm %v", c.PublicKeyAlgorithm)
		}
		if d := before.Add(-time.Hour).Sub(c.NotBefore); d < -time.Minute || d > time.Minute {
			t.Fatalf("NotBefore %v, want about now-1h", c.NotBefore)
		}
		if d := before.Add(24 * time.Hour).Sub(c.NotAfter); d < -time.Minute || d > time.Minute {
			t.Fatalf("NotAfter %v, want about now+24h", c.NotAfter)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.test", Roots: b.CertPool()}); err != nil {
		t.Fatalf("verify example.test: %v", err)
	}
}

func TestNewRequiresName(t *testing.T) {
	if _, err := New(); err == nil {
		t.Fatal("New() with no names succeeded")
	}
}
