package doctor

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/entraredis/entraredis/internal/claims"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testOID   = "0b0e5c9e-1d5a-4b7e-9f3e-2a4c6d8e0f11"
	testAppID = "9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0"
)

// runFake runs the doctor against the fake server with cred.
func runFake(t *testing.T, srv *fakeRedis, ca *testCA, cfg Config) (*Report, string, string) {
	t.Helper()
	if cfg.Host == "" {
		cfg.Host = "localhost"
	}
	if cfg.Port == 0 && srv != nil {
		cfg.Port = srv.port()
	}
	if ca != nil {
		cfg.RootCAs = ca.pool
	}
	if cfg.CertWarnBefore == 0 {
		cfg.CertWarnBefore = time.Hour // the test certificates live 24 hours
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	rep := Run(context.Background(), cfg)
	var text, js bytes.Buffer
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + text.String())
	return rep, text.String(), js.String()
}

// assertNoSecret fails when the token, or any part of it, appears in the outputs.
func assertNoSecret(t *testing.T, token string, outs ...string) {
	t.Helper()
	parts := strings.Split(token, ".")
	for _, out := range outs {
		if strings.Contains(out, token) {
			t.Fatalf("the token appears in the output")
		}
		// The signature and payload segments are the secret-bearing parts.
		for _, p := range parts[1:] {
			if len(p) > 8 && strings.Contains(out, p) {
				t.Fatalf("a segment of the token appears in the output")
			}
		}
	}
}

func wantStep(t *testing.T, rep *Report, name string, status Status, substrs ...string) Step {
	t.Helper()
	s, ok := rep.Step(name)
	if !ok {
		t.Fatalf("no step %q", name)
	}
	if s.Status != status {
		t.Fatalf("step %s: status %s, want %s (detail %q, cause %q)", name, s.Status, status, s.Detail, s.Cause)
	}
	all := s.Detail + "\n" + s.Cause + "\n" + s.Fix
	for _, sub := range substrs {
		if !strings.Contains(all, sub) {
			t.Errorf("step %s: %q not found in %q", name, sub, all)
		}
	}
	return s
}

func TestPassing(t *testing.T) {
	ca := newTestCA(t)
	srv := startFakeRedis(t, ca, false)
	tok := mintToken(t, tokenSpec{oid: testOID, appid: testAppID})
	rep, text, js := runFake(t, srv, ca, Config{Credential: &staticCred{token: tok}, CredentialName: "TestCredential", Write: true})
	if !rep.OK {
		t.Fatalf("report not OK")
	}
	for _, s := range rep.Steps {
		if s.Status != StatusOK {
			t.Errorf("step %s: %s (%s %s)", s.Name, s.Status, s.Detail, s.Cause)
		}
	}
	wantStep(t, rep, StepCredential, StatusOK, "TestCredential produced a token", DefaultScope)
	wantStep(t, rep, StepToken, StatusOK, "oid="+testOID, "aud=https://redis.azure.com", "appid="+testAppID)
	wantStep(t, rep, StepTLS, StatusOK, "TLS 1.", "localhost")
	wantStep(t, rep, StepAuth, StatusOK, "AUTH as "+testOID)
	wantStep(t, rep, StepWhoami, StatusOK, testOID)
	wantStep(t, rep, StepWrite, StatusOK, "SET entraredis-doctor:", "DEL → 1")
	wantStep(t, rep, StepCluster, StatusOK, "entraredis.NewClient")
	if rep.Client != "entraredis.NewClient" || rep.Username != testOID {
		t.Errorf("client %q username %q", rep.Client, rep.Username)
	}
	if !strings.Contains(text, "result: ok") {
		t.Errorf("text lacks the result line")
	}
	assertNoSecret(t, tok, text, js)

	var decoded struct {
		OK    bool `json:"ok"`
		Steps []struct {
			Name       string   `json:"name"`
			Status     string   `json:"status"`
			DurationMS *float64 `json:"duration_ms"`
			Detail     string   `json:"detail"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(js), &decoded); err != nil {
		t.Fatal(err)
	}
	if !decoded.OK || len(decoded.Steps) != 11 || decoded.Steps[0].Name != "credential" || decoded.Steps[0].DurationMS == nil {
		t.Fatalf("JSON: %+v", decoded)
	}
}

func TestWrongUsername(t *testing.T) {
	ca := newTestCA(t)
	srv := startFakeRedis(t, ca, false)
	tok := mintToken(t, tokenSpec{oid: testOID, appid: testAppID})
	rep, text, js := runFake(t, srv, ca, Config{Credential: &staticCred{token: tok}, Username: testAppID})
	if rep.OK {
		t.Fatal("report OK with a wrong username")
	}
	wantStep(t, rep, StepToken, StatusWarn, "is not the token's oid")
	wantStep(t, rep, StepAuth, StatusFailed,
		"WRONGPASS", "principal oid "+testOID, "username sent "+testAppID,
		"that is the client/application ID", "access policy is assigned to THIS principal",
		"Microsoft Entra Authentication is enabled", "https://redis.azure.com/.default")
	wantStep(t, rep, StepPing, StatusSkipped, "auth step did not pass")
	assertNoSecret(t, tok, text, js)
}

func TestExpiredToken(t *testing.T) {
	ca := newTestCA(t)
	srv := startFakeRedis(t, ca, false)
	tok := mintToken(t, tokenSpec{oid: testOID, exp: time.Now().Add(-10 * time.Minute)})
	rep, text, js := runFake(t, srv, ca, Config{Credential: &staticCred{token: tok}})
	wantStep(t, rep, StepToken, StatusWarn, "the token expired at")
	wantStep(t, rep, StepAuth, StatusFailed, "WRONGPASS", "most likely: the token expired at")
	if rep.OK {
		t.Fatal("report OK with an expired token")
	}
	assertNoSecret(t, tok, text, js)
}

func TestWrongAudience(t *testing.T) {
	ca := newTestCA(t)
	srv := startFakeRedis(t, ca, false)
	tok := mintToken(t, tokenSpec{oid: testOID, aud: "https://management.azure.com"})
	rep, text, js := runFake(t, srv, ca, Config{Credential: &staticCred{token: tok}})
	wantStep(t, rep, StepToken, StatusWarn, `audience is "https://management.azure.com"`, "--scope")
	wantStep(t, rep, StepAuth, StatusFailed, "token's audience is https://management.azure.com")
	assertNoSecret(t, tok, text, js)
}

func TestMissingOIDNeedsUsername(t *testing.T) {
	ca := newTestCA(t)
	srv := startFakeRedis(t, ca, false)
	tok := mintToken(t, tokenSpec{noOID: true})
	rep, _, _ := runFake(t, srv, ca, Config{Credential: &staticCred{token: tok}})
	wantStep(t, rep, StepToken, StatusWarn, "no oid claim", "--username")
	wantStep(t, rep, StepAuth, StatusFailed, "no username")
}

func TestWrongScope(t *testing.T) {
	ca := newTestCA(t)
	srv := startFakeRedis(t, ca, false)
	cred := &staticCred{err: errors.New("AADSTS500011: The resource principal named https://redis.azure.net was not found in the tenant")}
	rep, _, _ := runFake(t, srv, ca, Config{Credential: cred, Scope: "https://redis.azure.net/.default"})
	wantStep(t, rep, StepCredential, StatusFailed, `refused the scope "https://redis.azure.net/.default"`, "AADSTS500011", "--scope")
	wantStep(t, rep, StepToken, StatusSkipped)
	// The network steps do not need the token and still run.
	wantStep(t, rep, StepTLS, StatusOK)
	wantStep(t, rep, StepAuth, StatusSkipped, "token step did not pass")
	if rep.OK {
		t.Fatal("report OK without a token")
	}
}

func TestTLSNameMismatch(t *testing.T) {
	ca := newTestCA(t)
	srv := startFakeRedis(t, ca, false)
	tok := mintToken(t, tokenSpec{oid: testOID})
	rep, _, _ := runFake(t, srv, ca, Config{Credential: &staticCred{token: tok}, Host: "127.0.0.1"})
	wantStep(t, rep, StepDNS, StatusWarn, "is an IP address")
	wantStep(t, rep, StepTLS, StatusFailed, "certificate name mismatch", "you dialed the IP address 127.0.0.1 while the certificate names localhost", "ServerName")
	wantStep(t, rep, StepAuth, StatusSkipped, "tls step did not pass")
}

func TestClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tok := mintToken(t, tokenSpec{oid: testOID})
	rep, _, _ := runFake(t, nil, nil, Config{Credential: &staticCred{token: tok}, Host: "localhost", Port: port})
	wantStep(t, rep, StepTCP, StatusFailed, "connection refused", "6380", "10000")
	wantStep(t, rep, StepTLS, StatusSkipped)
	wantStep(t, rep, StepAuth, StatusSkipped)
}

func TestReaderWrite(t *testing.T) {
	ca := newTestCA(t)
	srv := startFakeRedis(t, ca, true)
	tok := mintToken(t, tokenSpec{oid: testOID})
	rep, _, _ := runFake(t, srv, ca, Config{Credential: &staticCred{token: tok}, Write: true})
	wantStep(t, rep, StepRead, StatusOK)
	wantStep(t, rep, StepWrite, StatusFailed, "NOPERM", "principal "+testOID, "looks like Data Reader", "Data Owner", "Data Contributor", "custom access policy", "+set")
	if rep.OK {
		t.Fatal("report OK although the write failed")
	}
}

// serveOnce accepts one connection on ln, hands it to handle and closes it
// when handle returns; the test's cleanup closes ln and waits for that. It
// returns ln's port.
func serveOnce(t *testing.T, ln net.Listener, handle func(net.Conn)) int {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		handle(c)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).Port
}

func TestNotTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := serveOnce(t, ln, func(c net.Conn) {
		buf := make([]byte, 512)
		_, _ = c.Read(buf)
		_, _ = c.Write([]byte("-ERR Protocol error: invalid multibulk length\r\n"))
	})
	tok := mintToken(t, tokenSpec{oid: testOID})
	rep, _, _ := runFake(t, nil, nil, Config{Credential: &staticCred{token: tok}, Port: port})
	wantStep(t, rep, StepTLS, StatusFailed, "does not speak TLS", "6380")
}

func TestPortWarning(t *testing.T) {
	for _, c := range []struct {
		host string
		port int
		want string
	}{
		{"c.redis.cache.windows.net", 6379, "plaintext port"},
		{"c.westeurope.redis.azure.net", 6380, "Azure Managed Redis listens on 10000"},
		{"c.redis.cache.windows.net", 10000, "Azure Cache for Redis listens on 6380"},
		{"c.redis.cache.windows.net", 6380, ""},
		{"c.westeurope.redis.azure.net", 10000, ""},
	} {
		got := portWarning(c.host, c.port)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("portWarning(%s, %d) = %q, want %q", c.host, c.port, got, c.want)
		}
	}
	if DefaultPort("x.eastus.redis.azure.net") != 10000 || DefaultPort("x.redis.cache.windows.net") != 6380 {
		t.Error("DefaultPort")
	}
}

func TestAudienceOK(t *testing.T) {
	for aud, want := range map[string]bool{
		"https://redis.azure.com": true, "https://redis.azure.com/": true, RedisAudienceGUID: true,
		"https://management.azure.com": false, "": false,
	} {
		if got := AudienceOK([]string{aud}); got != want {
			t.Errorf("AudienceOK(%q) = %v", aud, got)
		}
	}
}

func TestExplainDefaultChain(t *testing.T) {
	msg := "DefaultAzureCredential: failed to acquire a token.\nAttempted credentials:\n" +
		"\tEnvironmentCredential: missing environment variable AZURE_TENANT_ID\n" +
		"\tWorkloadIdentityCredential: no client ID specified. Check pod configuration or set ClientID in the options\n" +
		"\tManagedIdentityCredential: managed identity timed out. See https://aka.ms/azsdk/go/identity/troubleshoot#dac for more information\n" +
		"\tAzureCLICredential: Azure CLI not found on path\n" +
		"\t\tsecond line of the CLI error\n" +
		"\tAzureDeveloperCLICredential: Azure Developer CLI not found on path"
	cause, fix := ExplainCredentialError("DefaultAzureCredential", DefaultScope, errors.New(msg), false)
	for _, want := range []string{"tried 5 credentials", "EnvironmentCredential: missing environment variable AZURE_TENANT_ID", "AzureCLICredential: Azure CLI not found", "its chain: environment, workload identity, managed identity, Azure CLI, azd"} {
		if !strings.Contains(cause, want) {
			t.Errorf("cause lacks %q: %s", want, cause)
		}
	}
	for _, want := range []string{"az login", "AZURE_CLIENT_SECRET", "--client-id", "azd auth login"} {
		if !strings.Contains(fix, want) {
			t.Errorf("fix lacks %q: %s", want, fix)
		}
	}
	if strings.Contains(cause, "second line") {
		t.Error("continuation lines are not attempts")
	}
}

func TestRedact(t *testing.T) {
	tok := mintToken(t, tokenSpec{oid: testOID})
	got := Redact("before "+tok+" after; other eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln end", tok)
	if strings.Contains(got, tok) || strings.Contains(got, "eyJ") || !strings.Contains(got, "before [REDACTED] after") {
		t.Fatalf("Redact: %s", got)
	}
}

// A server that echoes the password in its error (it should not, but the doctor must not repeat it).
func TestTokenNeverEchoed(t *testing.T) {
	tok := mintToken(t, tokenSpec{oid: testOID})
	cred := &staticCred{err: errors.New("credential failed while handling " + tok)}
	rep, text, js := runFake(t, nil, nil, Config{Credential: cred, Host: "localhost", Port: 1})
	wantStep(t, rep, StepCredential, StatusFailed, "[REDACTED]")
	assertNoSecret(t, tok, text, js)
}

func TestCertExpiryWarning(t *testing.T) {
	ca := newTestCA(t)
	srv := startFakeRedis(t, ca, false)
	tok := mintToken(t, tokenSpec{oid: testOID})
	rep, _, _ := runFake(t, srv, ca, Config{Credential: &staticCred{token: tok}, CertWarnBefore: 48 * time.Hour})
	wantStep(t, rep, StepTLS, StatusWarn, "the server certificate expires in")
	if !rep.OK {
		t.Fatal("a warning must not fail the report")
	}
}

// A port that accepts TCP but never answers TLS: the step is bounded by the timeout.
func TestTLSHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := serveOnce(t, ln, func(c net.Conn) {
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	})
	tok := mintToken(t, tokenSpec{oid: testOID})
	start := time.Now()
	rep, _, _ := runFake(t, nil, nil, Config{Credential: &staticCred{token: tok}, Host: "localhost", Port: port, Timeout: 300 * time.Millisecond})
	wantStep(t, rep, StepTLS, StatusFailed, "did not finish within 300ms")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the doctor took %s", d)
	}
}

// A server that closes the connection on AUTH.
func TestAuthConnectionClosed(t *testing.T) {
	ca := newTestCA(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.cert}})
	if err != nil {
		t.Fatal(err)
	}
	port := serveOnce(t, ln, func(c net.Conn) {
		buf := make([]byte, 64)
		_, _ = c.Read(buf) // the handshake and the start of AUTH
	})
	tok := mintToken(t, tokenSpec{oid: testOID})
	rep, text, js := runFake(t, nil, ca, Config{Credential: &staticCred{token: tok}, Port: port})
	wantStep(t, rep, StepAuth, StatusFailed, "AUTH got no answer", "closed the connection")
	assertNoSecret(t, tok, text, js)
}

func TestDescribeClaims(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := func() claims.Claims {
		return claims.Claims{ObjectID: testOID, Audience: []string{"https://redis.azure.com/"}, ExpiresAt: now.Add(time.Hour), AppID: testAppID, Version: "1.0"}
	}
	cases := []struct {
		name string
		edit func(*claims.Claims)
		want []string // substrings of the warnings' causes; none when empty
	}{
		{"good", func(*claims.Claims) {}, nil},
		{"guid audience", func(c *claims.Claims) { c.Audience = []string{RedisAudienceGUID} }, nil},
		{"no oid", func(c *claims.Claims) { c.ObjectID = "" }, []string{"no oid claim"}},
		{"graph audience", func(c *claims.Claims) { c.Audience = []string{"https://graph.microsoft.com"} }, []string{`audience is "https://graph.microsoft.com"`}},
		{"expires soon", func(c *claims.Claims) { c.ExpiresAt = now.Add(90 * time.Second) }, []string{"expires in 1m30s"}},
		{"expired", func(c *claims.Claims) { c.ExpiresAt = now.Add(-time.Minute) }, []string{"expired at 2026-01-02T03:03:05Z (1m0s ago)"}},
		{"not yet valid", func(c *claims.Claims) { c.NotBefore = now.Add(time.Minute) }, []string{"not valid before", "clock is behind"}},
	}
	for _, c := range cases {
		cl := base()
		c.edit(&cl)
		ti := DescribeClaims(cl, now)
		var causes []string
		for _, w := range ti.Warnings {
			causes = append(causes, w.Cause)
			if w.Fix == "" {
				t.Errorf("%s: a warning without a fix", c.name)
			}
		}
		all := strings.Join(causes, "\n")
		if len(c.want) == 0 && len(causes) > 0 {
			t.Errorf("%s: unexpected warnings: %s", c.name, all)
		}
		for _, w := range c.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: %q not in %q", c.name, w, all)
			}
		}
	}
	if s := DescribeClaims(base(), now).Summary(); !strings.Contains(s, "oid="+testOID) || !strings.Contains(s, "appid="+testAppID) || !strings.Contains(s, "(in 1h0m0s)") {
		t.Errorf("summary: %s", s)
	}
}
