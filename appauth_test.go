package entraredis_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// plainClient is plain go-redis through the same Entra-enforcing endpoint,
// authenticated with a token of cred (valid for the server's token
// lifetime): the reference the library's replies are compared with.
func plainClient(t testing.TB, srv *entraredistest.Server, cred *entraredistest.Credential, protocol int, o *redis.Options) *redis.Client {
	t.Helper()
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{entratoken.DefaultScope}})
	if err != nil {
		t.Fatal(err)
	}
	var opt redis.Options
	if o != nil {
		opt = *o
	}
	opt.Addr, opt.TLSConfig, opt.Protocol = srv.Addr(), srv.TLSConfig(), protocol
	opt.Username, opt.Password = cred.ObjectID(), tok.Token
	rdb := redis.NewClient(&opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// TestAppRefusedHelloAuthLeavesDialGate (issue 25.1): the application's own
// HELLO 3 AUTH as another identity, refused with WRONGPASS, comes back as
// plain go-redis gives it (not explained), and is not taken for a refusal of
// the library's token: a PING on a new connection right after it answers
// PONG, and Status counts no refusal.
func TestAppRefusedHelloAuthLeavesDialGate(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol int) {
		srv := entraredistest.NewServer(t, entraredistest.Options{})
		var failed atomic.Int64
		rdb := newClient(t, srv, srv.Credential(), protocol, entraredis.Options{
			Options: entratoken.Options{
				OnReauthFailed: func(entraredis.ReauthFailed) { failed.Add(1) },
			},
		})
		plain := plainClient(t, srv, srv.Credential(), protocol, nil)
		ctx := t.Context()

		c1 := rdb.Conn() // holds the pool's only connection: the next Conn dials
		defer c1.Close()
		err := c1.Do(ctx, "HELLO", 3, "AUTH", "someone-else", "wrong").Err()
		perr := plain.Do(ctx, "HELLO", 3, "AUTH", "someone-else", "wrong").Err()
		before := srv.Stats().Accepted
		c2 := rdb.Conn()
		defer c2.Close()
		if got, err := c2.Ping(ctx).Result(); err != nil || got != "PONG" {
			t.Fatalf("PING on a new connection after the application's refused HELLO AUTH: %q, %v", got, err)
		}
		if srv.Stats().Accepted == before {
			t.Fatal("the PING did not run on a new connection: the test proves nothing")
		}
		var ae *entraredis.AuthError
		if !redis.HasErrorPrefix(err, "WRONGPASS") || errors.As(err, &ae) {
			t.Fatalf("the application's HELLO AUTH: %v, want go-redis' plain WRONGPASS", err)
		}
		if perr == nil || err.Error() != perr.Error() {
			t.Fatalf("the application's HELLO AUTH: %q, plain go-redis: %q", err, perr)
		}
		st := rdb.Status()
		if st.Dial != entratoken.DialOpen || st.DialRefusals != 0 || st.ReauthFailures != 0 || failed.Load() != 0 {
			t.Fatalf("status after the application's refused HELLO AUTH: dial %v, %d dial refusals, %d re-AUTH failures, %d OnReauthFailed",
				st.Dial, st.DialRefusals, st.ReauthFailures, failed.Load())
		}
	})
}

// TestAppErrorRepliesAsPlain (issue 25.2): error replies that do not answer
// one of the library's AUTHs reach the application exactly as plain go-redis
// gives them, side by side: the application's own AUTH refused, a script
// returning WRONGPASS or NOPERM text; nothing is counted or reported.
func TestAppErrorRepliesAsPlain(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	var failed atomic.Int64
	rdb := newClient(t, srv, srv.Credential(), 3, entraredis.Options{
		Options: entratoken.Options{
			OnReauthFailed: func(entraredis.ReauthFailed) { failed.Add(1) },
		},
	})
	plain := plainClient(t, srv, srv.Credential(), 3, nil)
	ctx := t.Context()
	for _, args := range [][]any{
		{"EVAL", `return redis.error_reply("WRONGPASS not the library's")`, 0},
		{"EVAL", `return redis.error_reply("NOPERM not the library's either")`, 0},
		{"AUTH", "test", "wrong"},
		{"AUTH", "wrong"},
	} {
		err := rdb.Do(ctx, args...).Err()
		perr := plain.Do(ctx, args...).Err()
		if err == nil || perr == nil || err.Error() != perr.Error() {
			t.Fatalf("%v: %q, plain go-redis: %q", args[0], err, perr)
		}
		var ae *entraredis.AuthError
		if errors.As(err, &ae) {
			t.Fatalf("%v: explained as the library's: %v", args[0], err)
		}
		// The same in a pipeline.
		cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error { p.Do(ctx, args...); return nil })
		if err == nil || err.Error() != perr.Error() || cmds[0].Err().Error() != perr.Error() {
			t.Fatalf("%v in a pipeline: %q / %q, plain go-redis: %q", args[0], err, cmds[0].Err(), perr)
		}
	}
	if st := rdb.Status(); st.Dial != entratoken.DialOpen || st.DialRefusals != 0 || st.ReauthFailures != 0 || failed.Load() != 0 {
		t.Fatalf("status: dial %v, %d dial refusals, %d re-AUTH failures, %d OnReauthFailed", st.Dial, st.DialRefusals, st.ReauthFailures, failed.Load())
	}
	// The library's own refusal keeps its explanation (TestWrongPassIsExplained).
}

// TestNoPermAfterAppAuth (issue 25.1): NOPERM is explained only while every
// connection of the client runs on the library's token. Once the
// application authenticates a connection as another identity (here a
// reader's), a NOPERM reply comes back as plain go-redis gives it.
func TestNoPermAfterAppAuth(t *testing.T) {
	entraredistest.RequireRedisServer(t)
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	reader := srv.NewCredential(entraredistest.CredentialOptions{Role: entraredistest.RoleReader})
	rdb := newClient(t, srv, reader, 3, entraredis.Options{})
	plain := plainClient(t, srv, reader, 3, nil)
	ctx := t.Context()
	var ae *entraredis.AuthError
	if err := rdb.Set(ctx, "k", "v", 0).Err(); !errors.As(err, &ae) {
		t.Fatalf("a reader's SET on the library's token: %v, want the explained NOPERM", err)
	}
	tok, err := reader.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{entratoken.DefaultScope}})
	if err != nil {
		t.Fatal(err)
	}
	c := rdb.Conn()
	if err := c.Do(ctx, "AUTH", reader.ObjectID(), tok.Token).Err(); err != nil {
		t.Fatal(err)
	}
	err = c.Set(ctx, "k", "v", 0).Err()
	perr := plain.Set(ctx, "k", "v", 0).Err()
	if !redis.HasErrorPrefix(err, "NOPERM") || perr == nil || err.Error() != perr.Error() {
		t.Fatalf("SET after the application's own AUTH: %q, plain go-redis: %q", err, perr)
	}
	c.Close() // back to the pool: it keeps the application's authentication
}

// TestClientSideCacheRefused (issue 25.3): go-redis' client-side cache
// cannot see invalidations between commands through the connection wrapper,
// so NewClient refuses it with a clear error, before any token is fetched,
// instead of serving stale values silently.
func TestClientSideCacheRefused(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	cred := srv.Credential()
	before := cred.Requests()
	for _, o := range []*redis.Options{
		{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: 3, ClientSideCacheConfig: &redis.ClientSideCacheConfig{}},
		{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: 3, ClientSideCache: redis.NewLocalCache(redis.ClientSideCacheConfig{})},
	} {
		rdb, err := entraredis.NewClient(t.Context(), cred, o, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
		if err == nil {
			rdb.Close()
			t.Fatal("NewClient accepted go-redis' client-side cache")
		}
		if !strings.HasPrefix(err.Error(), "entraredis: ") || !strings.Contains(err.Error(), "client-side cache") || !strings.Contains(err.Error(), "leave both options nil") {
			t.Fatalf("error %q does not say what is refused and what to do", err)
		}
	}
	if cred.Requests() != before {
		t.Fatal("a token was fetched for a client that was refused")
	}
}

// TestClientReplyOnKeepsMoving (issue 25.4): a Conn of the library's client
// that sends CLIENT REPLY ON (as go-redis' own test suite does) keeps moving
// to each new token: with 2-second tokens, commands on it for 6 seconds
// (three token lifetimes) all succeed, like plain go-redis', and it is
// never counted unmovable. Before, CLIENT REPLY retired the connection and
// the server closed it when its token expired.
func TestClientReplyOnKeepsMoving(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 2 * time.Second})
	rdb := newClient(t, srv, srv.Credential(), 3, entraredis.Options{})
	plain := plainClient(t, srv, srv.NewCredential(entraredistest.CredentialOptions{Lifetime: time.Hour}), 3, nil)
	ctx := t.Context()
	c := rdb.Conn()
	defer c.Close()
	pc := plain.Conn()
	defer pc.Close()
	for _, conn := range []*redis.Conn{c, pc} {
		if err := conn.Do(ctx, "CLIENT", "REPLY", "ON").Err(); err != nil {
			t.Fatal(err)
		}
	}
	rotations := rdb.Status().Rotations
	until := time.Now().Add(6 * time.Second)
	for i := 0; i < 10_000 && time.Now().Before(until); i++ {
		got, err := c.Incr(ctx, "reply-on").Result()
		want, perr := pc.Incr(ctx, "reply-on-plain").Result()
		if err != nil || perr != nil || got != want {
			t.Fatalf("INCR %d: %d, %v; plain go-redis: %d, %v", i, got, err, want, perr)
		}
		if st := rdb.Status(); st.Conns.Unmovable != 0 {
			t.Fatalf("INCR %d: %d connections unmovable", i, st.Conns.Unmovable)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := rdb.Status().Rotations - rotations; n < 2 {
		t.Fatalf("%d rotations in 6 s: the test proves nothing", n)
	}
}
