package tokensource

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// serverReply is a server's error reply, as a client library returns it.
type serverReply string

func (e serverReply) Error() string { return string(e) }
func (serverReply) RedisError()     {}

const wrongPass = serverReply("WRONGPASS invalid username-password pair or user is disabled.")

// probeTimes lets every probe through as soon as the gate allows one, has it
// refused, and returns the waits between probes. It runs in a bubble.
func probeTimes(t *testing.T, s *Source, n int) []time.Duration {
	t.Helper()
	var waits []time.Duration
	last := time.Now()
	for range n {
		var err *RefusedError
		if !errors.As(s.DialErr(), &err) {
			t.Fatalf("DialErr = %v while refused", s.DialErr())
		}
		time.Sleep(err.RetryIn)
		probe, perr := s.ProbeDial()
		if !probe || perr != nil {
			t.Fatalf("after the wait: probe %v, %v; want the probe", probe, perr)
		}
		if probe, perr := s.ProbeDial(); probe || perr == nil {
			t.Fatalf("a second dial right after the probe: probe %v, %v; want refused", probe, perr)
		}
		waits = append(waits, time.Since(last))
		last = time.Now()
		s.ReportDialAuth(wrongPass)
	}
	return waits
}

func TestDialGateBacksOffAndProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, (&recorder{}).options(entratoken.Options{RetryMaxDelay: 6 * time.Second}))
		defer s.Close()
		if err := s.DialErr(); err != nil {
			t.Fatalf("a new source: DialErr = %v", err)
		}
		if st := s.Status(); st.Dial != entratoken.DialOpen || !st.RefusedUntil.IsZero() || !st.Valid(time.Now()) {
			t.Fatalf("a new source: %+v", st)
		}
		start := time.Now()
		s.ReportDialAuth(wrongPass)
		err := s.DialErr()
		var re *RefusedError
		var ae *entratoken.AuthError
		var reply interface{ RedisError() }
		if !errors.As(err, &re) || !errors.Is(err, entratoken.ErrTokenRefused) || !errors.As(err, &ae) || !errors.As(err, &reply) {
			t.Fatalf("DialErr after a refusal = %v (%T), want a RefusedError wrapping the explained reply", err, err)
		}
		if re.RetryIn != time.Second || strings.Count(err.Error(), "entraredis:") != 1 ||
			!strings.Contains(err.Error(), "next try in 1s") || !strings.HasPrefix(err.Error(), "WRONGPASS") || !strings.Contains(err.Error(), "access policy") {
			t.Fatalf("DialErr = %q, want the reply, one prefix, the hint and the 1 s wait", err)
		}
		st := s.Status()
		if st.Dial != entratoken.DialRefused || !st.RefusedUntil.Equal(start.Add(time.Second)) || st.DialRefusals != 1 || st.Valid(time.Now()) {
			t.Fatalf("status while refused: dial %v until %v, %d refusals, valid %v", st.Dial, st.RefusedUntil.Sub(start), st.DialRefusals, st.Valid(time.Now()))
		}
		time.Sleep(time.Second - time.Millisecond)
		if s.DialErr() == nil {
			t.Fatal("a dial allowed before the first second")
		}
		time.Sleep(time.Millisecond)
		if st := s.Status(); st.Dial != entratoken.DialProbe {
			t.Fatalf("after the wait: %v, want probe", st.Dial)
		}
		// The waits after the first: each probe refused doubles it up to 6 s.
		s.ReportDialAuth(wrongPass) // a refusal of a connection dialed earlier: the wait does not grow
		got := probeTimes(t, s, 6)
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 6 * time.Second, 6 * time.Second, 6 * time.Second}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("waits between probes %v, want %v", got, want)
			}
		}
		// An accepted connection opens the gate; the next refusal starts again at 1 s.
		s.ReportDialAuth(nil)
		if err := s.DialErr(); err != nil {
			t.Fatalf("after an accepted connection: %v", err)
		}
		if st := s.Status(); st.Dial != entratoken.DialOpen || st.DialRefusals != 8 || !st.Valid(time.Now()) {
			t.Fatalf("after an accepted connection: %+v", st)
		}
		s.ReportDialAuth(wrongPass)
		if errors.As(s.DialErr(), &re); re.RetryIn != time.Second {
			t.Fatalf("after a new refusal: wait %v, want 1 s", re.RetryIn)
		}
	})
}

// TestDialGateLostProbe: a probe that is dialed and never reported (closed
// unused) does not hold the gate: the next one comes after the doubled wait.
func TestDialGateLostProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, (&recorder{}).options(entratoken.Options{}))
		defer s.Close()
		s.ReportDialAuth(wrongPass)
		time.Sleep(time.Second)
		if probe, err := s.ProbeDial(); !probe || err != nil {
			t.Fatalf("probe %v, %v", probe, err)
		}
		time.Sleep(2*time.Second - time.Millisecond)
		if s.DialErr() == nil {
			t.Fatal("a dial allowed before the doubled wait")
		}
		time.Sleep(time.Millisecond)
		if probe, err := s.ProbeDial(); !probe || err != nil {
			t.Fatalf("after a lost probe and the doubled wait: probe %v, %v", probe, err)
		}
	})
}

// TestDialGateNewTokenReopens: a new token is not the refused one.
func TestDialGateNewTokenReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 8-second tokens: margin 4 s, RetryMaxDelay capped at 1 s, rotation 4 s in.
		s, _ := startCreds(t, entraredistest.CredentialOptions{Lifetime: 8 * time.Second}, (&recorder{}).options(entratoken.Options{RefreshJitter: -1}))
		defer s.Close()
		s.ReportDialAuth(wrongPass)
		var re *RefusedError
		if !errors.As(s.DialErr(), &re) || re.RetryIn != time.Second {
			t.Fatalf("DialErr = %v, want a 1 s wait (capped by the token's timing)", s.DialErr())
		}
		probeTimes(t, s, 2) // capped at 1 s: probes at 1 s and 2 s
		if st := s.Status(); st.Dial != entratoken.DialRefused || st.Rotations != 0 {
			t.Fatalf("before the rotation: %+v", st)
		}
		time.Sleep(2*time.Second + time.Millisecond)
		synctest.Wait()
		if st := s.Status(); st.Rotations != 1 || st.Dial != entratoken.DialOpen {
			t.Fatalf("after the rotation: rotations %d, dial %v; want the new token open", st.Rotations, st.Dial)
		}
		if err := s.DialErr(); err != nil {
			t.Fatalf("with a new token: %v", err)
		}
	})
}

// TestDialGateShortTokens: the backoff is capped by the token's timing: a
// 4-second token (margin 2 s) waits at most 500 ms.
func TestDialGateShortTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := startCreds(t, entraredistest.CredentialOptions{Lifetime: 4 * time.Second}, (&recorder{}).options(entratoken.Options{}))
		defer s.Close()
		s.ReportDialAuth(wrongPass)
		got := probeTimes(t, s, 2)
		if got[0] != 500*time.Millisecond || got[1] != 500*time.Millisecond {
			t.Fatalf("waits %v, want 500 ms each", got)
		}
	})
}

// TestDialGateWithoutToken: without a usable token DialErr says so, and
// refusals are not recorded; after Close it is ErrClosed.
func TestDialGateWithoutToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := newIssuer(t)
		cred := is.NewCredential(entraredistest.CredentialOptions{})
		cred.FailFor(time.Hour, nil)
		s, err := NewSource(cred, (&recorder{}).options(entratoken.Options{}))
		if err != nil {
			t.Fatal(err)
		}
		s.WaitReady(t.Context())
		s.ReportDialAuth(wrongPass)
		if err := s.DialErr(); !errors.Is(err, entratoken.ErrNoValidToken) || errors.Is(err, entratoken.ErrTokenRefused) {
			t.Fatalf("without a token: %v, want ErrNoValidToken", err)
		}
		if st := s.Status(); st.DialRefusals != 0 || st.Dial != entratoken.DialOpen {
			t.Fatalf("a refusal without a token was recorded: %+v", st)
		}
		s.Close()
		if err := s.DialErr(); !errors.Is(err, entratoken.ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	})
}

// TestReportDialAuthExplainsPlainErrors: a refusal that is not an
// AuthError yet is explained with the token's user name and scope.
func TestReportDialAuthExplainsPlainErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, cred := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, (&recorder{}).options(entratoken.Options{}))
		defer s.Close()
		s.ReportDialAuth(wrongPass)
		var re *RefusedError
		if !errors.As(s.DialErr(), &re) || re.Auth.Username != cred.ObjectID() || re.Auth.Scope != entratoken.DefaultScope || re.Hint() != re.Auth.Hint() {
			t.Fatalf("refusal %+v, want one explained for user %s", re, cred.ObjectID())
		}
	})
}

func TestDialStateString(t *testing.T) {
	for s, want := range map[entratoken.DialState]string{entratoken.DialOpen: "open", entratoken.DialRefused: "refused", entratoken.DialProbe: "probe", 7: "DialState(7)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", int(s), s.String(), want)
		}
	}
}

// TestDialGateProbeUnused: a probe closed before it authenticated (a pool's
// health dial) hands the probe to the next dial, at the same wait.
func TestDialGateProbeUnused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, (&recorder{}).options(entratoken.Options{}))
		defer s.Close()
		s.ProbeUnused() // nothing refused: nothing to do
		if err := s.DialErr(); err != nil {
			t.Fatal(err)
		}
		s.ReportDialAuth(wrongPass)
		s.ProbeUnused() // no probe out yet: the wait stays
		if s.DialErr() == nil {
			t.Fatal("ProbeUnused without a probe opened the gate")
		}
		time.Sleep(time.Second)
		if probe, _ := s.ProbeDial(); !probe {
			t.Fatal("no probe after the wait")
		}
		s.ProbeUnused()
		if probe, err := s.ProbeDial(); !probe || err != nil {
			t.Fatalf("after an unused probe: probe %v, %v; want the next dial to probe", probe, err)
		}
		s.ReportDialAuth(wrongPass) // this probe was refused: the wait doubled once, not twice
		var re *RefusedError
		if !errors.As(s.DialErr(), &re) || re.RetryIn != 2*time.Second {
			t.Fatalf("after the refused probe: %v, want a 2 s wait", s.DialErr())
		}
	})
}
