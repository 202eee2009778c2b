package entraredistest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Role is what a principal may do on a Server, like Azure's data access
// policies.
type Role string

const (
	// RoleOwner may run every command (Azure "Data Owner").
	RoleOwner Role = "owner"
	// RoleContributor may run every data command, but no @admin or
	// @dangerous one (Azure "Data Contributor").
	RoleContributor Role = "contributor"
	// RoleReader may run read-only commands (+@read +@connection); writes get
	// NOPERM (Azure "Data Reader").
	RoleReader Role = "reader"
)

// ErrInjected is wrapped by the error of a GetToken failure injected with
// FailNext or FailFor when no error was given.
var ErrInjected = errors.New("entraredistest: injected token request failure")

// ErrScope is wrapped by the error of GetToken for a scope that is not the
// Redis resource's.
var ErrScope = errors.New("AADSTS500011: the resource principal was not found in the tenant")

// acceptedScopes are the scopes a Credential mints tokens for.
var acceptedScopes = map[string]bool{
	"https://redis.azure.com/.default": true,
	"https://redis.azure.com":          true,
	"https://redis.azure.com/":         true,
	legacyRedisAppID + "/.default":     true,
}

// CredentialOptions configures a Credential.
type CredentialOptions struct {
	// ObjectID of the principal (the oid claim, the Redis username).
	// Default: a random UUID.
	ObjectID string
	// Role of the principal on a Server. Default RoleOwner.
	Role Role
	// Lifetime of each minted token. Default 1h.
	Lifetime time.Duration
	// CacheWindow mimics azidentity's token cache: when > 0, GetToken
	// returns the same token until less than CacheWindow of its life
	// remains (azidentity: 5m). Default 0: every GetToken mints a new token.
	CacheWindow time.Duration
}

// Credential is an azcore.TokenCredential for one principal. It mints tokens
// signed by its Issuer, counts requests and can inject failures and delays.
// Its clock is time.Now, so it follows testing/synctest's fake time. It is
// safe for concurrent use.
type Credential struct {
	issuer *Issuer
	oid    string
	role   Role
	appID  string

	requests atomic.Int64
	minted   atomic.Int64

	mu          sync.Mutex
	lifetime    time.Duration
	cacheWindow time.Duration
	cached      azcore.AccessToken
	failN       int
	failNErr    error
	failUntil   time.Time
	failForErr  error
	delay       time.Duration
}

var _ azcore.TokenCredential = (*Credential)(nil)

func newCredential(is *Issuer, opts CredentialOptions) *Credential {
	if opts.ObjectID == "" {
		opts.ObjectID = newUUID()
	}
	if opts.Role == "" {
		opts.Role = RoleOwner
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = time.Hour
	}
	return &Credential{
		issuer:      is,
		oid:         opts.ObjectID,
		role:        opts.Role,
		appID:       newUUID(),
		lifetime:    opts.Lifetime,
		cacheWindow: opts.CacheWindow,
	}
}

// GetToken returns a token for the principal. Accepted scopes:
// "https://redis.azure.com/.default", "https://redis.azure.com" (with or
// without a trailing slash) and "acca5fbb-b7e4-4009-81f1-37e38fd66d78/.default";
// any other scope gives an error wrapping ErrScope, like Entra's AADSTS500011.
// It waits the delay set with SetDelay (returning ctx.Err() if ctx ends
// first), then fails if a failure is injected, then returns the cached token
// when CacheWindow allows, else mints one. ExpiresOn is the token's exp
// (now+Lifetime); RefreshOn is zero.
func (c *Credential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.requests.Add(1)
	if len(o.Scopes) == 0 {
		return azcore.AccessToken{}, fmt.Errorf("%w: no scope requested", ErrScope)
	}
	for _, s := range o.Scopes {
		if !acceptedScopes[s] {
			return azcore.AccessToken{}, fmt.Errorf("%w: scope %q is not the Redis resource (use %q)", ErrScope, s, "https://redis.azure.com/.default")
		}
	}
	if err := ctx.Err(); err != nil {
		return azcore.AccessToken{}, err
	}
	c.mu.Lock()
	delay := c.delay
	c.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return azcore.AccessToken{}, ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.failN > 0 {
		c.failN--
		return azcore.AccessToken{}, c.failNErr
	}
	if now.Before(c.failUntil) {
		return azcore.AccessToken{}, c.failForErr
	}
	if c.cacheWindow > 0 && c.cached.Token != "" && c.cached.ExpiresOn.Sub(now) >= c.cacheWindow {
		return c.cached, nil
	}
	exp := now.Add(c.lifetime).Truncate(time.Millisecond)
	tok, err := c.issuer.Mint(TokenSpec{ObjectID: c.oid, AppID: c.appID, IssuedAt: now, NotBefore: now, ExpiresAt: exp})
	if err != nil {
		return azcore.AccessToken{}, err
	}
	c.minted.Add(1)
	c.cached = azcore.AccessToken{Token: tok, ExpiresOn: exp}
	return c.cached, nil
}

// ObjectID returns the principal's object ID (the oid claim).
func (c *Credential) ObjectID() string { return c.oid }

// Role returns the principal's role.
func (c *Credential) Role() Role { return c.role }

// Issuer returns the issuer that signs this credential's tokens.
func (c *Credential) Issuer() *Issuer { return c.issuer }

// Requests returns the number of GetToken calls so far.
func (c *Credential) Requests() int64 { return c.requests.Load() }

// Minted returns the number of new tokens minted so far: what a real
// credential would have fetched over the network (cache hits not counted).
func (c *Credential) Minted() int64 { return c.minted.Load() }

// FailNext makes the next n GetToken calls fail with err (nil err: an error
// wrapping ErrInjected). n <= 0 cancels it.
func (c *Credential) FailNext(n int, err error) {
	if err == nil {
		err = fmt.Errorf("%w (FailNext)", ErrInjected)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failN, c.failNErr = max(n, 0), err
}

// FailFor makes GetToken calls fail with err (nil err: an error wrapping
// ErrInjected) until d from now. d <= 0 cancels it.
func (c *Credential) FailFor(d time.Duration, err error) {
	if err == nil {
		err = fmt.Errorf("%w (FailFor)", ErrInjected)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failUntil, c.failForErr = time.Now().Add(d), err
}

// SetDelay makes every later GetToken call wait d first (or until its
// context ends). 0 (the default) removes the delay.
func (c *Credential) SetDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delay = d
}

// SetLifetime changes the lifetime of tokens minted from now on. d <= 0
// restores the default 1h.
func (c *Credential) SetLifetime(d time.Duration) {
	if d <= 0 {
		d = time.Hour
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lifetime = d
}

// ForgetCache drops the cached token (when CacheWindow > 0), so the next
// GetToken mints a new one.
func (c *Credential) ForgetCache() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cached = azcore.AccessToken{}
}

// String describes the credential without its cached token.
func (c *Credential) String() string {
	return fmt.Sprintf("entraredistest.Credential{oid: %s, role: %s, token: [redacted]}", c.oid, c.role)
}

// GoString describes the credential without its cached token.
func (c *Credential) GoString() string { return c.String() }

// Format describes the credential without its cached token, whatever the verb.
func (c *Credential) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }
