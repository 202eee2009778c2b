// Package rueidisentra connects rueidis clients to Azure Cache for Redis and
// Azure Managed Redis with Microsoft Entra ID instead of access keys, like
// package entraredis does for go-redis, on the same client-agnostic core
// (package entratoken).
//
//	cred, err := azidentity.NewDefaultAzureCredential(nil)
//	...
//	client, err := rueidisentra.NewClient(ctx, cred, rueidis.ClientOption{
//		InitAddress: []string{"NAME.redis.cache.windows.net:6380"},
//	}, nil)
//	...
//	defer client.Close()
//	err = client.Do(ctx, client.B().Set().Key("key").Value("value").Build()).Error()
//
// The user name is the token's object ID (oid), the password the token; one
// refresher asks the credential for each new token, once per rotation however
// many connections and nodes the client has, and every connection moves to it
// with an in-place AUTH before the old one expires.
//
// # How connections move to a new token
//
// rueidis (v1.0.77 and later) re-authenticates a live connection by itself:
// its ClientOption.AuthCredentialsFn returns the credentials and a
// RefreshAfter time, at which the connection calls the function again and
// sends AUTH on itself (pipe.refreshAuth). This package supplies that
// function. It is the only way to reach a rueidis connection from outside, and
// it has limits that decide the design:
//
//   - The function learns only the connection's RemoteAddr. The client's
//     DialCtxFn wraps each connection so that its RemoteAddr carries that
//     connection's state (which token it is on, its place in the hand-out).
//   - rueidis calls back only at the RefreshAfter it was given: a connection
//     cannot be told that a token arrived. So each connection's RefreshAfter
//     is decided in advance: it falls at the connection's own moment of the
//     hand-out window (Options.ReauthSpread, see entratoken): the window
//     opens when the token arrives, and connections take moments spread evenly
//     over it (fractions of the golden ratio). A connection whose moment comes
//     before the new token (a refresh still in flight, an outage) is answered
//     with empty credentials and a near RefreshAfter: rueidis then sends no
//     AUTH and asks again, and the connection stays on its valid token.
//   - The function never learns whether the AUTH succeeded, and rueidis
//     closes the connection when it fails (or when the function returns an
//     error, which this package never does for a live connection). So an open
//     connection that was given a token is authenticated with it, or its AUTH
//     is in flight: that is what Status counts (see Status). A refused
//     re-AUTH is not reported by rueidis: Status.ReauthFailures and
//     Options.OnReauthFailed stay silent on this path, the connection leaves
//     the counts, and commands then in flight on it fail with the server's
//     reply, explained (see below).
//   - The AUTH goes through the connection like any command. rueidis stops the
//     timer of a connection it lends out, to a Dedicated or Dedicate client (so
//     a MULTI/EXEC built by hand there never gets an AUTH queued inside it) or
//     to a blocking command (BLPOP, XREAD BLOCK...), and restarts it when the
//     connection comes back: a connection whose moment passed meanwhile is
//     re-authenticated then. Three consequences, all rueidis' (pool.go,
//     pipe.go), documented and tested here:
//     a connection held past its token's expiry is closed by the server, and
//     the command then in flight fails with an error wrapping
//     ErrConnTokenExpired (the next one uses a new connection): keep blocking
//     timeouts and Dedicated sessions well under the refresh margin (minutes
//     on Azure); a connection taken again at once, every time (a loop of
//     blocking commands with no pause), is usually taken before its restarted
//     timer fires, so it may never be re-authenticated and then fails that way
//     once per token lifetime; and a connection taken while its AUTH runs is
//     closed by rueidis and replaced by a new one (an extra dial, no error).
//   - rueidis retries a read-only command after a connection error until its
//     context ends. A command that fails because no usable token exists (see
//     below) is not retried: it fails at once with the explanation.
//
// Past expiry (every refresh failed until the token expired), the server
// closes the connections, and new ones fail at once with an error wrapping
// entratoken.ErrNoValidToken, without dialing; the first successful refresh
// recovers, as with go-redis.
//
// # Differences from the go-redis clients
//
// rueidis pipelines commands of all goroutines over few connections (one per
// node, plus the pools of Dedicated and blocking commands), so a rotation
// moves few connections. Pub/sub on RESP3 (rueidis' default) shares those
// connections: subscriptions are re-authenticated in place and never dropped
// at rotation. With ClientOption.AlwaysRESP2, subscribed connections cannot
// run AUTH: the server refuses it and rueidis closes the connection, and the
// subscriber must subscribe again.
//
// Client-side caching (DoCache) keeps working: an AUTH as the same user keeps
// the connection's CLIENT TRACKING state.
//
// A trap that is rueidis' own, not this package's: a connection lent to a
// Dedicated client and left silent for longer than Dialer.KeepAlive (1 s by
// default) gets rueidis' keep-alive PING, which the server queues inside a
// MULTI built by hand there (EXEC then returns one reply more).
package rueidisentra

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/azsub"
	"github.com/entraredis/entraredis/internal/endpoint"
	"github.com/entraredis/entraredis/internal/tokensource"
)

// Defaults applied to rueidis options left at their zero value, after
// Microsoft's guidance for Azure Redis.
const (
	// DefaultDialTimeout is the connect timeout (rueidis' own default is 5 s too).
	DefaultDialTimeout = 5 * time.Second
	// DefaultCommandTimeout is ClientOption.ConnWriteTimeout: the read and
	// write deadline of a connection, and of rueidis' keep-alive PINGs.
	DefaultCommandTimeout = 5 * time.Second
	// DefaultBlockingPoolCleanup closes idle connections of the pool of
	// Dedicated and blocking commands before Azure closes them after 10 minutes.
	DefaultBlockingPoolCleanup = 5 * time.Minute
)

// NewClient returns a rueidis client for the Azure Redis endpoint in
// opt.InitAddress (for example "NAME.redis.cache.windows.net:6380", or
// "NAME.REGION.redis.azure.net:10000" for Azure Managed Redis; a cluster is
// detected by rueidis), authenticated with tokens from cred. It waits for the
// first token, bounded by ctx and Options.AttemptTimeout, so that a wrong
// credential, scope or token fails here with an explanation. opts may be nil.
//
// opt is a copy; fields left at zero get Azure's defaults: TLS 1.2 or later
// with every node's certificate verified against the first address's host
// name (the cluster topology names nodes by IP address), DefaultDialTimeout,
// DefaultCommandTimeout and DefaultBlockingPoolCleanup. opt.Username, when
// set, replaces the token's object ID as the user name (Options.Username wins
// over it). opt.Password, opt.AuthCredentialsFn, opt.DialFn and Sentinel must
// be empty; a DialCtxFn of yours is called to dial.
//
// The returned client's Close also stops the token refresher. WRONGPASS and
// NOPERM replies come back as *entratoken.AuthError, which wraps the reply.
// See Status for its health.
func NewClient(ctx context.Context, cred azcore.TokenCredential, opt rueidis.ClientOption, opts *Options) (rueidis.Client, error) {
	if cred == nil {
		return nil, errors.New("entraredis: rueidisentra.NewClient needs an azcore.TokenCredential, such as azidentity.NewDefaultAzureCredential's")
	}
	if len(opt.InitAddress) == 0 {
		return nil, errors.New("entraredis: rueidis.ClientOption.InitAddress is empty: set it to the cache's host:port, for example NAME.redis.cache.windows.net:6380")
	}
	switch {
	case opt.Password != "" || opt.AuthCredentialsFn != nil:
		return nil, errors.New("entraredis: leave Password and AuthCredentialsFn of rueidis.ClientOption empty: the password is the Microsoft Entra token, which rueidisentra supplies and rotates")
	case opt.DialFn != nil:
		return nil, errors.New("entraredis: rueidis.ClientOption.DialFn is deprecated by rueidis and not supported: set DialCtxFn")
	case opt.Sentinel.MasterSet != "":
		return nil, errors.New("entraredis: Azure Redis has no Sentinel: leave rueidis.ClientOption.Sentinel empty")
	}
	addrs := make([]string, len(opt.InitAddress))
	for i, a := range opt.InitAddress {
		hp, err := endpoint.CheckAddr(a)
		if err != nil {
			return nil, err
		}
		addrs[i] = hp
	}
	opt.InitAddress = addrs

	var o entratoken.Options
	var mode azevents.Mode
	var onMaintenance func(azevents.Event)
	if opts != nil {
		o, mode, onMaintenance = opts.Options, opts.MaintenanceEvents, opts.OnMaintenance
	}
	if o.Username == "" {
		o.Username = opt.Username
	}
	opt.Username = ""
	tc, err := endpoint.TLSConfig(addrs, opt.TLSConfig, o)
	if err != nil {
		return nil, err
	}
	opt.TLSConfig = tc
	for _, d := range []struct {
		field *time.Duration
		value time.Duration
	}{{&opt.Dialer.Timeout, DefaultDialTimeout}, {&opt.ConnWriteTimeout, DefaultCommandTimeout}, {&opt.BlockingPoolCleanup, DefaultBlockingPoolCleanup}} {
		if *d.field == 0 {
			*d.field = d.value
		}
	}

	c := &client{reg: newConns()}
	// The refresher's events tell the connections when it asks next; the
	// user's callbacks run after, unchanged.
	onRefreshed, onFailed := o.OnTokenRefreshed, o.OnRefreshFailed
	o.OnTokenRefreshed = func(e entratoken.TokenRefreshed) {
		c.reg.setNext(e.RefreshAt)
		if onRefreshed != nil {
			onRefreshed(e)
		}
	}
	o.OnRefreshFailed = func(e entratoken.RefreshFailed) {
		c.reg.setNext(e.NextRetry)
		if onFailed != nil {
			onFailed(e)
		}
	}
	src, err := tokensource.NewSource(cred, &o)
	if err != nil {
		return nil, err
	}
	c.src, c.reg.src = src, src
	if err := src.WaitReady(ctx); err != nil {
		src.Close()
		return nil, err
	}
	src.SetConnStats(c.reg.stats)

	maintDial := maintenanceDialer(opt)
	opt.DialCtxFn = c.reg.dial(opt.DialCtxFn, opt.DisableTCPNoDelay)
	opt.AuthCredentialsFn = c.reg.credentials
	opt.RetryDelay = noRetryWithoutToken(opt.RetryDelay)
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		err = c.explain(err) // before Close: it names the user of the token in use
		src.Close()
		return nil, err
	}
	c.Client = rc
	c.addrs = addrs
	host, _, _ := net.SplitHostPort(addrs[0])
	protocol := 3
	if opt.AlwaysRESP2 {
		protocol = 2
	}
	if c.maint, err = azsub.ForSource(src, mode, onMaintenance, host, protocol, opt.ConnWriteTimeout, maintDial); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// noRetryWithoutToken wraps a rueidis RetryDelayFn (nil: rueidis' default)
// so that a command failing because no usable token exists is not retried:
// rueidis retries read-only commands on connection errors until their
// context ends, which would hold every GET for the whole outage instead of
// failing it with the explanation.
func noRetryWithoutToken(next rueidis.RetryDelayFn) rueidis.RetryDelayFn {
	if next == nil {
		next = defaultRetryDelay
	}
	return func(attempts int, cmd rueidis.Completed, err error) time.Duration {
		if errors.Is(err, entratoken.ErrNoValidToken) || errors.Is(err, entratoken.ErrClosed) {
			return -1
		}
		return next(attempts, cmd, err)
	}
}

// defaultRetryDelay is rueidis' default RetryDelayFn (retry.go, unexported
// there): exponential from 1 µs with "equal jitter", at most 1 second.
func defaultRetryDelay(attempts int, _ rueidis.Completed, _ error) time.Duration {
	base := 1 << min(20, attempts)
	return min(time.Second, time.Duration(base+rand.IntN(base))*time.Microsecond)
}

// Status returns a snapshot of the token and its refresher for a client that
// NewClient returned, and false for any other client (such as one wrapped
// by another package: keep the client NewClient returned).
//
// Status.Conns counts the client's open connections by the token they were
// last given: Current the token in use, Older an older one. rueidis closes a
// connection whose AUTH fails, so a connection counted Current is
// authenticated with the token in use, or its AUTH is in flight. Unmovable
// is always 0: rueidis does not tell when it lends a connection out (Dedicated,
// blocking commands) and stops its timer. ReauthFailures is always 0, and
// Connections (listeners of the Source) too: rueidis closes a connection whose
// AUTH was refused without telling why, so the outcome of a refused re-AUTH
// cannot be known on this path; such a connection leaves the counts.
func Status(c rueidis.Client) (ClientStatus, bool) {
	ec, ok := c.(*client)
	if !ok {
		return ClientStatus{}, false
	}
	return ClientStatus{Status: ec.src.Status(), Maintenance: ec.maint.Status()}, true
}

// client is the rueidis.Client NewClient returns: rueidis' own, with a Close
// that also stops the refresher, and WRONGPASS and NOPERM replies explained.
type client struct {
	rueidis.Client
	src   *tokensource.Source
	reg   *conns
	maint *azsub.Subscriber // the maintenance-event subscription (Options.MaintenanceEvents); nil when off
	addrs []string
	once  sync.Once
}

// Close closes the connections, then stops the refresher. It is idempotent.
func (c *client) Close() {
	c.once.Do(func() {
		c.maint.Close()
		c.Client.Close()
		c.src.Close()
	})
}

// String describes the client without secrets.
func (c *client) String() string {
	return fmt.Sprintf("rueidisentra.Client<%s>", strings.Join(c.addrs, ","))
}

// GoString describes the client without secrets.
func (c *client) GoString() string { return c.String() }

// Format describes the client without secrets, whatever the verb.
func (c *client) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// explain wraps a WRONGPASS or NOPERM error in an *entratoken.AuthError.
func (c *client) explain(err error) error {
	if err == nil || err == rueidis.Nil {
		return err
	}
	user := ""
	if tok, terr := c.src.Token(); terr == nil {
		user = tok.Username()
	}
	return tokensource.ExplainAuth(err, user, c.src.Scope())
}

// explainResult replaces *r with its error explained when err (r's error)
// is a WRONGPASS or NOPERM. Callers test err first: the check on the hot
// path is one call of r.Error().
func (c *client) explainResult(r *rueidis.RedisResult, err error) {
	if x := c.explain(err); x != err {
		*r = rueidis.NewErrorResult(x)
	}
}

func (c *client) results(rs []rueidis.RedisResult) []rueidis.RedisResult {
	for i := range rs {
		if err := rs[i].Error(); err != nil && err != rueidis.Nil {
			c.explainResult(&rs[i], err)
		}
	}
	return rs
}

func (c *client) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	r := c.Client.Do(ctx, cmd)
	if err := r.Error(); err != nil && err != rueidis.Nil {
		c.explainResult(&r, err)
	}
	return r
}

func (c *client) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	return c.results(c.Client.DoMulti(ctx, multi...))
}

func (c *client) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	r := c.Client.DoCache(ctx, cmd, ttl)
	if err := r.Error(); err != nil && err != rueidis.Nil {
		c.explainResult(&r, err)
	}
	return r
}

func (c *client) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	return c.results(c.Client.DoMultiCache(ctx, multi...))
}

func (c *client) Receive(ctx context.Context, subscribe rueidis.Completed, fn func(rueidis.PubSubMessage)) error {
	return c.explain(c.Client.Receive(ctx, subscribe, fn))
}

func (c *client) Dedicated(fn func(rueidis.DedicatedClient) error) error {
	return c.Client.Dedicated(func(d rueidis.DedicatedClient) error {
		return fn(&dedicated{DedicatedClient: d, c: c})
	})
}

func (c *client) Dedicate() (rueidis.DedicatedClient, func()) {
	d, cancel := c.Client.Dedicate()
	return &dedicated{DedicatedClient: d, c: c}, cancel
}

// dedicated is a rueidis.DedicatedClient with WRONGPASS and NOPERM explained.
type dedicated struct {
	rueidis.DedicatedClient
	c *client
}

func (d *dedicated) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	r := d.DedicatedClient.Do(ctx, cmd)
	if err := r.Error(); err != nil && err != rueidis.Nil {
		d.c.explainResult(&r, err)
	}
	return r
}

func (d *dedicated) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	return d.c.results(d.DedicatedClient.DoMulti(ctx, multi...))
}

func (d *dedicated) Receive(ctx context.Context, subscribe rueidis.Completed, fn func(rueidis.PubSubMessage)) error {
	return d.c.explain(d.DedicatedClient.Receive(ctx, subscribe, fn))
}

var (
	_ rueidis.Client          = (*client)(nil)
	_ rueidis.DedicatedClient = (*dedicated)(nil)
)

// maintenanceDialer dials the maintenance-event subscription's connection
// to the first address as rueidis would: opt.DialCtxFn when set, else
// opt.Dialer with opt.TLSConfig.
func maintenanceDialer(opt rueidis.ClientOption) func(context.Context) (net.Conn, error) {
	addr, d, tc, user := opt.InitAddress[0], opt.Dialer, opt.TLSConfig, opt.DialCtxFn
	if user != nil {
		return func(ctx context.Context) (net.Conn, error) { return user(ctx, addr, &d, tc) }
	}
	if tc == nil {
		return func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	td := &tls.Dialer{NetDialer: &d, Config: tc}
	return func(ctx context.Context) (net.Conn, error) { return td.DialContext(ctx, "tcp", addr) }
}
