// Package tokensource is the token refresher that the client layers
// (package entraredis for go-redis, package rueidisentra) share: a Source
// keeps one credential's Microsoft Entra access token fresh, hands each new
// token to the live connections, holds new connections back while the
// server refuses the token, and runs the user's callbacks. It imports
// neither go-redis nor rueidis. What users see of it is in package
// entratoken: Options, Status, the events and the errors.
//
// A Source owns one credential's tokens. Its refresher goroutine is the only
// caller of the credential's GetToken: it gets the first token at once, the
// next one before the current one expires, and retries with backoff for as
// long as the Source is open. Each new token is handed to the subscribed
// Listeners (one per live connection), one after another over
// Options.ReauthSpread. Events (OnTokenRefreshed, OnRefreshFailed,
// OnReauthFailed, and the client layers' own through Post) run on a third
// goroutine, one after another.
//
// The state of the token at any instant (no token yet, fresh, due, expired,
// closed) is computed by one function (entratoken.Status.StateAt); Token,
// WaitReady and Status all use it.
package tokensource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/errs"
)

// Listener is one live connection (or one client-side hand-out target) that
// wants each new token. OnToken runs on the Source's hand-out goroutine: it
// must not block (mark the connection and return). A Listener must be
// comparable (a pointer, typically): Subscribe uses it as a map key.
type Listener interface {
	OnToken(Token) // called with each new token, on the Source's hand-out goroutine; must not block
}

// Source turns an azcore.TokenCredential into a stream of Redis tokens. It
// is safe for concurrent use. Its String method, and every error it
// returns, leave the token out.
type Source struct {
	cred    azcore.TokenCredential
	opts    entratoken.Options // defaults applied; never changes
	initial timing             // the timing that applies while no token is held
	ev      *events

	requests       atomic.Int64 // GetToken calls
	reauthFailures atomic.Int64 // refused AUTHs reported by ReportReauth
	reauths        atomic.Int64 // accepted AUTHs reported by ReportReauth

	mu          sync.Mutex                       // guards the fields below
	tok         *token                           // the token in use; nil until the first success
	closed      bool                             // Close was called
	listeners   map[Listener]struct{}            // subscribed connections
	nextRefresh time.Time                        // when the refresher next asks the credential
	lastErr     error                            // the last failure, nil after a success
	lastErrAt   time.Time                        // when lastErr happened
	failures    int                              // failed attempts since the last success
	failedKinds map[entratoken.FailureKind]int64 // failed attempts since the start, by kind
	connStats   func() entratoken.ConnStats      // set by SetConnStats; nil for none
	gate        dialGate                         // the server's refusal of the token in use for new connections (see ReportDialAuth)

	firstDone chan struct{}      // closed by the refresher when its first attempt has finished
	runCtx    context.Context    // ends at Close: stops the refresher and the hand-outs
	stop      context.CancelFunc // ends runCtx
	done      chan struct{}      // closed when the refresher has returned
	dealers   sync.WaitGroup     // hand-out goroutines
}

// NewSource returns a Source for cred and starts its refresher, which asks
// for the first token at once. opts may be nil (all defaults). It does not
// wait for the first token: WaitReady does. Close stops it.
func NewSource(cred azcore.TokenCredential, opts *entratoken.Options) (*Source, error) {
	if err := checkCredential(cred); err != nil {
		return nil, err
	}
	o := withDefaults(opts)
	s := &Source{
		cred:      safeCredential{cred},
		opts:      o,
		initial:   timingFor(&o, unknownLife),
		listeners: make(map[Listener]struct{}),
		firstDone: make(chan struct{}),
		done:      make(chan struct{}),
	}
	s.ev = newEvents(&s.opts)
	s.runCtx, s.stop = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

// checkCredential refuses a nil credential, and a typed nil one (a nil
// pointer, map, func... in the interface), which is what a failed
// credential constructor whose error was ignored leaves behind.
func checkCredential(cred azcore.TokenCredential) error {
	if cred == nil {
		return errors.New(errs.Prefix + "no credential: pass an azcore.TokenCredential, such as the one azidentity.NewDefaultAzureCredential returns")
	}
	switch v := reflect.ValueOf(cred); v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice:
		if v.IsNil() {
			return fmt.Errorf(errs.Prefix+"the credential is a nil %T: its constructor probably failed and its error was not checked", cred)
		}
	}
	return nil
}

// WaitReady waits until the refresher's first attempt has finished, or ctx
// ends, or the Source is closed. It returns nil when a usable token is held,
// else an error that says what failed (the credential, the scope, the
// token's claims, a timeout). Callbacks do not delay it.
func (s *Source) WaitReady(ctx context.Context) error {
	select {
	case <-s.firstDone:
	case <-s.runCtx.Done():
	case <-ctx.Done():
		return &errs.Wrapped{
			Sentinel: entratoken.ErrNoValidToken,
			Detail:   fmt.Sprintf("the caller's context ended before the first token for scope %q arrived (the credential is still being asked; Options.AttemptTimeout bounds each attempt)", s.opts.Scope),
			Cause:    ctx.Err(),
		}
	}
	_, err := s.Token()
	return err
}

// Token returns the token in use when it is usable (fresh or due), else an
// error wrapping ErrNoValidToken (and the last failure) or ErrClosed. It
// never blocks on the network.
func (s *Source) Token() (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenLocked(time.Now())
}

// tokenLocked is Token with s.mu held.
func (s *Source) tokenLocked(now time.Time) (Token, error) {
	switch s.tok.state(s.closed, now) {
	case entratoken.StateFresh, entratoken.StateDue:
		return Token{s.tok}, nil
	case entratoken.StateClosed:
		return Token{}, entratoken.ErrClosed
	case entratoken.StateExpired:
		if s.lastErr != nil {
			return Token{}, &errs.Wrapped{Sentinel: entratoken.ErrNoValidToken, Cause: s.lastErr}
		}
		return Token{}, &errs.Wrapped{Sentinel: entratoken.ErrNoValidToken, Detail: fmt.Sprintf("the token expired at %s and no new one was received yet", s.tok.expiresOn.Format(time.RFC3339))}
	default: // StateNoToken
		if s.lastErr != nil {
			return Token{}, &errs.Wrapped{Sentinel: entratoken.ErrNoValidToken, Cause: s.lastErr}
		}
		select {
		case <-s.firstDone:
			return Token{}, &errs.Wrapped{Sentinel: entratoken.ErrNoValidToken, Detail: fmt.Sprintf("the first token was not received within %s", s.opts.AttemptTimeout)}
		default:
			return Token{}, &errs.Wrapped{Sentinel: entratoken.ErrNoValidToken, Detail: "the first token has not been received yet"}
		}
	}
}

// Attach is what a client layer calls for each new connection. It returns
// the token in use and subscribes l to the next ones (l may be nil: the
// token only). Before the first token it waits for the refresher's first
// attempt, at most Options.AttemptTimeout; when no usable token exists it
// fails at once with an error wrapping ErrNoValidToken, without asking the
// credential. detach is idempotent.
func (s *Source) Attach(l Listener) (tok Token, detach func(), err error) {
	if l != nil {
		checkListener(l)
	}
	select {
	case <-s.firstDone:
	default:
		t := time.NewTimer(s.opts.AttemptTimeout)
		select {
		case <-s.firstDone:
		case <-s.runCtx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok, err = s.tokenLocked(time.Now()); err != nil {
		return Token{}, nil, err
	}
	if l == nil {
		return tok, func() {}, nil
	}
	// l is added under the lock that installs new tokens: it either gets this
	// token and is in the next hand-out, or gets the newer token here.
	s.listeners[l] = struct{}{}
	return tok, s.unsubscriber(l), nil
}

// Subscribe adds l to the listeners of the next tokens (once, however many
// times it is subscribed) and returns the function that removes it, which is
// idempotent. It does nothing after Close.
func (s *Source) Subscribe(l Listener) (unsubscribe func()) {
	checkListener(l)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return func() {}
	}
	s.listeners[l] = struct{}{}
	return s.unsubscriber(l)
}

func (s *Source) unsubscriber(l Listener) func() {
	return func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}
}

// checkListener panics on a listener that cannot be a map key: a
// programming error of the client layer.
func checkListener(l Listener) {
	if l == nil || !reflect.TypeOf(l).Comparable() {
		panic(fmt.Sprintf("entratoken: Subscribe needs a non-nil comparable Listener (a pointer), got %T", l))
	}
}

// ReportReauth is how a client layer reports the outcome of one AUTH with a
// token of this Source on a live connection (nil: accepted, counted in
// Status.Reauths). A refusal is counted in
// Status.ReauthFailures, logged, and passed to Options.OnReauthFailed on the
// event goroutine; ReportReauth itself never blocks and never runs a callback.
func (s *Source) ReportReauth(err error) {
	if err == nil {
		s.reauths.Add(1)
		return
	}
	s.reauthFailures.Add(1)
	s.opts.Logger.Warn("entraredis: the server refused an AUTH with the token in use", "err", err)
	if f := s.opts.OnReauthFailed; f != nil {
		s.ev.post(func() { f(entratoken.ReauthFailed{Err: err}) })
	}
}

// SetConnStats gives the Source a function that counts the client layer's
// connections, for Status.Conns. Status calls it without holding any lock.
func (s *Source) SetConnStats(f func() entratoken.ConnStats) {
	s.mu.Lock()
	s.connStats = f
	s.mu.Unlock()
}

// Scope returns the OAuth scope asked for.
func (s *Source) Scope() string { return s.opts.Scope }

// Logger returns the logger in use.
func (s *Source) Logger() *slog.Logger { return s.opts.Logger }

// Options returns the options in use, every default applied.
func (s *Source) Options() entratoken.Options { return s.opts }

// Close stops the refresher and the hand-out, forgets every listener, and
// drops the events not delivered yet: no callback starts once Close has
// begun. It waits for a callback that is running, unless it is called from
// inside a callback (of this Source or another one), which it may be: there
// it does not wait (see events.close). It is idempotent and returns nil. Connections
// keep working until their token expires; a GetToken call that hangs is not
// waited for.
func (s *Source) Close() error {
	s.mu.Lock()
	s.closed = true
	clear(s.listeners)
	s.mu.Unlock()
	s.stop()
	<-s.done
	s.dealers.Wait()
	s.ev.close()
	return nil
}

// String describes the source without the token.
func (s *Source) String() string {
	st := s.Status()
	return fmt.Sprintf("entratoken.Source{scope: %s, user: %s, state: %s, expires: %s}", s.opts.Scope, st.Username, st.State, st.ExpiresOn.Format(time.RFC3339))
}

// Format describes the source without the token, whatever the verb.
func (s *Source) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// Status returns a snapshot of the token and the refresher.
func (s *Source) Status() entratoken.Status {
	now := time.Now()
	s.mu.Lock()
	st := entratoken.Status{
		State:               s.tok.state(s.closed, now),
		Username:            s.opts.Username,
		NextRefresh:         s.nextRefresh,
		TokenRequests:       s.requests.Load(),
		ConsecutiveFailures: s.failures,
		LastError:           s.lastErr,
		LastErrorAt:         s.lastErrAt,
		Connections:         len(s.listeners),
		ReauthFailures:      s.reauthFailures.Load(),
		Reauths:             s.reauths.Load(),
		RefreshFailures:     maps.Clone(s.failedKinds),
		Closed:              s.closed,
	}
	if s.closed {
		st.NextRefresh = time.Time{}
	}
	st.DialRefusals = s.gate.refusals
	if t := s.tok; t != nil {
		st.Username, st.ExpiresOn, st.LastRefresh = t.username, t.expiresOn, t.received
		st.Rotations = int64(t.generation - 1)
		st.Dial = s.gate.state(t.generation, now)
		if st.Dial == entratoken.DialRefused {
			st.RefusedUntil = s.gate.until
		}
	}
	conns := s.connStats
	s.mu.Unlock()
	st.DroppedEvents = s.ev.droppedCount()
	if conns != nil {
		st.Conns = conns()
	}
	return st
}
