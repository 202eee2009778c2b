package entraredis_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// TestNewClientDoesNotWaitForCallbacks: the first token's OnTokenRefreshed
// blocks until NewClient has returned; NewClient must return meanwhile.
func TestNewClientDoesNotWaitForCallbacks(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	returned := make(chan struct{})
	var callbackRan, sawReturn atomic.Bool
	o := entraredis.Options{
		Options: entratoken.Options{
			OnTokenRefreshed: func(entraredis.TokenRefreshed) {
				select {
				case <-returned:
					sawReturn.Store(true)
				case <-time.After(10 * time.Second): // NewClient is waiting for this callback
				}
				callbackRan.Store(true)
			},
		},
	}
	rdb := newClient(t, srv, srv.Credential(), 3, o)
	close(returned)
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.Close() // waits for the running callback
	if !callbackRan.Load() || !sawReturn.Load() {
		t.Fatalf("callback ran: %v, NewClient had returned while it ran: %v", callbackRan.Load(), sawReturn.Load())
	}
}

// troubledCredential gives tokens of a principal the server knows, except
// that every third call fails and every sixth (from the fourth) gives a
// token of a principal without access policy, which the server refuses.
type troubledCredential struct {
	good, stranger azcore.TokenCredential
	calls          atomic.Int64
}

func (c *troubledCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	switch k := c.calls.Add(1); {
	case k%3 == 0:
		return azcore.AccessToken{}, errors.New("token service unavailable (injected)")
	case k%6 == 4:
		return c.stranger.GetToken(ctx, o)
	}
	return c.good.GetToken(ctx, o)
}

// TestCallbacksWithoutLocks: eight clients, each with the README's three
// callbacks updating plain variables without a lock, through rotations,
// refresh failures and refused AUTHs. -race proves them safe: each client's
// callbacks run on one goroutine, and Close waits for it.
func TestCallbacksWithoutLocks(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 2 * time.Second})
	type monitor struct {
		refreshes, failures, refusals int // touched only by the callbacks: no lock
		expiresOn                     time.Time
		lastErr                       error
	}
	const clients = 8
	mons := make([]*monitor, clients)
	rdbs := make([]*entraredis.Client, clients)
	for i := range clients {
		m := &monitor{}
		mons[i] = m
		cred := &troubledCredential{
			good:     srv.NewCredential(entraredistest.CredentialOptions{Lifetime: 2 * time.Second}),
			stranger: srv.Issuer().NewCredential(entraredistest.CredentialOptions{Lifetime: 2 * time.Second}),
		}
		rdb, err := entraredis.NewClient(t.Context(), cred, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig()}, &entraredis.Options{
			Options: entratoken.Options{
				Logger:           quiet,
				RetryMaxDelay:    200 * time.Millisecond,
				OnTokenRefreshed: func(e entraredis.TokenRefreshed) { m.refreshes++; m.expiresOn = e.ExpiresOn; m.lastErr = nil },
				OnRefreshFailed:  func(e entraredis.RefreshFailed) { m.failures++; m.lastErr = e.Err },
				OnReauthFailed:   func(e entraredis.ReauthFailed) { m.refusals++; m.lastErr = e.Err },
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		rdbs[i] = rdb
	}
	done := make(chan struct{})
	for _, rdb := range rdbs {
		go func() {
			defer func() { done <- struct{}{} }()
			runLoad(t.Context(), rdb, 4, 7*time.Second, 100_000) // errors expected: some tokens are refused
		}()
	}
	for range rdbs {
		<-done
	}
	var refusedTotal int64
	for i, rdb := range rdbs {
		refusedTotal += rdb.Status().ReauthFailures
		rdb.Close()
		m := mons[i]
		if m.refreshes < 3 || m.failures < 1 || m.expiresOn.IsZero() {
			t.Errorf("client %d: %d refreshes, %d failures: the run did not rotate and fail", i, m.refreshes, m.failures)
		}
		if int64(m.refusals) != rdb.Status().ReauthFailures {
			t.Errorf("client %d: %d OnReauthFailed calls for %d counted refusals", i, m.refusals, rdb.Status().ReauthFailures)
		}
		if m.lastErr != nil && strings.Contains(m.lastErr.Error(), "eyJ") {
			t.Errorf("client %d: an event carries a token", i)
		}
	}
	if refusedTotal == 0 {
		t.Fatal("no AUTH was refused: the test proves nothing about OnReauthFailed")
	}
	t.Logf("%d clients: %d refused AUTHs reported", clients, refusedTotal)
}

// TestAddressesAreChecked: addresses go through endpoint.CheckAddr.
func TestAddressesAreChecked(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	ctx := t.Context()
	rdb, err := entraredis.NewClient(ctx, srv.Credential(), &redis.Options{Addr: "rediss://" + srv.Addr(), TLSConfig: srv.TLSConfig()}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil || rdb.Options().Addr != srv.Addr() {
		t.Fatalf("a rediss:// URL: %v, Addr %q", err, rdb.Options().Addr)
	}
	for addr, want := range map[string]string{
		"NAME.redis.cache.windows.net":                 "6380",
		"NAME.westeurope.redis.azure.net":              "10000",
		"redis://" + srv.Addr():                        "TLS",
		"rediss://u:secret-key@" + srv.Addr():          "user info",
		"rediss://NAME.westeurope.redis.azure.net/":    "no port",
		"NAME.redis.cache.windows.net:not-a-port-6380": "port",
	} {
		_, err := entraredis.NewClient(ctx, srv.Credential(), &redis.Options{Addr: addr}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret-key") {
			t.Errorf("NewClient with Addr %q: %v, want an error mentioning %q", addr, err, want)
		}
	}
	addrs := []string{"rediss://" + srv.Addr()}
	if _, err := entraredis.NewClusterClient(ctx, srv.Credential(), &redis.ClusterOptions{Addrs: []string{srv.Addr(), "redis://localhost:7000"}}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}}); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("a redis:// seed: %v", err)
	}
	crdb, err := entraredis.NewClusterClient(ctx, srv.Credential(), &redis.ClusterOptions{Addrs: addrs, TLSConfig: srv.TLSConfig()}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	crdb.Close()
	if addrs[0] != "rediss://"+srv.Addr() {
		t.Fatal("NewClusterClient changed the caller's Addrs")
	}
}

// TestTypedNilCredentialIsRefused: the credential of a constructor whose
// error was ignored.
func TestTypedNilCredentialIsRefused(t *testing.T) {
	var cred *entraredistest.Credential // as `cred, _ := azidentity.NewDefaultAzureCredential(nil)` can leave it
	_, err := entraredis.NewClient(t.Context(), cred, &redis.Options{Addr: "NAME.redis.cache.windows.net:6380"}, nil)
	if err == nil || !strings.Contains(err.Error(), "constructor probably failed") {
		t.Fatalf("NewClient: %v", err)
	}
	_, err = entraredis.NewClusterClient(t.Context(), cred, &redis.ClusterOptions{Addrs: []string{"NAME.westeurope.redis.azure.net:10000"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "constructor probably failed") {
		t.Fatalf("NewClusterClient: %v", err)
	}
	if _, err := entraredis.NewCredentials(nil, nil); err == nil {
		t.Fatal("NewCredentials accepted a nil credential")
	}
}
