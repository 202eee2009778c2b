package entraredistest

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/entraredistest/internal/emulator"
	"github.com/entraredis/entraredis/entraredistest/internal/testcerts"
)

// EnvRequireRedisServer names the environment variable that, set to "1",
// forbids the in-process fallback: NewServer and RequireRedisServer fail
// instead of falling back or skipping when redis-server is absent (CI sets it).
const EnvRequireRedisServer = "ENTRAREDIS_REQUIRE_REDIS_SERVER"

// EnvRedisServer names the environment variable holding the path of
// redis-server, consulted when Options.RedisServer is empty, before PATH.
const EnvRedisServer = "ENTRAREDIS_REDIS_SERVER"

// Backend is the kind of Redis behind a Server.
type Backend string

const (
	// BackendAuto uses redis-server when it is found, else the in-process
	// fallback (unless EnvRequireRedisServer=1, then it is an error).
	BackendAuto Backend = ""
	// BackendRedisServer is a real redis-server process (7 or newer) with ACL
	// users per role.
	BackendRedisServer Backend = "redis-server"
	// BackendInProcess is miniredis, in the test process: no ACL (so no
	// NOPERM), no cluster; see Server.Limitations.
	BackendInProcess Backend = "in-process"
)

// Options configures NewServer and Start. The zero value is a TLS endpoint
// in front of redis-server (or the fallback) with 1-hour tokens.
type Options struct {
	// Issuer signs and verifies tokens. Default: a new Issuer.
	Issuer *Issuer
	// TokenLifetime of Server.Credential()'s tokens. Default 1h.
	TokenLifetime time.Duration
	// CacheWindow of Server.Credential() (see CredentialOptions). Default 0.
	CacheWindow time.Duration
	// Grace: a connection is closed at exp+Grace of the token it last
	// authenticated with. Default 0 (Azure documents none).
	Grace time.Duration
	// Backend to use. Default BackendAuto.
	Backend Backend
	// RedisServer is the path of redis-server. Default $ENTRAREDIS_REDIS_SERVER,
	// then redis-server in PATH. An explicit path that is not an executable
	// is an error (no fallback).
	RedisServer string
	// Plaintext serves without TLS. Default false: TLS with a throwaway CA
	// and a certificate naming only "localhost".
	Plaintext bool
	// Logf receives diagnostics (never tokens). Default: none for Start,
	// tb.Logf for NewServer.
	Logf func(format string, args ...any)
}

// Server is an emulated Azure Redis endpoint with Microsoft Entra
// authentication: a proxy checking tokens, in front of a backend Redis.
// Its methods are safe for concurrent use.
type Server struct {
	opts Options
	principals
	certs *testcerts.Bundle
	ep    *emulator.Endpoint
	be    backendImpl
	users map[string]emulator.BackendUser

	closeOnce sync.Once
	closeErr  error
}

// backendImpl is a running backend Redis.
type backendImpl interface {
	addr() string                   // TCP address
	endpointAddr() (string, string) // network and address the endpoint dials
	restart() error
	close() error
	kind() Backend
	limitations() []string
}

// roleUsers returns the backend ACL users of the roles, with fresh passwords.
func roleUsers() map[string]emulator.BackendUser {
	return map[string]emulator.BackendUser{
		string(RoleOwner):       {Name: "entra-owner", Password: newUUID()},
		string(RoleContributor): {Name: "entra-contributor", Password: newUUID()},
		string(RoleReader):      {Name: "entra-reader", Password: newUUID()},
	}
}

// roleRules are the ACL rules of each role's backend user.
var roleRules = map[Role][]string{
	RoleOwner:       {"~*", "&*", "+@all"},
	RoleContributor: {"~*", "&*", "+@all", "-@admin", "-@dangerous"},
	RoleReader: {"~*", "&*", "-@all", "+@read", "+@connection",
		"+cluster|slots", "+cluster|shards", "+cluster|nodes", "+cluster|info", "+cluster|myid"},
}

// directory maps known principals (object IDs) to their roles.
type directory struct {
	mu    sync.RWMutex
	roles map[string]Role
}

func newDirectory() *directory { return &directory{roles: make(map[string]Role)} }

func (d *directory) set(oid string, r Role) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.roles[oid] = r
}

func (d *directory) get(oid string) (Role, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	r, ok := d.roles[oid]
	return r, ok
}

// errUnknownPrincipal: the token is valid but its principal has no access policy.
var errUnknownPrincipal = errors.New("principal has no access policy on this server")

// authenticator returns the token check of an endpoint: a valid token of
// issuer, username equal to its oid, a principal known to dir.
func authenticator(issuer *Issuer, dir *directory) func(user, token string) (emulator.Identity, error) {
	return func(user, token string) (emulator.Identity, error) {
		c, err := issuer.Verify(token, time.Now())
		if err != nil {
			return emulator.Identity{}, err
		}
		if user != c.ObjectID {
			return emulator.Identity{}, fmt.Errorf("%w: username %q is not the token's oid %q", ErrInvalidToken, user, c.ObjectID)
		}
		role, ok := dir.get(c.ObjectID)
		if !ok {
			return emulator.Identity{}, fmt.Errorf("%w: %s", errUnknownPrincipal, c.ObjectID)
		}
		return emulator.Identity{ObjectID: c.ObjectID, Role: string(role), Expires: c.ExpiresAt}, nil
	}
}

// NewServer starts a Server for a test and closes it with tb.Cleanup. On the
// in-process fallback it logs (tb.Logf) what is not emulated. It fails the
// test when the server cannot start, or when redis-server is absent and
// EnvRequireRedisServer=1; it skips the test, saying why, when the backend
// it needs is neither redis-server nor a registered in-process Redis (see
// InProcessRedis).
func NewServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Logf == nil {
		opts.Logf = tb.Logf
	}
	s, err := Start(opts)
	if errors.Is(err, errNoInProcess) {
		tb.Skipf("entraredistest: skipped, this test needs redis-server or the in-process fallback: %v", err)
	}
	if err != nil {
		tb.Fatalf("entraredistest: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("entraredistest: close: %v", err)
		}
	})
	if lim := s.Limitations(); len(lim) > 0 {
		why := "Options.Backend is BackendInProcess"
		if opts.Backend == BackendAuto {
			why = fmt.Sprintf("redis-server not found; set %s=1 to fail instead", EnvRequireRedisServer)
		}
		tb.Logf("entraredistest: using the in-process backend (miniredis) because %s; not emulated: %s", why, strings.Join(lim, "; "))
	}
	return s
}

// Start starts a Server without a testing.TB (demos, benchmarks). The
// caller must Close it.
func Start(opts Options) (*Server, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	pr, err := newPrincipals(opts.Issuer, opts.TokenLifetime, opts.CacheWindow)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, principals: pr, users: roleUsers()}

	be, err := startBackend(opts, s.users)
	if err != nil {
		return nil, err
	}
	s.be = be

	network, baddr := be.endpointAddr()
	cfg := emulator.EndpointConfig{
		Addr:           "127.0.0.1:0",
		Authenticate:   authenticator(s.issuer, s.dir),
		BackendAddr:    baddr,
		BackendNetwork: network,
		Users:          s.users,
		Grace:          opts.Grace,
		FixWrongPass:   be.kind() == BackendInProcess,

		NoAuthWhileSubscribed: be.kind() == BackendInProcess,
		Logf:                  opts.Logf,
	}
	if !opts.Plaintext {
		certs, err := testcerts.New("localhost")
		if err != nil {
			be.close()
			return nil, fmt.Errorf("entraredistest: certificates: %w", err)
		}
		s.certs = certs
		cfg.TLS = certs.ServerTLS()
	}
	ep, err := emulator.NewEndpoint(cfg)
	if err != nil {
		be.close()
		return nil, fmt.Errorf("entraredistest: %w", err)
	}
	s.ep = ep
	return s, nil
}

// startBackend starts the backend Options ask for.
func startBackend(opts Options, users map[string]emulator.BackendUser) (backendImpl, error) {
	switch opts.Backend {
	case BackendInProcess:
		return startInProcess(users)
	case BackendRedisServer:
		return startRedisServer(opts.RedisServer, users)
	case BackendAuto:
		path, err := findRedisServer(opts.RedisServer)
		if err == nil {
			return startRedisServer(path, users)
		}
		if opts.RedisServer != "" {
			return nil, err // an explicit path that does not work is a mistake, not a reason to fall back
		}
		if os.Getenv(EnvRequireRedisServer) == "1" {
			return nil, fmt.Errorf("%w (%s=1 forbids the in-process fallback)", err, EnvRequireRedisServer)
		}
		return startInProcess(users)
	default:
		return nil, fmt.Errorf("entraredistest: unknown Backend %q", opts.Backend)
	}
}

// RequireRedisServer skips the test, with a clear message, when redis-server
// is not found ($ENTRAREDIS_REDIS_SERVER, then PATH); with
// EnvRequireRedisServer=1 it fails the test instead. Use it in tests that
// need what the fallback does not emulate (ACL/NOPERM, cluster).
func RequireRedisServer(tb testing.TB) {
	tb.Helper()
	if _, err := findRedisServer(""); err != nil {
		if os.Getenv(EnvRequireRedisServer) == "1" {
			tb.Fatalf("entraredistest: %v (%s=1)", err, EnvRequireRedisServer)
		}
		tb.Skipf("entraredistest: skipped, this test needs a real redis-server (ACL/NOPERM, cluster): %v", err)
	}
}

// Addr returns "localhost:PORT": the certificate names only "localhost",
// with no IP SANs.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.Port())) }

// Host returns "localhost".
func (s *Server) Host() string { return "localhost" }

// Port returns the endpoint's TCP port (on 127.0.0.1).
func (s *Server) Port() int { return s.ep.Addr().(*net.TCPAddr).Port }

// TLSConfig returns a new client TLS configuration each call: RootCAs is the
// throwaway CA only, ServerName "localhost", MinVersion TLS 1.2. It returns
// nil when the server is plaintext.
func (s *Server) TLSConfig() *tls.Config {
	if s.certs == nil {
		return nil
	}
	return s.certs.ClientTLS(s.Host())
}

// CAPEM returns the PEM of the throwaway CA that signed the server's
// certificate, for tools that take a CA file (entraredis doctor --ca-file).
// It returns nil when the server is plaintext.
func (s *Server) CAPEM() []byte {
	if s.certs == nil {
		return nil
	}
	return s.certs.CAPEM()
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats { return statsFrom(s.ep.Stats()) }

// DropConnections closes every client connection now (like a failover) and
// returns how many were closed.
func (s *Server) DropConnections() int { return s.ep.DropConnections() }

// RefuseConnections makes the endpoint close new connections at accept for
// d from now (existing connections stay). d <= 0 ends it.
func (s *Server) RefuseConnections(d time.Duration) { s.ep.RefuseConnections(d) }

// RestartBackend stops and starts the backend Redis, on the same port when
// it can (the in-process backend may move to a new port; see BackendAddr).
// Data is not kept with redis-server. Client connections are dropped.
func (s *Server) RestartBackend() error {
	s.ep.DropConnections()
	if err := s.be.restart(); err != nil {
		return fmt.Errorf("entraredistest: restart backend: %w", err)
	}
	_, baddr := s.be.endpointAddr()
	s.ep.SetBackendAddr(baddr)
	return nil
}

// Backend returns the backend actually in use.
func (s *Server) Backend() Backend { return s.be.kind() }

// Limitations lists what the in-process fallback does not emulate; it is
// empty with redis-server.
func (s *Server) Limitations() []string { return s.be.limitations() }

// BackendAddr returns "127.0.0.1:PORT" of the backend Redis itself
// (plaintext, no token check), for overhead comparisons.
func (s *Server) BackendAddr() string { return s.be.addr() }

// BackendOptions returns go-redis options reaching the backend directly
// (plaintext) with the owner role's static password.
func (s *Server) BackendOptions() *redis.Options {
	u := s.users[string(RoleOwner)]
	return &redis.Options{Addr: s.be.addr(), Username: u.Name, Password: u.Password}
}

// Close stops the endpoint (closing every connection) and the backend,
// removing its files. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		err1 := s.ep.Close()
		err2 := s.be.close()
		s.closeErr = errors.Join(err1, err2)
	})
	return s.closeErr
}

// Stats are a Server's counters. All are totals since start, except Open.
type Stats struct {
	Accepted     int64 // client connections accepted (not counting refused ones)
	Refused      int64 // connections closed at accept during RefuseConnections
	Open         int64 // client connections open now
	Auths        int64 // valid AUTH/HELLO AUTH on a not-yet-authenticated connection
	ReAuths      int64 // valid AUTH/HELLO AUTH on an already authenticated connection
	RefusedAuths int64 // AUTH/HELLO AUTH refused (bad signature, expired, nbf, username != oid, unknown principal)
	ExpiryCloses int64 // connections closed because their token expired
	Commands     int64 // commands forwarded
}

func statsFrom(e emulator.Stats) Stats {
	return Stats{
		Accepted: e.Accepted, Refused: e.Refused, Open: e.Open, Auths: e.Auths, ReAuths: e.ReAuths,
		RefusedAuths: e.RefusedAuths, ExpiryCloses: e.ExpiryCloses, Commands: e.Commands,
	}
}

// Add returns the field-by-field sum of s and o (for clusters).
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Accepted: s.Accepted + o.Accepted, Refused: s.Refused + o.Refused, Open: s.Open + o.Open,
		Auths: s.Auths + o.Auths, ReAuths: s.ReAuths + o.ReAuths, RefusedAuths: s.RefusedAuths + o.RefusedAuths,
		ExpiryCloses: s.ExpiryCloses + o.ExpiryCloses, Commands: s.Commands + o.Commands,
	}
}

// OmitExamplesWithoutRedisServer is for a TestMain, before m.Run: when
// redis-server is not found (and EnvRequireRedisServer is not 1), it leaves
// the package's Example functions out of the run, saying so on stderr.
// Examples that run on the emulator cannot skip themselves the way tests
// do (RequireRedisServer), and some need what only redis-server has. It
// changes nothing when -test.run was given.
func OmitExamplesWithoutRedisServer() {
	_, err := findRedisServer("")
	if err == nil || os.Getenv(EnvRequireRedisServer) == "1" {
		return
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	run := flag.Lookup("test.run")
	if run == nil || run.Value.String() != "" {
		return
	}
	if setErr := run.Value.Set("^(Test|Fuzz)"); setErr != nil {
		return
	}
	fmt.Fprintf(os.Stderr, "entraredistest: the Example functions are not run: %v\n", err)
}
