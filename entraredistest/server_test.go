package entraredistest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestAuthAndCommands(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b})
		if srv.Backend() != b {
			t.Fatalf("Backend() = %q, want %q", srv.Backend(), b)
		}
		cred := srv.Credential()
		rc := dialRaw(t, srv)
		if got := rc.do("GET", "k"); got != noAuth {
			t.Fatalf("GET before AUTH = %q, want %q", got, noAuth)
		}
		if got := rc.do("AUTH", cred.ObjectID(), token(t, cred)); got != "+OK\r\n" {
			t.Fatalf("AUTH = %q", got)
		}
		if got := rc.do("SET", "k", "v"); got != "+OK\r\n" {
			t.Fatalf("SET = %q", got)
		}
		if got := rc.do("GET", "k"); got != bulk("v") {
			t.Fatalf("GET = %q", got)
		}
		// Azure answers ACL WHOAMI with the object ID.
		if got := rc.do("acl", "whoami"); got != bulk(cred.ObjectID()) {
			t.Fatalf("ACL WHOAMI = %q, want the oid %q", got, cred.ObjectID())
		}
		// Inline commands work too.
		rc.c.Write([]byte("PING\r\n"))
		if got := rc.reply(); got != "+PONG\r\n" {
			t.Fatalf("inline PING = %q", got)
		}
	})
}

func TestHello3Auth(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b})
		cred := srv.Credential()
		rc := dialRaw(t, srv)
		got := rc.do("HELLO", "3", "AUTH", cred.ObjectID(), token(t, cred), "SETNAME", "emu-test")
		if !strings.HasPrefix(got, "%") || !strings.Contains(got, "proto\r\n:3\r\n") {
			t.Fatalf("HELLO 3 AUTH = %q, want a RESP3 map with proto 3", got)
		}
		if got := rc.do("SET", "k", "v"); got != "+OK\r\n" {
			t.Fatalf("SET after HELLO 3 AUTH = %q", got)
		}
		// RESP3: a null is "_".
		if got := rc.do("GET", "missing"); got != "_\r\n" {
			t.Fatalf("GET missing after HELLO 3 = %q, want RESP3 null", got)
		}
		// Refused HELLO AUTH: the exact Redis text, the protocol is unchanged.
		rc2 := dialRaw(t, srv)
		other, _ := NewIssuer(IssuerOptions{})
		bad, _ := other.Mint(TokenSpec{ObjectID: cred.ObjectID()})
		if got := rc2.do("HELLO", "3", "AUTH", cred.ObjectID(), bad); got != wrongPass {
			t.Fatalf("HELLO 3 AUTH with a foreign token = %q, want %q", got, wrongPass)
		}
		if got := rc2.do("GET", "k"); got != noAuth {
			t.Fatalf("GET after refused HELLO = %q, want NOAUTH", got)
		}
		if st := srv.Stats(); st.Auths != 1 || st.RefusedAuths != 1 {
			t.Fatalf("Stats = %+v, want Auths 1, RefusedAuths 1", st)
		}
	})
}

func TestRefusedTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b})
		is := srv.Issuer()
		oid := srv.Credential().ObjectID()
		other, err := NewIssuer(IssuerOptions{TenantID: is.TenantID()})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		mint := func(is *Issuer, spec TokenSpec) string {
			s, err := is.Mint(spec)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		unknown := newUUID()
		cases := []struct {
			name       string
			user, pass string
		}{
			{"expired", oid, mint(is, TokenSpec{ObjectID: oid, IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Second)})},
			{"nbf in the future", oid, mint(is, TokenSpec{ObjectID: oid, NotBefore: now.Add(time.Minute)})},
			{"other issuer", oid, mint(other, TokenSpec{ObjectID: oid})},
			{"username is not the oid", newUUID(), mint(is, TokenSpec{ObjectID: oid})},
			{"unknown principal", unknown, mint(is, TokenSpec{ObjectID: unknown})},
			{"wrong audience", oid, mint(is, TokenSpec{ObjectID: oid, Audience: "https://storage.azure.com"})},
			{"no oid", oid, mint(is, TokenSpec{ObjectID: oid, Claims: map[string]any{"oid": nil}})},
			{"not a JWT", oid, "not-a-token"},
			{"tampered payload", oid, tamper(mint(is, TokenSpec{ObjectID: oid}))},
		}
		for _, c := range cases {
			rc := dialRaw(t, srv)
			if got := rc.do("AUTH", c.user, c.pass); got != wrongPass {
				t.Errorf("%s: AUTH = %q, want %q", c.name, got, wrongPass)
			}
			if got := rc.do("PING"); got != noAuth {
				t.Errorf("%s: PING after refused AUTH = %q, want NOAUTH", c.name, got)
			}
		}
		// One-argument AUTH (default user) is refused the same way.
		rc := dialRaw(t, srv)
		if got := rc.do("AUTH", mint(is, TokenSpec{ObjectID: oid})); got != wrongPass {
			t.Errorf("AUTH <token> = %q", got)
		}
		// The same kinds of token are accepted once valid (the cases fail for their reason).
		if got := rc.do("AUTH", oid, mint(is, TokenSpec{ObjectID: oid, Audience: DefaultAudience + "/"})); got != "+OK\r\n" {
			t.Errorf("AUTH with a valid token (aud with slash) = %q", got)
		}
		if got := rc.do("AUTH", oid, mint(is, TokenSpec{ObjectID: oid, Audience: legacyRedisAppID})); got != "+OK\r\n" {
			t.Errorf("AUTH with a valid token (aud = Redis app ID) = %q", got)
		}
		srv.Allow(unknown, RoleOwner)
		if got := rc.do("AUTH", unknown, mint(is, TokenSpec{ObjectID: unknown})); got != "+OK\r\n" {
			t.Errorf("AUTH after Allow = %q", got)
		}
		if st := srv.Stats(); st.RefusedAuths != int64(len(cases)+1) || st.Auths != 1 || st.ReAuths != 2 {
			t.Errorf("Stats = %+v, want RefusedAuths %d, Auths 1, ReAuths 2", st, len(cases)+1)
		}
	})
}

// tamper changes the payload of a JWT and keeps the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p := []byte(parts[1])
	if p[2] == 'A' {
		p[2] = 'B'
	} else {
		p[2] = 'A'
	}
	return parts[0] + "." + string(p) + "." + parts[2]
}

func TestPipelineOrderAroundAuth(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b})
		cred := srv.Credential()
		oid := cred.ObjectID()
		other, _ := NewIssuer(IssuerOptions{})
		bad, _ := other.Mint(TokenSpec{ObjectID: oid})

		rc := dialRaw(t, srv)
		// Not authenticated: NOAUTH, then the AUTH, then the command works.
		rc.send([]string{"GET", "k"}, []string{"AUTH", oid, token(t, cred)}, []string{"GET", "k"})
		for i, want := range []string{noAuth, "+OK\r\n", "$-1\r\n"} {
			if got := rc.reply(); got != want {
				t.Fatalf("unauthenticated pipeline reply %d = %q, want %q", i, got, want)
			}
		}
		// Authenticated: a refused AUTH in the middle answers WRONGPASS in
		// its place and keeps the identity.
		rc.send([]string{"SET", "k", "v1"}, []string{"AUTH", oid, bad}, []string{"GET", "k"},
			[]string{"AUTH", oid, token(t, cred)}, []string{"APPEND", "k", "2"}, []string{"GET", "k"})
		for i, want := range []string{"+OK\r\n", wrongPass, bulk("v1"), "+OK\r\n", ":3\r\n", bulk("v12")} {
			if got := rc.reply(); got != want {
				t.Fatalf("authenticated pipeline reply %d = %q, want %q", i, got, want)
			}
		}
		if st := srv.Stats(); st.Auths != 1 || st.ReAuths != 1 || st.RefusedAuths != 1 || st.Commands != 9 {
			t.Fatalf("Stats = %+v, want Auths 1 ReAuths 1 RefusedAuths 1 Commands 9", st)
		}
	})
}

func TestExpiryClosesConnection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b, TokenLifetime: time.Second})
		cred := srv.Credential()
		start := time.Now()
		rc := dialRaw(t, srv)
		if got := rc.do("AUTH", cred.ObjectID(), token(t, cred)); got != "+OK\r\n" {
			t.Fatalf("AUTH = %q", got)
		}
		if got := rc.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING = %q", got)
		}
		took, err := rc.waitClosed(start, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if took < 900*time.Millisecond || took > 2*time.Second {
			t.Fatalf("closed %v after the token was minted, want about 1s", took)
		}
		waitFor(t, time.Second, "ExpiryCloses 1, Open 0", func() bool {
			st := srv.Stats()
			return st.ExpiryCloses == 1 && st.Open == 0
		})
	})
}

func TestReAuthMovesDeadline(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b, TokenLifetime: time.Second})
		cred := srv.Credential()
		start := time.Now()
		rc := dialRaw(t, srv)
		if got := rc.do("AUTH", cred.ObjectID(), token(t, cred)); got != "+OK\r\n" {
			t.Fatalf("AUTH = %q", got)
		}
		time.Sleep(500 * time.Millisecond)
		cred.SetLifetime(2 * time.Second) // the new token expires at about start+2.5s
		if got := rc.do("AUTH", cred.ObjectID(), token(t, cred)); got != "+OK\r\n" {
			t.Fatalf("re-AUTH = %q", got)
		}
		time.Sleep(time.Until(start.Add(1500 * time.Millisecond)))
		if got := rc.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING after the first token's expiry = %q, want PONG (re-AUTH moved the deadline)", got)
		}
		took, err := rc.waitClosed(start, 4*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if took < 2400*time.Millisecond || took > 3500*time.Millisecond {
			t.Fatalf("closed at %v, want about 2.5s (the second token's expiry)", took)
		}
		if st := srv.Stats(); st.Auths != 1 || st.ReAuths != 1 || st.ExpiryCloses != 1 {
			t.Fatalf("Stats = %+v", st)
		}
	})
}

func TestRefusedReAuthKeepsIdentityAndDeadline(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b, TokenLifetime: time.Second})
		cred := srv.Credential()
		start := time.Now()
		rc := dialRaw(t, srv)
		if got := rc.do("AUTH", cred.ObjectID(), token(t, cred)); got != "+OK\r\n" {
			t.Fatalf("AUTH = %q", got)
		}
		// A valid token of another principal, sent with the wrong username.
		long := srv.NewCredential(CredentialOptions{Lifetime: time.Hour})
		if got := rc.do("AUTH", cred.ObjectID(), token(t, long)); got != wrongPass {
			t.Fatalf("re-AUTH with username != oid = %q", got)
		}
		if got := rc.do("ACL", "WHOAMI"); got != bulk(cred.ObjectID()) {
			t.Fatalf("ACL WHOAMI after refused re-AUTH = %q, want the first identity", got)
		}
		took, err := rc.waitClosed(start, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if took > 2500*time.Millisecond {
			t.Fatalf("closed at %v, want about 1s: a refused re-AUTH must not move the deadline", took)
		}
	})
}

func TestGrace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b, TokenLifetime: time.Second, Grace: 600 * time.Millisecond})
		cred := srv.Credential()
		start := time.Now()
		rc := dialRaw(t, srv)
		rc.do("AUTH", cred.ObjectID(), token(t, cred))
		took, err := rc.waitClosed(start, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if took < 1500*time.Millisecond || took > 2500*time.Millisecond {
			t.Fatalf("closed at %v, want about 1.6s (exp + Grace)", took)
		}
	})
}

func TestSubscribedAndBlockedConnectionsClosedAtExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b, TokenLifetime: time.Second})
		cred := srv.Credential()
		start := time.Now()
		sub := dialRaw(t, srv)
		sub.do("AUTH", cred.ObjectID(), token(t, cred))
		if got := sub.do("SUBSCRIBE", "ch"); !strings.Contains(got, "subscribe") {
			t.Fatalf("SUBSCRIBE = %q", got)
		}
		blk := dialRaw(t, srv)
		blk.do("AUTH", cred.ObjectID(), token(t, cred))
		blk.send([]string{"BLPOP", "list", "0"})
		// go-redis pub/sub too: its channel closes... it reconnects, so just
		// check the raw connections here and the count.
		for name, rc := range map[string]*rawConn{"subscribed": sub, "BLPOP-blocked": blk} {
			took, err := rc.waitClosed(start, 3*time.Second)
			if err != nil {
				t.Fatalf("%s connection: %v", name, err)
			}
			if took > 2500*time.Millisecond {
				t.Fatalf("%s connection closed at %v, want about 1s", name, took)
			}
		}
		waitFor(t, time.Second, "ExpiryCloses 2", func() bool { return srv.Stats().ExpiryCloses == 2 })
	})
}

func TestRoles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b})
		requireACL(t, srv)
		login := func(r Role) *rawConn {
			c := srv.NewCredential(CredentialOptions{Role: r})
			rc := dialRaw(t, srv)
			if got := rc.do("AUTH", c.ObjectID(), token(t, c)); got != "+OK\r\n" {
				t.Fatalf("%s AUTH = %q", r, got)
			}
			return rc
		}
		owner, contrib, reader := login(RoleOwner), login(RoleContributor), login(RoleReader)
		if got := owner.do("CONFIG", "GET", "maxmemory"); !strings.HasPrefix(got, "*2\r\n") {
			t.Errorf("owner CONFIG GET = %q", got)
		}
		if got := contrib.do("SET", "k", "v"); got != "+OK\r\n" {
			t.Errorf("contributor SET = %q", got)
		}
		if got := contrib.do("CONFIG", "GET", "maxmemory"); !strings.HasPrefix(got, "-NOPERM") {
			t.Errorf("contributor CONFIG GET = %q, want NOPERM", got)
		}
		if got := contrib.do("FLUSHALL"); !strings.HasPrefix(got, "-NOPERM") {
			t.Errorf("contributor FLUSHALL = %q, want NOPERM", got)
		}
		if got := reader.do("GET", "k"); got != bulk("v") {
			t.Errorf("reader GET = %q", got)
		}
		if got := reader.do("SET", "k", "w"); !strings.HasPrefix(got, "-NOPERM") {
			t.Errorf("reader SET = %q, want NOPERM", got)
		}
		if got := reader.do("ACL", "WHOAMI"); !strings.HasPrefix(got, "$36\r\n") {
			t.Errorf("reader ACL WHOAMI = %q, want its oid", got)
		}
	})
}

func TestGoRedisClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b})
		cred := srv.Credential()
		ctx := context.Background()
		for _, proto := range []int{2, 3} {
			rdb := redis.NewClient(&redis.Options{
				Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: proto,
				CredentialsProviderContext: func(ctx context.Context) (string, string, error) {
					return cred.ObjectID(), token(t, cred), nil
				},
			})
			if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatalf("RESP%d SET: %v", proto, err)
			}
			if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "v" {
				t.Fatalf("RESP%d GET = %q, %v", proto, v, err)
			}
			rdb.Close()
		}
		// A static wrong password: go-redis sees the WRONGPASS error.
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Username: cred.ObjectID(), Password: "nope", MaxRetries: -1})
		defer rdb.Close()
		err := rdb.Ping(ctx).Err()
		if err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
			t.Fatalf("PING with a bad password: %v, want WRONGPASS", err)
		}
	})
}

func TestTLSCertificateNamesOnlyLocalhost(t *testing.T) {
	srv := NewServer(t, Options{})
	cfg := srv.TLSConfig()
	if cfg == nil || cfg.ServerName != "localhost" || cfg.RootCAs == nil || cfg.InsecureSkipVerify || cfg.MinVersion < tls.VersionTLS12 {
		t.Fatalf("TLSConfig = %+v", cfg)
	}
	if srv.TLSConfig() == cfg {
		t.Fatal("TLSConfig returns the same config twice, want a new clone each call")
	}
	if !strings.HasPrefix(srv.Addr(), "localhost:") {
		t.Fatalf("Addr = %q", srv.Addr())
	}
	// Verifying against the IP fails: the certificate has no IP SANs.
	ipCfg := srv.TLSConfig()
	ipCfg.ServerName = "127.0.0.1"
	c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port())), ipCfg)
	if err == nil {
		c.Close()
		t.Fatal("TLS handshake verified against 127.0.0.1, want a hostname error")
	}
	var he x509.HostnameError
	if !errors.As(err, &he) {
		t.Fatalf("TLS to 127.0.0.1: %v, want an x509.HostnameError", err)
	}
	// Without the CA, verification fails.
	c, err = tls.Dial("tcp", srv.Addr(), &tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12})
	if err == nil {
		c.Close()
		t.Fatal("TLS handshake succeeded without trusting the throwaway CA")
	}
	// Plaintext option.
	plain := NewServer(t, Options{Plaintext: true})
	if plain.TLSConfig() != nil {
		t.Fatal("TLSConfig of a plaintext server is not nil")
	}
	rc := dialRaw(t, plain)
	if got := rc.do("PING"); got != noAuth {
		t.Fatalf("plaintext PING = %q", got)
	}
}

func TestDropConnections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b})
		cred := srv.Credential()
		a, c := dialRaw(t, srv), dialRaw(t, srv)
		a.do("AUTH", cred.ObjectID(), token(t, cred))
		c.do("PING")
		waitFor(t, time.Second, "2 open", func() bool { return srv.Stats().Open == 2 })
		if n := srv.DropConnections(); n != 2 {
			t.Fatalf("DropConnections = %d, want 2", n)
		}
		for _, rc := range []*rawConn{a, c} {
			if _, err := rc.waitClosed(time.Now(), time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if st := srv.Stats(); st.Open != 0 || st.ExpiryCloses != 0 || st.Accepted != 2 {
			t.Fatalf("Stats = %+v", st)
		}
		// New connections work.
		if got := dialRaw(t, srv).do("AUTH", cred.ObjectID(), token(t, cred)); got != "+OK\r\n" {
			t.Fatalf("AUTH after drop = %q", got)
		}
	})
}

func TestRefuseConnections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b, Plaintext: true})
		old := dialRaw(t, srv)
		old.do("PING")
		srv.RefuseConnections(400 * time.Millisecond)
		start := time.Now()
		c, err := net.Dial("tcp", srv.Addr())
		if err == nil {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			c.Write([]byte("PING\r\n"))
			buf := make([]byte, 64)
			n, rerr := c.Read(buf)
			c.Close()
			if rerr == nil {
				t.Fatalf("a new connection during RefuseConnections answered %q", buf[:n])
			}
		}
		if got := old.do("PING"); got != noAuth {
			t.Fatalf("existing connection during RefuseConnections: %q, want it kept", got)
		}
		time.Sleep(time.Until(start.Add(500 * time.Millisecond)))
		if got := dialRaw(t, srv).do("PING"); got != noAuth {
			t.Fatalf("PING after the refusal period = %q", got)
		}
		if st := srv.Stats(); st.Refused != 1 || st.Accepted != 2 {
			t.Fatalf("Stats = %+v, want Refused 1, Accepted 2", st)
		}
	})
}

func TestRestartBackend(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b})
		cred := srv.Credential()
		rc := dialRaw(t, srv)
		rc.do("AUTH", cred.ObjectID(), token(t, cred))
		rc.do("SET", "k", "v")
		addr := srv.BackendAddr()
		if err := srv.RestartBackend(); err != nil {
			t.Fatal(err)
		}
		if b == BackendRedisServer && srv.BackendAddr() != addr {
			t.Fatalf("backend moved from %s to %s", addr, srv.BackendAddr())
		}
		if _, err := rc.waitClosed(time.Now(), time.Second); err != nil {
			t.Fatalf("connection across a backend restart: %v", err)
		}
		rc2 := dialRaw(t, srv)
		if got := rc2.do("AUTH", cred.ObjectID(), token(t, cred)); got != "+OK\r\n" {
			t.Fatalf("AUTH after restart = %q", got)
		}
		got := rc2.do("GET", "k")
		if b == BackendRedisServer && got != "$-1\r\n" {
			t.Fatalf("GET after restart = %q, want nil (redis-server has no persistence)", got)
		}
	})
}

func TestCloseRemovesProcessAndFiles(t *testing.T) {
	RequireRedisServer(t)
	srv, err := Start(Options{Backend: BackendRedisServer})
	if err != nil {
		t.Fatal(err)
	}
	rb := srv.be.(*redisServerBackend)
	p := rb.p
	pid, dir, sockDir := p.Pid(), p.Dir(), rb.sockDir
	if pid <= 0 {
		t.Fatalf("pid = %d", pid)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("backend dir: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, d := range []string{dir, sockDir} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("backend dir %s still there after Close (%v)", d, err)
		}
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !os.IsNotExist(err) {
		t.Fatalf("redis-server pid %d still exists after Close", pid)
	}
	if _, err := net.DialTimeout("tcp", srv.BackendAddr(), time.Second); err == nil {
		t.Fatal("backend still accepts connections after Close")
	}
	if _, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port())), time.Second); err == nil {
		t.Fatal("endpoint still accepts connections after Close")
	}
}

// A RESP2 connection in subscribe mode cannot re-authenticate (Redis
// refuses AUTH there), so it is closed at its first token's expiry; a RESP3
// one can, and stays open.
func TestReAuthInSubscribeMode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b, TokenLifetime: time.Second})
		cred := srv.Credential()
		start := time.Now()
		r2 := dialRaw(t, srv)
		r2.do("AUTH", cred.ObjectID(), token(t, cred))
		r2.do("SUBSCRIBE", "ch")
		r3 := dialRaw(t, srv)
		r3.do("HELLO", "3", "AUTH", cred.ObjectID(), token(t, cred))
		r3.do("SUBSCRIBE", "ch")
		cred.SetLifetime(time.Hour)
		if got := r2.do("AUTH", cred.ObjectID(), token(t, cred)); !strings.HasPrefix(got, "-ERR") || !strings.Contains(strings.ToLower(got), "auth") {
			t.Fatalf("AUTH in RESP2 subscribe mode = %q, want Redis' error", got)
		}
		if b == BackendInProcess {
			// miniredis refuses AUTH on subscribed RESP3 connections too (see Limitations).
			r3.c.Close()
		} else if got := r3.do("AUTH", cred.ObjectID(), token(t, cred)); got != "+OK\r\n" {
			t.Fatalf("AUTH in RESP3 subscribe mode = %q, want +OK", got)
		}
		took, err := r2.waitClosed(start, 3*time.Second)
		if err != nil || took > 2500*time.Millisecond {
			t.Fatalf("RESP2 subscribed connection: closed at %v (%v), want at about 1s", took, err)
		}
		if b == BackendInProcess {
			return
		}
		if got := r3.do("PING"); !strings.Contains(got, "pong") && !strings.Contains(got, "PONG") {
			t.Fatalf("RESP3 subscribed connection after the first expiry: PING = %q", got)
		}
		if st := srv.Stats(); st.ReAuths != 1 || st.ExpiryCloses != 1 {
			t.Fatalf("Stats = %+v, want ReAuths 1, ExpiryCloses 1", st)
		}
	})
}

// Redis queues AUTH inside MULTI: the new identity and deadline apply at
// EXEC, not at all after DISCARD.
func TestAuthInsideMulti(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b})
		first := srv.Credential()
		second := srv.NewCredential(CredentialOptions{})
		rc := dialRaw(t, srv)
		rc.do("AUTH", first.ObjectID(), token(t, first))
		rc.send([]string{"MULTI"}, []string{"AUTH", second.ObjectID(), token(t, second)}, []string{"DISCARD"}, []string{"ACL", "WHOAMI"})
		for i, want := range []string{"+OK\r\n", "+QUEUED\r\n", "+OK\r\n", bulk(first.ObjectID())} {
			if got := rc.reply(); got != want {
				t.Fatalf("DISCARD pipeline reply %d = %q, want %q", i, got, want)
			}
		}
		rc.send([]string{"MULTI"}, []string{"AUTH", second.ObjectID(), token(t, second)}, []string{"EXEC"}, []string{"ACL", "WHOAMI"})
		for i, want := range []string{"+OK\r\n", "+QUEUED\r\n", "*1\r\n+OK\r\n", bulk(second.ObjectID())} {
			if got := rc.reply(); got != want {
				t.Fatalf("EXEC pipeline reply %d = %q, want %q", i, got, want)
			}
		}
		if st := srv.Stats(); st.Auths != 1 || st.ReAuths != 1 {
			t.Fatalf("Stats = %+v, want Auths 1, ReAuths 1", st)
		}
	})
}
