package entraredis_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// panickingCred is a credential with a bug.
type panickingCred struct{}

func (panickingCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	panic("credential bug")
}

// TestMisuseIsExplained: options a newcomer gets wrong fail in the
// constructor, at once, with one "entraredis:" prefix and what to do; never a
// panic or a hang. (Addresses: TestAddressesAreChecked; typed-nil
// credentials: TestTypedNilCredentialIsRefused.)
func TestMisuseIsExplained(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	cred := srv.Credential()
	o := &entraredis.Options{Options: entratoken.Options{Logger: quiet}}
	provider := func() (string, string) { return "u", "p" }
	for _, tc := range []struct {
		name string
		new  func() error
		want string
	}{
		{"nil redis.Options", func() error { _, err := entraredis.NewClient(t.Context(), cred, nil, o); return err }, "needs redis.Options"},
		{"empty Addr", func() error { _, err := entraredis.NewClient(t.Context(), cred, &redis.Options{}, o); return err }, "NAME.redis.cache.windows.net:6380"},
		{"Password", func() error {
			_, err := entraredis.NewClient(t.Context(), cred, &redis.Options{Addr: srv.Addr(), Password: "access-key"}, o)
			return err
		}, "leave Password"},
		{"CredentialsProvider", func() error {
			_, err := entraredis.NewClient(t.Context(), cred, &redis.Options{Addr: srv.Addr(), CredentialsProvider: provider}, o)
			return err
		}, "credentials providers"},
		{"nil credential", func() error {
			_, err := entraredis.NewClient(t.Context(), nil, &redis.Options{Addr: srv.Addr()}, o)
			return err
		}, "pass an azcore.TokenCredential"},
		{"panicking credential", func() error {
			_, err := entraredis.NewClient(context.Background(), panickingCred{}, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig()}, o)
			var te *entraredis.TokenError
			if !errors.As(err, &te) || te.Panic == nil || !errors.Is(err, entraredis.ErrNoValidToken) {
				t.Errorf("a panicking credential: %v, want a TokenError with Panic set, wrapped in ErrNoValidToken", err)
			}
			return err
		}, "panicked"},
		{"nil redis.ClusterOptions", func() error { _, err := entraredis.NewClusterClient(t.Context(), cred, nil, o); return err }, "needs redis.ClusterOptions with Addrs"},
		{"no cluster Addrs", func() error {
			_, err := entraredis.NewClusterClient(t.Context(), cred, &redis.ClusterOptions{}, o)
			return err
		}, "NAME.REGION.redis.azure.net:10000"},
		{"cluster Password", func() error {
			_, err := entraredis.NewClusterClient(t.Context(), cred, &redis.ClusterOptions{Addrs: []string{srv.Addr()}, Password: "access-key"}, o)
			return err
		}, "leave Password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				defer func() {
					if r := recover(); r != nil {
						done <- errors.New("panic")
						t.Errorf("panicked: %v", r)
					}
				}()
				done <- tc.new()
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("no answer after 10 s")
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); strings.Count(msg, "entraredis:") != 1 || !strings.HasPrefix(msg, "entraredis: ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "access-key") {
				t.Fatalf("%q: want one entraredis: prefix and %q, and no password", msg, tc.want)
			}
		})
	}
}

// TestCloseConcurrentlyAndFromACallback: two Close calls at once both return
// nil, and a callback that closes its own client returns; the client is
// closed afterwards and nothing hangs.
func TestCloseConcurrentlyAndFromACallback(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 2 * time.Second})
	ctx := t.Context()
	rdb, err := entraredis.NewClient(ctx, srv.Credential(), &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig()}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = rdb.Close() })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || !rdb.Status().Closed || !errors.Is(rdb.Ping(ctx).Err(), redis.ErrClosed) {
		t.Fatalf("concurrent Close: %v, %v; closed %v", errs[0], errs[1], rdb.Status().Closed)
	}

	var mu sync.Mutex
	var self *entraredis.ClusterClient
	closed := make(chan error, 1)
	crdb, err := entraredis.NewClusterClient(ctx, srv.Credential(), &redis.ClusterOptions{Addrs: []string{srv.Addr()}, TLSConfig: srv.TLSConfig()}, &entraredis.Options{
		Options: entratoken.Options{
			Logger: quiet,
			OnTokenRefreshed: func(entraredis.TokenRefreshed) {
				mu.Lock()
				c := self
				mu.Unlock()
				if c != nil {
					select {
					case closed <- c.Close():
					default:
					}
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	self = crdb
	mu.Unlock()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from a callback: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no rotation, or the callback's Close hung")
	}
	if err := crdb.Close(); err != nil || !crdb.Status().Closed {
		t.Fatalf("Close after the callback's: %v, closed %v", err, crdb.Status().Closed)
	}
}
