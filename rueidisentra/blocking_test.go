package rueidisentra_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/rueidisentra"
)

// TestBlockingShortTimeouts: BLPOP with 100 ms timeouts in a loop across
// rotations, beside a pusher; nothing hangs (every call returns within its
// timeout and a round trip). rueidis lends the connection out for each BLPOP
// and stops its AUTH timer meanwhile.
//
//   - paused: a consumer that works 20 ms between two BLPOPs gives the
//     connection back to the pool long enough for its timer to fire: it is
//     re-authenticated, no error, no connection closed for expiry (a BLPOP
//     that takes the connection during that AUTH makes rueidis dial a new one);
//   - back to back: the connection is taken again at once every time, its
//     timer seldom fires, and the server may close it at its token's expiry:
//     the BLPOP then in flight fails with ErrConnTokenExpired, at most once
//     per token lifetime, and the next one runs on a new connection.
func TestBlockingShortTimeouts(t *testing.T) {
	const life = 3 * time.Second
	for _, mode := range []struct {
		name  string
		pause time.Duration
	}{{"paused", 20 * time.Millisecond}, {"back-to-back", 0}} {
		t.Run(mode.name, func(t *testing.T) {
			forEachTopology(t, life, func(t *testing.T, tg target) {
				c := tg.c(t, rueidis.ClientOption{}, entratoken.Options{})
				ctx := t.Context()
				before, st0 := tg.stats(), status(t, c)
				var pushed atomic.Int64
				stop := make(chan struct{})
				pushDone := make(chan error, 1)
				go func() {
					for {
						select {
						case <-stop:
							pushDone <- nil
							return
						case <-time.After(150 * time.Millisecond):
						}
						if err := c.Do(ctx, c.B().Rpush().Key("queue").Element("x").Build()).Error(); err != nil {
							pushDone <- err
							return
						}
						pushed.Add(1)
					}
				}()
				start := time.Now()
				calls, popped, empty, expired := 0, 0, 0, 0
				for status(t, c).Rotations-st0.Rotations < 4 && calls < 10_000 {
					t0 := time.Now()
					r, err := c.Do(ctx, c.B().Blpop().Key("queue").Timeout(0.1).Build()).AsStrSlice()
					calls++
					switch {
					case rueidis.IsRedisNil(err):
						empty++
					case errors.Is(err, rueidisentra.ErrConnTokenExpired) && mode.pause == 0:
						expired++
					case err != nil:
						t.Fatalf("BLPOP %d: %v", calls, err)
					case len(r) != 2:
						t.Fatalf("BLPOP %d = %q", calls, r)
					default:
						popped++
					}
					if d := time.Since(t0); d > 2*time.Second {
						t.Fatalf("BLPOP with a 100 ms timeout took %v", d)
					}
					time.Sleep(mode.pause)
				}
				close(stop)
				if err := <-pushDone; err != nil {
					t.Fatal(err)
				}
				run := time.Since(start)
				time.Sleep(life / 2) // past the expiry of the token in use when the loop ended
				after, st := tg.stats(), status(t, c)
				closes := after.ExpiryCloses - before.ExpiryCloses
				t.Logf("%s %s: %d rotations in %v, %d BLPOPs (%d popped, %d timed out, %d closed at expiry), %d pushed, %d dials, %d re-AUTHs, %d closed for expiry",
					mode.name, tg.name, st.Rotations-st0.Rotations, run.Round(time.Millisecond), calls, popped, empty, expired, pushed.Load(),
					after.Accepted-before.Accepted, after.ReAuths-before.ReAuths, closes)
				if popped == 0 || empty == 0 {
					t.Fatalf("%d popped, %d timed out: the test proves nothing", popped, empty)
				}
				if mode.pause > 0 && closes != 0 {
					t.Fatalf("%d connections closed for expiry", closes)
				}
				if max := int(run/life) + 1; expired > max {
					t.Fatalf("%d BLPOPs failed at expiry in %v of %v tokens, want at most %d", expired, run, life, max)
				}
			})
		})
	}
}

// TestBlockingLongerThanToken: a BLPOP whose timeout is longer than its
// connection's token has to live. rueidis does not re-authenticate a
// connection while it blocks, so the server closes it when its token
// expires: the BLPOP fails then (it does not hang until its timeout), with a
// connection error, and the next command works on a new connection.
func TestBlockingLongerThanToken(t *testing.T) {
	const life = 3 * time.Second
	forEachTopology(t, life, func(t *testing.T, tg target) {
		c := tg.c(t, rueidis.ClientOption{}, entratoken.Options{})
		ctx := t.Context()
		before := tg.stats()
		start := time.Now()
		err := c.Do(ctx, c.B().Blpop().Key("nothing-here").Timeout(30).Build()).Error()
		took := time.Since(start)
		after := tg.stats()
		t.Logf("%s: BLPOP 30 s returned after %v: %v; %d closed for expiry", tg.name, took.Round(time.Millisecond), err, after.ExpiryCloses-before.ExpiryCloses)
		if err == nil || rueidis.IsRedisNil(err) {
			t.Fatalf("BLPOP returned %v after %v, want a connection error at the token's expiry", err, took)
		}
		if !errors.Is(err, rueidisentra.ErrConnTokenExpired) {
			t.Fatalf("BLPOP error %v, want one wrapping ErrConnTokenExpired", err)
		}
		if took > life+time.Second {
			t.Fatalf("BLPOP returned after %v, not at the token's expiry (%v tokens)", took, life)
		}
		if n := after.ExpiryCloses - before.ExpiryCloses; n != 1 {
			t.Fatalf("%d connections closed for expiry, want the blocked one", n)
		}
		if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
			t.Fatalf("PING after: %v", err)
		}
		if err := c.Do(ctx, c.B().Blpop().Key("nothing-here").Timeout(0.1).Build()).Error(); !rueidis.IsRedisNil(err) {
			t.Fatalf("short BLPOP after: %v", err)
		}
	})
}
