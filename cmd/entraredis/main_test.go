package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"go.uber.org/goleak"

	"github.com/entraredis/entraredis/cmd/entraredis/internal/doctor"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/internal/tokenspy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recordingCred remembers every token it handed out, so that tests can
// check none of them reaches the output.
type recordingCred struct{ *tokenspy.Credential }

func (r recordingCred) assertAbsent(t *testing.T, outs ...string) {
	t.Helper()
	tokens := r.Tokens()
	if len(tokens) == 0 {
		t.Fatal("the credential handed out no token: nothing checked")
	}
	for _, tok := range tokens {
		sig := tok[strings.LastIndex(tok, ".")+1:]
		for _, out := range outs {
			if strings.Contains(out, tok) || strings.Contains(out, sig) {
				t.Fatal("the token appears in the output")
			}
		}
	}
}

// testEnv makes the command use cred and trust the emulator's CA.
func testEnv(srv *entraredistest.Server, cred azcore.TokenCredential) (env, recordingCred) {
	rc := recordingCred{tokenspy.New(cred)}
	e := env{
		newCredential: func(o doctor.CredentialOptions) (*doctor.Credential, error) {
			if o.Kind != "default" {
				return nil, fmt.Errorf("test: unexpected kind %q", o.Kind)
			}
			return &doctor.Credential{TokenCredential: rc, Name: "DefaultAzureCredential", Source: func() string { return "EmulatorCredential" }}, nil
		},
		now: time.Now,
		doctorConfig: func(c *doctor.Config) {
			c.CertWarnBefore = time.Hour // the emulator's certificate lives 24 hours
		},
	}
	if srv != nil {
		e.rootCAs = srv.TLSConfig().RootCAs
	}
	return e, rc
}

func runCmd(t *testing.T, e env, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, e)
	t.Logf("entraredis %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return code, stdout.String(), stderr.String()
}

func TestDoctorPassingText(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	e, rc := testEnv(srv, srv.Credential())
	code, out, errOut := runCmd(t, e, "doctor", "--host", srv.Host(), "--port", strconv.Itoa(srv.Port()), "--write")
	if code != exitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	for _, want := range []string{
		"DefaultAzureCredential produced a token for scope https://redis.azure.com/.default (the chain's EmulatorCredential answered)",
		"oid=" + srv.Credential().ObjectID(),
		"AUTH as " + srv.Credential().ObjectID() + " accepted",
		"result: ok",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !regexp.MustCompile(`\[  ok  \] tls +\d+\.\dms`).MatchString(out) {
		t.Error("no timing on the tls line")
	}
	rc.assertAbsent(t, out, errOut)
}

func TestDoctorJSON(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	e, rc := testEnv(srv, srv.Credential())
	// host:port form of --host
	code, out, errOut := runCmd(t, e, "doctor", "--host", srv.Addr(), "--json")
	if code != exitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	var rep struct {
		Host     string `json:"host"`
		Port     int    `json:"port"`
		Username string `json:"username"`
		OK       bool   `json:"ok"`
		Client   string `json:"client"`
		Steps    []struct {
			Name       string   `json:"name"`
			Status     string   `json:"status"`
			DurationMS *float64 `json:"duration_ms"`
			Detail     string   `json:"detail"`
			Cause      string   `json:"cause"`
			Fix        string   `json:"fix"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if !rep.OK || rep.Host != "localhost" || rep.Port != srv.Port() || rep.Username != srv.Credential().ObjectID() {
		t.Fatalf("report: %+v", rep)
	}
	names := []string{}
	for _, s := range rep.Steps {
		names = append(names, s.Name+"="+s.Status)
		if s.DurationMS == nil {
			t.Errorf("step %s has no duration_ms", s.Name)
		}
	}
	want := "credential=ok token=ok dns=ok tcp=ok tls=ok auth=ok ping=ok acl-whoami=ok read=ok write=skipped cluster=ok"
	if got := strings.Join(names, " "); srv.Backend() == entraredistest.BackendRedisServer && got != want {
		t.Errorf("steps:\n got %s\nwant %s", got, want)
	}
	rc.assertAbsent(t, out, errOut)
}

func TestDoctorFailingExitCode(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	e, rc := testEnv(srv, srv.Credential())
	code, out, errOut := runCmd(t, e, "doctor", "--host", srv.Host(), "--port", strconv.Itoa(srv.Port()), "--username", "not-the-oid", "--json")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d", code, exitFailed)
	}
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	auth, _ := rep.Step(doctor.StepAuth)
	if rep.OK || auth.Status != doctor.StatusFailed || !strings.Contains(auth.Cause, "WRONGPASS") || auth.Fix == "" {
		t.Fatalf("auth step: %+v", auth)
	}
	ping, _ := rep.Step(doctor.StepPing)
	if ping.Status != doctor.StatusSkipped {
		t.Errorf("ping after a failed AUTH: %s, want skipped", ping.Status)
	}
	rc.assertAbsent(t, out, errOut)
}

func TestDoctorCAFile(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	e, _ := testEnv(nil, srv.Credential()) // no injected roots: only --ca-file can make TLS pass
	code, out, _ := runCmd(t, e, "doctor", "--host", srv.Host(), "--port", strconv.Itoa(srv.Port()))
	if code != exitFailed || !strings.Contains(out, "unknown authority") {
		t.Fatalf("without the CA: exit %d", code)
	}
	pem := emulatorCAPEM(t, srv)
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, _ = runCmd(t, e, "doctor", "--host", srv.Host(), "--port", strconv.Itoa(srv.Port()), "--ca-file", file)
	if code != exitOK {
		t.Fatalf("with --ca-file: exit %d", code)
	}
}

func TestDoctorUsage(t *testing.T) {
	e, _ := testEnv(nil, nil)
	for _, args := range [][]string{
		{},
		{"nope"},
		{"doctor"},
		{"doctor", "--host", "x", "--port", "70000"},
		{"doctor", "--host", "x", "extra"},
		{"doctor", "--no-such-flag"},
		{"demo", "--duration", "-1s"},
		{"demo", "--token-lifetime", "10ms"},
		{"demo", "--backend", "valkey"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr, e); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
		if stderr.Len() == 0 {
			t.Errorf("%q: nothing on stderr", args)
		}
	}
	var stdout bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &stdout, &stdout, e); code != exitOK || !strings.Contains(stdout.String(), "entraredis doctor") {
		t.Errorf("help: %d %s", code, stdout.String())
	}
}

func TestDoctorCredentialBuildError(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	e := env{
		newCredential: func(o doctor.CredentialOptions) (*doctor.Credential, error) {
			return nil, fmt.Errorf("ClientSecretCredential: missing AZURE_CLIENT_SECRET")
		},
		now: time.Now, rootCAs: srv.TLSConfig().RootCAs,
	}
	code, out, _ := runCmd(t, e, "doctor", "--host", srv.Host(), "--port", strconv.Itoa(srv.Port()), "--credential", "client-secret")
	if code != exitFailed || !strings.Contains(out, "missing AZURE_CLIENT_SECRET") || !strings.Contains(out, "fix:   set AZURE_TENANT_ID") || !regexp.MustCompile(`\[(  ok  | warn )\] tls`).MatchString(out) {
		t.Fatalf("exit %d", code)
	}
}

func TestToken(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	e, rc := testEnv(srv, srv.Credential())
	oid := srv.Credential().ObjectID()

	code, out, errOut := runCmd(t, e, "token")
	if code != exitOK || !strings.Contains(out, "oid:        "+oid) || !strings.Contains(out, "expires:") || !strings.Contains(out, "aud:        https://redis.azure.com") {
		t.Fatalf("token: exit %d", code)
	}
	rc.assertAbsent(t, out, errOut)

	code, out, errOut = runCmd(t, e, "token", "--json")
	var res doctor.TokenResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitOK {
		t.Fatalf("token --json: exit %d, %v", code, err)
	}
	if res.Claims.ObjectID != oid || res.Token != "" || res.Claims.RemainingS <= 0 {
		t.Fatalf("token --json: %+v", res)
	}
	rc.assertAbsent(t, out, errOut)

	// --raw: the token alone on stdout, the claims on stderr.
	code, out, errOut = runCmd(t, e, "token", "--raw")
	raw := strings.TrimSpace(out)
	if code != exitOK || strings.Count(raw, ".") != 2 || strings.Contains(raw, "\n") || !strings.Contains(errOut, oid) {
		t.Fatalf("token --raw: exit %d", code)
	}
	if _, err := srv.Issuer().Verify(raw, time.Now()); err != nil {
		t.Fatalf("token --raw printed something that is not the token: %v", err)
	}
}

func TestTokenWrongScope(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	e, _ := testEnv(srv, srv.Credential())
	code, out, errOut := runCmd(t, e, "token", "--scope", "https://management.azure.com/.default")
	if code != exitFailed || out != "" || !strings.Contains(errOut, "AADSTS500011") || !strings.Contains(errOut, "fix: request the scope https://redis.azure.com/.default") {
		t.Fatalf("exit %d", code)
	}
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs for 5 seconds")
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"demo", "--duration", "5s", "--token-lifetime", "2s", "--concurrency", "8"}, &stdout, &stderr, defaultEnv())
	out := stdout.String()
	t.Logf("demo → exit %d\n%s\nstderr:\n%s", code, out, stderr.String())
	if code != exitOK {
		t.Fatalf("demo exit %d", code)
	}
	m := regexp.MustCompile(`summary: .* (\d+) ops .*, (\d+) errors, (\d+) rotations, (\d+) re-AUTHs`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line")
	}
	ops, _ := strconv.Atoi(m[1])
	errs, _ := strconv.Atoi(m[2])
	rot, _ := strconv.Atoi(m[3])
	if ops == 0 || errs != 0 || rot < 1 {
		t.Fatalf("ops %d errors %d rotations %d: want ops > 0, 0 errors, at least one rotation", ops, errs, rot)
	}
	if lines := strings.Count(out, " ops "); lines < 3 {
		t.Errorf("%d live lines, want one a second", lines)
	}
	if !strings.Contains(out, "backend redis-server (a real redis-server") && !strings.Contains(out, "backend in-process (redis-server not found: in-process fallback") {
		t.Error("the demo does not say which backend it uses")
	}
}

// emulatorCAPEM returns the emulator's CA certificate as PEM, taken from the
// verified chain of a TLS handshake with it.
func emulatorCAPEM(t *testing.T, srv *entraredistest.Server) []byte {
	t.Helper()
	conn, err := tls.Dial("tcp", srv.Addr(), srv.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	chains := conn.ConnectionState().VerifiedChains
	if len(chains) == 0 {
		t.Fatal("no verified chain")
	}
	ca := chains[0][len(chains[0])-1]
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
}

func TestDemoInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs for 3 seconds")
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"demo", "--backend", "in-process", "--duration", "3s", "--token-lifetime", "1s", "--concurrency", "4"}, &stdout, &stderr, defaultEnv())
	out := stdout.String()
	t.Logf("demo → exit %d\n%s", code, out)
	if code != exitOK || !strings.Contains(out, "backend in-process (in-process, as asked; not emulated:") || !strings.Contains(out, " 0 errors") {
		t.Fatalf("exit %d", code)
	}
}

func TestSplitHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"c.redis.cache.windows.net:6380":               "c.redis.cache.windows.net 6380",
		"rediss://c.westeurope.redis.azure.net:10000/": "c.westeurope.redis.azure.net 10000",
		"c.redis.cache.windows.net":                    "",
		"[::1]:6380":                                   "::1 6380", // endpoint.SplitAddr reads bracketed IPv6 (it used to be refused)
		"c:notaport":                                   "",
	} {
		h, p, ok := splitHostPort(in)
		got := ""
		if ok {
			got = h + " " + strconv.Itoa(p)
		}
		if got != want {
			t.Errorf("splitHostPort(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDoctorChecksTheHostLikeTheConstructors: --host goes through
// endpoint.SplitAddr, the rules of NewClient's addresses (port optional).
func TestDoctorChecksTheHostLikeTheConstructors(t *testing.T) {
	for host, want := range map[string]string{
		"redis://c.redis.cache.windows.net:6380":      "Azure requires TLS",
		"rediss://u:s3cr3t@c.redis.cache.windows.net": "user info",
		"rediss://c.redis.cache.windows.net:6380/3":   "database",
		"c.redis.cache.windows.net:not-a-port":        "1 to 65535",
	} {
		code, _, errOut := runCmd(t, defaultEnv(), "doctor", "--host", host)
		if code != exitUsage || !strings.Contains(errOut, want) || strings.Contains(errOut, "s3cr3t") {
			t.Errorf("--host %s: exit %d, %q; want a usage error mentioning %q", host, code, errOut, want)
		}
	}
}
