package rueidisentra_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/tokenspy"
	"github.com/entraredis/entraredis/rueidisentra"
)

// waitRotation waits until the client has installed one more token than at
// the call, at most 10 s.
func waitRotation(t *testing.T, c rueidis.Client) {
	t.Helper()
	r0 := status(t, c).Rotations
	for deadline := time.Now().Add(10 * time.Second); status(t, c).Rotations == r0; {
		if time.Now().After(deadline) {
			t.Fatal("no rotation within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClientSideCachingAcrossRotations: DoCache keeps serving from the cache
// across rotations, and invalidations still arrive after them (the AUTH
// keeps the connection's CLIENT TRACKING).
func TestClientSideCachingAcrossRotations(t *testing.T) {
	const life = 3 * time.Second
	forEachTopology(t, life, func(t *testing.T, tg target) {
		c := tg.c(t, rueidis.ClientOption{}, entratoken.Options{})
		ctx := t.Context()
		before := tg.stats()
		for round := range 3 {
			want := fmt.Sprintf("v%d", round)
			if err := c.Do(ctx, c.B().Set().Key("cached").Value(want).Build()).Error(); err != nil {
				t.Fatal(err)
			}
			// The SET invalidates the cached value: DoCache sees the new one
			// once the invalidation has arrived, then serves it from the cache.
			var hits int
			deadline := time.Now().Add(2 * time.Second)
			for hits < 20 {
				r := c.DoCache(ctx, c.B().Get().Key("cached").Cache(), time.Minute)
				got, err := r.ToString()
				if err != nil {
					t.Fatalf("round %d: DoCache: %v", round, err)
				}
				if got == want && r.IsCacheHit() {
					hits++
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: %d cache hits of %q in 2 s (last %q)", round, hits, want, got)
				}
			}
			waitRotation(t, c)
		}
		// The last rotation's token reaches the connection within the
		// hand-out window after it is installed: wait for that re-AUTH (at
		// most one token life) before counting.
		for deadline := time.Now().Add(life); tg.stats().ReAuths-before.ReAuths < 3 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		after := tg.stats()
		t.Logf("%s: 3 rounds, %d re-AUTHs, %d dials, %d closed for expiry", tg.name, after.ReAuths-before.ReAuths, after.Accepted-before.Accepted, after.ExpiryCloses-before.ExpiryCloses)
		if n := after.ReAuths - before.ReAuths; n < 3 {
			t.Fatalf("%d re-AUTHs in 3 rotations: the cache was not tested across rotations", n)
		}
		if n := after.ExpiryCloses - before.ExpiryCloses; n != 0 {
			t.Fatalf("%d connections closed for expiry", n)
		}
	})
}

// TestDedicatedMultiAcrossRotation: a MULTI built by hand on a Dedicated
// client, held across a rotation: rueidis stops the connection's AUTH timer
// while it is lent out, so no AUTH is queued inside the transaction, and the
// connection moves to the new token once given back.
func TestDedicatedMultiAcrossRotation(t *testing.T) {
	const life = 3 * time.Second
	forEachTopology(t, life, func(t *testing.T, tg target) {
		c := tg.c(t, rueidis.ClientOption{}, entratoken.Options{})
		ctx := t.Context()
		before := tg.stats()
		var exec []rueidis.RedisMessage
		incrs := 0
		err := c.Dedicated(func(d rueidis.DedicatedClient) error {
			// WATCH first: on a cluster it pins the Dedicated client to the key's slot.
			for _, cmd := range []rueidis.Completed{d.B().Watch().Key("{tx}").Build(), d.B().Multi().Build(), d.B().Set().Key("{tx}").Value("0").Build()} {
				if err := d.Do(ctx, cmd).Error(); err != nil {
					return err
				}
			}
			// Hold the transaction across a rotation and past every
			// connection's moment of the hand-out window. A command every
			// 200 ms keeps rueidis from sending its keep-alive PING, which it
			// would send (and the server would queue) after a second of
			// silence (Dialer.KeepAlive): a trap of its own, unrelated to AUTH.
			r0 := status(t, c).Rotations
			var end time.Time
			for ; end.IsZero() || time.Now().Before(end); incrs++ {
				if err := d.Do(ctx, d.B().Incr().Key("{tx}").Build()).Error(); err != nil {
					return err
				}
				if end.IsZero() && status(t, c).Rotations > r0 {
					end = time.Now().Add(600 * time.Millisecond)
				}
				if incrs > 100 {
					return errors.New("no rotation within 20 s")
				}
				time.Sleep(200 * time.Millisecond)
			}
			var err error
			exec, err = d.Do(ctx, d.B().Exec().Build()).ToArray()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(exec) != 1+incrs {
			var ss []string
			for _, m := range exec {
				s, err := m.ToString()
				if err != nil {
					n, _ := m.AsInt64()
					s = fmt.Sprint(n)
				}
				ss = append(ss, s)
			}
			t.Fatalf("EXEC returned %d replies, want %d (SET, INCRs): something was queued inside the transaction: %q", len(exec), 1+incrs, ss)
		}
		if s, _ := exec[0].ToString(); s != "OK" {
			t.Fatalf("EXEC[0] = %v", exec[0])
		}
		if n, _ := exec[incrs].AsInt64(); n != int64(incrs) {
			t.Fatalf("EXEC[%d] = %v, want %d", incrs, exec[incrs], incrs)
		}
		// Given back, the connection catches up: past the old token's expiry,
		// it still works and nothing was closed for expiry.
		time.Sleep(life / 2)
		for range 3 {
			if err := c.Dedicated(func(d rueidis.DedicatedClient) error { return d.Do(ctx, d.B().Ping().Build()).Error() }); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		after := tg.stats()
		t.Logf("%s: EXEC of %d replies; %d re-AUTHs, %d dials, %d closed for expiry", tg.name, len(exec), after.ReAuths-before.ReAuths, after.Accepted-before.Accepted, after.ExpiryCloses-before.ExpiryCloses)
		if n := after.ExpiryCloses - before.ExpiryCloses; n != 0 {
			t.Fatalf("%d connections closed for expiry", n)
		}
	})
}

// TestExplainedAuthErrors: a user name that is not the token's oid gets an
// explained WRONGPASS from NewClient; a reader's write gets an explained
// NOPERM; both still wrap rueidis' *RedisError.
func TestExplainedAuthErrors(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	entraredistest.RequireRedisServer(t)
	ctx := t.Context()
	_, err := rueidisentra.NewClient(ctx, srv.Credential(), rueidis.ClientOption{InitAddress: []string{srv.Addr()}, TLSConfig: srv.TLSConfig()},
		&rueidisentra.Options{Options: entratoken.Options{Username: "not-the-oid", Logger: quiet}})
	var ae *entratoken.AuthError
	var re *rueidis.RedisError
	if !errors.As(err, &ae) || !strings.HasPrefix(err.Error(), "WRONGPASS") || !errors.As(err, &re) || ae.Username != "not-the-oid" {
		t.Fatalf("NewClient with a wrong user name: %v, want an explained WRONGPASS", err)
	}
	t.Logf("wrong user: %v", err)

	reader := srv.NewCredential(entraredistest.CredentialOptions{Role: entraredistest.RoleReader})
	c := connect(t, reader, []string{srv.Addr()}, srv.TLSConfig(), rueidis.ClientOption{}, rueidisentra.Options{})
	if err := c.Do(ctx, c.B().Get().Key("k").Build()).Error(); err != nil && !rueidis.IsRedisNil(err) {
		t.Fatalf("reader GET: %v", err)
	}
	err = c.Do(ctx, c.B().Set().Key("k").Value("v").Build()).Error()
	if !errors.As(err, &ae) || !strings.HasPrefix(err.Error(), "NOPERM") || !errors.As(err, &re) || ae.Username != reader.ObjectID() {
		t.Fatalf("reader SET: %v, want an explained NOPERM", err)
	}
	errs := c.DoMulti(ctx, c.B().Set().Key("k").Value("v").Build(), c.B().Get().Key("k").Build())
	if err := errs[0].Error(); !errors.As(err, &ae) {
		t.Fatalf("reader SET in DoMulti: %v, want an explained NOPERM", err)
	}
	if err := c.Dedicated(func(d rueidis.DedicatedClient) error {
		return d.Do(ctx, d.B().Set().Key("k").Value("v").Build()).Error()
	}); !errors.As(err, &ae) {
		t.Fatalf("reader SET on a Dedicated client: %v, want an explained NOPERM", err)
	}
	t.Logf("reader write: %v", err)
}

// TestConnectionSettings: TLS is on by default with ServerName from the
// address, plaintext is refused for a remote host, and bad options are
// refused with an explanation, all before any network access.
func TestConnectionSettings(t *testing.T) {
	ctx := t.Context()
	cred := entraredistest.NewServer(t, entraredistest.Options{Backend: entraredistest.BackendInProcess}).Credential()
	for _, tc := range []struct {
		name string
		opt  rueidis.ClientOption
		o    entratoken.Options
		want string
	}{
		{"no address", rueidis.ClientOption{}, entratoken.Options{}, "InitAddress is empty"},
		{"password", rueidis.ClientOption{InitAddress: []string{"x.redis.cache.windows.net:6380"}, Password: "key"}, entratoken.Options{}, "leave Password"},
		{"sentinel", rueidis.ClientOption{InitAddress: []string{"x.redis.cache.windows.net:6380"}, Sentinel: rueidis.SentinelOption{MasterSet: "m"}}, entratoken.Options{}, "Sentinel"},
		{"plaintext remote", rueidis.ClientOption{InitAddress: []string{"x.redis.cache.windows.net:6380"}}, entratoken.Options{Plaintext: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := rueidisentra.NewClient(ctx, cred, tc.opt, &rueidisentra.Options{Options: tc.o})
			if err == nil {
				c.Close()
				t.Fatal("no error")
			}
			if tc.want == "" {
				if !errors.Is(err, rueidisentra.ErrPlaintextRemote) {
					t.Fatalf("err = %v, want ErrPlaintextRemote", err)
				}
				return
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "entraredis:") != 1 {
				t.Fatalf("err = %v, want one entraredis: prefix and %q", err, tc.want)
			}
		})
	}
}

// TestClusterCertificateAgainstHost: the cluster's topology names its nodes
// 127.0.0.1 while their certificate names only "localhost"; without
// rueidisentra's ServerName, plain rueidis fails to verify them.
func TestClusterCertificateAgainstHost(t *testing.T) {
	cl := entraredistest.NewCluster(t, entraredistest.ClusterOptions{})
	tc := cl.TLSConfig()
	tc.ServerName = ""
	tok, err := cl.Credential().GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{entratoken.DefaultScope}})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: cl.TopologyAddrs()[:1], TLSConfig: tc, Username: cl.Credential().ObjectID(), Password: tok.Token})
	if err == nil {
		plain.Close()
		t.Fatal("plain rueidis verified 127.0.0.1 against a certificate for localhost: the test proves nothing")
	}
	t.Logf("plain rueidis: %v", err)
	c := connect(t, cl.Credential(), cl.Addrs()[:1], tc, rueidis.ClientOption{}, rueidisentra.Options{})
	if c.Mode() != rueidis.ClientModeCluster {
		t.Fatalf("mode %v, want cluster", c.Mode())
	}
	ctx := t.Context()
	for i := range 50 { // keys over every node
		k := fmt.Sprintf("k%d", i)
		if err := c.Do(ctx, c.B().Set().Key(k).Value("v").Build()).Error(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	if n := len(c.Nodes()); n != 3 {
		t.Fatalf("%d nodes, want 3", n)
	}
}

// TestNoTokenInOutput: across rotations, no token appears in the client's
// %v, %+v, %#v, in Status, in the logs (Debug level), in errors, or in the
// commands a wrapping hook sees.
func TestNoTokenInOutput(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 2 * time.Second})
	entraredistest.RequireRedisServer(t) // rueidis needs RESP3 and CLIENT TRACKING, which the in-process fallback lacks
	cred := tokenspy.New(srv.Credential())
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := connect(t, cred, []string{srv.Addr()}, srv.TLSConfig(), rueidis.ClientOption{}, rueidisentra.Options{Options: entratoken.Options{Logger: logger}})
	ctx := t.Context()
	var out strings.Builder
	for range 2 {
		if err := c.Do(ctx, c.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		waitRotation(t, c)
		fmt.Fprintf(&out, "%v %+v %#v %s %v %+v\n", c, c, c, c, status(t, c), status(t, c))
	}
	srv.Credential().FailFor(3*time.Second, nil)
	time.Sleep(2500 * time.Millisecond)
	err := c.Do(ctx, c.B().Get().Key("k").Build()).Error()
	fmt.Fprintf(&out, "%v %+v\n", err, status(t, c))
	logMu.Lock()
	out.Write(logs.Bytes())
	logMu.Unlock()
	if len(cred.Tokens()) < 3 {
		t.Fatalf("%d tokens: the test proves nothing", len(cred.Tokens()))
	}
	for _, tok := range cred.Tokens() {
		if strings.Contains(out.String(), tok) || strings.Contains(out.String(), tok[len(tok)-20:]) {
			t.Fatalf("a token appears in the output (%d bytes; not printed, they hold the token)", out.Len())
		}
	}
	if !strings.Contains(out.String(), "rueidisentra.Client<") {
		t.Fatalf("the output does not describe the client: %s", out.String())
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
