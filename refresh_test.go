package entraredis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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

// poolClient is newClient with a pool size.
func poolClient(t *testing.T, srv *entraredistest.Server, protocol, pool int) *entraredis.Client {
	t.Helper()
	rdb, err := entraredis.NewClient(t.Context(), srv.Credential(), &redis.Options{
		Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: protocol, PoolSize: pool,
	}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func shortOr(short, long time.Duration) time.Duration {
	if testing.Short() {
		return short
	}
	return long
}

// TestInPlaceZeroCounts: 32 goroutines on a pool of 10, 3-second tokens:
// every connection moves in place, so no extra dial, no connection closed at
// expiry, no error; Status counts the connections.
func TestInPlaceZeroCounts(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol int) {
		srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 3 * time.Second})
		rdb := poolClient(t, srv, protocol, 10)
		ctx := t.Context()
		res := runLoad(ctx, rdb, 32, 10*time.Second, 1_000_000)
		st, status := srv.Stats(), rdb.Status()
		t.Logf("RESP%d: %d ops, %d errors, %d rotations, %d dials, %d re-AUTHs, %d closed for expiry, conns %+v",
			protocol, res.ops, res.errs, status.Rotations, st.Accepted, st.ReAuths, st.ExpiryCloses, status.Conns)
		if res.errs != 0 {
			t.Fatalf("%d errors: %v", res.errs, res.firstErrs)
		}
		if st.Accepted > 10 || st.ExpiryCloses != 0 || st.RefusedAuths != 0 {
			t.Fatalf("%d dials for a pool of 10, %d closed for expiry, %d refused AUTHs", st.Accepted, st.ExpiryCloses, st.RefusedAuths)
		}
		if status.Rotations < 2 || st.ReAuths < status.Rotations*int64(st.Open)-int64(st.Open) {
			t.Fatalf("%d rotations, %d re-AUTHs on %d connections", status.Rotations, st.ReAuths, st.Open)
		}
		if c := status.Conns; c.Current+c.Older+c.Unmovable != int(st.Open) || c.Unmovable != 0 {
			t.Fatalf("Status.Conns %+v for %d open connections", c, st.Open)
		}
	})
}

// TestInPlaceZeroCountsCluster: the same on the 3-master cluster (pool of 10
// per node client).
func TestInPlaceZeroCountsCluster(t *testing.T) {
	cl := entraredistest.NewCluster(t, entraredistest.ClusterOptions{TokenLifetime: 3 * time.Second})
	for _, protocol := range []int{2, 3} {
		before := cl.Stats()
		rdb, err := entraredis.NewClusterClient(t.Context(), cl.Credential(), &redis.ClusterOptions{
			Addrs: cl.Addrs(), TLSConfig: cl.TLSConfig(), Protocol: protocol, PoolSize: 10,
		}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
		if err != nil {
			t.Fatal(err)
		}
		// go-redis keeps node clients for the seeds (by host name) and for
		// the topology (by IP): the pools fill during a warm-up, then no
		// dial may follow.
		if res := runLoad(t.Context(), rdb, 32, 2*time.Second, 1_000_000); res.errs != 0 {
			t.Fatal(res.firstErrs)
		}
		warm := cl.Stats()
		res := runLoad(t.Context(), rdb, 32, 10*time.Second, 1_000_000)
		status := rdb.Status()
		st := cl.Stats()
		rdb.Close()
		dials, expired := st.Accepted-warm.Accepted, st.ExpiryCloses-before.ExpiryCloses
		t.Logf("cluster RESP%d: %d ops, %d errors, %d rotations, %d connections, %d dials after the warm-up, %d re-AUTHs, %d closed for expiry",
			protocol, res.ops, res.errs, status.Rotations, warm.Accepted-before.Accepted, dials, st.ReAuths-before.ReAuths, expired)
		if res.errs != 0 {
			t.Fatalf("%d errors: %v", res.errs, res.firstErrs)
		}
		if dials != 0 || expired != 0 || st.RefusedAuths != before.RefusedAuths || status.Rotations < 2 {
			t.Fatalf("%d dials after the warm-up, %d closed for expiry, %d refused AUTHs, %d rotations", dials, expired, st.RefusedAuths-before.RefusedAuths, status.Rotations)
		}
	}
}

// TestIdlePoolStaysAuthenticated: a pool left idle for three token lifetimes
// is moved in place too (nothing else touches it): no connection closed at
// expiry, no redial when the load comes back.
func TestIdlePoolStaysAuthenticated(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol int) {
		srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 3 * time.Second})
		rdb := poolClient(t, srv, protocol, 10)
		ctx := t.Context()
		if res := runLoad(ctx, rdb, 32, 500*time.Millisecond, 1_000_000); res.errs != 0 {
			t.Fatal(res.firstErrs)
		}
		open := srv.Stats().Accepted
		time.Sleep(9 * time.Second)
		res := runLoad(ctx, rdb, 32, 2*time.Second, 1_000_000)
		st := srv.Stats()
		t.Logf("RESP%d: %d connections idle 9 s through %d rotations: %d re-AUTHs, %d closed for expiry, %d dials after", protocol, open, rdb.Status().Rotations, st.ReAuths, st.ExpiryCloses, st.Accepted-open)
		if res.errs != 0 || st.ExpiryCloses != 0 || st.Accepted != open {
			t.Fatalf("%d errors (%v), %d closed for expiry, %d redials", res.errs, res.firstErrs, st.ExpiryCloses, st.Accepted-open)
		}
	})
}

// TestSessionsLiveAcrossTokenLifetimes: a Conn, a Watch loop and (RESP3) a
// subscriber beside a publisher numbering a message every 5 ms, held for ten
// token lifetimes: no error, no message lost or duplicated, no reconnect.
func TestSessionsLiveAcrossTokenLifetimes(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol int) {
		life := 3 * time.Second
		srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: life})
		rdb := poolClient(t, srv, protocol, 4)
		ctx := t.Context()
		d := shortOr(4*life, 10*life)
		deadline := time.Now().Add(d)

		var wg sync.WaitGroup
		var errs atomic.Int64
		var firstErr atomic.Value
		fail := func(err error) {
			errs.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}
		conn := rdb.Conn()
		defer conn.Close()
		wg.Go(func() { // one pinned connection
			for i := 0; time.Now().Before(deadline) && i < 1_000_000; i++ {
				if err := conn.Incr(ctx, "conn").Err(); err != nil {
					fail(fmt.Errorf("Conn INCR: %w", err))
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
		wg.Go(func() { // a Watch loop
			for i := 0; time.Now().Before(deadline) && i < 1_000_000; i++ {
				err := rdb.Watch(ctx, func(tx *redis.Tx) error {
					n, err := tx.Get(ctx, "watched").Int()
					if err != nil && err != redis.Nil {
						return err
					}
					_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Set(ctx, "watched", n+1, 0); return nil })
					return err
				}, "watched")
				if err != nil {
					fail(fmt.Errorf("Watch: %w", err))
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
		var received, published int
		if protocol == 3 {
			sub := rdb.Subscribe(ctx, "numbers")
			defer sub.Close()
			if _, err := sub.Receive(ctx); err != nil {
				t.Fatal(err)
			}
			ch := sub.Channel(redis.WithChannelSize(10_000))
			wg.Go(func() {
				for i := 0; time.Now().Before(deadline) && i < 1_000_000; i++ {
					if err := rdb.Publish(ctx, "numbers", i).Err(); err != nil {
						fail(fmt.Errorf("PUBLISH: %w", err))
						return
					}
					published++
					time.Sleep(5 * time.Millisecond)
				}
			})
			wg.Wait()
			timeout := time.After(5 * time.Second)
			for received < published {
				select {
				case m := <-ch:
					if m.Payload != fmt.Sprint(received) {
						t.Fatalf("message %d is %q: lost or duplicated", received, m.Payload)
					}
					received++
				case <-timeout:
					t.Fatalf("%d of %d messages received", received, published)
				}
			}
		} else {
			wg.Wait()
		}
		st, status := srv.Stats(), rdb.Status()
		t.Logf("RESP%d over %v: %d rotations, %d messages in order, %d dials, %d re-AUTHs, %d closed for expiry", protocol, d, status.Rotations, received, st.Accepted, st.ReAuths, st.ExpiryCloses)
		if errs.Load() != 0 {
			t.Fatalf("%d errors, first %v", errs.Load(), firstErr.Load())
		}
		if st.ExpiryCloses != 0 || status.Rotations < 3 {
			t.Fatalf("%d connections closed for expiry (a reconnect), %d rotations", st.ExpiryCloses, status.Rotations)
		}
	})
}

// tokenSpy is a user hook recording every command go-redis runs through
// hooks, connection setup included.
type tokenSpy struct {
	mu   sync.Mutex
	seen []string
}

func (s *tokenSpy) record(cmd redis.Cmder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, cmd.String(), fmt.Sprint(cmd.Args()...))
}

func (s *tokenSpy) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *tokenSpy) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { s.record(cmd); return next(ctx, cmd) }
}
func (s *tokenSpy) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			s.record(c)
		}
		return next(ctx, cmds)
	}
}

// TestNoTokenReachesGoRedis: go-redis' options hold no credentials, and a
// user hook sees every command, connection setup and rotations included,
// without a token or an AUTH in it.
func TestNoTokenReachesGoRedis(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 3 * time.Second})
	rdb := poolClient(t, srv, 3, 4)
	if o := rdb.Options(); o.Password != "" || o.Username != "" || o.StreamingCredentialsProvider != nil || o.CredentialsProvider != nil || o.CredentialsProviderContext != nil {
		t.Fatal("go-redis options carry credentials")
	}
	spy := &tokenSpy{}
	rdb.AddHook(spy)
	ctx := t.Context()
	res := runLoad(ctx, rdb, 8, 5*time.Second, 1_000_000)
	if res.errs != 0 {
		t.Fatal(res.firstErrs)
	}
	spy.mu.Lock()
	defer spy.mu.Unlock()
	if rdb.Status().Rotations < 1 || srv.Stats().ReAuths == 0 {
		t.Fatal("no rotation happened: the test proves nothing")
	}
	hello := false
	for _, s := range spy.seen {
		// Every Microsoft Entra token is a JWT: base64url of '{"' starts it.
		if strings.Contains(s, "eyJ") || strings.Contains(strings.ToLower(s), "auth") {
			t.Fatalf("a hook saw %q", s)
		}
		hello = hello || strings.HasPrefix(s, "hello")
	}
	if !hello {
		t.Fatal("the hook did not see connection setup (HELLO): the test proves less than it says")
	}
}

// TestHandedOnClientsDoNotPanic: the embedded client, a WithTimeout clone
// and the cluster's node clients may be handed on: their Watch, Conn,
// EphemeralConn and Subscribe work on a pool that has no idle connection.
func TestHandedOnClientsDoNotPanic(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	rdb := poolClient(t, srv, 3, 4)
	ctx := t.Context()
	for name, c := range map[string]*redis.Client{"embedded": rdb.Client, "WithTimeout": rdb.WithTimeout(time.Second)} {
		exercise(t, ctx, name, c)
	}
	cl := entraredistest.NewCluster(t, entraredistest.ClusterOptions{})
	crdb, err := entraredis.NewClusterClient(ctx, cl.Credential(), &redis.ClusterOptions{Addrs: cl.Addrs(), TLSConfig: cl.TLSConfig()}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	defer crdb.Close()
	if err := crdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		exercise(t, ctx, "node "+node.Options().Addr, node)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func exercise(t *testing.T, ctx context.Context, name string, c *redis.Client) {
	t.Helper()
	key := "handed-on" + fmt.Sprint(time.Now().UnixNano()%97)
	if err := c.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Incr(ctx, key); return nil })
		return err
	}, key); err != nil && !strings.Contains(err.Error(), "MOVED") {
		t.Fatalf("%s: Watch: %v", name, err)
	}
	for _, conn := range []*redis.Conn{c.Conn(), c.EphemeralConn()} {
		if err := conn.Ping(ctx).Err(); err != nil {
			t.Fatalf("%s: Conn: %v", name, err)
		}
		conn.Close()
	}
	sub := c.Subscribe(ctx, "handed-on")
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatalf("%s: Subscribe: %v", name, err)
	}
	sub.Close()
}

// TestBlockPastTokenLifetimeIsExplained: a block that outlives the newest
// token is cut when the server closes the connection at its expiry, with an
// error that says why; it never hangs.
func TestBlockPastTokenLifetimeIsExplained(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 3 * time.Second})
	rdb, err := entraredis.NewClient(t.Context(), srv.Credential(), &redis.Options{
		Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), ReadTimeout: 10 * time.Second, MaxRetries: -1,
	}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	start := time.Now()
	err = rdb.Do(t.Context(), "BLPOP", "never", "0").Err()
	if err == nil || !strings.Contains(err.Error(), "blocking timeouts shorter than the token lifetime") {
		t.Fatalf("BLPOP 0 past the token's expiry: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the block was cut after %v, more than a token lifetime", took)
	}
}

// strangerSecond gives the good principal's token, then one of a principal
// the server does not know (refused), then the good one again.
type strangerSecond struct {
	good, stranger azcore.TokenCredential
	calls          atomic.Int64
}

func (c *strangerSecond) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if c.calls.Add(1) == 2 {
		return c.stranger.GetToken(ctx, o)
	}
	return c.good.GetToken(ctx, o)
}

// TestRefusedReauthIsReported: a re-AUTH the server refuses is reported to
// OnReauthFailed, explained, and the connection keeps its previous
// authentication: no command fails, nothing is redialled.
func TestRefusedReauthIsReported(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 3 * time.Second})
	cred := &strangerSecond{
		good:     srv.Credential(),
		stranger: srv.Issuer().NewCredential(entraredistest.CredentialOptions{Lifetime: 3 * time.Second}),
	}
	var mu sync.Mutex
	var failed []error
	rdb, err := entraredis.NewClient(t.Context(), cred, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), PoolSize: 2}, &entraredis.Options{
		Options: entratoken.Options{
			Logger:         quiet,
			OnReauthFailed: func(e entraredis.ReauthFailed) { mu.Lock(); failed = append(failed, e.Err); mu.Unlock() },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := t.Context()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; time.Now().Before(deadline) && rdb.Status().ReauthFailures == 0 && i < 100_000; i++ {
		if err := rdb.Incr(ctx, "n").Err(); err != nil {
			t.Fatalf("INCR %d: %v", i, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if rdb.Status().ReauthFailures == 0 {
		t.Fatal("no re-AUTH was refused: the test proves nothing")
	}
	accepted := srv.Stats().Accepted
	for range 50 { // the connection keeps its previous authentication
		if err := rdb.Incr(ctx, "n").Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // OnReauthFailed runs on the event goroutine
	mu.Lock()
	defer mu.Unlock()
	var ae *entraredis.AuthError
	if len(failed) == 0 || !errors.As(failed[0], &ae) || !redis.HasErrorPrefix(failed[0], "WRONGPASS") {
		t.Fatalf("OnReauthFailed got %v", failed)
	}
	if srv.Stats().Accepted != accepted {
		t.Fatal("a connection was redialled after a refused re-AUTH")
	}
}
