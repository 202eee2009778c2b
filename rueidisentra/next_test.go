package rueidisentra

import (
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// TestSlowCallbackDelaysNotTheNextRefresh: the user's OnTokenRefreshed
// blocks on its first call until released, through two rotations of
// 3-second tokens; what the client's connections take for the refresher's
// next attempt still follows the refresher (the time of the token in use,
// not the first one's), and the user's callback got the events unchanged,
// in order, once released.
func TestSlowCallbackDelaysNotTheNextRefresh(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 3 * time.Second})
	entraredistest.RequireRedisServer(t)
	release := make(chan struct{})
	var first atomic.Int64                 // Unix nanoseconds: RefreshAt of the first event
	var events []entratoken.TokenRefreshed // touched by the callback only, until Close
	o := Options{Options: entratoken.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnTokenRefreshed: func(e entratoken.TokenRefreshed) {
			if len(events) == 0 {
				first.Store(e.RefreshAt.UnixNano())
				<-release
			}
			events = append(events, e)
		},
	}}
	rc, err := NewClient(t.Context(), srv.Credential(), rueidis.ClientOption{InitAddress: []string{srv.Addr()}, TLSConfig: srv.TLSConfig()}, &o)
	if err != nil {
		t.Fatal(err)
	}
	c := rc.(*client)
	released := false
	defer func() {
		if !released {
			close(release)
		}
		c.Close()
	}()
	if err := c.Do(t.Context(), c.B().Ping().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for c.src.Status().Rotations < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no two rotations of 3-second tokens in 15 s: %+v", c.src.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := c.src.Status()
	next := c.reg.nextAttempt()
	firstAt := time.Unix(0, first.Load())
	if first.Load() == 0 || len(events) != 0 {
		t.Fatal("the first callback is not the one blocked: the test proves nothing")
	}
	if !next.After(firstAt) || next.Before(st.LastRefresh) {
		t.Fatalf("the connections take %v for the next refresh: the first token's was %v, the token in use was received at %v (%d rotations)",
			next.Format(time.StampMilli), firstAt.Format(time.StampMilli), st.LastRefresh.Format(time.StampMilli), st.Rotations)
	}
	close(release)
	released = true
	c.Close()
	if len(events) < 3 || !events[0].RefreshAt.Equal(firstAt) {
		t.Fatalf("%d events delivered to the user's callback, want the blocked one and the 2 or more behind it", len(events))
	}
	for i := 1; i < len(events); i++ {
		if !events[i].ExpiresOn.After(events[i-1].ExpiresOn) {
			t.Fatalf("event %d out of order", i)
		}
	}
}
