package entraredis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newClient connects an entraredis client to srv with the given protocol.
func newClient(t testing.TB, srv *entraredistest.Server, cred *entraredistest.Credential, protocol int, o entraredis.Options) *entraredis.Client {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	rdb, err := entraredis.NewClient(t.Context(), cred, &redis.Options{
		Addr:      srv.Addr(),
		TLSConfig: srv.TLSConfig(),
		Protocol:  protocol,
	}, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func forEachProtocol(t *testing.T, f func(t *testing.T, protocol int)) {
	for _, p := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", p), func(t *testing.T) {
			t.Parallel()
			f(t, p)
		})
	}
}

func TestHelloWorld(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol int) {
		srv := entraredistest.NewServer(t, entraredistest.Options{})
		rdb := newClient(t, srv, srv.Credential(), protocol, entraredis.Options{})
		ctx := t.Context()
		if err := rdb.Set(ctx, "Az:key1", "value1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		got, err := rdb.Get(ctx, "Az:key1").Result()
		if err != nil || got != "value1" {
			t.Fatalf("GET = %q, %v", got, err)
		}
		who, err := rdb.Do(ctx, "ACL", "WHOAMI").Text()
		if err != nil || who != srv.Credential().ObjectID() {
			t.Fatalf("ACL WHOAMI = %q, %v; want the oid %q", who, err, srv.Credential().ObjectID())
		}
		if st := rdb.Status(); st.Username != srv.Credential().ObjectID() || !st.Valid(time.Now()) {
			t.Fatalf("status %+v", st)
		}
	})
}

// loadResult is what a load run saw.
type loadResult struct {
	ops, errs int64
	firstErrs []error
}

// runLoad runs GET/SET from n goroutines until d has passed (and at most
// maxOps operations each), and returns the counts.
func runLoad(ctx context.Context, rdb redis.Cmdable, n int, d time.Duration, maxOps int) *loadResult {
	var res loadResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for g := range n {
		wg.Go(func() {
			key := fmt.Sprintf("load:%d", g)
			for i := 0; i < maxOps && time.Now().Before(deadline); i++ {
				var err error
				if i%2 == 0 {
					err = rdb.Set(ctx, key, i, 0).Err()
				} else {
					err = rdb.Get(ctx, key).Err()
				}
				atomic.AddInt64(&res.ops, 1)
				if err != nil {
					atomic.AddInt64(&res.errs, 1)
					mu.Lock()
					if len(res.firstErrs) < 5 {
						res.firstErrs = append(res.firstErrs, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return &res
}

func loadDuration(t *testing.T) time.Duration {
	if testing.Short() {
		return 10 * time.Second
	}
	return 60 * time.Second
}

// TestRotationUnderLoad: 32 goroutines, tokens of 4 seconds (a rotation every
// 2-3 s), zero command errors and no connection closed for an expired token.
func TestRotationUnderLoad(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol int) {
		srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 4 * time.Second})
		cred := srv.Credential()
		rdb := newClient(t, srv, cred, protocol, entraredis.Options{})
		before := srv.Stats()
		d := loadDuration(t)
		res := runLoad(t.Context(), rdb, 32, d, 1_000_000)
		after, status := srv.Stats(), rdb.Status()
		rotations := status.Rotations
		dials := after.Accepted - before.Accepted
		t.Logf("RESP%d %v: %d ops, %d errors, %d rotations, %.2f token requests/rotation, %d dials (%.2f/rotation beyond the first pool), %d re-AUTHs, %d closed for expiry, %d refused AUTHs",
			protocol, d, res.ops, res.errs, rotations, float64(status.TokenRequests-1)/float64(max(rotations, 1)),
			dials, float64(dials)/float64(max(rotations, 1)), after.ReAuths, after.ExpiryCloses, after.RefusedAuths)
		if res.errs != 0 {
			t.Fatalf("%d command errors of %d, first: %v", res.errs, res.ops, res.firstErrs)
		}
		if rotations < int64(d/(4*time.Second)) {
			t.Fatalf("only %d rotations in %v of 4-second tokens", rotations, d)
		}
		if res.ops < 1000 {
			t.Fatalf("only %d operations", res.ops)
		}
		if after.RefusedAuths != 0 {
			t.Fatalf("%d AUTHs refused", after.RefusedAuths)
		}
		// Under load every connection is handed out, and so re-authenticated,
		// before its token expires.
		if after.ExpiryCloses != 0 {
			t.Fatalf("%d connections closed for an expired token", after.ExpiryCloses)
		}
		if after.ReAuths < rotations {
			t.Fatalf("%d re-AUTHs for %d rotations: connections are not moved to new tokens", after.ReAuths, rotations)
		}
		// One request per rotation plus the first; one more may be in flight
		// when the snapshot is taken.
		if extra := status.TokenRequests - rotations - 1; extra < 0 || extra > 1 {
			t.Fatalf("%d token requests for %d rotations, want one each", status.TokenRequests, rotations)
		}
	})
}

// TestOutageShorterThanTokenLife: the token service fails for longer than the
// refresh margin but less than the token's remaining life: zero errors.
func TestOutageShorterThanTokenLife(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol int) {
		srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 8 * time.Second})
		cred := srv.Credential()
		var failures atomic.Int64
		rdb := newClient(t, srv, cred, protocol, entraredis.Options{
			Options: entratoken.Options{
				RefreshBefore:   6 * time.Second, // capped at 4 s: half the life
				OnRefreshFailed: func(entraredis.RefreshFailed) { failures.Add(1) },
			},
		})
		// The refresh margin is 4 s (half the life): fail for 5.5 s from now,
		// longer than the margin, and so through the first refresh, but less
		// than the 8 s of life left.
		cred.FailFor(5500*time.Millisecond, nil)
		res := runLoad(t.Context(), rdb, 16, 10*time.Second, 1_000_000)
		if failures.Load() == 0 {
			t.Fatal("the outage was not seen: the test proves nothing")
		}
		if res.errs != 0 {
			t.Fatalf("%d command errors during an outage shorter than the token's life: %v", res.errs, res.firstErrs)
		}
		st := rdb.Status()
		if st.Rotations == 0 || st.ConsecutiveFailures != 0 {
			t.Fatalf("not recovered after the outage: %+v", st)
		}
		if ex := srv.Stats().ExpiryCloses; ex != 0 {
			t.Fatalf("%d connections closed for expiry", ex)
		}
		t.Logf("RESP%d: %d ops, 0 errors through %d refresh failures", protocol, res.ops, failures.Load())
	})
}

// TestOutagePastExpiry: the token service fails past the token's expiry. The
// client then fails with a clear error, without dialing, and recovers within
// the backoff bound once the service is back.
func TestOutagePastExpiry(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol int) {
		srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 3 * time.Second})
		cred := srv.Credential()
		rdb := newClient(t, srv, cred, protocol, entraredis.Options{Options: entratoken.Options{RetryMaxDelay: 300 * time.Millisecond}})
		ctx := t.Context()
		if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		exp := rdb.Status().ExpiresOn
		outage := time.Until(exp) + 2*time.Second
		cred.FailFor(outage, nil)
		back := time.Now().Add(outage)
		time.Sleep(time.Until(exp) + 500*time.Millisecond)

		err := rdb.Get(ctx, "k").Err()
		if !errors.Is(err, entraredis.ErrNoValidToken) || !errors.Is(err, entraredistest.ErrInjected) {
			t.Fatalf("after expiry: %v, want ErrNoValidToken wrapping the credential's error", err)
		}
		for _, want := range []string{"no valid Microsoft Entra token", entraredis.DefaultScope} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not say %q", err, want)
			}
		}
		accepted := srv.Stats().Accepted
		for i := 0; i < 200 && time.Until(back) > 500*time.Millisecond; i++ {
			rdb.Get(ctx, "k")
		}
		if n := srv.Stats().Accepted - accepted; n != 0 {
			t.Fatalf("%d connections dialed while no valid token existed", n)
		}

		time.Sleep(time.Until(back))
		// RetryMaxDelay 300 ms (capped to a quarter of the margin): recovered
		// within one backoff step plus a round trip.
		deadline := time.Now().Add(time.Second)
		var recovered time.Duration
		for {
			if err = rdb.Get(ctx, "k").Err(); err == nil {
				recovered = time.Since(back)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not recovered 1 s after the token service came back: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("RESP%d: recovered %v after the token service came back", protocol, recovered)
	})
}

func TestWrongPassIsExplained(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	// A principal the server does not know: no access policy.
	stranger := srv.Issuer().NewCredential(entraredistest.CredentialOptions{})
	rdb := newClient(t, srv, stranger, 3, entraredis.Options{})
	err := rdb.Ping(t.Context()).Err()
	var ae *entraredis.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want an *AuthError", err, err)
	}
	if !redis.HasErrorPrefix(err, "WRONGPASS") {
		t.Fatalf("redis.HasErrorPrefix(err, WRONGPASS) is false for %v", err)
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		t.Fatal("the go-redis error is not reachable with errors.As")
	}
	for _, want := range []string{"access policy", stranger.ObjectID(), "oid", "Microsoft Entra Authentication is enabled"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not mention %q", err, want)
		}
	}
}

func TestNoPermIsExplained(t *testing.T) {
	entraredistest.RequireRedisServer(t)
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	reader := srv.NewCredential(entraredistest.CredentialOptions{Role: entraredistest.RoleReader})
	rdb := newClient(t, srv, reader, 3, entraredis.Options{})
	ctx := t.Context()
	if err := rdb.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("a reader's GET: %v", err)
	}
	err := rdb.Set(ctx, "k", "v", 0).Err()
	var ae *entraredis.AuthError
	if !errors.As(err, &ae) || !redis.HasErrorPrefix(err, "NOPERM") {
		t.Fatalf("a reader's SET: %v, want an explained NOPERM", err)
	}
	if !strings.Contains(err.Error(), "Data Contributor") {
		t.Fatalf("NOPERM explanation does not name the role to assign: %v", err)
	}
	// Pipelines too.
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "k", "v", 0)
		p.Get(ctx, "k")
		return nil
	})
	if !errors.As(err, &ae) || !errors.As(cmds[0].Err(), &ae) || cmds[1].Err() != redis.Nil {
		t.Fatalf("pipeline: %v / %v / %v, want explained NOPERM then redis.Nil", err, cmds[0].Err(), cmds[1].Err())
	}
}

// TestWatchAndConnDoNotPanic: go-redis v9.23 panics when Watch or Conn must
// dial on a client with a streaming provider; ours must not.
func TestWatchAndConnDoNotPanic(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 4 * time.Second})
	rdb := newClient(t, srv, srv.Credential(), 3, entraredis.Options{})
	ctx := t.Context()
	err := rdb.Watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Get(ctx, "counter").Int()
		if err != nil && err != redis.Nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "counter", n+1, 0)
			return nil
		})
		return err
	}, "counter")
	if err != nil {
		t.Fatal(err)
	}
	conn := rdb.Conn()
	defer conn.Close()
	if err := conn.ClientSetName(ctx, "pinned").Err(); err != nil {
		t.Fatal(err)
	}
	// Across several token lifetimes, Watch keeps working.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline) && i < 10_000; i++ {
		err := rdb.Watch(ctx, func(tx *redis.Tx) error {
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, "counter")
				return nil
			})
			return err
		}, "counter")
		if err != nil {
			t.Fatalf("Watch %d: %v", i, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPubSubSurvivesRotation: a PubSub channel keeps receiving across token
// expiries (the emulator drops the subscribed connection at expiry; go-redis
// resubscribes with the current token).
func TestPubSubSurvivesRotation(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol int) {
		srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 3 * time.Second})
		rdb := newClient(t, srv, srv.Credential(), protocol, entraredis.Options{})
		ctx := t.Context()
		sub := rdb.Subscribe(ctx, "news")
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		ch := sub.Channel()
		received := 0
		deadline := time.Now().Add(8 * time.Second)
		for i := 0; time.Now().Before(deadline); i++ {
			rdb.Publish(ctx, "news", i)
			select {
			case <-ch:
				received++
			case <-time.After(200 * time.Millisecond):
			}
		}
		if received < 20 {
			t.Fatalf("received %d messages over 8 s of 3-second tokens", received)
		}
		if received2 := func() int {
			n := 0
			for range 20 {
				rdb.Publish(ctx, "news", "after")
				select {
				case <-ch:
					n++
				case <-time.After(500 * time.Millisecond):
				}
			}
			return n
		}(); received2 == 0 {
			t.Fatal("the subscription did not come back after the last expiry")
		}
	})
}

func TestPlaintextRefusedForRemoteHosts(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	_, err := entraredis.NewClient(t.Context(), srv.Credential(), &redis.Options{Addr: "example.redis.cache.windows.net:6379"}, &entraredis.Options{Options: entratoken.Options{Plaintext: true}})
	if !errors.Is(err, entraredis.ErrPlaintextRemote) {
		t.Fatalf("plaintext to a remote host: %v, want ErrPlaintextRemote", err)
	}
	_, err = entraredis.NewClient(t.Context(), srv.Credential(), &redis.Options{Addr: "example.redis.cache.windows.net:6380", Password: "key"}, nil)
	if err == nil || !strings.Contains(err.Error(), "Password") {
		t.Fatalf("a password with Entra: %v", err)
	}
	plain := entraredistest.NewServer(t, entraredistest.Options{Plaintext: true})
	rdb, err := entraredis.NewClient(t.Context(), plain.Credential(), &redis.Options{Addr: plain.Addr()}, &entraredis.Options{Options: entratoken.Options{Plaintext: true, Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	// TLS on by default: the same client options without Plaintext fail the handshake.
	tlsOnly, err := entraredis.NewClient(t.Context(), plain.Credential(), &redis.Options{Addr: plain.Addr(), MaxRetries: -1}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	defer tlsOnly.Close()
	if err := tlsOnly.Ping(t.Context()).Err(); err == nil {
		t.Fatal("a TLS client talked to a plaintext server")
	}
}

// TestClusterClient: the cluster client on a 3-master real Redis Cluster whose
// topology names nodes by IP while the certificate names only the host. The
// client is given no ServerName: it must verify every node against the seed's
// host name, and keep working across rotations.
func TestClusterClient(t *testing.T) {
	cl := entraredistest.NewCluster(t, entraredistest.ClusterOptions{TokenLifetime: 4 * time.Second})
	tc := cl.TLSConfig()
	tc.ServerName = "" // as a user would leave it: entraredis sets it from the seed host
	var reauthFailures atomic.Int64
	rdb, err := entraredis.NewClusterClient(t.Context(), cl.Credential(), &redis.ClusterOptions{
		Addrs:     cl.Addrs(),
		TLSConfig: tc,
	}, &entraredis.Options{Options: entratoken.Options{Logger: quiet, OnReauthFailed: func(entraredis.ReauthFailed) { reauthFailures.Add(1) }}})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := t.Context()

	d := 12 * time.Second
	if testing.Short() {
		d = 6 * time.Second
	}
	res := runLoad(ctx, rdb, 16, d, 1_000_000)
	st := cl.Stats()
	status := rdb.Status()
	t.Logf("cluster %v: %d ops, %d errors, %d rotations, %d token requests, %d dials, %d re-AUTHs, %d closed for expiry",
		d, res.ops, res.errs, status.Rotations, status.TokenRequests, st.Accepted, st.ReAuths, st.ExpiryCloses)
	if res.errs != 0 {
		t.Fatalf("%d errors: %v", res.errs, res.firstErrs)
	}
	if status.Rotations < 2 || st.ReAuths < status.Rotations {
		t.Fatalf("%d rotations, %d re-AUTHs: connections were not moved to new tokens", status.Rotations, st.ReAuths)
	}
	// One request per rotation plus the first; one more may be in flight
	// when the snapshot is taken.
	if extra := status.TokenRequests - status.Rotations - 1; extra < 0 || extra > 1 {
		t.Fatalf("%d token requests for %d rotations on 3 nodes: want one per rotation, plus the first", status.TokenRequests, status.Rotations)
	}
	if reauthFailures.Load() != 0 || st.RefusedAuths != 0 {
		t.Fatalf("%d re-auth failures, %d refused AUTHs", reauthFailures.Load(), st.RefusedAuths)
	}
	// Every master served commands: the client followed the IP topology with
	// certificates checked against "localhost".
	for i, ns := range cl.NodeStats() {
		if ns.Commands == 0 {
			t.Fatalf("node %d (%s) served no command", i, cl.TopologyAddrs()[i])
		}
	}
	// Watch and pub/sub go through the cluster too.
	if err := rdb.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Incr(ctx, "{w}n"); return nil })
		return err
	}, "{w}n"); err != nil {
		t.Fatal(err)
	}
}

// countingHook counts the commands it sees, as tracing would.
type countingHook struct{ n atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

// TestUserHooksSeeEveryCommand: a hook added the way redisotel adds its own
// (AddHook on a redis.UniversalClient) sees plain commands and Watch alike.
func TestUserHooksSeeEveryCommand(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	rdb := newClient(t, srv, srv.Credential(), 3, entraredis.Options{})
	var uc redis.UniversalClient = rdb
	h := &countingHook{}
	uc.AddHook(h)
	ctx := t.Context()
	rdb.Set(ctx, "k", "v", 0)
	plain := h.n.Load()
	if plain == 0 {
		t.Fatal("the hook did not see SET")
	}
	if err := uc.Watch(ctx, func(tx *redis.Tx) error { return tx.Get(ctx, "k").Err() }, "k"); err != nil {
		t.Fatal(err)
	}
	if h.n.Load() < plain+2 {
		t.Fatalf("the hook saw %d commands of the Watch, want WATCH and GET", h.n.Load()-plain)
	}
}

// TestDroppedConnectionsAndRestart: connections dropped under load (a
// failover) cost no command error, the provider keeps no listener of a dead
// connection, and the client recovers from a backend restart.
func TestDroppedConnectionsAndRestart(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 5 * time.Second})
	rdb := newClient(t, srv, srv.Credential(), 3, entraredis.Options{})
	ctx := t.Context()

	done := make(chan *loadResult)
	go func() { done <- runLoad(ctx, rdb, 16, 6*time.Second, 1_000_000) }()
	dropped := 0
	for range 5 {
		time.Sleep(time.Second)
		dropped += srv.DropConnections()
	}
	res := <-done
	if dropped == 0 {
		t.Fatal("nothing was dropped: the test proves nothing")
	}
	if res.errs != 0 {
		t.Fatalf("%d errors of %d after dropping %d connections: %v", res.errs, res.ops, dropped, res.firstErrs)
	}
	// Listeners of dropped connections are gone: no more subscriptions than
	// open connections (main pool, its pipeline pool, the pinned pool).
	if subs, open := rdb.Status().Connections, int(rdb.PoolStats().TotalConns); subs > open {
		t.Fatalf("%d subscriptions for %d open connections: listeners of dead connections are kept", subs, open)
	}

	if err := srv.RestartBackend(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := rdb.Set(ctx, "after-restart", 1, 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery 5 s after a backend restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d ops, 0 errors through %d dropped connections; recovered after a restart", res.ops, dropped)
}

func TestClusterPlaintextChecksEveryAddress(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{Plaintext: true})
	_, err := entraredis.NewClusterClient(t.Context(), srv.Credential(), &redis.ClusterOptions{
		Addrs: []string{"localhost:7000", "cache.example.com:6379"},
	}, &entraredis.Options{Options: entratoken.Options{Plaintext: true, Logger: quiet}})
	if !errors.Is(err, entraredis.ErrPlaintextRemote) || !strings.Contains(err.Error(), "cache.example.com") {
		t.Fatalf("err = %v, want ErrPlaintextRemote naming the remote seed", err)
	}
}

func TestStatusAfterCloseIsNotHealthy(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	rdb := newClient(t, srv, srv.Credential(), 3, entraredis.Options{})
	if !rdb.Status().Valid(time.Now()) {
		t.Fatal("a new client is not valid")
	}
	rdb.Close()
	if st := rdb.Status(); st.Valid(time.Now()) || !st.Closed || !st.NextRefresh.IsZero() {
		t.Fatalf("status after Close: %+v", st)
	}
}

func TestCallerContextEndingBeforeTheFirstToken(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	cred := srv.Credential()
	cred.SetDelay(3 * time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := entraredis.NewClient(ctx, cred, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig()}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if !errors.Is(err, entraredis.ErrNoValidToken) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "caller's context") {
		t.Fatalf("err = %v", err)
	}
}
