package entraredistest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/golang-jwt/jwt/v5"

	"github.com/entraredis/entraredis/internal/claims"
)

var redisScope = policy.TokenRequestOptions{Scopes: []string{"https://redis.azure.com/.default"}}

func newTestIssuer(t *testing.T) *Issuer {
	t.Helper()
	is, err := NewIssuer(IssuerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func TestTokenClaims(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := newTestIssuer(t)
		cred := is.NewCredential(CredentialOptions{Lifetime: 75 * time.Minute})
		now := time.Now()
		tok, err := cred.GetToken(context.Background(), redisScope)
		if err != nil {
			t.Fatal(err)
		}
		if !tok.ExpiresOn.Equal(now.Add(75*time.Minute)) || !tok.RefreshOn.IsZero() {
			t.Fatalf("ExpiresOn = %v, RefreshOn = %v; want now+75m and zero", tok.ExpiresOn, tok.RefreshOn)
		}
		c, err := claims.Parse(tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		if c.ObjectID != cred.ObjectID() || c.TenantID != is.TenantID() || len(c.Audience) != 1 || c.Audience[0] != DefaultAudience ||
			c.Version != "2.0" || c.IDType != "app" || c.AuthorizedParty == "" || c.Issuer != is.IssuerURL() ||
			!c.IssuedAt.Equal(now) || !c.NotBefore.Equal(now) || !c.ExpiresAt.Equal(now.Add(75*time.Minute)) {
			t.Fatalf("claims = %+v", c)
		}
		if !strings.HasPrefix(c.Issuer, "https://login.microsoftonline.com/") {
			t.Fatalf("iss = %q", c.Issuer)
		}
		// ES256, verifiable by the issuer only.
		h, _, err := jwt.NewParser().ParseUnverified(tok.Token, jwt.MapClaims{})
		if err != nil || h.Method.Alg() != "ES256" {
			t.Fatalf("alg = %v, %v", h.Method.Alg(), err)
		}
		if _, err := is.Verify(tok.Token, time.Now()); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if _, err := newTestIssuer(t).Verify(tok.Token, time.Now()); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("another issuer verified the token: %v", err)
		}
		// Expiry and nbf, at the exact instants.
		if _, err := is.Verify(tok.Token, tok.ExpiresOn.Add(-time.Millisecond)); err != nil {
			t.Fatalf("Verify 1ms before exp: %v", err)
		}
		if _, err := is.Verify(tok.Token, tok.ExpiresOn); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("Verify at exp: %v, want refused", err)
		}
		if _, err := is.Verify(tok.Token, now.Add(-time.Second)); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("Verify before nbf: %v, want refused", err)
		}
		if err != nil && strings.Contains(err.Error(), tok.Token) {
			t.Fatal("an error contains the token")
		}
	})
}

func TestMintSubSecondAndV1(t *testing.T) {
	is := newTestIssuer(t)
	now := time.Now().Truncate(time.Millisecond)
	tok, err := is.Mint(TokenSpec{IssuedAt: now, ExpiresAt: now.Add(1500 * time.Millisecond), Version: "1.0", Claims: map[string]any{"upn": "a@b.c"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := is.Verify(tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if !c.ExpiresAt.Equal(now.Add(1500*time.Millisecond)) || c.Version != "1.0" || c.AppID == "" || c.UPN != "a@b.c" ||
		c.Issuer != "https://sts.windows.net/"+is.TenantID()+"/" {
		t.Fatalf("claims = %+v", c)
	}
}

func TestCredentialCacheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := newTestIssuer(t)
		cred := is.NewCredential(CredentialOptions{Lifetime: time.Hour, CacheWindow: 5 * time.Minute})
		ctx := context.Background()
		first, _ := cred.GetToken(ctx, redisScope)
		time.Sleep(54 * time.Minute)
		again, _ := cred.GetToken(ctx, redisScope)
		if again.Token != first.Token || !again.ExpiresOn.Equal(first.ExpiresOn) {
			t.Fatal("a token with 6m left was not served from the cache")
		}
		time.Sleep(time.Minute + time.Second) // 4m59s left
		fresh, _ := cred.GetToken(ctx, redisScope)
		if fresh.Token == first.Token {
			t.Fatal("a token with less than CacheWindow left was served again")
		}
		if got, want := fresh.ExpiresOn, time.Now().Add(time.Hour); !got.Equal(want) {
			t.Fatalf("new ExpiresOn = %v, want %v", got, want)
		}
		if cred.Requests() != 3 || cred.Minted() != 2 {
			t.Fatalf("Requests = %d, Minted = %d; want 3, 2", cred.Requests(), cred.Minted())
		}
		cred.ForgetCache()
		if t4, _ := cred.GetToken(ctx, redisScope); t4.Token == fresh.Token || cred.Minted() != 3 {
			t.Fatal("ForgetCache did not force a new token")
		}
		// No cache window: every call mints.
		nc := is.NewCredential(CredentialOptions{})
		a, _ := nc.GetToken(ctx, redisScope)
		b, _ := nc.GetToken(ctx, redisScope)
		if a.Token == b.Token || nc.Minted() != 2 {
			t.Fatal("CacheWindow 0 served a cached token")
		}
	})
}

func TestCredentialFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cred := newTestIssuer(t).NewCredential(CredentialOptions{})
		ctx := context.Background()
		boom := errors.New("boom")
		cred.FailNext(2, boom)
		for i := 0; i < 2; i++ {
			if _, err := cred.GetToken(ctx, redisScope); !errors.Is(err, boom) {
				t.Fatalf("call %d: %v, want boom", i, err)
			}
		}
		if _, err := cred.GetToken(ctx, redisScope); err != nil {
			t.Fatalf("third call: %v", err)
		}
		cred.FailNext(1, nil)
		if _, err := cred.GetToken(ctx, redisScope); !errors.Is(err, ErrInjected) {
			t.Fatalf("FailNext(1, nil): %v, want ErrInjected", err)
		}

		cred.FailFor(30*time.Second, nil)
		time.Sleep(29 * time.Second)
		if _, err := cred.GetToken(ctx, redisScope); !errors.Is(err, ErrInjected) {
			t.Fatalf("during FailFor: %v", err)
		}
		time.Sleep(time.Second)
		if _, err := cred.GetToken(ctx, redisScope); err != nil {
			t.Fatalf("after FailFor: %v", err)
		}

		cred.SetDelay(10 * time.Second)
		start := time.Now()
		if _, err := cred.GetToken(ctx, redisScope); err != nil || time.Since(start) != 10*time.Second {
			t.Fatalf("delayed call: %v after %v, want success after 10s", err, time.Since(start))
		}
		tctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		start = time.Now()
		if _, err := cred.GetToken(tctx, redisScope); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 3*time.Second {
			t.Fatalf("delayed call with a 3s context: %v after %v", err, time.Since(start))
		}
		cred.SetDelay(0)
		if cred.Requests() != 8 || cred.Minted() != 3 {
			t.Fatalf("Requests = %d, Minted = %d; want 8, 3", cred.Requests(), cred.Minted())
		}
	})
}

func TestCredentialScopes(t *testing.T) {
	cred := newTestIssuer(t).NewCredential(CredentialOptions{})
	ctx := context.Background()
	for _, s := range []string{"https://redis.azure.com/.default", "https://redis.azure.com", "acca5fbb-b7e4-4009-81f1-37e38fd66d78/.default"} {
		if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{s}}); err != nil {
			t.Errorf("scope %q: %v", s, err)
		}
	}
	for _, s := range [][]string{nil, {"https://management.azure.com/.default"}, {"https://redis.azure.com/.default", "https://storage.azure.com/.default"}} {
		_, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: s})
		if !errors.Is(err, ErrScope) || !strings.Contains(err.Error(), "AADSTS500011") {
			t.Errorf("scopes %q: %v, want ErrScope (AADSTS500011)", s, err)
		}
	}
	var _ azcore.TokenCredential = cred
}

func TestCredentialRoleAndDefaults(t *testing.T) {
	is := newTestIssuer(t)
	c := is.NewCredential(CredentialOptions{})
	if c.Role() != RoleOwner || len(c.ObjectID()) != 36 || c.Issuer() != is {
		t.Fatalf("defaults: role %q oid %q", c.Role(), c.ObjectID())
	}
	r := is.NewCredential(CredentialOptions{ObjectID: "x", Role: RoleReader})
	if r.Role() != RoleReader || r.ObjectID() != "x" {
		t.Fatal("options ignored")
	}
	if is.Audience() != DefaultAudience || len(is.TenantID()) != 36 {
		t.Fatalf("issuer defaults: %q %q", is.Audience(), is.TenantID())
	}
}

// TestCredentialNeverPrintsItsToken: fmt of a Credential holding a cached
// token leaves the token out.
func TestCredentialNeverPrintsItsToken(t *testing.T) {
	is, err := NewIssuer(IssuerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := is.NewCredential(CredentialOptions{CacheWindow: 5 * time.Minute})
	tok, err := c.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://redis.azure.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, c); strings.Contains(out, tok.Token[:20]) {
			t.Fatalf("%s of a Credential prints its token", verb)
		}
	}
}
