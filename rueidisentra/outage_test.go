package rueidisentra_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/entratoken"
)

// TestOutageShorterThanTokenLife: the token service fails for longer than
// the refresh margin but less than the token's remaining life: no error, no
// connection closed for expiry.
func TestOutageShorterThanTokenLife(t *testing.T) {
	const life = 8 * time.Second
	forEachTopology(t, life, func(t *testing.T, tg target) {
		var failures atomic.Int64
		c := tg.c(t, rueidis.ClientOption{}, entratoken.Options{
			RefreshBefore:   6 * time.Second, // capped at 4 s: half the life
			OnRefreshFailed: func(entratoken.RefreshFailed) { failures.Add(1) },
		})
		before := tg.stats()
		// The margin is 4 s: fail for 5.5 s from now, through the first
		// refresh, but less than the 8 s of life left.
		tg.cred.FailFor(5500*time.Millisecond, nil)
		res := runLoad(t.Context(), c, 16, 8*time.Second, 1_000_000)
		st, after := status(t, c), tg.stats()
		t.Logf("%s: %d ops, %d errors through %d refresh failures; %d rotations, %d closed for expiry", tg.name, res.ops, res.errs, failures.Load(), st.Rotations, after.ExpiryCloses-before.ExpiryCloses)
		if failures.Load() == 0 {
			t.Fatal("the outage was not seen: the test proves nothing")
		}
		if res.errs != 0 {
			t.Fatalf("%d command errors during an outage shorter than the token's life: %v", res.errs, res.firstErrs)
		}
		if st.Rotations == 0 {
			t.Fatalf("not recovered after the outage: %+v", st)
		}
		if n := after.ExpiryCloses - before.ExpiryCloses; n != 0 {
			t.Fatalf("%d connections closed for expiry", n)
		}
	})
}

// TestOutagePastExpiry: the token service fails past the token's expiry.
// Commands then fail at once with an error wrapping ErrNoValidToken, without
// dialing, and the client recovers within the backoff bound once the service
// is back.
func TestOutagePastExpiry(t *testing.T) {
	const life = 3 * time.Second
	forEachTopology(t, life, func(t *testing.T, tg target) {
		c := tg.c(t, rueidis.ClientOption{}, entratoken.Options{})
		ctx := t.Context()
		if err := c.Do(ctx, c.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		outage := 2 * life
		tg.cred.FailFor(outage, nil)
		end := time.Now().Add(outage)
		exp := status(t, c).ExpiresOn
		// Wait for the expiry, then hammer the client: every command fails
		// fast with the explained error, and nothing is dialed.
		time.Sleep(time.Until(exp) + 300*time.Millisecond)
		before := tg.stats()
		var fails, other int
		var firstErr error
		var slowest time.Duration
		for time.Now().Before(end.Add(-200 * time.Millisecond)) {
			t0 := time.Now()
			err := c.Do(ctx, c.B().Get().Key("k").Build()).Error()
			slowest = max(slowest, time.Since(t0))
			switch {
			case errors.Is(err, entratoken.ErrNoValidToken):
				fails++
				if firstErr == nil {
					firstErr = err
				}
			case err != nil:
				other++
				if other < 3 {
					t.Logf("other error: %v", err)
				}
			}
			time.Sleep(time.Millisecond)
		}
		during := tg.stats()
		// Recovery: the first success after the service is back.
		var recovered time.Duration
		for {
			if err := c.Do(ctx, c.B().Get().Key("k").Build()).Error(); err == nil || rueidis.IsRedisNil(err) {
				recovered = time.Since(end)
				break
			}
			if time.Since(end) > 10*time.Second {
				t.Fatalf("not recovered 10 s after the outage: %+v", status(t, c))
			}
			time.Sleep(10 * time.Millisecond)
		}
		dials := during.Accepted - before.Accepted
		t.Logf("%s: %d fast failures (slowest %v), %d other errors, %d dials while no token, recovered %v after the outage; first error: %v",
			tg.name, fails, slowest, other, dials, recovered.Round(time.Millisecond), firstErr)
		if fails == 0 {
			t.Fatal("no command failed with ErrNoValidToken past expiry")
		}
		if slowest > time.Second {
			t.Fatalf("a command took %v while no token existed: not failing fast", slowest)
		}
		if other > 2 {
			t.Fatalf("%d errors that do not say there is no valid token", other)
		}
		if dials != 0 {
			t.Fatalf("%d dials while no valid token existed", dials)
		}
		// RetryMaxDelay is capped at a quarter of the margin (1.5 s for 3 s tokens).
		if recovered > 2*time.Second {
			t.Fatalf("recovered %v after the outage, want within the backoff bound", recovered)
		}
	})
}
