package tokensource

import (
	"log/slog"
	"math"
	"time"

	"github.com/entraredis/entraredis/entratoken"
)

// Defaults of Options, applied by one function (withDefaults) when a
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

// withDefaults returns a copy of o (which may be nil) with every default
// applied: the one place where defaults are decided.
func withDefaults(o *entratoken.Options) entratoken.Options {
	var s entratoken.Options
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
		s.Scope = entratoken.DefaultScope
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
func timingFor(o *entratoken.Options, life time.Duration) timing {
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
