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

	// The connections learn when the refresher asks next from the Source's
	// Status, never through the callbacks, which are the user's, untouched.
	c := &client{reg: newConns()}
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
