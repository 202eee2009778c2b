package tokensource

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// recorder collects the refresher's events.
type recorder struct {
	mu        sync.Mutex
	refreshed []entratoken.TokenRefreshed
	failed    []entratoken.RefreshFailed
	at        []time.Time // when each refreshed event happened
}

func (r *recorder) options(o entratoken.Options) *entratoken.Options {
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.OnTokenRefreshed = func(e entratoken.TokenRefreshed) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.refreshed = append(r.refreshed, e)
		r.at = append(r.at, time.Now())
	}
	o.OnRefreshFailed = func(e entratoken.RefreshFailed) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.failed = append(r.failed, e)
	}
	return &o
}

func (r *recorder) counts() (refreshed, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.refreshed), len(r.failed)
}

func newIssuer(t *testing.T) *entraredistest.Issuer {
	t.Helper()
	is, err := entraredistest.NewIssuer(entraredistest.IssuerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// startCreds starts Credentials over an emulated credential and waits for the
// first token. It must run inside a synctest bubble.
func startCreds(t *testing.T, co entraredistest.CredentialOptions, o *entratoken.Options) (*Source, *entraredistest.Credential) {
	t.Helper()
	cred := newIssuer(t).NewCredential(co)
	c, err := NewSource(cred, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c, cred
}

// sleepUntil advances the bubble's fake clock to at.
func sleepUntil(at time.Time) {
	time.Sleep(time.Until(at))
	synctest.Wait()
}

func TestFirstRefreshTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		start := time.Now()
		c, cred := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, r.options(entratoken.Options{}))
		defer c.Close()
		exp := start.Add(time.Hour)
		earliest := exp.Add(-DefaultRefreshBefore - DefaultRefreshJitter)
		latest := exp.Add(-DefaultRefreshBefore)

		st := c.Status()
		if st.NextRefresh.Before(earliest) || st.NextRefresh.After(latest) {
			t.Fatalf("next refresh at %v after start, want within [%v, %v]", st.NextRefresh.Sub(start), earliest.Sub(start), latest.Sub(start))
		}
		sleepUntil(earliest.Add(-time.Millisecond))
		if n := cred.Requests(); n != 1 {
			t.Fatalf("%d token requests before the refresh window, want 1", n)
		}
		sleepUntil(latest.Add(time.Millisecond))
		if n := cred.Requests(); n != 2 {
			t.Fatalf("%d token requests after the refresh time, want 2", n)
		}
		if st := c.Status(); st.Rotations != 1 || !st.ExpiresOn.After(exp) {
			t.Fatalf("after the refresh: %+v, want one rotation to a later expiry", st)
		}
	})
}

func TestRefreshJitterBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 40
		jitter := 2 * time.Minute
		seen := map[time.Duration]bool{}
		for range n {
			start := time.Now()
			c, _ := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, (&recorder{}).options(entratoken.Options{RefreshJitter: jitter}))
			next := c.Status().NextRefresh
			c.Close()
			before := start.Add(time.Hour).Sub(next) // how long before expiry it refreshes
			if before < DefaultRefreshBefore || before > DefaultRefreshBefore+jitter {
				t.Fatalf("refresh %v before expiry, want within [%v, %v]", before, DefaultRefreshBefore, DefaultRefreshBefore+jitter)
			}
			seen[before] = true
		}
		if len(seen) < n/2 {
			t.Fatalf("only %d distinct refresh times out of %d clients: jitter is not spreading them", len(seen), n)
		}
	})
}

func TestRefreshOnIsHonouredAndShortTokensDoNotSpin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A 4-second token with the 10-minute default margin: the margin is
		// capped at half the life, so the refresher asks about every 2 s, not in
		// a loop.
		c, cred := startCreds(t, entraredistest.CredentialOptions{Lifetime: 4 * time.Second}, (&recorder{}).options(entratoken.Options{}))
		defer c.Close()
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if n := cred.Requests(); n < 8 || n > 14 {
			t.Fatalf("%d token requests in 20 s of 4-second tokens, want about 10", n)
		}
		if !c.Status().Valid(time.Now()) {
			t.Fatal("the token in use expired")
		}
	})
}

func TestSameTokenAgainIsRetriedUntilTheCacheLetsGo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		start := time.Now()
		// azidentity returns its cached token until 5 minutes remain.
		c, cred := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour, CacheWindow: 5 * time.Minute}, r.options(entratoken.Options{}))
		defer c.Close()
		exp := start.Add(time.Hour)

		sleepUntil(exp.Add(-5*time.Minute - time.Second))
		if st := c.Status(); st.Rotations != 0 {
			t.Fatalf("rotated while the credential kept returning the same token: %+v", st)
		}
		if cred.Minted() != 1 {
			t.Fatalf("minted %d tokens before the cache window, want 1", cred.Minted())
		}
		// The refresher keeps asking; within the retry bound of the cache
		// letting go, the new token is in use: at least 3 minutes before expiry.
		sleepUntil(exp.Add(-5*time.Minute + DefaultRetryMaxDelay + time.Second))
		st := c.Status()
		if st.Rotations != 1 {
			t.Fatalf("no rotation %v after the cache window opened: %+v", DefaultRetryMaxDelay, st)
		}
		if inUse := exp.Sub(st.LastRefresh); inUse < 3*time.Minute+DefaultReauthSpread {
			t.Fatalf("new token in use only %v before the old one expires", inUse)
		}
		if _, failed := r.counts(); failed != 0 {
			t.Fatalf("an unchanged token was reported as %d failures", failed)
		}
		// No polling of the cache: the first token, one cache hit at the
		// refresh time, the new token when the cache lets go (and one spare).
		if n := cred.Requests(); n > 4 {
			t.Fatalf("%d token requests for one rotation: the cache is being polled", n)
		}
	})
}

func TestFailureThenRecoveryKeepsTheTokenValid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		start := time.Now()
		c, cred := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, r.options(entratoken.Options{RefreshJitter: time.Nanosecond}))
		defer c.Close()
		refreshAt := c.Status().NextRefresh
		sleepUntil(refreshAt.Add(-time.Second))
		outage := 5 * time.Minute // longer than nothing, shorter than the 10 minutes left
		cred.FailFor(outage, nil)
		outageEnd := time.Now().Add(outage)

		for time.Now().Before(outageEnd) {
			time.Sleep(10 * time.Second)
			synctest.Wait()
			if !c.Status().Valid(time.Now()) {
				t.Fatal("the token expired during an outage shorter than its remaining life")
			}
			if _, _, err := c.Attach(&listener{}); err != nil {
				t.Fatalf("a new connection could not subscribe during the outage: %v", err)
			}
		}
		_, failed := r.counts()
		if failed < 5 {
			t.Fatalf("%d failures reported during a 5-minute outage, want retries", failed)
		}
		r.mu.Lock()
		for i, f := range r.failed {
			if f.Attempt != i+1 || !f.NextRetry.After(start) || f.Err == nil || !errors.Is(f.Err, entraredistest.ErrInjected) {
				t.Fatalf("failure event %d: %+v", i, f)
			}
			if i > 0 {
				gap := f.NextRetry.Sub(r.failed[i-1].NextRetry)
				if gap > DefaultRetryMaxDelay+DefaultAttemptTimeout {
					t.Fatalf("retry gap %v exceeds the backoff bound", gap)
				}
			}
		}
		r.mu.Unlock()
		if st := c.Status(); st.ConsecutiveFailures == 0 || st.LastError == nil {
			t.Fatalf("status during the outage: %+v", st)
		}

		sleepUntil(outageEnd.Add(DefaultRetryMaxDelay + time.Second))
		st := c.Status()
		if st.Rotations != 1 || st.ConsecutiveFailures != 0 || st.LastError != nil {
			t.Fatalf("not recovered within the backoff bound after the outage: %+v", st)
		}
	})
}

func TestFailurePastExpiryThenRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		start := time.Now()
		c, cred := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, r.options(entratoken.Options{}))
		defer c.Close()
		cred.FailFor(time.Hour+10*time.Minute, nil)
		outageEnd := time.Now().Add(time.Hour + 10*time.Minute)

		sleepUntil(start.Add(time.Hour + time.Minute))
		_, _, err := c.Attach(&listener{})
		if !errors.Is(err, entratoken.ErrNoValidToken) || !errors.Is(err, entraredistest.ErrInjected) {
			t.Fatalf("Subscribe after expiry = %v, want ErrNoValidToken wrapping the last failure", err)
		}
		if err := c.ready(); !errors.Is(err, entratoken.ErrNoValidToken) {
			t.Fatalf("ready() after expiry = %v: new connections would be dialed for nothing", err)
		}
		requests := cred.Requests()
		for range 100 {
			c.Attach(&listener{})
		}
		if cred.Requests() != requests {
			t.Fatal("Subscribe asked the credential itself: failed dials would hammer the token service")
		}

		sleepUntil(outageEnd.Add(DefaultRetryMaxDelay + time.Second))
		if _, _, err := c.Attach(&listener{}); err != nil {
			t.Fatalf("not recovered within the backoff bound after the outage: %v", err)
		}
		if st := c.Status(); !st.Valid(time.Now()) || st.ConsecutiveFailures != 0 {
			t.Fatalf("status after recovery: %+v", st)
		}
	})
}

func TestCloseDuringRetryStopsTheRefresher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cred := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, (&recorder{}).options(entratoken.Options{}))
		cred.FailFor(24*time.Hour, nil)
		time.Sleep(55 * time.Minute) // retrying by now
		synctest.Wait()
		if c.Status().ConsecutiveFailures == 0 {
			t.Fatal("not retrying")
		}
		requests := cred.Requests()
		closeReturnsAtOnce(t, c)
		time.Sleep(time.Hour)
		synctest.Wait()
		if cred.Requests() != requests {
			t.Fatal("the refresher kept asking after Close")
		}
		if _, _, err := c.Attach(&listener{}); !errors.Is(err, entratoken.ErrClosed) {
			t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
		}
		c.Close() // idempotent
		// synctest.Test fails if any goroutine of the bubble is still running.
	})
}

func TestCloseDuringSlowAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cred := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, (&recorder{}).options(entratoken.Options{}))
		cred.SetDelay(time.Hour) // the next attempt hangs until its timeout
		time.Sleep(51 * time.Minute)
		synctest.Wait()
		c.Close()
	})
}

func TestFirstTokenTimeoutSaysWhatFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cred := newIssuer(t).NewCredential(entraredistest.CredentialOptions{})
		cred.SetDelay(time.Hour)
		c, err := NewSource(cred, (&recorder{}).options(entratoken.Options{AttemptTimeout: 3 * time.Second}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		err = c.WaitReady(context.Background())
		if waited := time.Since(start); waited != 3*time.Second {
			t.Fatalf("WaitReady returned after %v, want the 3 s attempt timeout", waited)
		}
		var te *entratoken.TokenError
		if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a TokenError wrapping context.DeadlineExceeded", err)
		}
		if te.Scope != entratoken.DefaultScope {
			t.Fatalf("scope %q", te.Scope)
		}
		for _, want := range []string{entratoken.DefaultScope, "timed out"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not mention %q", err, want)
			}
		}
		// The caller's context bounds it too.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c2, _ := NewSource(cred, (&recorder{}).options(entratoken.Options{}))
		defer c2.Close()
		start = time.Now()
		if err := c2.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("WaitReady with a 1 s context: %v after %v", err, time.Since(start))
		}
	})
}

// listener is a go-redis CredentialsListener that records what it is given.
type listener struct {
	mu   sync.Mutex
	next []Token
	at   []time.Time
	errs []error
}

func (l *listener) OnToken(c Token) {
	l.mu.Lock()
	l.next = append(l.next, c)
	l.at = append(l.at, time.Now())
	l.mu.Unlock()
}

func (l *listener) OnError(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *listener) calls() (int, []time.Time, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.next), append([]time.Time(nil), l.at...), len(l.errs)
}

func TestRotationIsSpreadOverListeners(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cred := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, (&recorder{}).options(entratoken.Options{}))
		defer c.Close()
		const n = 20
		ls := make([]*listener, n)
		first := ""
		for i := range ls {
			ls[i] = &listener{}
			creds, _, err := c.Attach(ls[i])
			if err != nil {
				t.Fatal(err)
			}
			_, first = creds.BasicAuth()
		}
		gone := &listener{}
		_, unsubscribe, _ := c.Attach(gone)
		unsubscribe()
		unsubscribe() // idempotent

		cred.FailNext(3, nil)                                    // failures never reach the listeners
		sleepUntil(c.Status().NextRefresh.Add(30 * time.Second)) // three backoffs of at most 3, 6 and 12 s
		st := c.Status()
		if st.Rotations != 1 {
			t.Fatalf("not rotated after 3 failures: %+v", st)
		}
		rotated := st.LastRefresh
		sleepUntil(rotated.Add(DefaultReauthSpread + time.Second))

		var earliest, latest time.Time
		for i, l := range ls {
			calls, at, errs := l.calls()
			if calls != 1 || errs != 0 {
				t.Fatalf("listener %d: %d OnNext, %d OnError; want 1 and 0", i, calls, errs)
			}
			l.mu.Lock()
			_, p := l.next[0].BasicAuth()
			l.mu.Unlock()
			if p == first {
				t.Fatalf("listener %d got the old token again", i)
			}
			if earliest.IsZero() || at[0].Before(earliest) {
				earliest = at[0]
			}
			if at[0].After(latest) {
				latest = at[0]
			}
		}
		if spread := latest.Sub(earliest); spread < DefaultReauthSpread/2 || spread > DefaultReauthSpread {
			t.Fatalf("new token handed out over %v, want spread over about %v", spread, DefaultReauthSpread)
		}
		if calls, _, _ := gone.calls(); calls != 0 {
			t.Fatal("an unsubscribed listener got the new token")
		}
		if got := c.Status().Connections; got != n {
			t.Fatalf("%d listeners held, want %d", got, n)
		}
	})
}

func TestSubscribeDeduplicatesAndForgets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cred := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, (&recorder{}).options(entratoken.Options{}))
		defer c.Close()
		l := &listener{}
		creds, u1, err := c.Attach(l)
		if err != nil {
			t.Fatal(err)
		}
		_, u2, _ := c.Attach(l)
		if got := c.Status().Connections; got != 1 {
			t.Fatalf("%d subscriptions after subscribing one listener twice", got)
		}
		if user, _ := creds.BasicAuth(); user != cred.ObjectID() {
			t.Fatalf("user %q, want the oid %q", user, cred.ObjectID())
		}
		sleepUntil(c.Status().NextRefresh.Add(DefaultReauthSpread + time.Second))
		if calls, _, _ := l.calls(); calls != 1 {
			t.Fatalf("a listener subscribed twice got %d updates, want 1", calls)
		}
		u2()
		u1()
		if got := c.Status().Connections; got != 0 {
			t.Fatalf("%d subscriptions retained after unsubscribe", got)
		}
	})
}

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func TestNegativeJitterAndSpreadTurnThemOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c, _ := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, (&recorder{}).options(entratoken.Options{RefreshJitter: -1, ReauthSpread: -1}))
		defer c.Close()
		if next := c.Status().NextRefresh; !next.Equal(start.Add(time.Hour - DefaultRefreshBefore)) {
			t.Fatalf("refresh %v after start, want exactly %v with jitter off", next.Sub(start), time.Hour-DefaultRefreshBefore)
		}
		ls := []*listener{{}, {}, {}}
		for _, l := range ls {
			c.Attach(l)
		}
		sleepUntil(c.Status().NextRefresh.Add(time.Second))
		var at []time.Time
		for _, l := range ls {
			n, times, _ := l.calls()
			if n != 1 {
				t.Fatalf("%d updates", n)
			}
			at = append(at, times[0])
		}
		if !at[0].Equal(at[1]) || !at[1].Equal(at[2]) {
			t.Fatalf("spread off, yet updates at %v", at)
		}
	})
}

// TestThreeMonthsOfRotations runs the refresher for 90 days of fake time on
// one-hour tokens behind an azidentity-like cache (the same token until
// 5 minutes remain), with an outage of up to 4 minutes on about a third of
// the rotations, each ending before the token expires. The token in use must
// never expire, a connection must always be able to subscribe, and each
// rotation must stay cheap.
func TestThreeMonthsOfRotations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cred := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour, CacheWindow: 5 * time.Minute}, (&recorder{}).options(entratoken.Options{}))
		defer c.Close()
		rng := rand.New(rand.NewPCG(1, 2))
		end := time.Now().Add(90 * 24 * time.Hour)
		lastOutageFor := time.Time{}
		checks := 0
		for time.Now().Before(end) {
			st := c.Status()
			if !st.Valid(time.Now()) {
				t.Fatalf("after %d rotations the token in use expired: %+v", st.Rotations, st)
			}
			if _, unsubscribe, err := c.Attach(&listener{}); err != nil {
				t.Fatalf("a new connection could not subscribe: %v", err)
			} else {
				unsubscribe()
			}
			// Once per token: maybe an outage starting in the cache window,
			// ending at least a minute before expiry.
			if st.ExpiresOn != lastOutageFor && time.Until(st.ExpiresOn) < 6*time.Minute && rng.IntN(3) == 0 {
				lastOutageFor = st.ExpiresOn
				d := time.Duration(rng.Int64N(int64(4 * time.Minute)))
				d = min(d, time.Until(st.ExpiresOn)-time.Minute)
				if d > 0 {
					cred.FailFor(d, nil)
				}
			}
			time.Sleep(30 * time.Second)
			synctest.Wait()
			checks++
		}
		st := c.Status()
		if st.Rotations < 90*24-5 {
			t.Fatalf("%d rotations in 90 days of 1-hour tokens", st.Rotations)
		}
		perRotation := float64(st.TokenRequests) / float64(st.Rotations)
		if perRotation > 8 {
			t.Fatalf("%.1f GetToken calls per rotation (cache hits and retries included)", perRotation)
		}
		if cred.Minted() > st.Rotations+1 {
			t.Fatalf("%d tokens minted for %d rotations", cred.Minted(), st.Rotations)
		}
		t.Logf("90 days: %d rotations, %d checks, %.1f GetToken calls per rotation, %d tokens minted", st.Rotations, checks, perRotation, cred.Minted())
	})
}

// closeReturnsAtOnce calls c.Close in the bubble and fails unless it has
// returned once every other goroutine of the bubble is blocked.
func closeReturnsAtOnce(t *testing.T, c *Source) {
	t.Helper()
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	synctest.Wait()
	select {
	case <-closed:
	default:
		t.Fatal("Close blocked")
	}
}
