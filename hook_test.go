package entraredis_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// dialCounter counts the dials that reach the network: added after the
// library's hook, it sees only the dials that hook lets through.
type dialCounter struct{ n atomic.Int64 }

func (d *dialCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d.n.Add(1)
		return next(ctx, network, addr)
	}
}
func (d *dialCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (d *dialCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// pingUntilOK pings every 20 ms until a PING succeeds or limit passes, and
// returns how long it took.
func pingUntilOK(t *testing.T, rdb redis.Cmdable, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < limit {
		if err = rdb.Ping(t.Context()).Err(); err == nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no PING succeeded within %v: %v", limit, err)
	return 0
}

// TestRefusedTokenDoesNotDial (issue 12.3): a token the server refuses (a
// principal without an access policy) costs at most 3 dials for 1,000
// commands, each of which fails with the explained refusal; once the
// principal is given a role, the client recovers within RetryMaxDelay + 1 s.
func TestRefusedTokenDoesNotDial(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol int) {
		srv := entraredistest.NewServer(t, entraredistest.Options{})
		stranger := srv.Issuer().NewCredential(entraredistest.CredentialOptions{})
		const retryMax = 2 * time.Second
		rdb := newClient(t, srv, stranger, protocol, entraredis.Options{Options: entratoken.Options{RetryMaxDelay: retryMax}})
		dials := &dialCounter{}
		rdb.AddHook(dials)
		before := srv.Stats()
		start := time.Now()
		var ae *entraredis.AuthError
		for i := range 1000 {
			err := rdb.Ping(t.Context()).Err()
			if !errors.As(err, &ae) || !redis.HasErrorPrefix(err, "WRONGPASS") || !strings.Contains(err.Error(), "access policy") {
				t.Fatalf("PING %d: %v, want the explained WRONGPASS", i, err)
			}
			if i > 0 && !errors.Is(err, entratoken.ErrTokenRefused) && dials.n.Load() > 3 {
				t.Fatalf("PING %d dialed: %v", i, err)
			}
		}
		elapsed := time.Since(start)
		st, after := rdb.Status(), srv.Stats()
		accepted := after.Accepted - before.Accepted
		t.Logf("RESP%d: 1000 refused PINGs in %v: %d dials (server: %d accepted, %d refused AUTHs), status dial %v until %v, %d refusals",
			protocol, elapsed.Round(time.Millisecond), dials.n.Load(), accepted, after.RefusedAuths-before.RefusedAuths, st.Dial, time.Until(st.RefusedUntil).Round(time.Millisecond), st.DialRefusals)
		if accepted > 3 || dials.n.Load() > 3 {
			t.Fatalf("1000 commands with a refused token cost %d dials (%d seen by a hook), want at most 3", accepted, dials.n.Load())
		}
		if accepted == 0 || st.DialRefusals == 0 || st.Dial == entratoken.DialOpen || st.Valid(time.Now()) {
			t.Fatalf("the refusal is not shown: %d dials, status %+v", accepted, st)
		}

		// Keep the refusal until the wait has grown to RetryMaxDelay (the
		// probes at 1 s and 3 s refused), then give the principal a role.
		for deadline := time.Now().Add(6 * time.Second); rdb.Status().DialRefusals < 3; {
			if time.Now().After(deadline) {
				t.Fatalf("no probe refused in 6 s: %+v", rdb.Status())
			}
			rdb.Ping(t.Context())
			time.Sleep(20 * time.Millisecond)
		}
		// Each probe costs one dial, plus at most one that go-redis' pool
		// makes and closes unused to learn that dialing works again (its
		// dial errors saturated it), which hands the probe on.
		if n, refusals := srv.Stats().Accepted-before.Accepted, rdb.Status().DialRefusals; n > 2*refusals-1 {
			t.Fatalf("%d dials in %v for %d refusals, want at most two per probe after the first", n, time.Since(start), refusals)
		}
		srv.Allow(stranger.ObjectID(), entraredistest.RoleOwner)
		took := pingUntilOK(t, rdb, retryMax+time.Second+500*time.Millisecond)
		t.Logf("RESP%d: recovered %v after the principal was given a role", protocol, took.Round(time.Millisecond))
		if took > retryMax+time.Second {
			t.Fatalf("recovered %v after the role was given, want within RetryMaxDelay + 1 s (%v)", took, retryMax+time.Second)
		}
		if st := rdb.Status(); st.Dial != entratoken.DialOpen || !st.Valid(time.Now()) {
			t.Fatalf("after recovery: %+v", st)
		}
	})
}

// TestRefusedTokenClusterClient: the same on a cluster: every node shares
// the refusal.
func TestRefusedTokenClusterClient(t *testing.T) {
	cl := entraredistest.NewCluster(t, entraredistest.ClusterOptions{})
	stranger := cl.Issuer().NewCredential(entraredistest.CredentialOptions{})
	rdb, err := entraredis.NewClusterClient(t.Context(), stranger, &redis.ClusterOptions{Addrs: cl.Addrs(), TLSConfig: cl.TLSConfig()},
		&entraredis.Options{Options: entratoken.Options{Logger: quiet, RetryMaxDelay: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	before := cl.Stats()
	var ae *entraredis.AuthError
	for i := range 1000 {
		if err := rdb.Set(t.Context(), "k", i, 0).Err(); !errors.As(err, &ae) {
			t.Fatalf("SET %d: %v, want the explained refusal", i, err)
		}
	}
	if n := cl.Stats().Accepted - before.Accepted; n > 3 {
		t.Fatalf("1000 commands on a cluster with a refused token cost %d dials, want at most 3", n)
	}
	cl.Allow(stranger.ObjectID(), entraredistest.RoleOwner)
	deadline := time.Now().Add(3500 * time.Millisecond)
	for rdb.Set(t.Context(), "k", 1, 0).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the cluster client did not recover within RetryMaxDelay + 1.5 s of the role being given")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outage makes cred fail from now until past the expiry of the token in use
// (plus extra), waits until that token has expired, and returns when the
// outage ends.
func outage(t *testing.T, cred *entraredistest.Credential, expiresOn time.Time, extra time.Duration) time.Time {
	t.Helper()
	d := time.Until(expiresOn) + extra
	cred.FailFor(d, nil)
	back := time.Now().Add(d)
	time.Sleep(time.Until(expiresOn) + 200*time.Millisecond)
	return back
}

// load runs PINGs from 8 goroutines for d (at most 20,000 each) and
// returns the commands and the errors, checking that each error is want.
func load(t *testing.T, rdb redis.Cmdable, d time.Duration, want error) (cmds, errs int64) {
	t.Helper()
	var wg sync.WaitGroup
	var bad atomic.Value
	stop := time.Now().Add(d)
	for range 8 {
		wg.Go(func() {
			for i := 0; i < 20_000 && time.Now().Before(stop); i++ {
				atomic.AddInt64(&cmds, 1)
				if err := rdb.Ping(t.Context()).Err(); err != nil {
					atomic.AddInt64(&errs, 1)
					if want != nil && !errors.Is(err, want) {
						bad.Store(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err, _ := bad.Load().(error); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	return cmds, errs
}

// ownClient is a go-redis client built by the user around Credentials, as
// the README shows, with or without Credentials.Hook.
func ownClient(t *testing.T, srv *entraredistest.Server, creds *entraredis.Credentials, withHook bool) (*redis.Client, *dialCounter) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), StreamingCredentialsProvider: creds})
	t.Cleanup(func() { rdb.Close() })
	if withHook {
		rdb.AddHook(creds.Hook())
	}
	dials := &dialCounter{}
	rdb.AddHook(dials)
	return rdb, dials
}

// TestOwnClientOutagePastExpiry (issue 12.4): a user's own go-redis client
// with Credentials and Credentials.Hook, the token service down past the
// token's expiry, 8 goroutines for 2 s: at most 3 dials, every error
// ErrNoValidToken, and recovery once the service is back. Without the hook
// the same run storms, which is what the hook is for.
func TestOwnClientOutagePastExpiry(t *testing.T) {
	for _, withHook := range []bool{true, false} {
		name := map[bool]string{true: "hook", false: "no hook"}[withHook]
		t.Run(name, func(t *testing.T) {
			srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 3 * time.Second})
			creds, err := entraredis.NewCredentials(srv.Credential(), &entraredis.Options{Options: entratoken.Options{Logger: quiet, RetryMaxDelay: 300 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			defer creds.Close()
			rdb, dials := ownClient(t, srv, creds, withHook)
			if err := rdb.Ping(t.Context()).Err(); err != nil {
				t.Fatal(err)
			}
			back := outage(t, srv.Credential(), creds.Status().ExpiresOn, 2500*time.Millisecond)
			before := srv.Stats().Accepted
			cmds, errs := load(t, rdb, 2*time.Second, entraredis.ErrNoValidToken)
			accepted := srv.Stats().Accepted - before
			t.Logf("%s: %d commands, %d errors, %d dials during the outage", name, cmds, errs, accepted)
			if errs == 0 {
				t.Fatal("no command failed: the outage was not past expiry, the test proves nothing")
			}
			if !withHook {
				if accepted <= 3 {
					t.Fatalf("without the hook only %d dials: the storm this test guards against is not reproduced", accepted)
				}
				return
			}
			if accepted > 3 || dials.n.Load() > 3 {
				t.Fatalf("the outage cost %d dials (%d seen by a hook), want at most 3", accepted, dials.n.Load())
			}
			time.Sleep(time.Until(back))
			pingUntilOK(t, rdb, 2*time.Second)
		})
	}
}

// TestOwnClientRefusedToken (issue 12.4): a user's own client with the hook
// and a token the server refuses: after the first refusal, 8 goroutines for
// 2 s cost at most 2 more dials; it recovers once the principal is given a
// role.
func TestOwnClientRefusedToken(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	stranger := srv.Issuer().NewCredential(entraredistest.CredentialOptions{})
	creds, err := entraredis.NewCredentials(stranger, &entraredis.Options{Options: entratoken.Options{Logger: quiet, RetryMaxDelay: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer creds.Close()
	rdb, dials := ownClient(t, srv, creds, true)
	before := srv.Stats().Accepted
	var ae *entraredis.AuthError
	if err := rdb.Ping(t.Context()).Err(); !errors.As(err, &ae) {
		t.Fatalf("first PING: %v, want the explained refusal", err)
	}
	_, errs := load(t, rdb, 2*time.Second, nil)
	accepted := srv.Stats().Accepted - before
	t.Logf("own client, refused token: %d errors, %d dials, status dial %v", errs, accepted, creds.Status().Dial)
	if accepted > 3 || dials.n.Load() > 3 {
		t.Fatalf("a refused token cost %d dials (%d seen by a hook), want at most 3", accepted, dials.n.Load())
	}
	srv.Allow(stranger.ObjectID(), entraredistest.RoleOwner)
	pingUntilOK(t, rdb, 2*time.Second+500*time.Millisecond)
}
