package entraredis

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9/auth"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// listener is a go-redis CredentialsListener that records what it is given.
type listener struct {
	mu   sync.Mutex
	next []auth.Credentials
	errs []error
}

func (l *listener) OnNext(c auth.Credentials) { l.mu.Lock(); l.next = append(l.next, c); l.mu.Unlock() }
func (l *listener) OnError(err error)         { l.mu.Lock(); l.errs = append(l.errs, err); l.mu.Unlock() }

// funcListener is not comparable: it cannot be a map key.
type funcListener struct{ f func() }

func (funcListener) OnNext(auth.Credentials) {}
func (funcListener) OnError(error)           {}

// TestCredentialsAdapter: the go-redis provider on top of tokensource.Source
// subscribes each listener once, hands it the live credentials at each
// rotation, refuses listeners it cannot hold, and never prints the token.
func TestCredentialsAdapter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is, err := entraredistest.NewIssuer(entraredistest.IssuerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cred := is.NewCredential(entraredistest.CredentialOptions{Lifetime: time.Hour})
		c, err := NewCredentials(cred, &Options{Options: entratoken.Options{Logger: benchQuiet, RefreshJitter: -1, ReauthSpread: -1}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		l := &listener{}
		creds, unsub, err := c.Subscribe(l)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Subscribe(l); err != nil {
			t.Fatal(err)
		}
		user, first := creds.BasicAuth()
		if user != cred.ObjectID() || len(first) < 100 || creds.RawCredentials() != user+":"+first {
			t.Fatalf("credentials %q / %d bytes", user, len(first))
		}
		if _, _, err := c.Subscribe(nil); err == nil {
			t.Fatal("a nil listener was accepted")
		}
		if _, _, err := c.Subscribe(funcListener{}); err == nil || !strings.Contains(err.Error(), "comparable") {
			t.Fatalf("a non-comparable listener: %v", err)
		}
		time.Sleep(time.Until(c.Status().NextRefresh.Add(time.Second)))
		synctest.Wait()
		l.mu.Lock()
		n := len(l.next)
		l.mu.Unlock()
		if n != 1 {
			t.Fatalf("%d OnNext calls for one rotation of a listener subscribed twice", n)
		}
		if _, now := creds.BasicAuth(); now == first {
			t.Fatal("the live credentials still give the first token")
		}
		_, secret := creds.BasicAuth()
		for _, v := range []any{c, creds, c.Status()} {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
				if out := fmt.Sprintf(verb, v); strings.Contains(out, secret[:40]) || strings.Contains(out, first[:40]) {
					t.Fatalf("fmt %s of %T prints the token", verb, v)
				}
			}
		}
		if err := unsub(); err != nil || c.Status().Connections != 0 {
			t.Fatalf("unsubscribe: %v, %d left", err, c.Status().Connections)
		}
		c.Close()
		if _, _, err := c.Subscribe(&listener{}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Subscribe after Close: %v", err)
		}
		if err := c.WaitReady(t.Context()); !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitReady after Close: %v", err)
		}
	})
}

// TestCloseFromACallbackWhileClosing: the client's Close waits for a running
// callback; that callback calling Close too must not deadlock.
func TestCloseFromACallbackWhileClosing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is, err := entraredistest.NewIssuer(entraredistest.IssuerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var o atomic.Pointer[owner]
		inCallback := make(chan struct{})
		var returned atomic.Bool
		c, err := NewCredentials(is.NewCredential(entraredistest.CredentialOptions{}), &Options{
			Options: entratoken.Options{
				Logger: benchQuiet,
				OnTokenRefreshed: func(TokenRefreshed) {
					close(inCallback)
					time.Sleep(time.Second) // the first Close is waiting for this callback by now
					o.Load().closeAll()
					returned.Store(true)
				},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		ow := &owner{creds: c}
		o.Store(ow)
		<-inCallback
		start := time.Now()
		if err := ow.closeAll(); err != nil {
			t.Fatal(err)
		}
		if !returned.Load() || time.Since(start) != time.Second {
			t.Fatalf("the callback's Close returned: %v; the first Close took %v, want the callback's 1 s", returned.Load(), time.Since(start))
		}
	})
}
