package entraredis_test

import (
	"context"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/entraredistest"
)

// TestMaintenanceEventsUnderLoad runs Azure's maintenance sequence against
// the emulator (real redis-server) while 16 goroutines run commands and the
// 4-second token rotates: scheduled, starting, start, the connections
// closed by a failover, failover complete, ended, each published once the
// subscription is back. Every such event is delivered once, in order, with
// its fields; the one published while the subscriber was cut off is lost
// and counted; the client recovers after the failover, with the errors of
// that window counted and none after it; the subscription survives the
// token rotations (its only interruption is the failover).
func TestMaintenanceEventsUnderLoad(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol int) {
		entraredistest.RequireRedisServer(t)
		srv := entraredistest.NewServer(t, entraredistest.Options{Backend: entraredistest.BackendRedisServer, TokenLifetime: 4 * time.Second})
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		var mu sync.Mutex
		var got []azevents.Event
		rdb := newClient(t, srv, srv.Credential(), protocol, entraredis.Options{
			MaintenanceEvents: entraredis.MaintenanceOn,
			OnMaintenance: func(ev entraredis.MaintenanceEvent) {
				mu.Lock()
				got = append(got, ev)
				mu.Unlock()
			},
		})
		delivered := func() []azevents.Event {
			mu.Lock()
			defer mu.Unlock()
			return append([]azevents.Event(nil), got...)
		}
		if err := srv.WaitMaintenanceSubscribers(ctx, 1); err != nil {
			t.Fatal(err)
		}
		rot0 := rdb.Status().Rotations

		// The load: 16 goroutines, errors timestamped.
		var ops atomic.Int64
		var errMu sync.Mutex
		var errAt []time.Time
		var firstErrs []error
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := "k" + strconv.Itoa(g)
				for i := 0; i < 1_000_000; i++ {
					select {
					case <-stop:
						return
					default:
					}
					var err error
					if i%2 == 0 {
						err = rdb.Set(ctx, key, i, 0).Err()
					} else {
						err = rdb.Get(ctx, key).Err()
					}
					if err != nil && err != redis.Nil {
						errMu.Lock()
						errAt = append(errAt, time.Now())
						if len(firstErrs) < 3 {
							firstErrs = append(firstErrs, err)
						}
						errMu.Unlock()
						time.Sleep(5 * time.Millisecond)
						continue
					}
					ops.Add(1)
				}
			}()
		}
		defer func() { close(stop); wg.Wait() }()

		var published []azevents.Event
		lost := 0
		publish := func(typ azevents.Type) {
			t.Helper()
			ev := srv.MaintenanceEvent(typ, time.Now().Add(20*time.Second))
			n, err := srv.PublishMaintenance(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			// 2 while a RESP2 subscription moves to a fresh connection at a
			// rotation (make before break: both connections are subscribed
			// for a moment, and the event is delivered once, checked below).
			if n != 1 && !(n == 2 && protocol == 2) {
				t.Fatalf("%s reached %d subscribers, want 1 (2 during a RESP2 move)", typ, n)
			}
			published = append(published, ev)
			waitUntil(t, 5*time.Second, string(typ)+" delivered", func() bool { return len(delivered()) == len(published) })
		}
		for _, typ := range []azevents.Type{azevents.Scheduled, azevents.Starting, azevents.Start} {
			publish(typ)
			time.Sleep(1500 * time.Millisecond) // rotations happen meanwhile
		}

		// The failover: every connection closed, new ones refused for 500 ms.
		type result struct {
			r   entraredistest.FailoverResult
			err error
		}
		done := make(chan result, 1)
		windowStart := time.Now()
		go func() {
			r, err := srv.Failover(ctx, entraredistest.FailoverOptions{Down: 500 * time.Millisecond, Subscribers: 1})
			done <- result{r, err}
		}()
		waitUntil(t, 5*time.Second, "the subscription cut off", func() bool { return rdb.Status().Maintenance.Interruptions == 1 })
		cutOff := srv.MaintenanceEvent(azevents.Starting, time.Now())
		cutOff.Extra = []azevents.Field{{Name: "Note", Value: "published while cut off"}}
		if n, err := srv.PublishMaintenance(ctx, cutOff); err != nil {
			t.Fatal(err)
		} else if n == 0 {
			lost++
		}
		r := <-done
		if r.err != nil || r.r.Receivers != 1 {
			t.Fatalf("Failover: %+v, %v", r.r, r.err)
		}
		published = append(published, r.r.Event)
		waitUntil(t, 5*time.Second, "FailoverComplete delivered", func() bool { return len(delivered()) == len(published) })
		// The client is back: a command works within a few seconds.
		waitUntil(t, 10*time.Second, "a command after the failover", func() bool { return rdb.Ping(ctx).Err() == nil })
		windowEnd := time.Now().Add(time.Second)
		time.Sleep(1500 * time.Millisecond)
		publish(azevents.Ended)
		time.Sleep(500 * time.Millisecond)

		// Delivered once, in order, with their fields.
		evs := delivered()
		if len(evs) != len(published) {
			t.Fatalf("delivered %d events, published %d", len(evs), len(published))
		}
		for i, ev := range evs {
			want := published[i]
			if ev.Type != want.Type || !ev.StartTime.Equal(want.StartTime) || ev.IPAddress != netip.MustParseAddr("127.0.0.1") ||
				ev.SSLPort != srv.Port() || ev.IsReplica || len(ev.Extra) != 0 {
				t.Fatalf("event %d = %+v, want %+v", i, ev, want)
			}
		}
		if lost != 1 {
			t.Fatalf("the event published while the subscriber was cut off reached it (lost=%d)", lost)
		}
		st := rdb.Status()
		m := st.Maintenance
		for _, typ := range []azevents.Type{azevents.Scheduled, azevents.Starting, azevents.Start, azevents.FailoverComplete, azevents.Ended} {
			if m.Counts[typ] != 1 {
				t.Errorf("Status.Maintenance.Counts[%s] = %d, want 1", typ, m.Counts[typ])
			}
		}
		if m.Interruptions != 1 || m.Last.Type != azevents.Ended || m.Next.Type != "" || m.Malformed != 0 {
			t.Errorf("Status.Maintenance = %+v: want 1 interruption (the failover), last Ended, nothing pending", m)
		}
		rotations := st.Rotations - rot0
		if rotations < 3 {
			t.Errorf("%d rotations during the run, want at least 3", rotations)
		}
		close(stop)
		wg.Wait()
		stop = make(chan struct{})
		errMu.Lock()
		inWindow, after := 0, 0
		for _, at := range errAt {
			switch {
			case at.Before(windowStart):
				after++ // before the failover: none expected either
			case at.Before(windowEnd):
				inWindow++
			default:
				after++
			}
		}
		errMu.Unlock()
		t.Logf("RESP%d: %d ops, %d rotations, %d events delivered, %d lost while cut off (counted, not delivered), %d command errors in the failover window (%v), %d outside it; %d connections closed by the failover; emulator %+v",
			protocol, ops.Load(), rotations, len(evs), lost, inWindow, firstErrs, after, r.r.Closed, srv.Stats())
		if after != 0 {
			t.Fatalf("%d command errors outside the failover window: %v", after, firstErrs)
		}
		if ops.Load() < 1000 {
			t.Fatalf("only %d ops", ops.Load())
		}
	})
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMaintenanceEventsOffByDefaultOffAzure: a client of a host that is not
// Azure Cache for Redis (here localhost) does not subscribe unless told to.
func TestMaintenanceEventsOffByDefaultOffAzure(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	ctx := t.Context()
	off := newClient(t, srv, srv.Credential(), 3, entraredis.Options{})
	if err := off.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.MaintenanceSubscribers(ctx); err != nil || n != 0 {
		t.Fatalf("a localhost client with default options: %d subscribers, %v; want none", n, err)
	}
	on := newClient(t, srv, srv.Credential(), 2, entraredis.Options{MaintenanceEvents: entraredis.MaintenanceOn})
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := srv.WaitMaintenanceSubscribers(wctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := on.Close(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := srv.WaitMaintenanceSubscribersExactly(wctx, 0); err != nil {
		t.Fatalf("after Close: %v", err)
	}
}
