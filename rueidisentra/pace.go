package rueidisentra

import (
	"math"
	"time"
)

// handout is one token's hand-out to a client's connections: each connection
// moves to it at arrival + offset×window, where its offset in [0, 1) is fixed
// when the connection opens. rueidis calls back at the RefreshAfter time it
// was given, so the moment of each connection's AUTH is decided in advance:
// that is what spreads the AUTHs over the window.
type handout struct {
	gen     uint64        // the token's generation
	expires time.Time     // the token's expiry
	arrival time.Time     // when this client first saw the token
	window  time.Duration // the hand-out window, ending well before the previous token expires
}

// slot is when the connection with the given offset moves to h's token.
func (h handout) slot(offset float64) time.Time {
	return h.arrival.Add(time.Duration(offset * float64(h.window)))
}

// goldenRatio's fractional parts of k×φ spread any number of connections over
// [0, 1), each at a different point, the largest gap never more than about
// 2.6 times the smallest (the three-gap theorem).
const goldenRatio = 0.6180339887498949

// offsetOf returns the offset of the k-th connection a client opens.
func offsetOf(k uint64) float64 {
	_, f := math.Modf(float64(k%(1<<40)) * goldenRatio)
	return f
}

// pollFor is how soon a connection asks again while it waits for a token that
// has not arrived yet (a refresh attempt in flight, an outage): an eighth of
// the window, between 10 ms and 1 s. It is also the lead a connection keeps
// on its own token's expiry.
func pollFor(window time.Duration) time.Duration {
	return min(max(window/8, 10*time.Millisecond), time.Second)
}

// step is the answer to rueidis for one connection: AUTH with the newest
// token now, or not; and when to ask again (AuthCredentials.RefreshAfter).
type step struct {
	send bool
	at   time.Time
}

// decide is the pacing rule, a pure function of its inputs. now is the time
// of rueidis' call; cur is the generation the connection is known to be on (0
// for a new connection) and curExp that token's expiry; newest is the
// hand-out of the token in use; next is when the refresher next asks for a
// token (zero when unknown); offset is the connection's.
//
//   - a new connection authenticates at once with the newest token;
//   - a connection on an older token moves at its slot of the newest token's
//     window, and at the latest one poll interval before its own token expires;
//   - a connection on the newest token (or moving to it now) waits for the
//     next one: until its slot in a window that would open at the next
//     refresh, then it polls.
func decide(now time.Time, cur uint64, curExp time.Time, newest handout, next time.Time, offset float64) step {
	poll := pollFor(newest.window)
	s := step{send: cur == 0}
	if cur != 0 && cur < newest.gen {
		t := newest.slot(offset)
		if lim := curExp.Add(-poll); lim.Before(t) {
			t = lim
		}
		if now.Before(t) {
			return step{at: t}
		}
		s.send = true
	}
	s.at = now.Add(poll)
	if !next.IsZero() {
		if t := next.Add(time.Duration(offset * float64(newest.window))); t.After(s.at) {
			s.at = t
		}
	}
	return s
}

// windowFor is the hand-out window of a token that arrived at arrival and
// replaces one expiring at prevExp: the configured spread (capped by the
// token's lifetime, see tokensource.Token.ReauthSpread), and at most half of the previous token's
// remaining life, so that the last connection moves long before it expires.
func windowFor(spread time.Duration, arrival, prevExp time.Time) time.Duration {
	return max(min(spread, prevExp.Sub(arrival)/2), 0)
}
