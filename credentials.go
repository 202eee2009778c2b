package entraredis

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/auth"

	"github.com/entraredis/entraredis/internal/tokensource"
)

// Credentials turns an azcore.TokenCredential into a go-redis
// auth.StreamingCredentialsProvider: the Redis user name is the token's object
// ID, the password is the token, and a background refresher replaces the token
// before it expires and hands the new one to every live connection.
//
// Client and ClusterClient create and own one. Use NewCredentials directly only
// to put it in go-redis options yourself:
//
//	creds, err := entraredis.NewCredentials(cred, nil)
//	...
//	defer creds.Close()
//	rdb := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: tlsConfig, StreamingCredentialsProvider: creds})
//	rdb.AddHook(creds.Hook()) // see Hook
//
// It is safe for concurrent use. Printing it, and every error it returns,
// leave the token out.
type Credentials struct {
	src  *tokensource.Source // the token, its refresher, its events; never changes
	live *liveCredentials    // what go-redis is given: always the token in use
}

var _ auth.StreamingCredentialsProvider = (*Credentials)(nil)

// NewCredentials returns Credentials for cred and starts its refresher, which
// asks for the first token at once. Close stops it. opts may be nil. A nil
// credential, or a typed nil one (what a credential constructor whose error
// was ignored returns), is refused.
//
// NewCredentials does not wait for the first token: the first Subscribe (the
// first connection) waits for it, at most Options.AttemptTimeout. Use
// WaitReady to wait for it and see its error up front.
func NewCredentials(cred azcore.TokenCredential, opts *Options) (*Credentials, error) {
	src, err := tokensource.NewSource(cred, opts.tokenOptions())
	if err != nil {
		return nil, err
	}
	c := &Credentials{src: src}
	c.live = &liveCredentials{src}
	return c, nil
}

// WaitReady waits until the first token has been fetched, or ctx ends. It
// returns nil when a usable token is held, else an error that says what
// failed (the credential, the scope, the token's claims, a timeout).
func (c *Credentials) WaitReady(ctx context.Context) error { return c.src.WaitReady(ctx) }

// Subscribe implements auth.StreamingCredentialsProvider. go-redis calls it for
// every new connection. It returns the current credentials at once while a
// usable token is held; before the first token it waits for the first fetch,
// at most Options.AttemptTimeout; when no usable token exists it fails at once
// with an error wrapping ErrNoValidToken. Subscribing the same listener twice
// keeps one subscription; the returned function is idempotent.
func (c *Credentials) Subscribe(listener auth.CredentialsListener) (auth.Credentials, auth.UnsubscribeFunc, error) {
	if listener == nil {
		return nil, nil, errors.New("entraredis: Subscribe needs a listener")
	}
	if !reflect.TypeOf(listener).Comparable() {
		return nil, nil, fmt.Errorf("entraredis: Subscribe needs a comparable listener (a pointer), got %T", listener)
	}
	_, detach, err := c.src.Attach(redisListener{l: listener, live: c.live})
	if err != nil {
		return nil, nil, err
	}
	return c.live, func() error { detach(); return nil }, nil
}

// Status returns a snapshot of the token and the refresher.
func (c *Credentials) Status() Status { return Status{Status: c.src.Status()} }

// Close stops the refresher and forgets every listener. It is idempotent and
// returns nil; it may be called from a callback. Connections keep working
// until their token expires.
func (c *Credentials) Close() error { return c.src.Close() }

// redisListener adapts a go-redis connection's listener to an
// tokensource.Listener: each new token marks the connection, which then
// re-authenticates with the live credentials. It is comparable when the
// go-redis listener is, so that one connection is subscribed once.
type redisListener struct {
	l    auth.CredentialsListener
	live *liveCredentials
}

// OnToken runs on the Source's hand-out goroutine; go-redis' OnNext only
// marks the connection.
func (r redisListener) OnToken(tokensource.Token) { r.l.OnNext(r.live) }

// liveCredentials is the auth.Credentials handed to go-redis, by Subscribe and
// with every rotation. It reads the token in use when go-redis asks for it, not
// when it was handed over: go-redis re-authenticates a connection later, when
// the connection is idle, and after two quick rotations it may run two AUTHs
// for one connection in any order; each sends the newest token.
type liveCredentials struct{ src *tokensource.Source }

// BasicAuth returns the user name and the token in use ("", "" when no
// usable token is held: the server refuses it, as it would an expired one).
func (l *liveCredentials) BasicAuth() (string, string) {
	tok, err := l.src.Token()
	if err != nil {
		return "", ""
	}
	return tok.Username(), tok.Password()
}

// RawCredentials returns "username:token", as go-redis' own basic credentials
// do. Never log it.
func (l *liveCredentials) RawCredentials() string {
	u, p := l.BasicAuth()
	return u + ":" + p
}

// Format leaves the token out, whatever the verb.
func (l *liveCredentials) Format(f fmt.State, _ rune) {
	u, _ := l.BasicAuth()
	fmt.Fprintf(f, "entraredis.credentials{user: %s, token: [redacted]}", u)
}

// Hook returns the go-redis hook that a client you build yourself with these
// Credentials needs (Client and ClusterClient have it already):
//
//	rdb := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: tlsConfig, StreamingCredentialsProvider: creds})
//	rdb.AddHook(creds.Hook())
//
// While no usable token exists (the token service has been down past the
// token's expiry), or after the server refused the token in use for a new
// connection, it fails new connections at once with the explained error,
// without dialing (go-redis alone redials in a tight loop). After a refusal,
// one new connection is tried 1 second later, then after twice as long each
// time, up to Options.RetryMaxDelay; a new token, or a connection the server
// accepts, ends the wait. Status.Dial shows it. It also explains (AuthError)
// the WRONGPASS or NOPERM replies to go-redis' HELLO AUTH and AUTH with the
// token, and NOPERM replies until the application authenticates a
// connection itself, and reports refused re-AUTHs (Options.OnReauthFailed);
// every other reply reaches the application as go-redis gives it.
//
// go-redis retries a dial that failed DialerRetries times, DialerRetryTimeout
// apart (5 times, 100 ms apart, by default) before the command fails: set
// DialerRetries to 1 for commands to fail at once too. For a
// redis.ClusterClient, add the hook to every node:
// rdb.OnNewNode(func(node *redis.Client) { node.AddHook(h) }).
func (c *Credentials) Hook() redis.Hook { return &hook{creds: c} }
