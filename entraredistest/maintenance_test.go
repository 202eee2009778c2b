package entraredistest

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/entraredis/entraredis/azevents"
)

// subscribeRaw opens a connection, authenticates with proto's HELLO (2 or
// 3) and subscribes to azevents.Channel; it returns nil when the server
// refuses the connection (RefuseConnections).
func subscribeRaw(t *testing.T, srv *Server, proto string) *rawConn {
	t.Helper()
	d := &net.Dialer{Timeout: 2 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", srv.Addr(), srv.TLSConfig())
	if err != nil {
		return nil
	}
	t.Cleanup(func() { c.Close() })
	rc := newRawConn(t, c)
	cred := srv.Credential()
	if got := rc.do("HELLO", proto, "AUTH", cred.ObjectID(), token(t, cred)); strings.HasPrefix(got, "-") {
		t.Fatalf("HELLO %s AUTH = %q", proto, got)
	}
	if got := rc.do("SUBSCRIBE", azevents.Channel); !strings.Contains(got, azevents.Channel) {
		t.Fatalf("SUBSCRIBE = %q", got)
	}
	return rc
}

// readEvent reads one pub/sub message on azevents.Channel and parses it.
func (rc *rawConn) readEvent() azevents.Event {
	rc.t.Helper()
	got := rc.reply()
	lines := strings.Split(strings.TrimSuffix(got, "\r\n"), "\r\n")
	if len(lines) != 7 || !strings.HasSuffix(lines[0], "3") || lines[2] != "message" || lines[4] != azevents.Channel {
		rc.t.Fatalf("not a message on %s: %q", azevents.Channel, got)
	}
	ev, err := azevents.Parse(lines[6])
	if err != nil {
		rc.t.Fatalf("the published message does not parse: %v", err)
	}
	return ev
}

func TestPublishMaintenance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b})
		ctx := context.Background()
		start := time.Now().Add(15 * time.Minute)
		ev := srv.MaintenanceEvent(azevents.Scheduled, start)
		if n, err := srv.PublishMaintenance(ctx, ev); err != nil || n != 0 {
			t.Fatalf("PublishMaintenance with no subscriber = %d, %v; want 0 (lost)", n, err)
		}
		subs := map[string]*rawConn{"RESP2": subscribeRaw(t, srv, "2"), "RESP3": subscribeRaw(t, srv, "3")}
		if n, err := srv.MaintenanceSubscribers(ctx); err != nil || n != 2 {
			t.Fatalf("MaintenanceSubscribers = %d, %v; want 2", n, err)
		}
		if err := srv.WaitMaintenanceSubscribersExactly(ctx, 2); err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, time.Second)
		err := srv.WaitMaintenanceSubscribersExactly(short, 1)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "exactly 1") || !strings.Contains(err.Error(), "2 subscribed") {
			t.Fatalf("WaitMaintenanceSubscribersExactly(1) with 2 subscribed: %v", err)
		}
		ev.Extra = []azevents.Field{{Name: "Shard", Value: "0"}}
		if n, err := srv.PublishMaintenance(ctx, ev); err != nil || n != 2 {
			t.Fatalf("PublishMaintenance = %d, %v; want 2 receivers", n, err)
		}
		for name, rc := range subs {
			got := rc.readEvent()
			if got.Type != azevents.Scheduled || !got.StartTime.Equal(start.UTC().Truncate(time.Second)) ||
				got.IPAddress.String() != "127.0.0.1" || got.SSLPort != srv.Port() || got.IsReplica ||
				len(got.Extra) != 1 || got.Extra[0] != ev.Extra[0] {
				t.Fatalf("%s subscriber got %#v, want %#v", name, got, ev)
			}
		}
		if _, err := srv.PublishMaintenance(ctx, azevents.Event{}); err == nil {
			t.Fatal("PublishMaintenance of an event without type: no error")
		}
	})
}

func TestFailover(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		srv := NewServer(t, Options{Backend: b})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		sub := subscribeRaw(t, srv, "3")
		other := dialRaw(t, srv)
		other.do("PING")
		if n, err := srv.PublishMaintenance(ctx, srv.MaintenanceEvent(azevents.Start, time.Now())); err != nil || n != 1 {
			t.Fatalf("publish Start: %d, %v", n, err)
		}
		if ev := sub.readEvent(); ev.Type != azevents.Start {
			t.Fatalf("got %q, want Start", ev.Type)
		}
		const down = 300 * time.Millisecond
		type result struct {
			r   FailoverResult
			err error
		}
		done := make(chan result, 1)
		began := time.Now()
		go func() {
			r, err := srv.Failover(ctx, FailoverOptions{Down: down, Subscribers: 1})
			done <- result{r, err}
		}()
		for name, rc := range map[string]*rawConn{"subscribed": sub, "plain": other} {
			if _, err := rc.waitClosed(time.Now(), 5*time.Second); err != nil {
				t.Fatalf("%s connection after Failover: %v", name, err)
			}
		}
		// Reconnect as a client would; refused while the node is down.
		var again *rawConn
		refusedTries := 0
		for again == nil {
			if again = subscribeRaw(t, srv, "3"); again == nil {
				refusedTries++
				if time.Since(began) > 10*time.Second {
					t.Fatal("could not reconnect within 10s of the failover")
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		if took := time.Since(began); took < down {
			t.Fatalf("reconnected %v after the failover began, inside the %v down time", took, down)
		}
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		if res.r.Closed != 2 || res.r.Receivers != 1 || res.r.Event.Type != azevents.FailoverComplete {
			t.Fatalf("Failover = %+v, want 2 closed, 1 receiver of FailoverComplete", res.r)
		}
		if ev := again.readEvent(); ev.Type != azevents.FailoverComplete || ev.SSLPort != srv.Port() {
			t.Fatalf("after reconnecting got %#v, want FailoverComplete", ev)
		}
		if st := srv.Stats(); int(st.Refused) != refusedTries {
			t.Fatalf("Stats.Refused = %d, want the %d refused reconnects", st.Refused, refusedTries)
		}
	})
}

func TestFailoverContext(t *testing.T) {
	srv := NewServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	// Nobody subscribes: waiting for a subscriber ends with the context.
	r, err := srv.Failover(ctx, FailoverOptions{Subscribers: 1})
	if err == nil || r.Receivers != 0 || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("Failover = %+v, %v; want a deadline error", r, err)
	}
}

func TestRevoke(t *testing.T) {
	srv := NewServer(t, Options{TokenLifetime: time.Hour})
	cred := srv.Credential()
	live := dialRaw(t, srv)
	if got := live.do("AUTH", cred.ObjectID(), token(t, cred)); got != "+OK\r\n" {
		t.Fatalf("AUTH = %q", got)
	}
	srv.Revoke(cred.ObjectID())
	if got := dialRaw(t, srv).do("AUTH", cred.ObjectID(), token(t, cred)); got != wrongPass {
		t.Fatalf("AUTH after Revoke = %q, want WRONGPASS", got)
	}
	if got := live.do("AUTH", cred.ObjectID(), token(t, cred)); got != wrongPass {
		t.Fatalf("re-AUTH after Revoke = %q, want WRONGPASS", got)
	}
	if got := live.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("the live connection after a refused re-AUTH: %q, want it still authenticated", got)
	}
	srv.Allow(cred.ObjectID(), RoleOwner)
	if got := dialRaw(t, srv).do("AUTH", cred.ObjectID(), token(t, cred)); got != "+OK\r\n" {
		t.Fatalf("AUTH after Allow = %q", got)
	}
	if n, err := srv.PublishMaintenanceMessage(context.Background(), "not|an|event"); err != nil || n != 0 {
		t.Fatalf("PublishMaintenanceMessage = %d, %v", n, err)
	}
}
