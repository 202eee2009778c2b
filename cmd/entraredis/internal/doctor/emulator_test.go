package doctor

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraredis/entraredis/entraredistest"
)

// These tests run the doctor against the project's Entra emulator: a TLS
// proxy that verifies tokens in front of redis-server (or the in-process
// fallback), so every diagnosis below is the one a real server's reply gets.

// mintCred is a TokenCredential returning tokens minted by the emulator's
// issuer from spec (expired, another audience, ...).
type mintCred struct {
	is   *entraredistest.Issuer
	spec entraredistest.TokenSpec
}

func (m mintCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := m.is.Mint(m.spec)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return azcore.AccessToken{Token: tok, ExpiresOn: m.spec.ExpiresAt}, nil
}

func emulatorConfig(srv *entraredistest.Server, cred azcore.TokenCredential) Config {
	return Config{
		Host: srv.Host(), Port: srv.Port(), Credential: cred,
		RootCAs:        srv.TLSConfig().RootCAs,
		CertWarnBefore: time.Hour, // the emulator's certificate lives 24 hours
		Timeout:        5 * time.Second,
	}
}

// runEmu runs the doctor and returns the report and its text and JSON forms;
// it also checks that the token the credential gives appears in neither.
func runEmu(t *testing.T, cfg Config) (*Report, string) {
	t.Helper()
	// The token the credential hands out, to look for it in the output.
	tok, tokErr := cfg.Credential.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{DefaultScope}})
	rep, text, js := runFake(t, nil, nil, cfg)
	if tokErr == nil {
		assertNoSecret(t, tok.Token, text, js)
	}
	return rep, text
}

func TestEmulatorPassing(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	cfg := emulatorConfig(srv, srv.Credential())
	cfg.Write = true
	rep, text := runEmu(t, cfg)
	if !rep.OK {
		t.Fatalf("report not OK:\n%s", text)
	}
	oid := srv.Credential().ObjectID()
	wantStep(t, rep, StepToken, StatusOK, "oid="+oid, "aud=https://redis.azure.com")
	wantStep(t, rep, StepTLS, StatusOK, "certificate for localhost")
	wantStep(t, rep, StepAuth, StatusOK, "AUTH as "+oid)
	wantStep(t, rep, StepPing, StatusOK, "PONG")
	wantStep(t, rep, StepRead, StatusOK)
	wantStep(t, rep, StepWrite, StatusOK, "SET entraredis-doctor:")
	if srv.Backend() == entraredistest.BackendRedisServer {
		for _, s := range rep.Steps {
			if s.Status != StatusOK {
				t.Errorf("step %s: %s (%s; %s)", s.Name, s.Status, s.Detail, s.Cause)
			}
		}
		wantStep(t, rep, StepWhoami, StatusOK)
		wantStep(t, rep, StepCluster, StatusOK, "use entraredis.NewClient")
		if rep.Client != "entraredis.NewClient" {
			t.Errorf("client %q", rep.Client)
		}
	}
	if got := srv.Stats().Auths; got < 1 {
		t.Errorf("the emulator saw %d AUTHs", got)
	}
}

func TestEmulatorWrongUsername(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	cfg := emulatorConfig(srv, srv.Credential())
	cfg.Username = "alice@contoso.com"
	rep, _ := runEmu(t, cfg)
	if rep.OK {
		t.Fatal("OK with a wrong username")
	}
	oid := srv.Credential().ObjectID()
	wantStep(t, rep, StepAuth, StatusFailed, "WRONGPASS", "principal oid "+oid, "username sent alice@contoso.com",
		"is not the token's oid "+oid, "THIS principal, object ID "+oid, "Microsoft Entra Authentication is enabled")
	if srv.Stats().RefusedAuths != 1 {
		t.Errorf("the emulator refused %d AUTHs, want 1", srv.Stats().RefusedAuths)
	}
}

func TestEmulatorExpiredToken(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	oid := srv.Credential().ObjectID()
	past := time.Now().Add(-2 * time.Hour)
	cred := mintCred{is: srv.Issuer(), spec: entraredistest.TokenSpec{ObjectID: oid, IssuedAt: past, ExpiresAt: past.Add(time.Hour)}}
	rep, _ := runEmu(t, emulatorConfig(srv, cred))
	wantStep(t, rep, StepToken, StatusWarn, "the token expired at")
	wantStep(t, rep, StepAuth, StatusFailed, "WRONGPASS", "most likely: the token expired at", "(5) the token has not expired")
	if rep.OK {
		t.Fatal("OK with an expired token")
	}
}

func TestEmulatorWrongScope(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	cfg := emulatorConfig(srv, srv.Credential())
	cfg.Scope = "https://management.azure.com/.default"
	rep, _ := runEmu(t, cfg)
	wantStep(t, rep, StepCredential, StatusFailed, `refused the scope "https://management.azure.com/.default"`, "AADSTS500011", "https://redis.azure.com/.default (--scope)")
	wantStep(t, rep, StepToken, StatusSkipped)
	wantStep(t, rep, StepTLS, StatusOK) // the network is checked anyway
	wantStep(t, rep, StepAuth, StatusSkipped)
}

func TestEmulatorWrongAudience(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	oid := srv.Credential().ObjectID()
	cred := mintCred{is: srv.Issuer(), spec: entraredistest.TokenSpec{ObjectID: oid, Audience: "https://management.azure.com"}}
	rep, _ := runEmu(t, emulatorConfig(srv, cred))
	wantStep(t, rep, StepToken, StatusWarn, `audience is "https://management.azure.com"`, "request the scope https://redis.azure.com/.default")
	wantStep(t, rep, StepAuth, StatusFailed, "WRONGPASS", "token's audience is https://management.azure.com, not Redis")
}

func TestEmulatorUnknownPrincipal(t *testing.T) {
	// A valid token for a principal with no access policy on the cache.
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	stranger := "5e1f0000-0000-4000-8000-00000000beef"
	cred := mintCred{is: srv.Issuer(), spec: entraredistest.TokenSpec{ObjectID: stranger}}
	rep, _ := runEmu(t, emulatorConfig(srv, cred))
	s := wantStep(t, rep, StepAuth, StatusFailed, "WRONGPASS", "principal oid "+stranger, "access policy is assigned to THIS principal, object ID "+stranger)
	if strings.Contains(s.Cause, "most likely") {
		t.Errorf("nothing in the token explains it, yet the cause guesses: %s", s.Cause)
	}
}

func TestEmulatorReaderWrite(t *testing.T) {
	entraredistest.RequireRedisServer(t)
	srv := entraredistest.NewServer(t, entraredistest.Options{Backend: entraredistest.BackendRedisServer})
	reader := srv.NewCredential(entraredistest.CredentialOptions{Role: entraredistest.RoleReader})
	cfg := emulatorConfig(srv, reader)
	cfg.Write = true
	rep, _ := runEmu(t, cfg)
	wantStep(t, rep, StepAuth, StatusOK)
	wantStep(t, rep, StepRead, StatusOK)
	wantStep(t, rep, StepWrite, StatusFailed, "NOPERM", "principal "+reader.ObjectID(), "not allowed to run SET",
		"looks like Data Reader", "Data Owner", "Data Contributor", "custom access policy")
	if rep.OK {
		t.Fatal("OK although the write was refused")
	}
}

func TestEmulatorTLSNameMismatch(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	cfg := emulatorConfig(srv, srv.Credential())
	cfg.Host = "127.0.0.1"
	rep, _ := runEmu(t, cfg)
	wantStep(t, rep, StepDNS, StatusWarn, "is an IP address")
	wantStep(t, rep, StepTLS, StatusFailed, "certificate name mismatch", "you dialed the IP address 127.0.0.1 while the certificate names localhost", "tls.Config.ServerName")
	wantStep(t, rep, StepAuth, StatusSkipped)
	if srv.Stats().Auths != 0 {
		t.Error("the token was sent over an unverified connection")
	}
}

func TestEmulatorClosedPort(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := emulatorConfig(srv, srv.Credential())
	cfg.Port = port
	rep, _ := runEmu(t, cfg)
	wantStep(t, rep, StepCredential, StatusOK)
	wantStep(t, rep, StepTCP, StatusFailed, "connection refused: nothing listens on localhost:", "6380", "10000")
	wantStep(t, rep, StepAuth, StatusSkipped, "tls step did not pass")
}

func TestEmulatorUntrustedCA(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	cfg := emulatorConfig(srv, srv.Credential())
	cfg.RootCAs = newTestCA(t).pool // another CA
	rep, _ := runEmu(t, cfg)
	wantStep(t, rep, StepTLS, StatusFailed, "unknown authority", "CA")
}

func TestEmulatorPassingInProcess(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{Backend: entraredistest.BackendInProcess})
	cfg := emulatorConfig(srv, srv.Credential())
	cfg.Write = true
	rep, text := runEmu(t, cfg)
	if !rep.OK {
		t.Fatalf("report not OK on the in-process backend:\n%s", text)
	}
	wantStep(t, rep, StepAuth, StatusOK)
	wantStep(t, rep, StepWrite, StatusOK)
}

func TestEmulatorOSSCluster(t *testing.T) {
	cl := entraredistest.NewCluster(t, entraredistest.ClusterOptions{})
	host, portStr, err := net.SplitHostPort(cl.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	cfg := Config{
		Host: host, Port: port, Credential: cl.Credential(), RootCAs: cl.TLSConfig().RootCAs,
		CertWarnBefore: time.Hour, Timeout: 5 * time.Second, Write: true,
	}
	rep, text := runEmu(t, cfg)
	if !rep.OK {
		t.Fatalf("report not OK:\n%s", text)
	}
	wantStep(t, rep, StepCluster, StatusOK, "CLUSTER INFO answered (cluster_state:ok)", "OSS cluster policy: use entraredis.NewClusterClient")
	if rep.Client != "entraredis.NewClusterClient" {
		t.Errorf("client %q", rep.Client)
	}
}
