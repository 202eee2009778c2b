package rueidisentra_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/rueidisentra"
)

// TestMaintenanceEvents: with MaintenanceOn a rueidis client subscribes to
// AzureRedisEvents on a connection of its own, keeps it across rotations of
// 3-second tokens (RESP3, re-authenticated in place), and reports each event
// to OnMaintenance and Status; without it, a localhost client does not
// subscribe; Close ends the subscription.
func TestMaintenanceEvents(t *testing.T) {
	entraredistest.RequireRedisServer(t)
	srv := entraredistest.NewServer(t, entraredistest.Options{Backend: entraredistest.BackendRedisServer, TokenLifetime: 3 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	plain := connect(t, srv.Credential(), []string{srv.Addr()}, srv.TLSConfig(), rueidis.ClientOption{}, rueidisentra.Options{})
	if err := plain.Do(ctx, plain.B().Ping().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.MaintenanceSubscribers(ctx); err != nil || n != 0 {
		t.Fatalf("default options on localhost: %d subscribers, %v; want none", n, err)
	}
	got := make(chan azevents.Event, 8)
	c := connect(t, srv.Credential(), []string{srv.Addr()}, srv.TLSConfig(), rueidis.ClientOption{}, rueidisentra.Options{
		MaintenanceEvents: azevents.ModeOn,
		OnMaintenance:     func(ev azevents.Event) { got <- ev },
	})
	if err := srv.WaitMaintenanceSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for i, typ := range []azevents.Type{azevents.Scheduled, azevents.Start, azevents.Ended} {
		if i > 0 {
			time.Sleep(2 * time.Second) // a rotation between events
		}
		want := srv.MaintenanceEvent(typ, time.Now())
		if n, err := srv.PublishMaintenance(ctx, want); err != nil || n != 1 {
			t.Fatalf("publish %s: %d receivers, %v", typ, n, err)
		}
		select {
		case ev := <-got:
			if ev.Type != typ || !ev.StartTime.Equal(want.StartTime) || ev.SSLPort != srv.Port() {
				t.Fatalf("got %+v, want %+v", ev, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not delivered", typ)
		}
	}
	st := status(t, c)
	if st.Rotations < 2 || st.Maintenance.Interruptions != 0 || st.Maintenance.Total() != 3 || st.Maintenance.Last.Type != azevents.Ended {
		t.Fatalf("status: %d rotations, maintenance %+v", st.Rotations, st.Maintenance)
	}
	c.Close()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := srv.WaitMaintenanceSubscribersExactly(wctx, 0); err != nil {
		t.Fatalf("after Close: %v", err)
	}
}
