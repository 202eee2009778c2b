package entraredistest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/entraredis/entraredis/entraredistest/internal/emulator"
	"github.com/entraredis/entraredis/entraredistest/internal/testcerts"
	"github.com/entraredis/entraredis/internal/redisproc"
)

// ClusterOptions configures NewCluster and StartCluster. The zero value is a
// 3-master Redis Cluster, each node behind its own TLS endpoint, with 1-hour
// tokens.
type ClusterOptions struct {
	// Issuer signs and verifies tokens. Default: a new Issuer.
	Issuer *Issuer
	// TokenLifetime of Cluster.Credential()'s tokens. Default 1h.
	TokenLifetime time.Duration
	// CacheWindow of Cluster.Credential() (see CredentialOptions). Default 0.
	CacheWindow time.Duration
	// Grace: a connection is closed at exp+Grace of the token it last
	// authenticated with. Default 0.
	Grace time.Duration
	// RedisServer is the path of redis-server (7.0 or newer). Default
	// $ENTRAREDIS_REDIS_SERVER, then redis-server in PATH. There is no
	// in-process fallback for clusters.
	RedisServer string
	// Masters is the number of master nodes (no replicas). Default 3.
	Masters int
	// Logf receives diagnostics (never tokens). Default: none for
	// StartCluster, tb.Logf for NewCluster.
	Logf func(format string, args ...any)
}

// Cluster is an emulated Azure Managed Redis with the OSS cluster policy: a
// Redis Cluster of masters, each behind its own TLS endpoint that checks
// Microsoft Entra tokens and closes connections at token expiry.
//
// Like Azure, the topology (CLUSTER SLOTS/SHARDS/NODES, MOVED and ASK
// redirections) names the endpoints by IP address, 127.0.0.1:PORT, while the
// certificate names only "localhost": a client must verify every node's
// certificate against the configured host name (TLS ServerName), as
// Cluster.TLSConfig does. Its methods are safe for concurrent use.
type Cluster struct {
	opts ClusterOptions
	principals
	certs *testcerts.Bundle
	users map[string]emulator.BackendUser
	rc    *redisproc.Cluster
	eps   []*emulator.Endpoint

	closeOnce sync.Once
	closeErr  error
}

// NewCluster starts a Cluster for a test and closes it with tb.Cleanup. When
// redis-server is absent it skips the test (like RequireRedisServer), or
// fails it when EnvRequireRedisServer=1. It fails the test when the cluster
// cannot start.
func NewCluster(tb testing.TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	if _, err := findRedisServer(opts.RedisServer); err != nil {
		if os.Getenv(EnvRequireRedisServer) == "1" {
			tb.Fatalf("%v (%s=1 forbids skipping)", err, EnvRequireRedisServer)
		}
		tb.Skipf("skipped, a Cluster needs a real redis-server 7 (set %s=1 to fail instead): %v", EnvRequireRedisServer, err)
	}
	if opts.Logf == nil {
		opts.Logf = tb.Logf
	}
	c, err := StartCluster(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("entraredistest: close cluster: %v", err)
		}
	})
	return c
}

// backendACLUsers turns role users into redis-server ACL users with the
// role's rules (roleRules), in a stable order.
func backendACLUsers(users map[string]emulator.BackendUser) []redisproc.User {
	var us []redisproc.User
	for _, role := range sortedRoles(users) {
		u := users[role]
		us = append(us, redisproc.User{Name: u.Name, Password: u.Password, Rules: roleRules[Role(role)]})
	}
	return us
}

// StartCluster starts a Cluster without a testing.TB (demos, benchmarks).
// It needs redis-server 7.0 or newer. Starting takes a few seconds (the
// nodes agree on the topology). The caller must Close it.
func StartCluster(opts ClusterOptions) (_ *Cluster, err error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.Masters == 0 {
		opts.Masters = redisproc.DefaultMasters
	}
	if opts.Masters < 1 {
		return nil, fmt.Errorf("entraredistest: ClusterOptions.Masters = %d, want at least 1", opts.Masters)
	}
	path, err := findRedisServer(opts.RedisServer)
	if err != nil {
		return nil, err
	}
	pr, err := newPrincipals(opts.Issuer, opts.TokenLifetime, opts.CacheWindow)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, principals: pr, users: roleUsers()}
	if c.certs, err = testcerts.New("localhost"); err != nil {
		return nil, fmt.Errorf("entraredistest: certificates: %w", err)
	}

	// Bind every endpoint first: its port is what the node announces.
	lns := make([]net.Listener, 0, opts.Masters)
	defer func() {
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			err = errors.Join(err, c.Close())
		}
	}()
	ports := make([]int, 0, opts.Masters)
	for i := 0; i < opts.Masters; i++ {
		ln, lerr := net.Listen("tcp", "127.0.0.1:0")
		if lerr != nil {
			return nil, fmt.Errorf("entraredistest: listen: %w", lerr)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	start := time.Now()
	c.rc, err = redisproc.StartCluster(redisproc.ClusterConfig{
		RedisServer:   path,
		Masters:       opts.Masters,
		Users:         backendACLUsers(c.users),
		AnnounceIP:    "127.0.0.1",
		AnnouncePorts: ports,
	})
	if err != nil {
		return nil, fmt.Errorf("entraredistest: start cluster: %w", err)
	}
	opts.Logf("entraredistest: cluster of %d masters ready in %v", opts.Masters, time.Since(start).Round(time.Millisecond))
	for i, node := range c.rc.Nodes() {
		ep, eerr := emulator.NewEndpoint(emulator.EndpointConfig{
			Listener:     lns[i],
			TLS:          c.certs.ServerTLS(),
			Authenticate: authenticator(c.issuer, c.dir),
			BackendAddr:  node.Addr(),
			Users:        c.users,
			Grace:        opts.Grace,
			Logf:         opts.Logf,
		})
		if eerr != nil {
			return nil, fmt.Errorf("entraredistest: endpoint of node %d: %w", i, eerr)
		}
		c.eps = append(c.eps, ep)
	}
	lns = nil // owned by the endpoints now
	return c, nil
}

// Addrs returns "localhost:PORT" of every node's endpoint, in slot order
// (node i serves the i-th n-th of the 16384 slots): the seed addresses for
// a cluster client.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.eps))
	for i, ep := range c.eps {
		out[i] = net.JoinHostPort("localhost", strconv.Itoa(ep.Addr().(*net.TCPAddr).Port))
	}
	return out
}

// TopologyAddrs returns "127.0.0.1:PORT" of every node's endpoint, in the
// order of Addrs: the addresses the topology and redirections name.
func (c *Cluster) TopologyAddrs() []string {
	out := make([]string, len(c.eps))
	for i, ep := range c.eps {
		out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(ep.Addr().(*net.TCPAddr).Port))
	}
	return out
}

// Host returns "localhost", the only name in the certificate.
func (c *Cluster) Host() string { return "localhost" }

// TLSConfig returns a new client TLS configuration each call: RootCAs is the
// throwaway CA only, ServerName "localhost" (so node certificates verify
// although the topology names IP addresses), MinVersion TLS 1.2.
func (c *Cluster) TLSConfig() *tls.Config { return c.certs.ClientTLS(c.Host()) }

// CAPEM returns the PEM of the throwaway CA that signed the nodes'
// certificates.
func (c *Cluster) CAPEM() []byte { return c.certs.CAPEM() }

// Stats returns the counters summed over the nodes' endpoints.
func (c *Cluster) Stats() Stats {
	var s Stats
	for _, ep := range c.eps {
		s = s.Add(statsFrom(ep.Stats()))
	}
	return s
}

// NodeStats returns each node's endpoint counters, in the order of Addrs.
func (c *Cluster) NodeStats() []Stats {
	out := make([]Stats, len(c.eps))
	for i, ep := range c.eps {
		out[i] = statsFrom(ep.Stats())
	}
	return out
}

// DropConnections closes every client connection on every node now (like a
// failover) and returns how many were closed.
func (c *Cluster) DropConnections() int {
	n := 0
	for _, ep := range c.eps {
		n += ep.DropConnections()
	}
	return n
}

// Close stops every endpoint (closing every connection) and every node,
// removing their files. It is idempotent.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		var errs []error
		for _, ep := range c.eps {
			errs = append(errs, ep.Close())
		}
		if c.rc != nil {
			errs = append(errs, c.rc.Close())
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}
