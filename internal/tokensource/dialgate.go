package tokensource

import (
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/errs"
)

// dialBackoffMin is the first wait after the server refused the token in use
// for a new connection. Each probe that follows doubles it, up to
// Options.RetryMaxDelay as capped by the token's timing.
const dialBackoffMin = time.Second

// RefusedError is the error of a new connection that was not dialed: the
// server refused the token in use (Auth, explained), and the next connection
// is tried in RetryIn. It matches ErrTokenRefused, the AuthError and the
// server's reply.
type RefusedError struct {
	Auth    *entratoken.AuthError // the server's refusal, explained
	RetryIn time.Duration         // how long until a new connection is tried again
}

// Error returns the server's reply followed, in brackets, by why the
// connection was not dialed, when the next one is tried, and the Hint.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s [%snot dialed: the server refused this token for a new connection; next try in %s; %s]",
		e.Auth.Err.Error(), errs.Prefix, e.RetryIn.Round(time.Millisecond), e.Auth.Hint())
}

// Unwrap returns the explained refusal and ErrTokenRefused.
func (e *RefusedError) Unwrap() []error { return []error{e.Auth, entratoken.ErrTokenRefused} }

// Hint says what to check: the AuthError's hint.
func (e *RefusedError) Hint() string { return e.Auth.Hint() }

// dialGate is the refusal of the token in use for new connections. The zero
// value is open. Source.mu guards it.
type dialGate struct {
	gen      uint64                     // generation of the refused token; 0 when nothing was refused
	err      *entratoken.AuthError      // the last refusal
	back     backoff.ExponentialBackOff // the waits: each probe takes the next step (see newDialBackoff)
	delay    time.Duration              // the current backoff step
	until    time.Time                  // no dial before this instant
	prev     time.Duration              // the step before the last probe doubled it; 0 when no probe is out
	prevBack backoff.ExponentialBackOff // back before the last probe's step, for ProbeUnused
	refusals int64                      // refusals reported, since the Source started
}

// newDialBackoff starts the gate's waits for a token of timing tm:
// dialBackoffMin, doubled at each probe, up to the retry bound. Without
// randomization (RandomizationFactor 0): the waits are exact, and Status
// and RefusedError report them.
func newDialBackoff(tm timing) backoff.ExponentialBackOff {
	b := backoff.ExponentialBackOff{
		InitialInterval:     min(dialBackoffMin, tm.retryMax),
		RandomizationFactor: 0,
		Multiplier:          2,
		MaxInterval:         tm.retryMax,
	}
	b.Reset()
	return b
}

// state is the one function that says whether a new connection may be
// dialed at now, for the token of generation gen in use. A refusal of an
// older token does not count: a new token reopens the gate.
func (g *dialGate) state(gen uint64, now time.Time) entratoken.DialState {
	switch {
	case g.gen == 0 || g.gen != gen:
		return entratoken.DialOpen
	case now.Before(g.until):
		return entratoken.DialRefused
	default:
		return entratoken.DialProbe
	}
}

// ReportDialAuth is how a client layer reports the outcome of the
// authentication of a new connection with the token in use: nil when the
// server accepted it, else the server's refusal (a WRONGPASS reply; it is
// explained with ExplainAuth when it is not an AuthError yet). A refusal
// closes the gate of DialErr: no new connection is dialed for 1 second,
// then one probe is let through, and each probe doubles the wait, up to
// Options.RetryMaxDelay (as capped by the token's life). An acceptance, or a
// new token, opens it again. Do not report the in-place re-AUTH of a live
// connection here (see ReportReauth): its refusal says nothing about new
// connections. It never blocks.
func (s *Source) ReportDialAuth(err error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &s.gate
	if err == nil {
		if g.gen != 0 {
			g.gen, g.err, g.delay, g.until, g.prev = 0, nil, 0, time.Time{}, 0
		}
		return
	}
	tok := s.tok
	if tok == nil || s.closed {
		return // nothing to refuse
	}
	g.refusals++
	var ae *entratoken.AuthError
	if !errors.As(err, &ae) {
		ae = &entratoken.AuthError{Username: tok.username, Scope: s.opts.Scope, Err: err}
	}
	g.err = ae
	if g.state(tok.generation, now) == entratoken.DialOpen {
		g.gen, g.back, g.prev = tok.generation, newDialBackoff(tok.tm), 0
		g.delay = g.back.NextBackOff()
		g.until = now.Add(g.delay)
		s.opts.Logger.Warn("entraredis: the server refused the token in use for a new connection; new connections wait", "retry_in", g.delay, "err", ae)
		return
	}
	// The probe's refusal (the wait was doubled when it was let through), or
	// that of a connection dialed before the gate closed.
	g.until = maxTime(g.until, now.Add(g.delay))
	g.prev = 0
}

// DialErr returns nil when a client layer may dial a new connection now.
// Otherwise it returns why not: an error wrapping ErrNoValidToken (or
// ErrClosed) when no usable token is held, or a *RefusedError while the
// server's refusal of the token in use holds new connections back (see
// ReportDialAuth). It never blocks.
func (s *Source) DialErr() error {
	_, err := s.ProbeDial()
	return err
}

// ProbeDial is DialErr, and also says whether the dial it allows is the probe
// that tries a refused token again. A client layer that does not
// authenticate new connections itself, right after the dial, must
// authenticate the probe before it hands it over and report the outcome
// with ReportDialAuth: otherwise a probe that its client library dials and
// closes unused (a pool's health dial) would leave the refusal unresolved.
func (s *Source) ProbeDial() (probe bool, err error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, err := s.tokenLocked(now)
	if err != nil {
		return false, err
	}
	g := &s.gate
	switch g.state(tok.t.generation, now) {
	case entratoken.DialOpen:
		return false, nil
	case entratoken.DialProbe:
		// One probe per step: the next waits twice as long, unless this one
		// is accepted.
		g.prev, g.prevBack = g.delay, g.back
		g.delay = g.back.NextBackOff()
		g.until = now.Add(g.delay)
		return true, nil
	default:
		return false, &RefusedError{Auth: g.err, RetryIn: g.until.Sub(now)}
	}
}

// ProbeUnused tells the Source that the probe ProbeDial let through was
// closed before it authenticated (a pool that dials and closes a connection
// to learn that dialing works, such as go-redis' after repeated dial
// errors): the next dial probes instead, at the same wait. It does nothing
// when no probe is waited for.
func (s *Source) ProbeUnused() {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &s.gate
	if s.tok == nil || g.state(s.tok.generation, time.Now()) == entratoken.DialOpen || g.prev == 0 {
		return
	}
	g.delay, g.back, g.until, g.prev = g.prev, g.prevBack, time.Now(), 0
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
