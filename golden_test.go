package entraredis_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/tokenspy"
)

// update rewrites testdata/errors.golden: go test -run TestGolden -update
var update = flag.Bool("update", false, "rewrite testdata/errors.golden from the real error paths")

const goldenFile = "testdata/errors.golden"

// goldenCase is one error a user can meet: how it is produced, through the
// library's real code paths.
type goldenCase struct {
	name string
	err  func(t *testing.T, g *goldenEnv) error
}

// goldenEnv is what the cases share: one emulator, and the texts that vary
// from run to run (marked in the golden file).
type goldenEnv struct {
	srv   *entraredistest.Server
	marks []goldenMark
}

// goldenMark replaces a text that varies from run to run by a placeholder.
type goldenMark struct {
	re   *regexp.Regexp
	with string
}

// mark adds a literal text to be replaced by placeholder.
func (g *goldenEnv) mark(literal, placeholder string) {
	g.marks = append(g.marks, goldenMark{regexp.MustCompile(regexp.QuoteMeta(literal)), placeholder})
}

// normalise replaces what varies from run to run by its placeholder.
func (g *goldenEnv) normalise(s string) string {
	for _, m := range g.marks {
		s = m.re.ReplaceAllString(s, m.with)
	}
	s = azidentityDetails.ReplaceAllString(s, "$1 <azidentity's details> $2")
	s = rfc3339.ReplaceAllString(s, "<time>")
	s = retryIn.ReplaceAllString(s, "next try in <duration>")
	return s
}

var (
	rfc3339 = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	// azidentity's request, response and body: its text, not this module's.
	azidentityDetails = regexp.MustCompile(`(?s)(\w+Credential authentication failed\.).*?(To troubleshoot, visit)`)
	retryIn           = regexp.MustCompile(`next try in [0-9.]+(ms|s|m)`)
)

// funcCred is a credential made of a function.
type funcCred func(ctx context.Context) (azcore.AccessToken, error)

func (f funcCred) GetToken(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return f(ctx)
}

// tokenCred returns the same token, with the expiry its claims give.
func tokenCred(tok string, exp time.Time) funcCred {
	return func(context.Context) (azcore.AccessToken, error) {
		return azcore.AccessToken{Token: tok, ExpiresOn: exp}, nil
	}
}

// quietOpts are client options that log nothing, with the given changes.
func quietOpts(f func(o *entraredis.Options)) *entraredis.Options {
	o := &entraredis.Options{Options: entratoken.Options{Logger: slog.New(slog.DiscardHandler)}}
	if f != nil {
		f(o)
	}
	return o
}

// newClientErr is NewClient's error for these options against the emulator
// (or addr when not empty); a client that was made is closed.
func newClientErr(ctx context.Context, g *goldenEnv, cred azcore.TokenCredential, ropts *redis.Options, opts *entraredis.Options) error {
	if ropts != nil && ropts.Addr == "" && ropts.Username == "" {
		ropts.Addr, ropts.TLSConfig = g.srv.Addr(), g.srv.TLSConfig()
	}
	rdb, err := entraredis.NewClient(ctx, cred, ropts, opts)
	if err == nil {
		rdb.Close()
		return errors.New("(no error)")
	}
	return err
}

func goldenCases() []goldenCase {
	addrErr := func(addr string) func(*testing.T, *goldenEnv) error {
		return func(t *testing.T, g *goldenEnv) error {
			return newClientErr(t.Context(), g, g.srv.Credential(), &redis.Options{Addr: addr}, quietOpts(nil))
		}
	}
	return []goldenCase{
		// Options and addresses.
		{"NewClient without redis.Options", func(t *testing.T, g *goldenEnv) error {
			return newClientErr(t.Context(), g, g.srv.Credential(), nil, quietOpts(nil))
		}},
		{"NewClient with an empty Addr", func(t *testing.T, g *goldenEnv) error {
			return newClientErr(t.Context(), g, g.srv.Credential(), &redis.Options{Username: "set"}, quietOpts(nil))
		}},
		{"NewClusterClient without Addrs", func(t *testing.T, g *goldenEnv) error {
			_, err := entraredis.NewClusterClient(t.Context(), g.srv.Credential(), &redis.ClusterOptions{}, quietOpts(nil))
			return err
		}},
		{"a password in the redis options", func(t *testing.T, g *goldenEnv) error {
			return newClientErr(t.Context(), g, g.srv.Credential(),
				&redis.Options{Addr: "NAME.redis.cache.windows.net:6380", Password: "access-key"}, quietOpts(nil))
		}},
		{"go-redis' client-side cache", func(t *testing.T, g *goldenEnv) error {
			return newClientErr(t.Context(), g, g.srv.Credential(),
				&redis.Options{Addr: "NAME.redis.cache.windows.net:6380", Protocol: 3, ClientSideCacheConfig: &redis.ClientSideCacheConfig{}}, quietOpts(nil))
		}},
		{"an address without a port", addrErr("NAME.redis.cache.windows.net")},
		{"a redis:// URL", addrErr("redis://NAME.redis.cache.windows.net:6380")},
		{"an unknown URL scheme", addrErr("https://NAME.redis.cache.windows.net:6380")},
		{"a URL with user info", addrErr("rediss://user:access-key@NAME.redis.cache.windows.net:6380")},
		{"a URL with a path", addrErr("rediss://NAME.redis.cache.windows.net:6380/0")},
		{"an address that is not host:port", addrErr("NAME.redis.cache.windows.net:6380:1")},
		{"an address without a host", addrErr(":6380")},
		{"a port out of range", addrErr("NAME.redis.cache.windows.net:99999")},
		{"Plaintext with a TLSConfig", func(t *testing.T, g *goldenEnv) error {
			return newClientErr(t.Context(), g, g.srv.Credential(), &redis.Options{Addr: g.srv.Addr(), TLSConfig: g.srv.TLSConfig()},
				quietOpts(func(o *entraredis.Options) { o.Plaintext = true }))
		}},
		{"Plaintext for a remote host", func(t *testing.T, g *goldenEnv) error {
			return newClientErr(t.Context(), g, g.srv.Credential(), &redis.Options{Addr: "NAME.redis.cache.windows.net:6380"},
				quietOpts(func(o *entraredis.Options) { o.Plaintext = true }))
		}},
		{"a Dialer that returns a plain TCP connection", func(t *testing.T, g *goldenEnv) error {
			rdb, err := entraredis.NewClient(t.Context(), g.srv.Credential(), &redis.Options{
				Addr: g.srv.Addr(), TLSConfig: g.srv.TLSConfig(), MaxRetries: -1,
				Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, addr)
				},
			}, quietOpts(nil))
			if err != nil {
				return err
			}
			defer rdb.Close()
			return rdb.Ping(t.Context()).Err()
		}},

		// Credentials.
		{"no credential", func(t *testing.T, g *goldenEnv) error {
			return newClientErr(t.Context(), g, nil, &redis.Options{}, quietOpts(nil))
		}},
		{"a typed-nil credential", func(t *testing.T, g *goldenEnv) error {
			var cred *azidentity.DefaultAzureCredential // its constructor's error was ignored
			return newClientErr(t.Context(), g, cred, &redis.Options{}, quietOpts(nil))
		}},
		{"a credential that panics", func(t *testing.T, g *goldenEnv) error {
			cred := funcCred(func(context.Context) (azcore.AccessToken, error) { panic("credential bug") })
			return newClientErr(t.Context(), g, cred, &redis.Options{},
				quietOpts(func(o *entraredis.Options) { o.AttemptTimeout = time.Second }))
		}},
		{"a token that is not a JWT", func(t *testing.T, g *goldenEnv) error {
			return newClientErr(t.Context(), g, tokenCred("not-a-jwt", time.Now().Add(time.Hour)), &redis.Options{}, quietOpts(nil))
		}},
		{"a token without an oid claim", func(t *testing.T, g *goldenEnv) error {
			exp := time.Now().Add(time.Hour)
			tok, err := g.srv.Issuer().Mint(entraredistest.TokenSpec{ExpiresAt: exp, Claims: map[string]any{"oid": nil}})
			if err != nil {
				t.Fatal(err)
			}
			return newClientErr(t.Context(), g, tokenCred(tok, exp), &redis.Options{}, quietOpts(nil))
		}},
		{"a token that expired already", func(t *testing.T, g *goldenEnv) error {
			iat := time.Now().Add(-2 * time.Hour)
			exp := iat.Add(time.Hour)
			tok, err := g.srv.Issuer().Mint(entraredistest.TokenSpec{IssuedAt: iat, ExpiresAt: exp})
			if err != nil {
				t.Fatal(err)
			}
			return newClientErr(t.Context(), g, tokenCred(tok, exp), &redis.Options{}, quietOpts(nil))
		}},
		{"the token service does not answer in time", func(t *testing.T, g *goldenEnv) error {
			cred := funcCred(func(ctx context.Context) (azcore.AccessToken, error) {
				<-ctx.Done()
				return azcore.AccessToken{}, ctx.Err()
			})
			return newClientErr(t.Context(), g, cred, &redis.Options{},
				quietOpts(func(o *entraredis.Options) { o.AttemptTimeout = 50 * time.Millisecond }))
		}},
		{"the caller's context ends first", func(t *testing.T, g *goldenEnv) error {
			ctx, cancel := context.WithCancel(t.Context())
			cred := funcCred(func(ctx context.Context) (azcore.AccessToken, error) {
				cancel()
				<-ctx.Done()
				return azcore.AccessToken{}, ctx.Err()
			})
			return newClientErr(ctx, g, cred, &redis.Options{}, quietOpts(nil))
		}},
		{"a scope Microsoft Entra ID does not know", func(t *testing.T, g *goldenEnv) error {
			return newClientErr(t.Context(), g, g.srv.Credential(), &redis.Options{},
				quietOpts(func(o *entraredis.Options) { o.Scope = "https://example.invalid/.default" }))
		}},
		{"a credential unavailable here (Azure CLI not installed)", func(t *testing.T, g *goldenEnv) error {
			t.Setenv("PATH", t.TempDir())
			cred, err := azidentity.NewAzureCLICredential(nil)
			if err != nil {
				t.Fatal(err)
			}
			return newClientErr(t.Context(), g, cred, &redis.Options{}, quietOpts(nil))
		}},
		{"a client secret Microsoft Entra ID refuses", func(t *testing.T, g *goldenEnv) error {
			cred, err := azidentity.NewClientSecretCredential("tenant", "00000000-0000-0000-0000-000000000002", "not-the-secret",
				&azidentity.ClientSecretCredentialOptions{DisableInstanceDiscovery: true, ClientOptions: azcore.ClientOptions{
					Retry:     policy.RetryOptions{MaxRetries: -1},
					Transport: tokenspy.EntraRefusal{Status: http.StatusUnauthorized, Body: `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}`},
				}})
			if err != nil {
				t.Fatal(err)
			}
			return newClientErr(t.Context(), g, cred, &redis.Options{}, quietOpts(nil))
		}},
		{"a managed identity Microsoft Entra ID refuses", func(t *testing.T, g *goldenEnv) error {
			cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
				ID: azidentity.ClientID("00000000-0000-0000-0000-000000000001"), ClientOptions: azcore.ClientOptions{
					Retry:     policy.RetryOptions{MaxRetries: -1},
					Transport: tokenspy.EntraRefusal{Status: http.StatusBadRequest, Body: `{"error":"invalid_request","error_description":"Identity not found"}`},
				}})
			if err != nil {
				t.Fatal(err)
			}
			return newClientErr(t.Context(), g, cred, &redis.Options{}, quietOpts(nil))
		}},
		{"the token service fails past the token's expiry", func(t *testing.T, g *goldenEnv) error {
			cred := g.srv.NewCredential(entraredistest.CredentialOptions{Lifetime: 1500 * time.Millisecond})
			g.mark(cred.ObjectID(), "<oid>")
			rdb, err := entraredis.NewClient(t.Context(), cred, &redis.Options{Addr: g.srv.Addr(), TLSConfig: g.srv.TLSConfig(), MaxRetries: -1},
				quietOpts(nil))
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			cred.FailFor(time.Minute, errors.New("the token service is down"))
			time.Sleep(1600 * time.Millisecond)
			return rdb.Ping(t.Context()).Err()
		}},
		{"the credential fails from the start", func(t *testing.T, g *goldenEnv) error {
			creds, err := entraredis.NewCredentials(funcCred(func(context.Context) (azcore.AccessToken, error) {
				return azcore.AccessToken{}, errors.New("the token service is down")
			}), quietOpts(nil))
			if err != nil {
				t.Fatal(err)
			}
			defer creds.Close()
			rdb := redis.NewClient(&redis.Options{Addr: g.srv.Addr(), TLSConfig: g.srv.TLSConfig(),
				StreamingCredentialsProvider: creds, MaxRetries: -1})
			rdb.AddHook(creds.Hook())
			defer rdb.Close()
			deadline := time.Now().Add(5 * time.Second)
			for creds.Status().ConsecutiveFailures == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			return rdb.Ping(t.Context()).Err()
		}},
		{"Credentials after Close", func(t *testing.T, g *goldenEnv) error {
			creds, err := entraredis.NewCredentials(g.srv.Credential(), quietOpts(nil))
			if err != nil {
				t.Fatal(err)
			}
			creds.Close()
			return creds.WaitReady(t.Context())
		}},

		// The server's answers.
		{"WRONGPASS: no access policy for this principal", func(t *testing.T, g *goldenEnv) error {
			cred := g.srv.Issuer().NewCredential(entraredistest.CredentialOptions{}) // unknown to the server
			g.mark(cred.ObjectID(), "<oid>")
			rdb, err := entraredis.NewClient(t.Context(), cred, &redis.Options{Addr: g.srv.Addr(), TLSConfig: g.srv.TLSConfig(), MaxRetries: -1},
				quietOpts(nil))
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			return rdb.Ping(t.Context()).Err()
		}},
		{"WRONGPASS again: new connections held back", func(t *testing.T, g *goldenEnv) error {
			cred := g.srv.Issuer().NewCredential(entraredistest.CredentialOptions{})
			g.mark(cred.ObjectID(), "<oid>")
			rdb, err := entraredis.NewClient(t.Context(), cred, &redis.Options{Addr: g.srv.Addr(), TLSConfig: g.srv.TLSConfig(), MaxRetries: -1},
				quietOpts(nil))
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			if err := rdb.Ping(t.Context()).Err(); err == nil {
				t.Fatal("an unknown principal was let in")
			}
			return rdb.Ping(t.Context()).Err()
		}},
		{"WRONGPASS: a user name that is not the token's oid", func(t *testing.T, g *goldenEnv) error {
			rdb, err := entraredis.NewClient(t.Context(), g.srv.Credential(), &redis.Options{Addr: g.srv.Addr(), TLSConfig: g.srv.TLSConfig(), MaxRetries: -1},
				quietOpts(func(o *entraredis.Options) { o.Username = "my-app@contoso.com" }))
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			return rdb.Ping(t.Context()).Err()
		}},
		{"NOPERM: the access policy does not allow the command", func(t *testing.T, g *goldenEnv) error {
			entraredistest.RequireRedisServer(t)
			cred := g.srv.NewCredential(entraredistest.CredentialOptions{Role: entraredistest.RoleReader})
			g.mark(cred.ObjectID(), "<oid>")
			rdb, err := entraredis.NewClient(t.Context(), cred, &redis.Options{Addr: g.srv.Addr(), TLSConfig: g.srv.TLSConfig(), MaxRetries: -1},
				quietOpts(nil))
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			return rdb.Set(t.Context(), "Az:key1", "value1", 0).Err()
		}},

		{"a re-AUTH the server refused (OnReauthFailed, logs)", func(t *testing.T, g *goldenEnv) error {
			cred := g.srv.NewCredential(entraredistest.CredentialOptions{Lifetime: 2 * time.Second})
			g.mark(cred.ObjectID(), "<oid>")
			refused := make(chan error, 16)
			rdb, err := entraredis.NewClient(t.Context(), cred, &redis.Options{Addr: g.srv.Addr(), TLSConfig: g.srv.TLSConfig(), MaxRetries: -1},
				quietOpts(func(o *entraredis.Options) {
					o.OnReauthFailed = func(e entraredis.ReauthFailed) { refused <- e.Err }
				}))
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			if err := rdb.Ping(t.Context()).Err(); err != nil {
				t.Fatal(err)
			}
			g.srv.Revoke(cred.ObjectID())
			select {
			case err := <-refused:
				return err
			case <-time.After(5 * time.Second):
				t.Fatal("no re-AUTH was refused within 5 s")
				return nil
			}
		}},
		{"a blocking command that outlives its token", func(t *testing.T, g *goldenEnv) error {
			cred := g.srv.NewCredential(entraredistest.CredentialOptions{Lifetime: 1500 * time.Millisecond})
			rdb, err := entraredis.NewClient(t.Context(), cred, &redis.Options{Addr: g.srv.Addr(), TLSConfig: g.srv.TLSConfig(), MaxRetries: -1},
				quietOpts(nil))
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			cred.FailFor(time.Minute, errors.New("the token service is down"))
			return rdb.BLPop(t.Context(), 5*time.Second, "Az:jobs").Err()
		}},

		// Maintenance events.
		{"a malformed maintenance event", func(t *testing.T, g *goldenEnv) error {
			_, err := azevents.Parse("NotificationType|NodeMaintenanceStart|StartTimeInUTC")
			return err
		}},
	}
}

// TestGolden produces every error a user can meet through the library's
// real code paths and compares their texts, and their Hint() where they
// have one, with testdata/errors.golden. A change to what users read is a
// visible diff: go test -run TestGolden -update rewrites the file.
func TestGolden(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{Logf: func(string, ...any) {}})
	g := &goldenEnv{srv: srv}
	g.mark(srv.Credential().ObjectID(), "<oid>")
	g.mark(srv.Addr(), "<addr>")

	var b bytes.Buffer
	b.WriteString("# The text of every error a user can meet, and its Hint(), produced by\n" +
		"# TestGolden (golden_test.go) through the library's real code paths.\n" +
		"# Regenerate: go test -run TestGolden -update\n" +
		"# <...> marks a part that varies: <oid>, <addr>, <time>, <duration>.\n")
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			err := c.err(t, g)
			if err == nil {
				t.Fatal("no error")
			}
			text := g.normalise(err.Error())
			fmt.Fprintf(&b, "\n== %s\nerror: %s\n", c.name, text)
			var hinter interface{ Hint() string }
			if errors.As(err, &hinter) && hinter.Hint() != "" {
				fmt.Fprintf(&b, "hint: %s\n", g.normalise(hinter.Hint()))
			}
			for _, secret := range []string{"access-key", "not-the-secret", "eyJ"} {
				if strings.Contains(text, secret) {
					t.Errorf("the error shows a secret (%q): %s", secret, text)
				}
			}
		})
	}
	if t.Failed() {
		return
	}
	if *update {
		if err := os.WriteFile(goldenFile, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("%v (create it with go test -run TestGolden -update)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("the error texts differ from %s (if the change is meant: go test -run TestGolden -update, and update TROUBLESHOOTING.md):\n%s",
			goldenFile, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines of want missing from got (-) and the lines of
// got missing from want (+).
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, gt := in(want), in(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !gt[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
