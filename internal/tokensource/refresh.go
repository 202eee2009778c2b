package tokensource

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/cenkalti/backoff/v5"

	"github.com/entraredis/entraredis/entratoken"
)

// refresher is the state that only the refresher goroutine touches: it lives
// on that goroutine's stack (see Source.run), not in the Source.
type refresher struct {
	s          *Source
	retry      *backoff.ExponentialBackOff // the retry sequence in progress; nil after a success
	attempts   int                         // attempts since the last installed token
	pending    chan tokenResult            // a GetToken call still running, nil when none
	cancelDeal context.CancelFunc          // stops the hand-out of the previous token
}

// tokenResult is what one GetToken call returned.
type tokenResult struct {
	at  azcore.AccessToken
	err error
}

// run is the refresher: one goroutine per Source, and the only caller of
// the credential's GetToken, so there is one request per attempt whatever the
// number of connections. It fetches the first token at once, then sleeps until
// the next token is due, asks for it, and on failure or on an unchanged token
// retries with exponential backoff until it succeeds or Close is called.
func (s *Source) run() {
	defer close(s.done)
	r := &refresher{s: s}
	defer func() {
		if r.cancelDeal != nil {
			r.cancelDeal()
		}
	}()
	first := true
	for {
		ctx, cancel := context.WithTimeout(s.runCtx, r.timing().attemptTimeout)
		tok, err := r.fetch(ctx)
		cancel()
		if s.runCtx.Err() != nil {
			return
		}
		r.attempts++
		next := r.handle(tok, err, time.Now())
		if first {
			close(s.firstDone)
			first = false
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-t.C:
		case <-s.runCtx.Done():
			t.Stop()
			return
		}
	}
}

// current returns the token in use, nil before the first one.
func (r *refresher) current() *token {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.s.tok
}

// timing is the timing of the token in use, or the Source's initial one.
func (r *refresher) timing() timing {
	if cur := r.current(); cur != nil {
		return cur.tm
	}
	return r.s.initial
}

// handle records the outcome of one attempt and returns when to ask next.
func (r *refresher) handle(tok *token, err error, now time.Time) time.Time {
	s := r.s
	s.mu.Lock()
	prev := s.tok
	if err == nil && (prev == nil || tok.password != prev.password) {
		next := r.installLocked(tok, now)
		s.mu.Unlock()
		r.reportRefreshed(tok, next, prev != nil)
		r.attempts, r.retry = 0, nil
		return next
	}
	tm := s.initial
	if prev != nil {
		tm = prev.tm
	}
	if r.retry == nil {
		r.retry = newBackoff(tm)
	}
	next := now.Add(retryDelay(r.retry, tm, prev, now))
	if err == nil {
		next = untilCacheOpens(prev, next)
	} else {
		s.failures++
		s.lastErr, s.lastErrAt = err, now
		if s.failedKinds == nil {
			s.failedKinds = make(map[entratoken.FailureKind]int64)
		}
		s.failedKinds[entratoken.FailureKindOf(err)]++
	}
	failures := s.failures
	s.nextRefresh = next
	state := prev.state(false, now)
	var exp time.Time
	if prev != nil {
		exp = prev.expiresOn
	}
	s.mu.Unlock()
	if err != nil {
		r.reportFailed(err, failures, next, exp, state)
	} else {
		s.opts.Logger.Debug("entraredis: the credential returned the token in use again; retrying",
			"attempt", r.attempts, "next_retry", next, "expires_on", exp)
	}
	return next
}

// fetch asks the credential for a token and checks it.
//
// The call runs on its own goroutine, so that an attempt ends at ctx's
// deadline even when the credential ignores its context (a hung token
// request must not stop the refresher, nor Close). A call still running when
// the next attempt starts is waited for again rather than doubled; a late
// success is used, a late failure is dropped.
func (r *refresher) fetch(ctx context.Context) (*token, error) {
	s := r.s
	if r.pending != nil {
		select {
		case res := <-r.pending:
			r.pending = nil
			if res.err == nil {
				return newToken(&s.opts, res.at, time.Now())
			}
		default: // still running: wait for it below
		}
	}
	if r.pending == nil {
		s.requests.Add(1)
		ch := make(chan tokenResult, 1)
		go func() {
			at, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{s.opts.Scope}})
			ch <- tokenResult{at, err}
		}()
		r.pending = ch
	}
	select {
	case res := <-r.pending:
		r.pending = nil
		if res.err != nil {
			return nil, newTokenError(s.opts.Scope, res.err)
		}
		return newToken(&s.opts, res.at, time.Now())
	case <-ctx.Done():
		return nil, &entratoken.TokenError{Scope: s.opts.Scope, Err: ctx.Err()}
	}
}

// safeCredential turns a panic of the credential's GetToken into an error:
// the refresher goes on retrying, and the process lives.
type safeCredential struct{ azcore.TokenCredential }

func (c safeCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (at azcore.AccessToken, err error) {
	defer func() {
		if v := recover(); v != nil {
			at, err = azcore.AccessToken{}, &panicError{value: v}
		}
	}()
	return c.TokenCredential.GetToken(ctx, o)
}

// panicError is a panic of the credential's GetToken.
type panicError struct{ value any }

func (e *panicError) Error() string {
	return fmt.Sprintf("the credential's GetToken panicked: %v", e.value)
}

// Hint is TokenError's Hint for a panic.
func (e *panicError) Hint() string {
	return "a bug in the credential or in what it calls: the panic was recovered, its value is in TokenError.Panic, and the refresher keeps asking; fix or replace the credential"
}

// newTokenError wraps an error of the credential.
func newTokenError(scope string, err error) *entratoken.TokenError {
	te := &entratoken.TokenError{Scope: scope, Err: err}
	if pe, ok := err.(*panicError); ok {
		te.Panic = pe.value
	}
	return te
}

// installLocked makes tok the token in use, starts handing it to the live
// connections, and returns when the next refresh is due. s.mu is held.
func (r *refresher) installLocked(tok *token, now time.Time) time.Time {
	s := r.s
	prev := s.tok
	tok.generation = 1
	if prev != nil {
		tok.generation = prev.generation + 1
	}
	tok.refreshAt = refreshTime(tok)
	s.tok = tok
	s.failures, s.lastErr, s.lastErrAt = 0, nil, time.Time{}
	s.nextRefresh = tok.refreshAt
	if prev != nil {
		// The hand-out must end well before the previous token expires: after
		// an outage little of its life may be left.
		window := min(tok.tm.spread, prev.expiresOn.Sub(now)/2)
		r.dealLocked(Token{tok}, max(window, 0))
	}
	return tok.refreshAt
}

// refreshTime is when to ask for the token after tok: the earliest of the
// credential's RefreshOn and ExpiresOn minus the refresh margin, minus a random
// jitter, and never before the token was received.
func refreshTime(tok *token) time.Time {
	at := tok.expiresOn.Add(-tok.tm.margin)
	if !tok.refreshOn.IsZero() && tok.refreshOn.Before(at) && tok.refreshOn.After(tok.received) {
		at = tok.refreshOn
	}
	if tok.tm.jitter > 0 {
		at = at.Add(-rand.N(tok.tm.jitter))
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
func untilCacheOpens(cur *token, next time.Time) time.Time {
	opens := cur.expiresOn.Add(-credentialCacheWindow)
	if !opens.After(next) {
		return next
	}
	if j := cur.tm.jitter; j > 0 {
		opens = opens.Add(rand.N(j))
	}
	return opens
}

// newBackoff starts a retry sequence with the bounds of tm.
func newBackoff(tm timing) *backoff.ExponentialBackOff {
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
// in use (cur, nil when none), so that attempts come closer together as its
// expiry nears.
func retryDelay(b *backoff.ExponentialBackOff, tm timing, cur *token, now time.Time) time.Duration {
	d := min(b.NextBackOff(), tm.retryMax)
	if cur == nil {
		return d
	}
	if left := cur.expiresOn.Sub(now); left > 0 {
		d = min(d, max(left/3, tm.retryMin))
	}
	return d
}

// dealLocked hands tok to every subscribed listener, one after another,
// spread evenly over the window, in a random order, on a hand-out goroutine.
// A rotation that comes while the previous one is still being dealt cancels
// it: the listeners not reached yet get the newer token from the new deal.
// s.mu is held.
func (r *refresher) dealLocked(tok Token, window time.Duration) {
	s := r.s
	if r.cancelDeal != nil {
		r.cancelDeal()
		r.cancelDeal = nil
	}
	if len(s.listeners) == 0 {
		return
	}
	ls := make([]Listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	rand.Shuffle(len(ls), func(i, j int) { ls[i], ls[j] = ls[j], ls[i] })
	ctx, cancel := context.WithCancel(s.runCtx)
	r.cancelDeal = cancel
	step := window / time.Duration(len(ls))
	s.dealers.Add(1)
	go func() {
		defer s.dealers.Done()
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
			s.mu.Lock()
			_, live := s.listeners[l]
			s.mu.Unlock()
			if live {
				l.OnToken(tok)
			}
		}
	}()
}

// reportRefreshed logs a new token and queues its OnTokenRefreshed event.
func (r *refresher) reportRefreshed(tok *token, next time.Time, rotation bool) {
	o := &r.s.opts
	msg := "entraredis: token received"
	if rotation {
		msg = "entraredis: token refreshed"
	}
	o.Logger.Info(msg, "user", tok.username, "expires_on", tok.expiresOn, "refresh_at", next, "attempts", r.attempts)
	if f := o.OnTokenRefreshed; f != nil {
		e := entratoken.TokenRefreshed{Username: tok.username, ExpiresOn: tok.expiresOn, RefreshAt: next, Attempts: r.attempts}
		r.s.ev.post(func() { f(e) })
	}
}

// reportFailed logs a failed attempt, at a level that depends on the state
// of the token in use, and queues its OnRefreshFailed event.
func (r *refresher) reportFailed(err error, attempt int, next, exp time.Time, state entratoken.TokenState) {
	o := &r.s.opts
	level := slog.LevelWarn
	msg := "entraredis: token refresh failed; connections keep the current token"
	switch state {
	case entratoken.StateNoToken:
		msg = "entraredis: could not get a token yet; retrying"
	case entratoken.StateExpired:
		level = slog.LevelError
		msg = "entraredis: token refresh failed and no valid token is held; new connections fail until a refresh succeeds"
	}
	o.Logger.Log(context.Background(), level, msg, "attempt", attempt, "next_retry", next, "expires_on", exp, "err", err)
	if f := o.OnRefreshFailed; f != nil {
		e := entratoken.RefreshFailed{Attempt: attempt, Err: err, NextRetry: next, ExpiresOn: exp}
		r.s.ev.post(func() { f(e) })
	}
}
