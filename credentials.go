package entraredis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/redis/go-redis/v9/auth"

	"github.com/entraredis/entraredis/internal/claims"
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
//
// It is safe for concurrent use. Its String method and every error it returns
// leave the token out.
type Credentials struct {
	cred azcore.TokenCredential
	set  settings

	mu          sync.Mutex
	tok         *token // current token; nil until the first success
	listeners   map[auth.CredentialsListener]struct{}
	closed      bool
	lastRefresh time.Time
	nextRefresh time.Time
	lastErr     error
	lastErrAt   time.Time
	failures    int
	rotations   int64
	cancelDeal  context.CancelFunc // stops the spread of the previous rotation

	live      *liveCredentials // what go-redis is given: always the token in use
	requests  atomic.Int64     // GetToken calls
	pending   chan tokenResult // a GetToken call still running; the refresher's alone
	firstDone chan struct{}    // closed when the first attempt has finished
	runCtx    context.Context
	stop      context.CancelFunc
	done      chan struct{} // closed when the refresher has returned
	dealers   sync.WaitGroup
}

// token is one access token and what the library derived from it.
type token struct {
	creds     *basicCredentials
	expiresOn time.Time
	refreshOn time.Time // zero when the credential gave none
	received  time.Time
}

func (t *token) life() time.Duration { return t.expiresOn.Sub(t.received) }

// usable reports whether the token can still be handed to a new connection:
// it has not expired, with a small margin so that a connection does not
// authenticate with a token that expires during the handshake.
func (t *token) usable(now time.Time) bool {
	if t == nil {
		return false
	}
	skew := min(time.Second, t.life()/20)
	return now.Before(t.expiresOn.Add(-skew))
}

// liveCredentials is the auth.Credentials handed to go-redis, by Subscribe and
// with every rotation. It reads the token in use when go-redis asks for it, not
// when it was handed over: go-redis re-authenticates a connection later, when
// the connection is idle, and after two quick rotations it may run two AUTHs
// for one connection in any order; each sends the newest token.
type liveCredentials struct{ c *Credentials }

// BasicAuth returns the user name and the token in use.
func (l *liveCredentials) BasicAuth() (string, string) {
	l.c.mu.Lock()
	tok := l.c.tok
	l.c.mu.Unlock()
	if tok == nil {
		return "", ""
	}
	return tok.creds.BasicAuth()
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

// basicCredentials is one user name and token.
type basicCredentials struct{ username, password string }

func (b *basicCredentials) BasicAuth() (string, string) { return b.username, b.password }

// RawCredentials returns "username:password", as go-redis' own basic
// credentials do. It holds the token: never log it.
func (b *basicCredentials) RawCredentials() string { return b.username + ":" + b.password }

// String leaves the token out.
func (b basicCredentials) String() string {
	return "entraredis.credentials{user: " + b.username + ", token: [redacted]}"
}

// GoString leaves the token out.
func (b basicCredentials) GoString() string { return b.String() }

// Format leaves the token out, whatever the verb.
func (b basicCredentials) Format(f fmt.State, _ rune) { io.WriteString(f, b.String()) }

// Format leaves the token out, whatever the verb.
func (t token) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "entraredis.token{user: %s, token: [redacted], expires: %s}", t.creds.username, t.expiresOn.Format(time.RFC3339))
}

var _ auth.StreamingCredentialsProvider = (*Credentials)(nil)

// NewCredentials returns Credentials for cred and starts its refresher, which
// asks for the first token at once. Close stops it. opts may be nil.
//
// NewCredentials does not wait for the first token: the first Subscribe (the
// first connection) waits for it, at most Options.AttemptTimeout. Use
// WaitReady to wait for it and see its error up front.
func NewCredentials(cred azcore.TokenCredential, opts *Options) (*Credentials, error) {
	if cred == nil {
		return nil, errors.New("entraredis: NewCredentials needs an azcore.TokenCredential, such as azidentity.NewDefaultAzureCredential's")
	}
	c := &Credentials{
		cred:      cred,
		set:       opts.settings(),
		listeners: make(map[auth.CredentialsListener]struct{}),
		firstDone: make(chan struct{}),
		done:      make(chan struct{}),
	}
	c.live = &liveCredentials{c}
	c.runCtx, c.stop = context.WithCancel(context.Background())
	go c.run()
	return c, nil
}

// WaitReady waits until the first token has been fetched, or ctx ends. It
// returns nil when a usable token is held, else an error that says what
// failed (the credential, the scope, the token's claims, a timeout).
func (c *Credentials) WaitReady(ctx context.Context) error {
	select {
	case <-c.firstDone:
	case <-ctx.Done():
		return fmt.Errorf("%w: the caller's context ended before the first token for scope %q arrived (the credential is still being asked; Options.AttemptTimeout bounds each attempt): %w", ErrNoValidToken, c.set.scope, ctx.Err())
	}
	_, err := c.current(time.Now())
	return err
}

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
	select {
	case <-c.firstDone:
	default:
		t := time.NewTimer(c.set.attemptTimeout)
		select {
		case <-c.firstDone:
		case <-c.runCtx.Done():
		case <-t.C:
		}
		t.Stop()
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, nil, ErrClosed
	}
	_, err := c.currentLocked(time.Now())
	if err != nil {
		return nil, nil, err
	}
	// The listener is added under the same lock that installs new tokens, so it
	// either gets this token and is in the next rotation's snapshot, or gets the
	// newer token here.
	c.listeners[listener] = struct{}{}
	unsubscribe := func() error {
		c.mu.Lock()
		delete(c.listeners, listener)
		c.mu.Unlock()
		return nil
	}
	return c.live, unsubscribe, nil
}

// current returns the usable token, or an error explaining why there is none.
func (c *Credentials) current(now time.Time) (*token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.currentLocked(now)
}

func (c *Credentials) currentLocked(now time.Time) (*token, error) {
	if c.tok.usable(now) {
		return c.tok, nil
	}
	switch {
	case c.closed:
		return nil, ErrClosed
	case c.lastErr != nil:
		return nil, fmt.Errorf("%w: %w", ErrNoValidToken, c.lastErr)
	case c.tok != nil:
		return nil, fmt.Errorf("%w: the token expired at %s and no new one was received yet", ErrNoValidToken, c.tok.expiresOn.Format(time.RFC3339))
	default:
		return nil, fmt.Errorf("%w: the first token was not received within %s", ErrNoValidToken, c.set.attemptTimeout)
	}
}

// ready returns nil when a new connection can authenticate now. Client's dial
// hook calls it so that no connection is dialed while no usable token exists.
func (c *Credentials) ready() error {
	select {
	case <-c.firstDone:
		_, err := c.current(time.Now())
		return err
	default:
		return nil // Subscribe waits for the first token
	}
}

// username returns the user name in use, "" before the first token.
func (c *Credentials) username() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok == nil {
		return c.set.username
	}
	return c.tok.creds.username
}

// basicAuth returns the current user name and token, for go-redis'
// CredentialsProviderContext (connections that are never re-authenticated).
func (c *Credentials) basicAuth(context.Context) (string, string, error) {
	if err := c.ready(); err != nil {
		return "", "", err
	}
	tok, err := c.current(time.Now())
	if err != nil {
		return "", "", err
	}
	u, p := tok.creds.BasicAuth()
	return u, p, nil
}

// Close stops the refresher and forgets every listener. It is idempotent and
// returns nil. Connections keep working until their token expires.
func (c *Credentials) Close() error {
	c.mu.Lock()
	c.closed = true
	if c.cancelDeal != nil {
		c.cancelDeal()
	}
	clear(c.listeners)
	c.mu.Unlock()
	c.stop()
	<-c.done
	c.dealers.Wait()
	return nil
}

// String describes the credentials without the token.
func (c *Credentials) String() string {
	st := c.Status()
	return fmt.Sprintf("entraredis.Credentials{scope: %s, user: %s, expires: %s}", c.set.scope, st.Username, st.ExpiresOn.Format(time.RFC3339))
}

// GoString describes the credentials without the token.
func (c *Credentials) GoString() string { return c.String() }

// Format describes the credentials without the token, whatever the verb.
func (c *Credentials) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// Status is a snapshot of the refresher for health checks and dashboards.
type Status struct {
	Username            string    // the Redis user name in use; "" before the first token
	ExpiresOn           time.Time // expiry of the token in use; zero before the first token
	LastRefresh         time.Time // when the token in use was received
	NextRefresh         time.Time // when the refresher next asks the credential
	Rotations           int64     // tokens installed after the first one
	TokenRequests       int64     // GetToken calls, retries included
	ConsecutiveFailures int       // failed attempts since the last success
	LastError           error     // the last failure, nil after a success
	LastErrorAt         time.Time // when LastError happened
	Connections         int       // connections subscribed to token updates
	Closed              bool      // Close was called: nothing is refreshed any more
}

// Valid reports whether the status has a token that has not expired at now,
// on credentials that are not closed: what a health check wants to know.
func (s Status) Valid(now time.Time) bool {
	return !s.Closed && !s.ExpiresOn.IsZero() && now.Before(s.ExpiresOn)
}

// Status returns a snapshot of the token and the refresher.
func (c *Credentials) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{
		Username:            c.set.username,
		LastRefresh:         c.lastRefresh,
		NextRefresh:         c.nextRefresh,
		Rotations:           c.rotations,
		TokenRequests:       c.requests.Load(),
		ConsecutiveFailures: c.failures,
		LastError:           c.lastErr,
		LastErrorAt:         c.lastErrAt,
		Connections:         len(c.listeners),
		Closed:              c.closed,
	}
	if c.closed {
		st.NextRefresh = time.Time{}
	}
	if c.tok != nil {
		st.Username = c.tok.creds.username
		st.ExpiresOn = c.tok.expiresOn
	}
	return st
}

// fetch asks the credential for a token and checks it.
//
// The call runs on its own goroutine, so that an attempt ends at ctx's
// deadline even when the credential ignores its context (a hung token
// request must not stop the refresher, nor Close). A call still running when
// the next attempt starts is waited for again rather than doubled; a late
// success is used, a late failure is dropped. Only the refresher calls fetch.
func (c *Credentials) fetch(ctx context.Context) (*token, error) {
	if c.pending != nil {
		select {
		case r := <-c.pending:
			c.pending = nil
			if r.err == nil {
				return c.checked(r.at)
			}
		default: // still running: wait for it below
		}
	}
	if c.pending == nil {
		c.requests.Add(1)
		ch := make(chan tokenResult, 1)
		go func() {
			at, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.set.scope}})
			ch <- tokenResult{at, err}
		}()
		c.pending = ch
	}
	select {
	case r := <-c.pending:
		c.pending = nil
		if r.err != nil {
			return nil, &TokenError{Scope: c.set.scope, Err: r.err}
		}
		return c.checked(r.at)
	case <-ctx.Done():
		return nil, &TokenError{Scope: c.set.scope, Err: ctx.Err()}
	}
}

// tokenResult is what one GetToken call returned.
type tokenResult struct {
	at  azcore.AccessToken
	err error
}

// checked parses a token the credential returned.
func (c *Credentials) checked(at azcore.AccessToken) (*token, error) {
	tok, err := c.newToken(at, time.Now())
	if err != nil {
		return nil, &TokenError{Scope: c.set.scope, Err: err}
	}
	return tok, nil
}

// newToken reads the user name and expiry of an access token.
func (c *Credentials) newToken(at azcore.AccessToken, now time.Time) (*token, error) {
	cl, err := claims.Parse(at.Token)
	if err != nil {
		return nil, err
	}
	user := c.set.username
	if user == "" {
		user = cl.ObjectID
	}
	if user == "" {
		return nil, ErrNoObjectID
	}
	exp := cl.ExpiresAt // the server enforces the claim; trust the earlier of the two
	if !at.ExpiresOn.IsZero() && at.ExpiresOn.Before(exp) {
		exp = at.ExpiresOn
	}
	if !exp.After(now) {
		return nil, fmt.Errorf("the credential returned a token that expired at %s", exp.Format(time.RFC3339))
	}
	return &token{
		creds:     &basicCredentials{username: user, password: at.Token},
		expiresOn: exp,
		refreshOn: at.RefreshOn,
		received:  now,
	}, nil
}
