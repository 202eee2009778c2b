package rueidisentra

import (
	"io"
	"log/slog"
	"net"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/tokensource"
)

// auth is one AUTH a simulated connection sent.
type auth struct {
	conn int
	gen  uint64
	at   time.Time
}

// simConn plays rueidis' part for one connection: AuthCredentialsFn when it
// opens, then again at every RefreshAfter (pipe.refreshAuth), recording the
// AUTHs it would send.
type simConn struct {
	id    int
	reg   *conns
	addr  *connAddr
	mu    sync.Mutex // guards below
	calls int
	auths []auth
	timer *time.Timer
	done  bool
}

func (s *simConn) call(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.calls++
	ac, err := s.reg.credentials(rueidis.AuthCredentialsContext{Address: s.addr})
	if err != nil {
		t.Errorf("conn %d: AuthCredentialsFn: %v", s.id, err)
		return
	}
	if ac.RefreshAfter.IsZero() {
		t.Errorf("conn %d: zero RefreshAfter: rueidis would never call again", s.id)
		return
	}
	if ac.Password != "" {
		s.auths = append(s.auths, auth{conn: s.id, gen: s.addr.st.gen.Load(), at: time.Now()})
	}
	s.timer = time.AfterFunc(time.Until(ac.RefreshAfter), func() { s.call(t) })
}

func (s *simConn) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	if s.timer != nil {
		s.timer.Stop()
	}
}

// TestPacingOverRotations: 40 connections, hour-long tokens, six rotations
// on fake time, with the real Source and the emulator's credential: each
// connection moves to each new token once, at its own moment of the hand-out
// window (10 s, the default ReauthSpread), long before the old token
// expires; one token request per rotation; a handful of calls per connection
// per rotation.
func TestPacingOverRotations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, life, rotations = 40, time.Hour, 6
		is, err := entraredistest.NewIssuer(entraredistest.IssuerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		srv := is.NewCredential(entraredistest.CredentialOptions{Lifetime: life})
		reg := newConns()
		o := entratoken.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		src, err := tokensource.NewSource(srv, &o)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		reg.src = src
		if err := src.WaitReady(t.Context()); err != nil {
			t.Fatal(err)
		}

		sims := make([]*simConn, n)
		for i := range sims {
			st := &connState{offset: offsetOf(reg.opened.Add(1))}
			reg.mu.Lock()
			reg.live[st] = struct{}{}
			reg.mu.Unlock()
			sims[i] = &simConn{id: i, reg: reg, addr: &connAddr{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6380}, st: st}}
			sims[i].call(t)
		}
		// Record each generation's hand-out as it is installed.
		handouts := map[uint64]handout{}
		expiries := map[uint64]time.Time{}
		for time.Sleep(time.Second); ; time.Sleep(time.Second) {
			reg.mu.Lock()
			h := reg.newest
			reg.mu.Unlock()
			if _, ok := handouts[h.gen]; !ok {
				handouts[h.gen] = h
				expiries[h.gen] = h.expires
			}
			if h.gen > rotations+1 || time.Since(handouts[1].arrival) > time.Duration(rotations+2)*life {
				break
			}
		}
		for _, s := range sims {
			s.stop()
		}
		if len(handouts) < rotations+1 {
			t.Fatalf("%d tokens seen, want %d", len(handouts), rotations+1)
		}
		if st := src.Status(); st.TokenRequests > int64(len(handouts))+1 {
			t.Fatalf("%d token requests for %d tokens", st.TokenRequests, len(handouts))
		}
		for g := uint64(2); g <= rotations+1; g++ {
			h := handouts[g]
			var at []time.Time
			for _, s := range sims {
				s.mu.Lock()
				k := 0
				for _, a := range s.auths {
					if a.gen == g {
						k++
						at = append(at, a.at)
						if a.at.Before(h.arrival) || a.at.After(h.arrival.Add(h.window)) {
							t.Errorf("gen %d: conn %d moved at %v, outside its window [%v, +%v]", g, s.id, a.at, h.arrival, h.window)
						}
						if !a.at.Before(expiries[g-1].Add(-time.Minute)) {
							t.Errorf("gen %d: conn %d moved at %v, less than a minute before the old token expires (%v)", g, s.id, a.at, expiries[g-1])
						}
					}
				}
				s.mu.Unlock()
				if k != 1 {
					t.Errorf("gen %d: conn %d sent %d AUTHs, want 1", g, s.id, k)
				}
			}
			sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
			for i := 1; i < len(at); i++ {
				if at[i].Equal(at[i-1]) {
					t.Errorf("gen %d: two connections moved at the same moment %v", g, at[i])
				}
			}
			if h.window != 10*time.Second || at[len(at)-1].Sub(at[0]) < h.window/2 {
				t.Errorf("gen %d: window %v, AUTHs from %v to %v: not spread over it", g, h.window, at[0], at[len(at)-1])
			}
		}
		for _, s := range sims {
			if per := float64(s.calls) / float64(rotations+1); per > 4 {
				t.Errorf("conn %d: %d calls in %d rotations", s.id, s.calls, rotations)
			}
		}
		t.Logf("%d tokens, %d connections, calls per connection: %d..%d", len(handouts), n, minCalls(sims), maxCalls(sims))
	})
}

func minCalls(s []*simConn) int {
	m := s[0].calls
	for _, c := range s {
		m = min(m, c.calls)
	}
	return m
}

func maxCalls(s []*simConn) int {
	m := 0
	for _, c := range s {
		m = max(m, c.calls)
	}
	return m
}

// TestDecide: the pacing rule's cases.
func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	h := handout{gen: 3, expires: t0.Add(time.Hour), arrival: t0, window: 10 * time.Second}
	next := t0.Add(50 * time.Minute)
	for _, tc := range []struct {
		name   string
		now    time.Time
		cur    uint64
		curExp time.Time
		offset float64
		want   step
	}{
		{"new connection: at once, then at its slot after the next refresh", t0.Add(time.Minute), 0, time.Time{}, 0.5, step{send: true, at: next.Add(5 * time.Second)}},
		{"older token, before its slot: wait for the slot", t0.Add(time.Second), 2, t0.Add(10 * time.Minute), 0.5, step{at: t0.Add(5 * time.Second)}},
		{"older token, at its slot: move", t0.Add(5 * time.Second), 2, t0.Add(10 * time.Minute), 0.5, step{send: true, at: next.Add(5 * time.Second)}},
		{"older token expiring before its slot: move a poll before expiry", t0.Add(3 * time.Second), 2, t0.Add(4 * time.Second), 0.9, step{send: true, at: next.Add(9 * time.Second)}},
		{"older token expiring before its slot, not yet: wait until then", t0, 2, t0.Add(4 * time.Second), 0.9, step{at: t0.Add(4*time.Second - pollFor(10*time.Second))}},
		{"newest token: wait for the next refresh", t0.Add(time.Minute), 3, t0.Add(time.Hour), 0.25, step{at: next.Add(2500 * time.Millisecond)}},
		{"newest token, next refresh past (attempt in flight): its slot of a window opening then", next.Add(time.Second), 3, t0.Add(time.Hour), 0.25, step{at: next.Add(2500 * time.Millisecond)}},
		{"newest token, next refresh and slot past (attempt in flight): poll", next.Add(time.Second), 3, t0.Add(time.Hour), 0, step{at: next.Add(time.Second + pollFor(10*time.Second))}},
		{"newest token, next refresh unknown: poll", t0.Add(time.Minute), 3, t0.Add(time.Hour), 0.25, step{at: t0.Add(time.Minute + pollFor(10*time.Second))}},
	} {
		n := next
		if tc.name == "newest token, next refresh unknown: poll" {
			n = time.Time{}
		}
		if got := decide(tc.now, tc.cur, tc.curExp, h, n, tc.offset); got != tc.want {
			t.Errorf("%s: decide = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestOffsetsSpread: the offsets of any number of connections are distinct
// and cover [0, 1) with gaps at most about 2.6 times the even spacing.
func TestOffsetsSpread(t *testing.T) {
	for _, n := range []int{2, 3, 7, 40, 1000} {
		offs := make([]float64, n)
		for k := range offs {
			offs[k] = offsetOf(uint64(k + 1))
		}
		sort.Float64s(offs)
		maxGap := offs[0] + 1 - offs[n-1]
		for i := 1; i < n; i++ {
			if offs[i] == offs[i-1] {
				t.Fatalf("n=%d: two equal offsets", n)
			}
			maxGap = max(maxGap, offs[i]-offs[i-1])
		}
		if maxGap > 2.7/float64(n) && n > 2 {
			t.Errorf("n=%d: largest gap %.4f, even spacing %.4f", n, maxGap, 1/float64(n))
		}
	}
}
