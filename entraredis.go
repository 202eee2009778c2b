package entraredis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/entraredis/entraredis/internal/azsub"
	"github.com/entraredis/entraredis/internal/endpoint"
)

// Defaults applied to go-redis options left at their zero value, after
// Microsoft's guidance for Azure Redis (documented on NewClient).
const (
	dialTimeout     = 5 * time.Second // the connect timeout (go-redis' own default is 5 s too)
	commandTimeout  = 5 * time.Second // the read and write timeout of a command
	connMaxIdleTime = 5 * time.Minute // closes idle pooled connections before Azure closes them after 10 minutes
)

// Client is a go-redis client authenticated with Microsoft Entra ID. It has
// every method of *redis.Client and satisfies redis.UniversalClient and
// redis.Cmdable. Every connection it opens re-authenticates itself in place
// before its token expires (see NewClient): a Conn, a Watch session or a
// subscription lives for any number of token lifetimes. The embedded
// *redis.Client, its WithTimeout clones and the connections they hand out are
// the same pool and may be passed on (to be used, not closed: only Client's
// own Close also stops the token refresher).
type Client struct {
	*redis.Client
	owner
}

// ClusterClient is a go-redis cluster client authenticated with Microsoft
// Entra ID, for Azure Managed Redis with the OSS cluster policy. It has every
// method of *redis.ClusterClient and satisfies redis.UniversalClient; every
// node's connections re-authenticate themselves in place like Client's, and
// the embedded client and its node clients (ForEachMaster, ForEachShard) may
// be passed on. Close also stops the token refresher.
type ClusterClient struct {
	*redis.ClusterClient
	owner
}

// owner is what both clients add to go-redis': the credentials, their
// status, and a Close that also stops the refresher.
type owner struct {
	creds *Credentials
	maint *azsub.Subscriber // the maintenance-event subscription of a Client; nil when off

	mu   sync.Mutex    // guards the fields below
	done chan struct{} // made by the first Close, closed when it has finished
	err  error         // the first Close's result
}

// Status returns a snapshot of the token and its refresher, for health checks.
func (o *owner) Status() Status {
	return Status{Status: o.creds.src.Status(), Maintenance: o.maint.Status()}
}

// closeAll closes the pools, then the credentials, once. A later call returns
// the first call's result, or nil while the first call is still running: it
// does not wait for it, because the first call waits for a running callback,
// which may be the caller.
func (o *owner) closeAll(pools ...interface{ Close() error }) error {
	o.mu.Lock()
	if done := o.done; done != nil {
		defer o.mu.Unlock()
		select {
		case <-done:
			return o.err
		default:
			return nil
		}
	}
	o.done = make(chan struct{})
	o.mu.Unlock()
	var errs []error
	for _, p := range pools {
		errs = append(errs, p.Close())
	}
	err := errors.Join(append(errs, o.creds.Close())...)
	o.mu.Lock()
	o.err = err
	close(o.done)
	o.mu.Unlock()
	return err
}

// Both clients can stand in for go-redis' own wherever a redis.UniversalClient
// is expected (redisotel, rate limiters, caches...).
var (
	_ redis.UniversalClient = (*Client)(nil)
	_ redis.UniversalClient = (*ClusterClient)(nil)
)

// NewClient returns a client for the Redis endpoint in ropts.Addr (for
// example "NAME.redis.cache.windows.net:6380" or
// "NAME.REGION.redis.azure.net:10000"), authenticated with tokens from cred.
// It waits for the first token, bounded by ctx and Options.AttemptTimeout, so
// that a wrong credential, scope or token fails here with an explanation. opts
// may be nil.
//
// ropts is copied, not changed. Fields left at their zero value get Azure's
// defaults: TLS 1.2 or later with the certificate verified against the host
// name (ServerName from Addr), DialTimeout 5 s, ReadTimeout and WriteTimeout
// 5 s, ConnMaxIdleTime 5 minutes (Azure closes idle connections after 10).
// An unset MaintNotificationsConfig becomes mode "disabled" for Azure Cache for
// Redis and local endpoints, which have no such notifications (go-redis'
// "auto" mode would try them on every new connection). Every
// connection authenticates itself with the token in use and moves itself to
// each new token in place (an AUTH written between two commands, its reply
// hidden from go-redis): go-redis' own Username, Password and credentials
// providers stay empty, so no token reaches go-redis' options, logs or hooks.
// A blocking command that outlives the newest token fails when the server
// closes its connection at expiry: use bounded timeouts in a loop.
// ropts.Username, when set, replaces the token's object ID as the user name;
// ropts.Password and the go-redis credentials providers must be empty. Addr
// may also be a
// rediss://host:port URL; it needs a port, and redis:// (plaintext) URLs and
// URLs with user info are refused.
func NewClient(ctx context.Context, cred azcore.TokenCredential, ropts *redis.Options, opts *Options) (*Client, error) {
	if ropts == nil {
		return nil, errors.New("entraredis: NewClient needs redis.Options with at least Addr")
	}
	o := *ropts
	if o.Addr == "" {
		return nil, errors.New("entraredis: redis.Options.Addr is empty: set it to the cache's host:port, for example NAME.redis.cache.windows.net:6380")
	}
	if err := refuseClientSideCache(&o); err != nil {
		return nil, err
	}
	addrs := []string{o.Addr}
	creds, err := prepare(ctx, cred, opts, shared{
		addrs: addrs, username: &o.Username, password: &o.Password,
		providers: o.CredentialsProvider != nil || o.CredentialsProviderContext != nil || o.StreamingCredentialsProvider != nil,
		tls:       &o.TLSConfig, dial: &o.DialTimeout, read: &o.ReadTimeout, write: &o.WriteTimeout,
		idle: &o.ConnMaxIdleTime, maint: &o.MaintNotificationsConfig,
	})
	if err != nil {
		return nil, err
	}
	o.Addr = addrs[0]
	o.DialerRetryBackoff = creds.dialRetryBackoff(o.DialerRetryBackoff, o.DialerRetryTimeout)
	h := newHook(creds)
	o.Dialer = h.dialer(o.Dialer, o.DialTimeout, o.TLSConfig)
	c := &Client{Client: redis.NewClient(&o), owner: owner{creds: creds}}
	c.Client.AddHook(h)
	if c.maint, err = startMaintenance(creds.src, opts, &o, ropts); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// NewClusterClient returns a cluster client for Azure Managed Redis with the
// OSS cluster policy: ropts.Addrs holds the endpoint, such as
// "NAME.REGION.redis.azure.net:10000". Every node's certificate is verified
// against that host name, although the cluster's topology names the nodes by
// IP address. It waits for the first token like NewClient, and applies the
// same defaults. opts may be nil.
func NewClusterClient(ctx context.Context, cred azcore.TokenCredential, ropts *redis.ClusterOptions, opts *Options) (*ClusterClient, error) {
	if ropts == nil || len(ropts.Addrs) == 0 {
		return nil, errors.New("entraredis: NewClusterClient needs redis.ClusterOptions with Addrs, for example NAME.REGION.redis.azure.net:10000")
	}
	o := *ropts
	o.Addrs = slices.Clone(o.Addrs) // prepare normalises them: ropts is not changed
	creds, err := prepare(ctx, cred, opts, shared{
		addrs: o.Addrs, username: &o.Username, password: &o.Password,
		providers: o.CredentialsProvider != nil || o.CredentialsProviderContext != nil || o.StreamingCredentialsProvider != nil,
		tls:       &o.TLSConfig, dial: &o.DialTimeout, read: &o.ReadTimeout, write: &o.WriteTimeout,
		idle: &o.ConnMaxIdleTime, maint: &o.MaintNotificationsConfig,
	})
	if err != nil {
		return nil, err
	}
	o.DialerRetryBackoff = creds.dialRetryBackoff(o.DialerRetryBackoff, o.DialerRetryTimeout)
	h := newHook(creds)
	o.Dialer = h.dialer(o.Dialer, o.DialTimeout, o.TLSConfig)
	newNode := o.NewClient
	if newNode == nil {
		newNode = redis.NewClient
	}
	o.NewClient = func(opt *redis.Options) *redis.Client {
		rdb := newNode(opt)
		rdb.AddHook(h)
		return rdb
	}
	return &ClusterClient{ClusterClient: redis.NewClusterClient(&o), owner: owner{creds: creds}}, nil
}

// Close closes the client's connections and stops the token refresher. It is
// safe to call more than once, and from a callback: a later call returns the
// first call's result, or nil at once while the first call is still running
// (that one may be waiting for a running callback, which may be the caller).
// Close this client, not the embedded go-redis one: closing the embedded
// client (or a WithTimeout clone) closes the pool but leaves the refresher
// running.
func (c *Client) Close() error { return c.closeAll(c.maint, c.Client) }

// String describes the client without secrets.
func (c *ClusterClient) String() string {
	return fmt.Sprintf("entraredis.ClusterClient<%s>", strings.Join(c.Options().Addrs, ","))
}

// Close closes the client's connections and stops the token refresher. It is
// safe to call more than once, and from a callback: a later call returns the
// first call's result, or nil at once while the first call is still running
// (that one may be waiting for a running callback, which may be the caller).
// Close this client, not the embedded go-redis one: closing the embedded
// client (or a WithTimeout clone) closes the pool but leaves the refresher
// running.
func (c *ClusterClient) Close() error { return c.closeAll(c.ClusterClient) }

// shared points at the fields of redis.Options or redis.ClusterOptions that
// both constructors prepare alike.
type shared struct {
	addrs                   []string // checked and replaced with host:port in place
	username, password      *string
	providers               bool // a go-redis credentials provider is set
	tls                     **tls.Config
	dial, read, write, idle *time.Duration
	maint                   **maintnotifications.Config
}

// prepare checks and completes the go-redis options that f points into
// (credentials, TLS, Azure's defaults), then starts the refresher and waits
// for the first token.
func prepare(ctx context.Context, cred azcore.TokenCredential, opts *Options, f shared) (*Credentials, error) {
	if *f.password != "" || f.providers {
		return nil, errors.New("entraredis: leave Password and the credentials providers of the redis options empty: the password is the Microsoft Entra token, which entraredis supplies and rotates")
	}
	for i, a := range f.addrs {
		hostport, err := endpoint.CheckAddr(a)
		if err != nil {
			return nil, err
		}
		f.addrs[i] = hostport
	}
	set := withUsername(opts, *f.username)
	tlsConf, err := endpoint.TLSConfig(f.addrs, *f.tls, set.Options)
	if err != nil {
		return nil, err
	}
	*f.tls = tlsConf
	for _, d := range []struct {
		field *time.Duration
		value time.Duration
	}{{f.dial, dialTimeout}, {f.read, commandTimeout}, {f.write, commandTimeout}, {f.idle, connMaxIdleTime}} {
		if *d.field == 0 {
			*d.field = d.value
		}
	}
	*f.username = ""
	if *f.maint == nil && !maintNotificationsMayWork(f.addrs) {
		*f.maint = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	}

	creds, err := NewCredentials(cred, set)
	if err != nil {
		return nil, err
	}
	if err := creds.WaitReady(ctx); err != nil {
		creds.Close()
		return nil, err
	}
	return creds, nil
}

// maintNotificationsMayWork reports whether go-redis' maintenance
// notifications (CLIENT MAINT_NOTIFICATIONS, a Redis Enterprise feature that
// Azure Managed Redis may offer) can exist at addrs. Azure Cache for Redis and
// a local server have none: go-redis' default "auto" mode would send the
// handshake on every new connection only to have it refused, and on that
// refusal go-redis v9.23 writes its shared options without a common lock, a
// data race between the connections of a Conn and of a PubSub that
// initialise together (redis.go initConn). So the mode is "disabled" there
// unless the options set it.
func maintNotificationsMayWork(addrs []string) bool {
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil || !MaintenanceAuto.Enabled(host) && !endpoint.IsLoopback(host) { // MaintenanceAuto is on for Azure Cache for Redis hosts only
			return true
		}
	}
	return false
}

// withUsername returns opts with Username set from the go-redis options when
// Options.Username is empty.
func withUsername(opts *Options, username string) *Options {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Username == "" {
		o.Username = username
	}
	return &o
}

// errClientSideCache is NewClient's refusal of go-redis' client-side cache.
var errClientSideCache = errors.New("entraredis: go-redis' client-side cache (redis.Options.ClientSideCacheConfig or ClientSideCache) is not supported: " +
	"go-redis learns of invalidations by peeking at the socket between commands, which a connection that re-authenticates in place cannot allow, " +
	"so cached values would stay stale; leave both options nil")

// refuseClientSideCache refuses go-redis' client-side cache on the library's
// clients. go-redis reads pending invalidation pushes between commands only
// when the connection's socket has data (pool.Conn.MaybeHasData and
// CheckForData, a non-blocking MSG_PEEK through syscall.Conn or NetConn()).
// A reauth.Conn offers neither: go-redis would peek at raw bytes that may
// hold an AUTH reply the wrapper must remove first, and a fake answer
// ("always data", "never data") would either make go-redis block on reads
// between commands or serve stale values silently. So the cache is refused
// with an explicit error rather than degraded without a word.
// ClusterOptions has no client-side cache.
func refuseClientSideCache(o *redis.Options) error {
	if o.ClientSideCacheConfig == nil && o.ClientSideCache == nil {
		return nil
	}
	return errClientSideCache
}
