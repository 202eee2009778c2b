package doctor

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/golang-jwt/jwt/v5"

	"github.com/entraredis/entraredis/internal/claims"
	"github.com/entraredis/entraredis/internal/resp"
)

// testCA is a throwaway CA and a server certificate naming only "localhost".
type testCA struct {
	pool *x509.CertPool
	cert tls.Certificate
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "doctor test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &testCA{pool: pool, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

// fakeRedis is a TLS RESP server that accepts AUTH <oid> <token> when the
// token is unexpired, for Redis, and names oid; readOnly principals get NOPERM on writes.
type fakeRedis struct {
	ln       net.Listener
	readOnly bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
	closed   bool
}

func startFakeRedis(t testing.TB, ca *testCA, readOnly bool) *fakeRedis {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRedis{ln: ln, readOnly: readOnly, conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(f.close)
	return f
}

func (f *fakeRedis) port() int { return f.ln.Addr().(*net.TCPAddr).Port }

func (f *fakeRedis) close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	_ = f.ln.Close()
	f.wg.Wait()
}

func (f *fakeRedis) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			_ = c.Close()
			return
		}
		f.conns[c] = true
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			f.handle(c)
		}()
	}
}

// readCommand reads one command with the project's RESP reader.
func readCommand(r *resp.Reader) ([]string, error) {
	argv, err := r.ReadCommand()
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	args := make([]string, len(argv))
	for i, a := range argv {
		args[i] = string(a)
	}
	return args, nil
}

func (f *fakeRedis) handle(c net.Conn) {
	r := resp.NewReader(bufio.NewReader(c))
	user := ""
	for {
		args, err := readCommand(r)
		if err != nil {
			return
		}
		reply := "-ERR unknown command\r\n"
		switch cmd := strings.ToUpper(args[0]); {
		case cmd == "AUTH" && len(args) == 3:
			cl, err := claims.Parse(args[2])
			switch {
			case err != nil || cl.ObjectID != args[1] || !time.Now().Before(cl.ExpiresAt) || !AudienceOK(cl.Audience):
				reply = "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
			default:
				user = args[1]
				reply = "+OK\r\n"
			}
		case user == "":
			reply = "-NOAUTH Authentication required.\r\n"
		case cmd == "PING":
			reply = "+PONG\r\n"
		case cmd == "ACL":
			reply = fmt.Sprintf("$%d\r\n%s\r\n", len(user), user)
		case cmd == "GET":
			reply = "$-1\r\n"
		case cmd == "SET" || cmd == "DEL":
			if f.readOnly {
				reply = "-NOPERM User " + user + " has no permissions to run the '" + strings.ToLower(cmd) + "' command\r\n"
			} else if cmd == "SET" {
				reply = "+OK\r\n"
			} else {
				reply = ":1\r\n"
			}
		case cmd == "CLUSTER":
			reply = "-ERR This instance has cluster support disabled\r\n"
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// hmacKey signs the fake tokens (the fake server does not verify signatures).
var hmacKey = []byte("doctor-test-key-not-a-secret")

type tokenSpec struct {
	oid, aud, appid string
	exp             time.Time
	noOID           bool
}

func mintToken(t testing.TB, s tokenSpec) string {
	t.Helper()
	if s.aud == "" {
		s.aud = "https://redis.azure.com"
	}
	if s.exp.IsZero() {
		s.exp = time.Now().Add(time.Hour)
	}
	mc := jwt.MapClaims{
		"aud": s.aud, "exp": s.exp.Unix(), "iat": time.Now().Add(-time.Minute).Unix(),
		"tid": "11111111-2222-3333-4444-555555555555", "appid": s.appid, "idtyp": "app", "ver": "1.0",
	}
	if !s.noOID {
		mc["oid"] = s.oid
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, mc).SignedString(hmacKey)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// staticCred returns a fixed token, or an error.
type staticCred struct {
	token string
	err   error
	calls int
	mu    sync.Mutex
}

func (c *staticCred) GetToken(_ context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	if c.err != nil {
		return azcore.AccessToken{}, c.err
	}
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}
