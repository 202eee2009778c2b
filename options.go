package entraredis

import (
	"log/slog"
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

// Defaults of Options. Each applies when the matching field is zero.
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

// Options configures Credentials, and through them Client and ClusterClient. The
// zero value is ready to use: every field has a documented default, which a
// zero or negative duration also selects unless its field says otherwise. Durations are
// also capped by the token's lifetime (see RefreshBefore), so that the defaults are
// safe for tokens of any length, the few-second tokens of tests included.
type Options struct {
	// Scope is the OAuth scope asked of the credential. Default DefaultScope.
	// Sovereign clouds and LegacyScope can be set here.
	Scope string

	// Username is the Redis user name sent with every AUTH. Default: the token's
	// "oid" claim (the principal's object ID), which is what Azure expects. Set it
	// when the credential's tokens carry no oid claim. NewClient also takes it
	// from redis.Options.Username; when both are set, this one wins.
	Username string

	// RefreshBefore is how long before expiry the next token is requested.
	// Default DefaultRefreshBefore. It is capped at half of the token's lifetime.
	// The refresh starts earlier when the credential gives a RefreshOn time.
	RefreshBefore time.Duration

	// RefreshJitter is the upper bound of the random time taken off each refresh
	// time. Default DefaultRefreshJitter, capped at a quarter of the refresh
	// margin. A negative value turns jitter off.
	RefreshJitter time.Duration

	// RetryMinDelay and RetryMaxDelay bound the exponential backoff (with jitter)
	// between attempts after a failure or after the credential returned the same
	// token again. Defaults DefaultRetryMinDelay and DefaultRetryMaxDelay; the
	// maximum is capped at a quarter of RefreshBefore, the minimum at an eighth
	// of that. The refresher retries for as long as it is open, also after the
	// token has expired.
	RetryMinDelay time.Duration
	RetryMaxDelay time.Duration

	// AttemptTimeout bounds each GetToken call. Default DefaultAttemptTimeout.
	AttemptTimeout time.Duration

	// ReauthSpread is the window over which a new token is handed to live
	// connections. Default DefaultReauthSpread, capped at a quarter of the
	// refresh margin so that every connection is re-authenticated long before
	// the old token expires. A negative value hands it to all at once.
	ReauthSpread time.Duration

	// Logger receives the library's logs: refreshes at Info, retries at Warn,
	// a token that could not be replaced before it expired at Error. Tokens are
	// never logged. Default slog.Default().
	Logger *slog.Logger

	// OnTokenRefreshed is called after a new token was installed.
	OnTokenRefreshed func(TokenRefreshed)
	// OnRefreshFailed is called after each failed refresh attempt. Connections keep
	// the last valid token meanwhile.
	OnRefreshFailed func(RefreshFailed)
	// OnReauthFailed is called when the server refused an AUTH: the one that
	// moves a live connection to a new token, or the one go-redis falls back to
	// when HELLO is refused on a new connection. Only Client and ClusterClient
	// report it.
	OnReauthFailed func(ReauthFailed)

	// Plaintext turns TLS off. Azure requires TLS: this exists for local emulators
	// and is refused for any host but a loopback one unless AllowPlaintextRemote is
	// also set. Default false.
	Plaintext bool
	// AllowPlaintextRemote allows Plaintext for a host that is not loopback. The
	// token, a bearer secret, then crosses the network in clear. Default false.
	AllowPlaintextRemote bool
}

// TokenRefreshed describes a token that was just installed. It never holds the token.
type TokenRefreshed struct {
	Username  string    // the Redis user name in use
	ExpiresOn time.Time // the new token's expiry
	RefreshAt time.Time // when the refresher will start asking for the next one
	Attempts  int       // attempts it took, 1 when the first one succeeded
}

// RefreshFailed describes a failed refresh attempt.
type RefreshFailed struct {
	Attempt   int       // consecutive failures, 1 for the first
	Err       error     // why it failed
	NextRetry time.Time // when the refresher tries again
	ExpiresOn time.Time // expiry of the token still in use; zero when there is none
}

// ReauthFailed describes a live connection that the server refused to move to a
// new token. The connection keeps its previous authentication until it expires.
type ReauthFailed struct {
	Err error // the server's reply, explained (see AuthError)
}

// settings are Options with every default applied.
type settings struct {
	scope, username                 string
	refreshBefore, jitter           time.Duration
	retryMin, retryMax              time.Duration
	attemptTimeout, spread          time.Duration
	log                             *slog.Logger
	onRefreshed                     func(TokenRefreshed)
	onFailed                        func(RefreshFailed)
	onReauthFailed                  func(ReauthFailed)
	plaintext, allowPlaintextRemote bool
}

func (o *Options) settings() settings {
	var opt Options
	if o != nil {
		opt = *o
	}
	s := settings{
		scope:                opt.Scope,
		username:             opt.Username,
		refreshBefore:        opt.RefreshBefore,
		jitter:               opt.RefreshJitter,
		retryMin:             opt.RetryMinDelay,
		retryMax:             opt.RetryMaxDelay,
		attemptTimeout:       opt.AttemptTimeout,
		spread:               opt.ReauthSpread,
		log:                  opt.Logger,
		onRefreshed:          opt.OnTokenRefreshed,
		onFailed:             opt.OnRefreshFailed,
		onReauthFailed:       opt.OnReauthFailed,
		plaintext:            opt.Plaintext,
		allowPlaintextRemote: opt.AllowPlaintextRemote,
	}
	// def applies a default to a zero duration; a negative one means the
	// default too, or zero (off) where off makes sense.
	def := func(d *time.Duration, v time.Duration, negativeIsOff ...bool) {
		switch {
		case *d < 0 && len(negativeIsOff) > 0:
			*d = 0
		case *d <= 0:
			*d = v
		}
	}
	if s.scope == "" {
		s.scope = DefaultScope
	}
	def(&s.refreshBefore, DefaultRefreshBefore)
	def(&s.jitter, DefaultRefreshJitter, true)
	def(&s.retryMin, DefaultRetryMinDelay)
	def(&s.retryMax, DefaultRetryMaxDelay)
	def(&s.attemptTimeout, DefaultAttemptTimeout)
	def(&s.spread, DefaultReauthSpread, true)
	if s.retryMax < s.retryMin {
		s.retryMax = s.retryMin
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// timing holds the durations that apply to one token, once capped by its lifetime.
type timing struct {
	margin, jitter, retryMin, retryMax, attemptTimeout, spread time.Duration
}

// timingFor caps the configured durations for a token that lives `life` from when
// it was received: the refresh margin is at most half the life, and every other
// duration is a fraction of the margin, so that a short-lived token never makes
// the refresher spin or hand out a token after it expired.
func (s *settings) timingFor(life time.Duration) timing {
	const floor = 10 * time.Millisecond
	t := timing{
		margin:         min(s.refreshBefore, life/2),
		jitter:         s.jitter,
		retryMin:       s.retryMin,
		retryMax:       s.retryMax,
		attemptTimeout: s.attemptTimeout,
		spread:         s.spread,
	}
	t.margin = max(t.margin, floor)
	t.jitter = min(t.jitter, t.margin/4)
	t.spread = min(t.spread, t.margin/4)
	t.retryMax = max(min(t.retryMax, t.margin/4), floor)
	t.retryMin = max(min(t.retryMin, t.retryMax/8), floor/10)
	t.attemptTimeout = max(min(t.attemptTimeout, t.margin), 100*time.Millisecond)
	return t
}
