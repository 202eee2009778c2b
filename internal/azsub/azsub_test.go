package azsub

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.uber.org/goleak"

	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/entraredistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testCreds hands out tokens of an emulator's credential; rotate installs a
// new one and notifies, as the core's Source does.
type testCreds struct {
	t    *testing.T
	cred *entraredistest.Credential

	mu       sync.Mutex // guards the fields below
	tok      Token
	notify   []func()
	reauths  int
	refusals []error
}

func newTestCreds(t *testing.T, srv *entraredistest.Server) *testCreds {
	c := &testCreds{t: t, cred: srv.Credential()}
	c.rotate()
	return c
}

func (c *testCreds) rotate() {
	at, err := c.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://redis.azure.com/.default"}})
	if err != nil {
		c.t.Errorf("GetToken: %v", err)
		return
	}
	c.mu.Lock()
	c.tok = Token{Username: c.cred.ObjectID(), Password: at.Token, ExpiresOn: at.ExpiresOn, Generation: c.tok.Generation + 1}
	fs := append([]func(){}, c.notify...)
	c.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

func (c *testCreds) Token() (Token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tok, nil
}

func (c *testCreds) Notify(f func()) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notify = append(c.notify, f)
	return func() {}
}

func (c *testCreds) ReportReauth(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.reauths++
	} else {
		c.refusals = append(c.refusals, err)
	}
}

func dialer(srv *entraredistest.Server) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		d := tls.Dialer{Config: srv.TLSConfig()}
		return d.DialContext(ctx, "tcp", srv.Addr())
	}
}

// events collects delivered events.
type events struct {
	mu  sync.Mutex // guards got
	got []azevents.Event
}

func (e *events) add(ev azevents.Event) {
	e.mu.Lock()
	e.got = append(e.got, ev)
	e.mu.Unlock()
}

func (e *events) list() []azevents.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]azevents.Event(nil), e.got...)
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func start(t *testing.T, srv *entraredistest.Server, creds *testCreds, proto int, ev *events) *Subscriber {
	t.Helper()
	s, err := Start(Config{
		Dial: dialer(srv), Protocol: proto, Credentials: creds, OnEvent: ev.add,
		Logger:        slog.New(slog.DiscardHandler),
		RetryMinDelay: 20 * time.Millisecond, RetryMaxDelay: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func forEachProtocol(t *testing.T, f func(t *testing.T, proto int)) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			entraredistest.RequireRedisServer(t)
			f(t, proto)
		})
	}
}

// TestMovesAndReauthsLoseNothing publishes events back to back while the
// token rotates every 100 ms: every event published to at least one
// subscriber is delivered exactly once, in order, on RESP2 (make before
// break, the overlap deduplicated) and RESP3 (in-place AUTH).
func TestMovesAndReauthsLoseNothing(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, proto int) {
		srv := entraredistest.NewServer(t, entraredistest.Options{Backend: entraredistest.BackendRedisServer, TokenLifetime: 3 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		creds := newTestCreds(t, srv)
		var ev events
		s := start(t, srv, creds, proto, &ev)
		if err := srv.WaitMaintenanceSubscribers(ctx, 1); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var rot sync.WaitGroup
		rot.Add(1)
		rotations := 0
		go func() {
			defer rot.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
					creds.rotate()
					rotations++
				}
			}
		}()
		var published []string
		twice := 0
		deadline := time.Now().Add(4 * time.Second) // longer than a token's life
		for i := 0; time.Now().Before(deadline); i++ {
			e := srv.MaintenanceEvent(azevents.Scheduled, time.Now())
			e.Extra = []azevents.Field{{Name: "Seq", Value: fmt.Sprint(i)}}
			n, err := srv.PublishMaintenance(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatalf("event %d reached no subscriber: the subscription had a gap", i)
			}
			if n == 2 {
				twice++
			}
			published = append(published, e.Extra[0].Value)
			time.Sleep(2 * time.Millisecond)
		}
		close(stop)
		rot.Wait()
		waitFor(t, 5*time.Second, "every event delivered", func() bool { return len(ev.list()) >= len(published) })
		time.Sleep(50 * time.Millisecond) // a duplicate would arrive now
		got := ev.list()
		if len(got) != len(published) {
			t.Fatalf("delivered %d events, published %d", len(got), len(published))
		}
		for i, e := range got {
			if e.Extra[0].Value != published[i] || e.Type != azevents.Scheduled || e.SSLPort != srv.Port() {
				t.Fatalf("event %d: %+v, want Seq %s", i, e, published[i])
			}
		}
		st := s.Stats()
		if st.Lost != 0 || srv.Stats().ExpiryCloses != 0 {
			t.Fatalf("stats %+v, expiry closes %d: the subscription must outlive its tokens", st, srv.Stats().ExpiryCloses)
		}
		if proto == 2 && (st.Moves < int64(rotations)/2 || st.Reauths != 0) {
			t.Fatalf("RESP2: %d moves, %d reauths for %d rotations", st.Moves, st.Reauths, rotations)
		}
		if proto == 3 && (st.Reauths < int64(rotations)/2 || st.Moves != 0) {
			t.Fatalf("RESP3: %d reauths, %d moves for %d rotations", st.Reauths, st.Moves, rotations)
		}
		t.Logf("RESP%d: %d events, %d rotations, stats %+v, %d events published to both connections of a move", proto, len(published), rotations, st, twice)
		if tr := s.Tracker().Status(); tr.Counts[azevents.Scheduled] != int64(len(published)) || tr.Interruptions != 0 {
			t.Fatalf("tracker %+v", tr)
		}
	})
}

// TestFailoverResubscribes: after Failover closes the connection, the
// subscriber comes back and receives FailoverComplete; an event published
// while it was cut off is lost and the loss is counted.
func TestFailoverResubscribes(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, proto int) {
		srv := entraredistest.NewServer(t, entraredistest.Options{Backend: entraredistest.BackendRedisServer})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		creds := newTestCreds(t, srv)
		var ev events
		s := start(t, srv, creds, proto, &ev)
		if err := srv.WaitMaintenanceSubscribers(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if n, err := srv.PublishMaintenance(ctx, srv.MaintenanceEvent(azevents.Start, time.Now())); err != nil || n != 1 {
			t.Fatalf("publish Start: %d, %v", n, err)
		}
		waitFor(t, 5*time.Second, "Start", func() bool { return len(ev.list()) == 1 })
		type result struct {
			r   entraredistest.FailoverResult
			err error
		}
		done := make(chan result, 1)
		go func() {
			r, err := srv.Failover(ctx, entraredistest.FailoverOptions{Down: 300 * time.Millisecond, Subscribers: 1})
			done <- result{r, err}
		}()
		waitFor(t, 5*time.Second, "the subscription lost", func() bool { return s.Stats().Lost == 1 })
		if n, err := srv.PublishMaintenance(ctx, srv.MaintenanceEvent(azevents.Starting, time.Now())); err != nil || n != 0 {
			t.Fatalf("publish while cut off: %d receivers, %v; want 0 (lost)", n, err)
		}
		r := <-done
		res, err := r.r, r.err
		if err != nil || res.Receivers != 1 || res.Closed != 1 {
			t.Fatalf("Failover: %+v, %v", res, err)
		}
		waitFor(t, 5*time.Second, "FailoverComplete", func() bool { return len(ev.list()) == 2 })
		if got := ev.list()[1]; got.Type != azevents.FailoverComplete || got.StartTime != res.Event.StartTime {
			t.Fatalf("got %+v, want %+v", got, res.Event)
		}
		st := s.Stats()
		if st.Lost != 1 || st.DialFailures == 0 || st.Subscriptions != 2 {
			t.Fatalf("stats %+v: want 1 loss, refused dials, 2 subscriptions", st)
		}
		if tr := s.Tracker().Status(); tr.Interruptions != 1 || tr.Last.Type != azevents.FailoverComplete {
			t.Fatalf("tracker %+v", tr)
		}
	})
}

// TestRefusedReauthMoves: a refused in-place AUTH (a token the server does
// not accept) is reported, and the subscription moves to a fresh
// connection with the next good token.
func TestRefusedReauthMoves(t *testing.T) {
	entraredistest.RequireRedisServer(t)
	srv := entraredistest.NewServer(t, entraredistest.Options{Backend: entraredistest.BackendRedisServer})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	creds := newTestCreds(t, srv)
	var ev events
	s := start(t, srv, creds, 3, &ev)
	if err := srv.WaitMaintenanceSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	creds.mu.Lock()
	good := creds.tok
	creds.tok = Token{Username: good.Username, Password: "not-a-token", ExpiresOn: good.ExpiresOn, Generation: good.Generation + 1}
	fs := creds.notify
	creds.mu.Unlock()
	fs[0]()
	waitFor(t, 5*time.Second, "a refused reauth", func() bool { return s.Stats().ReauthFailures == 1 })
	creds.mu.Lock()
	refusals := creds.refusals
	creds.mu.Unlock()
	if len(refusals) != 1 || !strings.Contains(refusals[0].Error(), "WRONGPASS") || strings.Contains(refusals[0].Error(), "not-a-token") {
		t.Fatalf("refusals %v", refusals)
	}
	// The move with the same bad token fails; with a good token it works.
	creds.rotate()
	waitFor(t, 5*time.Second, "a move or reauth with the good token", func() bool { st := s.Stats(); return st.Moves+st.Reauths >= 1 })
	if n, err := srv.PublishMaintenance(ctx, srv.MaintenanceEvent(azevents.Ended, time.Now())); err != nil || n != 1 {
		t.Fatalf("publish: %d, %v", n, err)
	}
	waitFor(t, 5*time.Second, "the event", func() bool { return len(ev.list()) == 1 })
	if s.Stats().Lost != 0 {
		t.Fatalf("stats %+v", s.Stats())
	}
}

func TestOverlap(t *testing.T) {
	for _, tc := range []struct {
		tail, head []string
		want       int
	}{
		{nil, nil, 0},
		{[]string{"a", "b"}, nil, 0},
		{[]string{"a", "b", "c"}, []string{"b", "c", "d"}, 2},
		{[]string{"a", "b", "c"}, []string{"a", "b", "c"}, 3},
		{[]string{"x"}, []string{"y", "x"}, 0},
		{[]string{"a", "a"}, []string{"a", "a", "a"}, 2},
	} {
		if got := overlap(tc.tail, tc.head); got != tc.want {
			t.Errorf("overlap(%v, %v) = %d, want %d", tc.tail, tc.head, got, tc.want)
		}
	}
}

// TestBackoff: the retries' delays double from RetryMinDelay up to
// RetryMaxDelay, each with jitter from half of its step to all of it, as
// the hand-rolled backoff did; and the jitter spans that range.
func TestBackoff(t *testing.T) {
	s := &Subscriber{cfg: Config{RetryMinDelay: time.Second, RetryMaxDelay: 30 * time.Second}}
	var low, high int // delays in the lowest and the highest quarter of their range
	for range 200 {
		b := s.newBackoff()
		for n := 1; n < 12; n++ {
			d := s.nextDelay(b)
			hi := min(time.Second<<(n-1), 30*time.Second)
			if d < hi/2 || d > hi {
				t.Fatalf("delay %d = %v, want in [%v, %v]", n, d, hi/2, hi)
			}
			switch {
			case d < hi/2+hi/8:
				low++
			case d > hi-hi/8:
				high++
			}
		}
	}
	if low < 100 || high < 100 {
		t.Fatalf("of 2200 delays, %d in the lowest quarter of their range and %d in the highest: no jitter", low, high)
	}
}
