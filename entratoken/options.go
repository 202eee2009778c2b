package entratoken

import (
	"log/slog"
	"math"
	"time"
)

// Scopes that Azure Cache for Redis and Azure Managed Redis accept.
const (
	// DefaultScope is the scope asked for when Options.Scope is empty.
	DefaultScope = "https://redis.azure.com/.default"
	// LegacyScope is the preview-era scope that the original samples used. Azure still
	// accepts it; there is no reason to choose it for new code.
	LegacyScope = "acca5fbb-b7e4-4009-81f1-37e38fd66d78/.default"
)

// Defaults of Options, applied by one function (Options.withDefaults) when a
// field is zero (or negative, unless the field says otherwise).
const (
	// DefaultRefreshBefore is how long before a token's expiry the refresher starts
	// asking for the next one. azidentity's credentials hand back their cached token
	// until less than 5 minutes remain: when the same token comes back, the
	// refresher asks again when the cache lets go, so a new token is in use about
	// 5 minutes before expiry, well inside Azure's 3-minute guidance. Credentials
	// without a cache (Azure CLI, azd) give the new token at once.
	DefaultRefreshBefore = 10 * time.Minute
	// DefaultRefreshJitter is the upper bound of the random time taken off every
	// refresh time, so that many clients do not AUTH at the same instant.
	DefaultRefreshJitter = 30 * time.Second
	// DefaultRetryMinDelay is the first delay after a failed or unchanged refresh.
	DefaultRetryMinDelay = time.Second
	// DefaultRetryMaxDelay caps the exponential backoff between refresh attempts.
	DefaultRetryMaxDelay = 30 * time.Second
	// DefaultAttemptTimeout bounds each call to the credential's GetToken, the first
	// one included.
	DefaultAttemptTimeout = 20 * time.Second
	// DefaultReauthSpread is the window over which a new token is handed to live
	// connections, one connection after another, so that a rotation does not mark
	// every pooled connection at the same instant.
	DefaultReauthSpread = 10 * time.Second
)

// Options configures a Source, and through it the clients of package
// entraredis. The zero value is ready to use: every field has a documented
// default, which a zero or negative duration also selects unless its field
// says otherwise. Durations are also capped by the token's lifetime (see
// RefreshBefore), so that the defaults are safe for tokens of any length, the
// few-second tokens of tests included.
//
// The three callbacks run on one goroutine of the Source, one after another
// in the order of the events, never inside a Redis command, a go-redis hook
// or a lock of this module: they may block, call Status or Close, and share
// variables among themselves without locks. A slow callback delays only the
// callbacks after it, never a refresh nor a constructor. Events wait in a
// queue of 256; when a callback is so slow that the queue is full, the oldest
// waiting event is dropped, counted in Status.DroppedEvents and logged. No
// callback starts once Close has been called. A callback that panics crashes
// the program, as a panic on any goroutine does (the credential's panics, by
// contrast, are recovered: see TokenError.Panic).
type Options struct {
	// Scope is the OAuth scope asked of the credential. Sovereign clouds and
	// LegacyScope can be set here.
	// default: DefaultScope ("https://redis.azure.com/.default")
	Scope string

	// Username is the Redis user name sent with every AUTH. Set it when the
	// credential's tokens carry no oid claim. The entraredis constructors also
	// take it from redis.Options.Username; when both are set, this one wins.
	// default: the token's "oid" claim (the principal's object ID), which is what Azure expects
	Username string

	// RefreshBefore is how long before expiry the next token is requested. It
	// is capped at half of the token's lifetime. The refresh starts earlier
	// when the credential gives a RefreshOn time.
	// default: 10 minutes (DefaultRefreshBefore)
	RefreshBefore time.Duration

	// RefreshJitter is the upper bound of the random time taken off each
	// refresh time, capped at a quarter of the refresh margin. A negative
	// value turns jitter off.
	// default: 30 seconds (DefaultRefreshJitter)
	RefreshJitter time.Duration

	// RetryMinDelay is the first delay of the exponential backoff (with
	// jitter) between attempts after a failure or after the credential
	// returned the same token again; it is capped at an eighth of
	// RetryMaxDelay. The refresher retries for as long as it is open, also
	// after the token has expired.
	// default: 1 second (DefaultRetryMinDelay)
	RetryMinDelay time.Duration
	// RetryMaxDelay caps that backoff; it is itself capped at a quarter of the
	// refresh margin, and delays shrink to a third of the token's remaining
	// life. A value below RetryMinDelay is raised to it.
	// default: 30 seconds (DefaultRetryMaxDelay)
	RetryMaxDelay time.Duration

	// AttemptTimeout bounds each GetToken call, the first one included; once a
	// token is held, it is capped at the refresh margin.
	// default: 20 seconds (DefaultAttemptTimeout)
	AttemptTimeout time.Duration

	// ReauthSpread is the window over which a new token is handed to live
	// connections, capped at a quarter of the refresh margin so that every
	// connection is re-authenticated long before the old token expires. A
	// negative value hands it to all at once.
	// default: 10 seconds (DefaultReauthSpread)
	ReauthSpread time.Duration

	// Logger receives the library's logs: refreshes at Info, retries at Warn,
	// a token that could not be replaced before it expired at Error, refused
	// re-AUTHs at Warn, a connection that stops re-authenticating in place at
	// Warn. Tokens are never logged. It is called from the refresher
	// goroutine, from the goroutine that reports a refused AUTH, and from the
	// client layer's connection goroutines.
	// default: slog.Default()
	Logger *slog.Logger

	// OnTokenRefreshed is called after a new token was installed, the first
	// one included. It runs on the Source's event goroutine (see Options);
	// the first token's call never delays the constructor that waits for it,
	// and may run before that constructor returns (a callback that uses the
	// client gets it through a synchronised variable).
	// default: none
	OnTokenRefreshed func(TokenRefreshed)
	// OnRefreshFailed is called after each failed refresh attempt, on the
	// Source's event goroutine (see Options). Connections keep the last valid
	// token meanwhile.
	// default: none
	OnRefreshFailed func(RefreshFailed)
	// OnReauthFailed is called when the server refused the AUTH that moves a
	// live connection to a new token (the connection keeps its previous
	// authentication). A new connection's refused first AUTH is not reported
	// here: it fails that connection's dial, the command that dialed returns
	// the explained AuthError, and new connections are held back for a while
	// (see Source.ReportDialAuth, Status.Dial). Client layers report it with
	// Source.ReportReauth; it runs on the Source's event goroutine (see
	// Options), never inside the client's hook.
	// default: none
	OnReauthFailed func(ReauthFailed)

	// Plaintext turns TLS off. Azure requires TLS: this exists for local
	// emulators and is refused for any host but a loopback one unless
	// AllowPlaintextRemote is also set.
	// default: false
	Plaintext bool
	// AllowPlaintextRemote allows Plaintext for a host that is not loopback. The
	// token, a bearer secret, then crosses the network in clear.
	// default: false
	AllowPlaintextRemote bool
}

// withDefaults returns a copy of o (which may be nil) with every default
// applied: the one place where defaults are decided.
func (o *Options) withDefaults() Options {
	var s Options
	if o != nil {
		s = *o
	}
	// def applies a default to a zero duration; a negative one means the
	// default too, or zero (off) where off makes sense.
	def := func(d *time.Duration, v time.Duration, negativeIsOff bool) {
		switch {
		case *d < 0 && negativeIsOff:
			*d = 0
		case *d <= 0:
			*d = v
		}
	}
	if s.Scope == "" {
		s.Scope = DefaultScope
	}
	def(&s.RefreshBefore, DefaultRefreshBefore, false)
	def(&s.RefreshJitter, DefaultRefreshJitter, true)
	def(&s.RetryMinDelay, DefaultRetryMinDelay, false)
	def(&s.RetryMaxDelay, DefaultRetryMaxDelay, false)
	def(&s.AttemptTimeout, DefaultAttemptTimeout, false)
	def(&s.ReauthSpread, DefaultReauthSpread, true)
	if s.RetryMaxDelay < s.RetryMinDelay {
		s.RetryMaxDelay = s.RetryMinDelay
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	return s
}

// timing holds the durations that apply to one token, once capped by its
// lifetime. A token computes its own once, when it is received (see
// newToken); the Source holds the one that applies before the first token.
type timing struct {
	margin, jitter, retryMin, retryMax, attemptTimeout, spread time.Duration
}

// unknownLife is the life given to timingFor when no token is held: nothing
// to cap by.
const unknownLife = time.Duration(math.MaxInt64)

// timingFor caps the configured durations (o has its defaults applied) for a
// token that lives `life` from when it was received: the refresh margin is at
// most half the life, and every other duration is a fraction of the margin,
// so that a short-lived token never makes the refresher spin or hand out a
// token after it expired. With unknownLife, AttemptTimeout is not capped.
func (o *Options) timingFor(life time.Duration) timing {
	const floor = 10 * time.Millisecond
	t := timing{
		margin:         max(min(o.RefreshBefore, life/2), floor),
		attemptTimeout: o.AttemptTimeout,
	}
	t.jitter = min(o.RefreshJitter, t.margin/4)
	t.spread = min(o.ReauthSpread, t.margin/4)
	t.retryMax = max(min(o.RetryMaxDelay, t.margin/4), floor)
	t.retryMin = max(min(o.RetryMinDelay, t.retryMax/8), floor/10)
	if life != unknownLife {
		t.attemptTimeout = max(min(t.attemptTimeout, t.margin), 100*time.Millisecond)
	}
	return t
}
