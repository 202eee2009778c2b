package tokensource

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// TestCallbackMayClose: a callback that calls Close returns, and no callback
// runs after it.
func TestCallbackMayClose(t *testing.T) {
	for _, which := range []string{"OnTokenRefreshed", "OnRefreshFailed", "OnReauthFailed"} {
		t.Run(which, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The first callback may run before NewSource returns: the
				// callback gets the Source through a synchronised variable.
				var src atomic.Pointer[Source]
				var calls, returned atomic.Int64
				closeFromCallback := func() {
					calls.Add(1)
					for src.Load() == nil {
						time.Sleep(time.Millisecond)
					}
					src.Load().Close()
					returned.Add(1)
				}
				o := (&recorder{}).options(entratoken.Options{})
				switch which {
				case "OnTokenRefreshed":
					o.OnTokenRefreshed = func(entratoken.TokenRefreshed) { closeFromCallback() }
				case "OnRefreshFailed":
					o.OnRefreshFailed = func(entratoken.RefreshFailed) { closeFromCallback() }
				case "OnReauthFailed":
					o.OnReauthFailed = func(entratoken.ReauthFailed) { closeFromCallback() }
				}
				cred := newIssuer(t).NewCredential(entraredistest.CredentialOptions{Lifetime: time.Hour})
				if which == "OnRefreshFailed" {
					cred.FailNext(100, nil)
				}
				s, err := NewSource(cred, o)
				if err != nil {
					t.Fatal(err)
				}
				src.Store(s)
				if which == "OnReauthFailed" {
					if err := s.WaitReady(t.Context()); err != nil {
						t.Fatal(err)
					}
					for range 5 {
						s.ReportReauth(errors.New("WRONGPASS invalid username-password pair"))
					}
				}
				time.Sleep(time.Minute) // failures retry every few seconds
				synctest.Wait()
				if calls.Load() != 1 || returned.Load() != 1 {
					t.Fatalf("%d callbacks, %d Close calls returned: want 1 and 1", calls.Load(), returned.Load())
				}
				if !s.Status().Closed {
					t.Fatal("not closed")
				}
				closeReturnsAtOnce(t, s) // idempotent, and waits for the event goroutine
			})
		})
	}
}

// TestSlowCallbackDelaysNothing: callbacks that take 1 s each delay neither
// WaitReady nor the refresher; they run one after another, in order.
func TestSlowCallbackDelaysNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []entratoken.TokenRefreshed // touched by the callback only, until Close
		o := (&recorder{}).options(entratoken.Options{RefreshJitter: -1})
		o.OnTokenRefreshed = func(e entratoken.TokenRefreshed) {
			time.Sleep(time.Second)
			got = append(got, e)
		}
		cred := newIssuer(t).NewCredential(entraredistest.CredentialOptions{Lifetime: 2 * time.Second})
		start := time.Now()
		s, err := NewSource(cred, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WaitReady(t.Context()); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("WaitReady took %v: it waited for the first token's callback", waited)
		}
		// 2-second tokens refresh every second (half the life): 20 s give about
		// 20 rotations, whatever the callbacks cost.
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if r := s.Status().Rotations; r < 19 {
			t.Fatalf("%d rotations in 20 s of 2-second tokens: the slow callback delayed the refresher", r)
		}
		s.Close()
		if len(got) < 15 {
			t.Fatalf("%d callbacks ran in 20 s at 1 s each", len(got))
		}
		for i := 1; i < len(got); i++ {
			if !got[i].ExpiresOn.After(got[i-1].ExpiresOn) {
				t.Fatalf("callback %d ran out of order: %v after %v", i, got[i].ExpiresOn, got[i-1].ExpiresOn)
			}
		}
	})
}

// TestVerySlowCallbackDropsTheOldestEvents: with a callback that never
// returns until released, the queue keeps the newest events, counts the
// dropped ones, and logs them.
func TestVerySlowCallbackDropsTheOldestEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var seen []error
		var logs strings.Builder
		o := (&recorder{}).options(entratoken.Options{})
		o.Logger = newTextLogger(&logs)
		o.OnReauthFailed = func(e entratoken.ReauthFailed) {
			if len(seen) == 0 {
				<-release
			}
			seen = append(seen, e.Err)
		}
		s, _ := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, o)
		const n = maxQueuedEvents + 100
		for i := range n {
			s.ReportReauth(fmt.Errorf("refusal %d", i))
		}
		synctest.Wait()
		if st := s.Status(); st.DroppedEvents != n-1-maxQueuedEvents || st.ReauthFailures != n {
			t.Fatalf("dropped %d, counted %d refusals; want %d and %d", st.DroppedEvents, st.ReauthFailures, n-1-maxQueuedEvents, n)
		}
		if !strings.Contains(logs.String(), "oldest queued event was dropped") {
			t.Fatal("the drops were not logged")
		}
		close(release)
		synctest.Wait()
		s.Close()
		if len(seen) != 1+maxQueuedEvents || seen[1].Error() != fmt.Sprintf("refusal %d", n-maxQueuedEvents) || seen[len(seen)-1].Error() != fmt.Sprintf("refusal %d", n-1) {
			t.Fatalf("%d events delivered, first queued %v, last %v", len(seen), seen[1], seen[len(seen)-1])
		}
	})
}

// TestNoCallbackAfterClose: events queued behind a running callback are
// dropped by Close, and Close waits for that callback.
func TestNoCallbackAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls int
		o := (&recorder{}).options(entratoken.Options{})
		o.OnReauthFailed = func(entratoken.ReauthFailed) {
			calls++
			time.Sleep(time.Second)
		}
		s, _ := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, o)
		for range 3 {
			s.ReportReauth(errors.New("WRONGPASS"))
		}
		synctest.Wait() // the first callback sleeps
		start := time.Now()
		s.Close()
		if time.Since(start) != time.Second {
			t.Fatalf("Close returned after %v, want after the running callback (1 s)", time.Since(start))
		}
		if calls != 1 {
			t.Fatalf("%d callbacks ran, want only the one running at Close", calls)
		}
		s.ReportReauth(errors.New("WRONGPASS")) // after Close: dropped
		synctest.Wait()
		if calls != 1 {
			t.Fatal("a callback ran after Close")
		}
	})
}

// panickingCredential panics in GetToken until calm is set, then delegates.
type panickingCredential struct {
	*entraredistest.Credential
	calm atomic.Bool
}

func (p *panickingCredential) GetToken(ctx contextT, o tokenOptions) (accessToken, error) {
	if !p.calm.Load() {
		panic("credential bug: nil map")
	}
	return p.Credential.GetToken(ctx, o)
}

// TestPanickingCredential: a GetToken that panics is a TokenError carrying
// the panic value; the refresher retries and recovers, and the process
// lives. It runs in a child process, so that a regression (a crash) fails
// this test instead of the suite.
func TestPanickingCredential(t *testing.T) {
	if os.Getenv("ENTRATOKEN_PANIC_CHILD") == "1" {
		panickingChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPanickingCredential$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "ENTRATOKEN_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child process failed (%v):\n%s", err, out)
	}
	for _, want := range []string{"panicked: credential bug: nil map", "recovered after the panics", "--- PASS: TestPanickingCredential"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the child's output lacks %q:\n%s", want, out)
		}
	}
}

func panickingChild(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cred := &panickingCredential{Credential: newIssuer(t).NewCredential(entraredistest.CredentialOptions{Lifetime: time.Hour})}
		var r recorder
		s, err := NewSource(cred, r.options(entratoken.Options{}))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		err = s.WaitReady(t.Context())
		var te *entratoken.TokenError
		if !errors.As(err, &te) || te.Panic != "credential bug: nil map" || !errors.Is(err, entratoken.ErrNoValidToken) {
			t.Fatalf("err = %v (%T), want ErrNoValidToken wrapping a TokenError with the panic value", err, err)
		}
		t.Log(err)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if _, failed := r.counts(); failed < 3 {
			t.Fatalf("%d failures reported: the refresher stopped retrying", failed)
		}
		cred.calm.Store(true)
		time.Sleep(DefaultRetryMaxDelay + time.Second)
		synctest.Wait()
		if tok, err := s.Token(); err != nil || tok.IsZero() {
			t.Fatalf("not recovered: %v", err)
		}
		t.Log("recovered after the panics")
	})
}

// TestTypedNilCredentialIsRefused: a nil pointer in the interface, what
// `cred, err := azidentity.NewDefaultAzureCredential(nil)` leaves when err is
// ignored, is refused with an explanation.
func TestTypedNilCredentialIsRefused(t *testing.T) {
	var nilPtr *entraredistest.Credential
	var nilFunc credentialFunc
	for name, cred := range map[string]tokenCredential{"nil": nil, "nil pointer": nilPtr, "nil func": nilFunc} {
		_, err := NewSource(cred, nil)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if name != "nil" && !strings.Contains(err.Error(), "constructor probably failed") {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Count(err.Error(), "entraredis:") != 1 {
			t.Fatalf("%s: %q", name, err)
		}
	}
}

// TestDependencies: the core imports neither go-redis nor rueidis.
func TestDependencies(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !strings.Contains(string(out), "github.com/Azure/azure-sdk-for-go/sdk/azcore") {
		t.Fatalf("go list -deps gave an implausible list: %q", deps)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/redis/") || strings.Contains(d, "rueidis") {
			t.Errorf("entratoken depends on %s", d)
		}
	}
}

// TestCallbackMayCloseFromDeepInside: a callback that calls Close hundreds
// of calls deep is still recognised as a callback (close reads the whole
// stack): Close returns, and no callback runs after it.
func TestCallbackMayCloseFromDeepInside(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var src atomic.Pointer[Source]
		var calls, returned atomic.Int64
		var deep func(n int)
		deep = func(n int) {
			if n > 0 {
				deep(n - 1)
				return
			}
			src.Load().Close()
			returned.Add(1)
		}
		o := (&recorder{}).options(entratoken.Options{})
		o.OnReauthFailed = func(entratoken.ReauthFailed) {
			calls.Add(1)
			deep(300)
		}
		s, _ := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, o)
		src.Store(s)
		for range 3 {
			s.ReportReauth(errors.New("WRONGPASS"))
		}
		synctest.Wait()
		if calls.Load() != 1 || returned.Load() != 1 {
			t.Fatalf("%d callbacks, %d Close calls returned: want 1 and 1", calls.Load(), returned.Load())
		}
		closeReturnsAtOnce(t, s)
	})
}

// TestCallbacksCloseEachOther: two Sources whose callbacks, running at the
// same moment, close each other's Source. Close from inside a callback does
// not wait for the other Source's running callback (events.close), so both
// return; a Close that waited would deadlock here, each callback waiting for
// the other, and the bubble would report it.
func TestCallbacksCloseEachOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var srcs [2]atomic.Pointer[Source]
		var entered, returned [2]atomic.Int64
		var ss [2]*Source
		for i := range 2 {
			other := 1 - i
			o := (&recorder{}).options(entratoken.Options{})
			o.OnReauthFailed = func(entratoken.ReauthFailed) {
				if entered[i].Add(1) > 1 {
					return
				}
				for entered[other].Load() == 0 { // both callbacks run now
					time.Sleep(time.Millisecond)
				}
				srcs[other].Load().Close()
				returned[i].Add(1)
				for returned[other].Load() == 0 { // so each Close met the other callback running
					time.Sleep(time.Millisecond)
				}
			}
			ss[i], _ = startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, o)
			srcs[i].Store(ss[i])
		}
		for _, s := range ss {
			s.ReportReauth(errors.New("WRONGPASS"))
			s.ReportReauth(errors.New("WRONGPASS")) // queued: dropped by the other's Close
		}
		time.Sleep(time.Second) // the callbacks poll each other every millisecond
		synctest.Wait()
		for i, s := range ss {
			if entered[i].Load() != 1 || returned[i].Load() != 1 {
				t.Fatalf("source %d: %d callbacks, %d Close calls returned: want 1 and 1", i, entered[i].Load(), returned[i].Load())
			}
			if !s.Status().Closed {
				t.Fatalf("source %d not closed", i)
			}
			closeReturnsAtOnce(t, s)
		}
	})
}

// TestCloseFromAnotherCallbackDoesNotWait: a callback of A closes B while a
// callback of B runs (for 1 s): that Close returns at once, no callback of B
// starts after it, and a Close of B from the test goroutine afterwards waits
// for B's running callback as any Close from outside a callback does.
func TestCloseFromAnotherCallbackDoesNotWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var bCalls atomic.Int64
		ob := (&recorder{}).options(entratoken.Options{})
		ob.OnReauthFailed = func(entratoken.ReauthFailed) {
			bCalls.Add(1)
			time.Sleep(time.Second)
		}
		b, _ := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, ob)
		var took atomic.Int64
		oa := (&recorder{}).options(entratoken.Options{})
		oa.OnReauthFailed = func(entratoken.ReauthFailed) {
			start := time.Now()
			b.Close()
			took.Store(int64(time.Since(start)) + 1)
		}
		a, _ := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, oa)
		defer a.Close()
		for range 3 {
			b.ReportReauth(errors.New("WRONGPASS"))
		}
		synctest.Wait() // B's first callback sleeps; two are queued
		a.ReportReauth(errors.New("WRONGPASS"))
		synctest.Wait()
		if d := time.Duration(took.Load() - 1); d != 0 {
			t.Fatalf("B.Close from A's callback returned after %v (took %d), want at once", d, took.Load())
		}
		start := time.Now()
		b.Close()
		if d := time.Since(start); d != time.Second {
			t.Fatalf("B.Close from outside a callback returned after %v, want when B's running callback ends (1 s)", d)
		}
		if n := bCalls.Load(); n != 1 {
			t.Fatalf("%d callbacks of B ran, want only the one running when A's callback closed B", n)
		}
	})
}

// TestCloseFromGoroutineOfCallbackWaits: a goroutine a callback starts is
// not inside the callback: its Close waits for the callback, which here
// goes on for 1 s after starting it.
func TestCloseFromGoroutineOfCallbackWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var src atomic.Pointer[Source]
		var took atomic.Int64
		o := (&recorder{}).options(entratoken.Options{})
		o.OnReauthFailed = func(entratoken.ReauthFailed) {
			go func() {
				start := time.Now()
				src.Load().Close()
				took.Store(int64(time.Since(start)))
			}()
			time.Sleep(time.Second)
		}
		s, _ := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, o)
		src.Store(s)
		s.ReportReauth(errors.New("WRONGPASS"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if d := time.Duration(took.Load()); d != time.Second {
			t.Fatalf("Close from a goroutine the callback started returned after %v, want when the callback ends (1 s)", d)
		}
		closeReturnsAtOnce(t, s)
	})
}
