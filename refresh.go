package entraredis

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9/auth"
)

// run is the refresher: one goroutine per Credentials, and the only caller of
// the credential's GetToken, so there is one request per attempt whatever the
// number of connections. It fetches the first token at once, then sleeps until
// the next token is due, asks for it, and on failure or on an unchanged token
// retries with exponential backoff until it succeeds or Close is called.
func (c *Credentials) run() {
	defer close(c.done)
	var retry *backoff.ExponentialBackOff
	attempts := 0
	first := true
	for {
		timeout := c.set.attemptTimeout
		if cur := c.peek(); cur != nil {
			timeout = c.set.timingFor(cur.life()).attemptTimeout
		}
		ctx, cancel := context.WithTimeout(c.runCtx, timeout)
		tok, err := c.fetch(ctx)
		cancel()
		if c.runCtx.Err() != nil {
			return
		}
		attempts++

		now := time.Now()
		var next time.Time
		c.mu.Lock()
		prev := c.tok
		switch {
		case err == nil && (prev == nil || tok.creds.password != prev.creds.password):
			next = c.installLocked(tok, now)
			c.mu.Unlock()
			c.reportRefreshed(tok, next, attempts, prev != nil)
			attempts, retry = 0, nil
		default:
			if retry == nil {
				retry = c.newBackoff(prev)
			}
			next = now.Add(c.retryDelay(retry, prev, now))
			if err == nil {
				next = c.untilCacheOpens(prev, next)
			}
			if err != nil {
				c.failures++
				c.lastErr, c.lastErrAt = err, now
			}
			failures := c.failures
			c.nextRefresh = next
			var exp time.Time
			if prev != nil {
				exp = prev.expiresOn
			}
			c.mu.Unlock()
			if err != nil {
				c.reportFailed(err, failures, next, exp, now)
			} else {
				c.set.log.Debug("entraredis: the credential returned the token in use again; retrying",
					"attempt", attempts, "next_retry", next, "expires_on", exp)
			}
		}
		if first {
			close(c.firstDone)
			first = false
		}

		t := time.NewTimer(time.Until(next))
		select {
		case <-t.C:
		case <-c.runCtx.Done():
			t.Stop()
			return
		}
	}
}

// peek returns the token in use, nil before the first one.
func (c *Credentials) peek() *token {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tok
}

// installLocked makes tok the token in use, starts handing it to the live
// connections, and returns when the next refresh is due. c.mu is held.
func (c *Credentials) installLocked(tok *token, now time.Time) time.Time {
	prev := c.tok
	c.tok = tok
	c.lastRefresh = now
	c.failures, c.lastErr, c.lastErrAt = 0, nil, time.Time{}
	next := c.refreshTime(tok)
	c.nextRefresh = next
	if prev != nil {
		c.rotations++
		// The deal must end well before the previous token expires: after an
		// outage little of its life may be left.
		window := min(c.set.timingFor(tok.life()).spread, prev.expiresOn.Sub(now)/2)
		c.dealLocked(max(window, 0))
	}
	return next
}

// refreshTime is when to ask for the token after tok: the earliest of the
// credential's RefreshOn and ExpiresOn minus the refresh margin, minus a random
// jitter, and never before now.
func (c *Credentials) refreshTime(tok *token) time.Time {
	tm := c.set.timingFor(tok.life())
	at := tok.expiresOn.Add(-tm.margin)
	if !tok.refreshOn.IsZero() && tok.refreshOn.Before(at) && tok.refreshOn.After(tok.received) {
		at = tok.refreshOn
	}
	if tm.jitter > 0 {
		at = at.Add(-rand.N(tm.jitter))
	}
	if at.Before(tok.received) {
		at = tok.received
	}
	return at
}

// credentialCacheWindow is how long before expiry azidentity's credentials
// stop handing back their cached token and fetch a new one.
const credentialCacheWindow = 5 * time.Minute

// untilCacheOpens is when to ask again after the credential returned the
// token in use: not before azidentity's cache lets go of it (with a jitter
// below the configured one), rather than polling the cache until then; next,
// the backoff's choice, when that is later.
func (c *Credentials) untilCacheOpens(cur *token, next time.Time) time.Time {
	opens := cur.expiresOn.Add(-credentialCacheWindow)
	if !opens.After(next) {
		return next
	}
	if j := c.set.timingFor(cur.life()).jitter; j > 0 {
		opens = opens.Add(rand.N(j))
	}
	return opens
}

// newBackoff starts a retry sequence, its bounds taken from the token in use.
func (c *Credentials) newBackoff(cur *token) *backoff.ExponentialBackOff {
	tm := c.set.timingFor(math.MaxInt64) // no token yet: nothing to cap by
	if cur != nil {
		tm = c.set.timingFor(cur.life())
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval:     2 * tm.retryMin, // randomised by ±50%: the first delay is at least retryMin
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         tm.retryMax * 2 / 3, // randomised by ±50%: at most retryMax
	}
	b.InitialInterval = min(b.InitialInterval, b.MaxInterval)
	b.Reset()
	return b
}

// retryDelay is the wait before the next attempt: the backoff's next step,
// at most the retry bound, and at most a third of the life left to the token
// in use, so that attempts come closer together as its expiry nears.
func (c *Credentials) retryDelay(b *backoff.ExponentialBackOff, cur *token, now time.Time) time.Duration {
	d := b.NextBackOff()
	if cur == nil {
		return min(d, c.set.retryMax)
	}
	tm := c.set.timingFor(cur.life())
	d = min(d, tm.retryMax)
	if left := cur.expiresOn.Sub(now); left > 0 {
		d = min(d, max(left/3, tm.retryMin))
	}
	return d
}

// dealLocked hands the new token to every subscribed listener, one after another,
// spread evenly over the window, in a random order. A rotation that comes
// while the previous one is still being dealt cancels it: the listeners not
// reached yet get the newer token from the new deal. c.mu is held.
func (c *Credentials) dealLocked(window time.Duration) {
	if c.cancelDeal != nil {
		c.cancelDeal()
	}
	if len(c.listeners) == 0 {
		c.cancelDeal = nil
		return
	}
	ls := make([]auth.CredentialsListener, 0, len(c.listeners))
	for l := range c.listeners {
		ls = append(ls, l)
	}
	rand.Shuffle(len(ls), func(i, j int) { ls[i], ls[j] = ls[j], ls[i] })
	ctx, cancel := context.WithCancel(c.runCtx)
	c.cancelDeal = cancel
	step := window / time.Duration(len(ls))
	c.dealers.Add(1)
	go func() {
		defer c.dealers.Done()
		defer cancel()
		var t *time.Timer
		for i, l := range ls {
			if i > 0 && step > 0 {
				if t == nil {
					t = time.NewTimer(step)
				} else {
					t.Reset(step)
				}
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
			c.mu.Lock()
			_, live := c.listeners[l]
			c.mu.Unlock()
			if live {
				l.OnNext(c.live)
			}
		}
	}()
}

func (c *Credentials) reportRefreshed(tok *token, next time.Time, attempts int, rotation bool) {
	msg := "entraredis: token received"
	if rotation {
		msg = "entraredis: token refreshed"
	}
	c.set.log.Info(msg, "user", tok.creds.username, "expires_on", tok.expiresOn, "refresh_at", next, "attempts", attempts)
	if f := c.set.onRefreshed; f != nil {
		f(TokenRefreshed{Username: tok.creds.username, ExpiresOn: tok.expiresOn, RefreshAt: next, Attempts: attempts})
	}
}

func (c *Credentials) reportFailed(err error, attempt int, next, exp, now time.Time) {
	level := slog.LevelWarn
	msg := "entraredis: token refresh failed; connections keep the current token"
	switch {
	case exp.IsZero():
		msg = "entraredis: could not get a token yet; retrying"
	case !now.Before(exp):
		level = slog.LevelError
		msg = "entraredis: token refresh failed and no valid token is held; new connections fail until a refresh succeeds"
	}
	c.set.log.Log(context.Background(), level, msg, "attempt", attempt, "next_retry", next, "expires_on", exp, "err", err)
	if f := c.set.onFailed; f != nil {
		f(RefreshFailed{Attempt: attempt, Err: err, NextRetry: next, ExpiresOn: exp})
	}
}
