package tokensource

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// staticCredential returns the same access token, or error, every time.
type staticCredential struct {
	tok azcore.AccessToken
	err error
}

func (s staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return s.tok, s.err
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestNewTokenRejectsBadTokensClearly(t *testing.T) {
	is := newIssuer(t)
	now := time.Now()
	noOID, err := is.Mint(entraredistest.TokenSpec{Claims: map[string]any{"oid": nil}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := is.Mint(entraredistest.TokenSpec{ObjectID: "oid-1", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	hdr := b64(`{"alg":"none"}`)
	cases := []struct {
		name, token string
		want        error
		mention     string
	}{
		{"empty", "", entratoken.ErrMalformedToken, "empty"},
		{"one part", "opaque-secret-value", entratoken.ErrMalformedToken, "3 dot-separated parts"},
		{"two parts", "secret.value", entratoken.ErrMalformedToken, "3 dot-separated parts"},
		{"bad base64", hdr + ".!!!secret!!!.sig", entratoken.ErrMalformedToken, "base64"},
		{"bad json", hdr + "." + b64("not json secret") + ".sig", entratoken.ErrMalformedToken, "malformed"},
		{"no exp", hdr + "." + b64(`{"oid":"x"}`) + ".sig", entratoken.ErrMalformedToken, "no exp"},
		{"exp not a number", hdr + "." + b64(`{"oid":"x","exp":"soon"}`) + ".sig", entratoken.ErrMalformedToken, "exp"},
		{"no oid", noOID, entratoken.ErrNoObjectID, "Options.Username"},
		{"expired", expired, nil, "expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := withDefaults(&entratoken.Options{})
			_, err := newToken(&o, azcore.AccessToken{Token: tc.token, ExpiresOn: now.Add(time.Hour)}, now)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("err %q does not mention %q", err, tc.mention)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Fatal("the error contains the token")
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("the error echoes part of the token: %q", err)
			}
		})
	}
	t.Run("no oid but a username", func(t *testing.T) {
		o := withDefaults(&entratoken.Options{Username: "my-object-id"})
		tok, err := newToken(&o, azcore.AccessToken{Token: noOID, ExpiresOn: now.Add(time.Hour)}, now)
		if err != nil {
			t.Fatal(err)
		}
		if u, _ := (Token{tok}).BasicAuth(); u != "my-object-id" {
			t.Fatalf("user %q", u)
		}
	})
}

func TestWaitReadyExplainsAMissingOID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := newIssuer(t)
		tok, err := is.Mint(entraredistest.TokenSpec{Claims: map[string]any{"oid": nil}, ExpiresAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := NewSource(staticCredential{tok: azcore.AccessToken{Token: tok, ExpiresOn: time.Now().Add(time.Hour)}}, (&recorder{}).options(entratoken.Options{}))
		defer c.Close()
		err = c.WaitReady(t.Context())
		if !errors.Is(err, entratoken.ErrNoObjectID) || !strings.Contains(err.Error(), "Options.Username") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), tok) {
			t.Fatal("the error contains the token")
		}
	})
}

func TestWrongScopeIsExplained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cred := newIssuer(t).NewCredential(entraredistest.CredentialOptions{})
		c, _ := NewSource(cred, (&recorder{}).options(entratoken.Options{Scope: "https://storage.azure.com/.default"}))
		defer c.Close()
		err := c.WaitReady(t.Context())
		var te *entratoken.TokenError
		if !errors.As(err, &te) || te.Scope != "https://storage.azure.com/.default" {
			t.Fatalf("err = %v", err)
		}
		if !strings.Contains(err.Error(), "scope is not valid") || !strings.Contains(err.Error(), entratoken.DefaultScope) {
			t.Fatalf("the error does not explain the scope: %v", err)
		}
	})
}

// TestSecretsNeverPrinted formats every value that holds a token in every
// way fmt knows, and looks for the token.
func TestSecretsNeverPrinted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs strings.Builder
		o := (&recorder{}).options(entratoken.Options{})
		o.Logger = newTextLogger(&logs)
		c, cred := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, o)
		defer c.Close()
		l := &listener{}
		creds, _, err := c.Attach(l)
		if err != nil {
			t.Fatal(err)
		}
		_, secret := creds.BasicAuth()
		if len(secret) < 100 {
			t.Fatalf("not a token: %d bytes", len(secret))
		}
		cred.FailNext(1, errors.New("boom"))
		sleepUntil(c.Status().NextRefresh.Add(time.Minute)) // a failure, then a rotation

		values := []any{c, creds, c.Status(), c.peek(), *c.peek(), &entratoken.AuthError{Username: "u", Err: errors.New("WRONGPASS")}}
		for _, v := range values {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
				if out := fmt.Sprintf(verb, v); strings.Contains(out, secret) || strings.Contains(out, secret[:40]) {
					t.Fatalf("fmt %s of %T prints the token", verb, v)
				}
			}
		}
		if strings.Contains(logs.String(), secret[:40]) {
			t.Fatal("the logs contain the token")
		}
		if !strings.Contains(logs.String(), "token refreshed") {
			t.Fatalf("no refresh logged: %s", logs.String())
		}
	})
}

// FuzzParseToken feeds arbitrary tokens to the parser behind Subscribe. It
// must never panic, and an error must never contain the token. The seed
// corpus is in testdata/fuzz/FuzzParseToken.
func FuzzParseToken(f *testing.F) {
	hdr := b64(`{"alg":"ES256","typ":"JWT"}`)
	f.Add(hdr + "." + b64(`{"oid":"00000000-0000-0000-0000-000000000001","exp":4102444800}`) + ".c2ln")
	f.Add(hdr + "." + b64(`{"exp":1.5e9}`) + ".")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("")
	o := withDefaults(&entratoken.Options{})
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := newToken(&o, azcore.AccessToken{Token: raw, ExpiresOn: now.Add(time.Hour)}, now)
		if err != nil {
			if len(raw) >= 8 && strings.Contains(err.Error(), raw) {
				t.Fatalf("error %q contains the token", err)
			}
			return
		}
		if u, p := (Token{tok}).BasicAuth(); u == "" || p != raw {
			t.Fatalf("accepted with user %q", u)
		}
		if !tok.expiresOn.After(now) {
			t.Fatal("accepted an expired token")
		}
	})
}

// TestConcurrentFirstDialsShareOneRequest: 200 connections dial at once on
// credentials that have no token yet, the credential is slow: one request.
func TestConcurrentFirstDialsShareOneRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cred := newIssuer(t).NewCredential(entraredistest.CredentialOptions{})
		cred.SetDelay(2 * time.Second)
		c, err := NewSource(cred, (&recorder{}).options(entratoken.Options{}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		errs := make(chan error, 200)
		for range 200 {
			go func() {
				_, _, err := c.Attach(&listener{})
				errs <- err
			}()
		}
		for range 200 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if n := cred.Requests(); n != 1 {
			t.Fatalf("%d token requests for 200 concurrent first dials, want 1", n)
		}
		if got := c.Status().Connections; got != 200 {
			t.Fatalf("%d subscriptions, want 200", got)
		}
	})
}

// hungCredential ignores its context: after the first token, calls block
// until release is closed, then return a fresh token.
type hungCredential struct {
	inner   *entraredistest.Credential
	release chan struct{}
	calls   atomic.Int64
}

func (h *hungCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if h.calls.Add(1) > 1 {
		<-h.release
	}
	return h.inner.GetToken(context.Background(), o)
}

// TestHungCredentialDoesNotStopTheRefresher: a GetToken that ignores its
// context and never returns neither blocks Close nor gets called again while
// it hangs; its late token is used when it finally comes.
func TestHungCredentialDoesNotStopTheRefresher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &hungCredential{inner: newIssuer(t).NewCredential(entraredistest.CredentialOptions{Lifetime: time.Hour}), release: make(chan struct{})}
		var r recorder
		c, err := NewSource(h, r.options(entratoken.Options{}))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WaitReady(t.Context()); err != nil {
			t.Fatal(err)
		}
		sleepUntil(c.Status().NextRefresh.Add(5 * time.Minute))
		st := c.Status()
		if st.ConsecutiveFailures < 5 || !errors.Is(st.LastError, context.DeadlineExceeded) {
			t.Fatalf("attempts did not time out: %+v", st)
		}
		if n := h.calls.Load(); n != 2 {
			t.Fatalf("%d GetToken calls: a hung call was doubled", n)
		}
		close(h.release)
		time.Sleep(DefaultRetryMaxDelay + time.Second)
		synctest.Wait()
		if st := c.Status(); st.Rotations != 1 || st.ConsecutiveFailures != 0 {
			t.Fatalf("the late token was not used: %+v", st)
		}
		closeReturnsAtOnce(t, c)
	})
}

// TestCloseDoesNotWaitForAHungCredential: Close returns while GetToken hangs.
func TestCloseDoesNotWaitForAHungCredential(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &hungCredential{inner: newIssuer(t).NewCredential(entraredistest.CredentialOptions{Lifetime: time.Hour}), release: make(chan struct{})}
		c, _ := NewSource(h, (&recorder{}).options(entratoken.Options{}))
		if err := c.WaitReady(t.Context()); err != nil {
			t.Fatal(err)
		}
		sleepUntil(c.Status().NextRefresh.Add(time.Second)) // the second call hangs now
		closeReturnsAtOnce(t, c)
		close(h.release) // let the hung call end, so that the bubble can finish
	})
}
