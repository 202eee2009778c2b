package entraredisotel_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.uber.org/goleak"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/entraredisotel"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

func TestMain(m *testing.M) {
	redis.SetLogger(silent{})
	goleak.VerifyTestMain(m)
}

type silent struct{}

func (silent) Printf(context.Context, string, ...any) {}

type points = map[string]map[string]float64

func collect(t *testing.T, r *sdkmetric.ManualReader) points {
	t.Helper()
	return entraredisotel.Collect(t, r, "checkout").Values
}

// between checks before <= metric <= after: the status read just before and
// just after the collection bound what the collection saw.
func between(t *testing.T, what string, before, metric, after int64) {
	t.Helper()
	if metric < before || metric > after {
		t.Errorf("%s = %d, want between %d and %d (Status before and after)", what, metric, before, after)
	}
}

// TestMetricsAcrossRotationsOutageRefusalAndMaintenance runs a client
// against the emulator (real redis-server) through rotations of 4-second
// tokens, a token-service outage (attempts that time out), a refused
// re-AUTH (the principal's access policy removed for a rotation) and
// maintenance events, collecting with the SDK's ManualReader after each
// step and checking every instrument against Status and against the
// credential's and the emulator's own counts.
func TestMetricsAcrossRotationsOutageRefusalAndMaintenance(t *testing.T) {
	entraredistest.RequireRedisServer(t)
	srv := entraredistest.NewServer(t, entraredistest.Options{Backend: entraredistest.BackendRedisServer, TokenLifetime: 4 * time.Second})
	cred := srv.Credential()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	rdb, err := entraredis.NewClient(ctx, cred, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: 3}, &entraredis.Options{
		Options: entratoken.Options{
			Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
			AttemptTimeout: 300 * time.Millisecond,
		},
		MaintenanceEvents: entraredis.MaintenanceOn,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	unregister, err := entraredisotel.InstrumentMetrics(rdb, &entraredisotel.Options{MeterProvider: mp, Attributes: []attribute.KeyValue{attribute.String("service", "checkout")}})
	if err != nil {
		t.Fatal(err)
	}
	// Light load, so that pooled connections are used and re-authenticated.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1_000_000; i++ {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
				rdb.Set(ctx, "k"+strconv.Itoa(g), i, 0)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	waitUntil := func(d time.Duration, what string, cond func(entraredis.Status) bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond(rdb.Status()) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s: %+v", d, what, rdb.Status())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// check collects and compares every instrument with Status and the credential.
	check := func(step string) (points, entraredis.Status) {
		t.Helper()
		before, reqBefore := rdb.Status(), cred.Requests()
		p := collect(t, reader)
		after, reqAfter := rdb.Status(), cred.Requests()
		if rem, ok := p[entraredisotel.MetricTokenRemaining][""]; !ok || rem <= 0 || rem > 4 ||
			rem > time.Until(before.ExpiresOn).Seconds()+0.5 || rem < time.Until(after.ExpiresOn).Seconds()-4.5 {
			t.Errorf("%s: remaining %v s, token expires in %v", step, rem, time.Until(after.ExpiresOn))
		}
		between(t, step+": rotations", before.Rotations, int64(p[entraredisotel.MetricTokenRotations][""]), after.Rotations)
		between(t, step+": requests (the credential's count)", reqBefore, int64(p[entraredisotel.MetricTokenRequests][""]), reqAfter)
		between(t, step+": re-AUTHs", before.Reauths, int64(p[entraredisotel.MetricReauths][""]), after.Reauths)
		between(t, step+": refused re-AUTHs", before.ReauthFailures, int64(p[entraredisotel.MetricReauthRefusals][""]), after.ReauthFailures)
		for kind, n := range after.RefreshFailures {
			between(t, step+": failures "+string(kind), before.RefreshFailures[kind], int64(p[entraredisotel.MetricRefreshFailures][string(kind)]), n)
		}
		if len(p[entraredisotel.MetricRefreshFailures]) != len(after.RefreshFailures) {
			t.Errorf("%s: failures %v, status %v", step, p[entraredisotel.MetricRefreshFailures], after.RefreshFailures)
		}
		if before.Conns == after.Conns {
			c := p[entraredisotel.MetricConnections]
			if int(c["current"]) != after.Conns.Current || int(c["older"]) != after.Conns.Older {
				t.Errorf("%s: connections %v, status %+v", step, c, after.Conns)
			}
		}
		byAttr := func(st entraredis.Status) map[string]int64 { // as the instrument reports them
			m := map[string]int64{}
			for typ, n := range st.Maintenance.Counts {
				if typ.Known() {
					m[string(typ)] += n
				} else {
					m["other"] += n
				}
			}
			return m
		}
		b, a := byAttr(before), byAttr(after)
		for attr, n := range a {
			between(t, step+": maintenance "+attr, b[attr], int64(p[entraredisotel.MetricMaintenance][attr]), n)
		}
		between(t, step+": malformed", before.Maintenance.Malformed, int64(p[entraredisotel.MetricMaintenanceWrong][""]), after.Maintenance.Malformed)
		return p, after
	}

	// 1. Rotations.
	waitUntil(20*time.Second, "2 rotations", func(st entraredis.Status) bool { return st.Rotations >= 2 })
	p, st := check("rotations")
	if p[entraredisotel.MetricTokenRotations][""] < 2 || p[entraredisotel.MetricReauths][""] < 2 || len(p[entraredisotel.MetricRefreshFailures]) != 0 {
		t.Fatalf("after 2 rotations: %v (status %+v)", p, st)
	}
	if c := p[entraredisotel.MetricConnections]; c["current"]+c["older"] < 1 {
		t.Fatalf("connections %v: the pool's live connections are not counted", c)
	}

	// 2. A token-service outage: every attempt hangs past AttemptTimeout for 1.5 s.
	cred.SetDelay(time.Second)
	waitUntil(20*time.Second, "2 timed-out refreshes", func(st entraredis.Status) bool { return st.RefreshFailures[entratoken.FailureTimeout] >= 2 })
	cred.SetDelay(0)
	rot := st.Rotations
	waitUntil(20*time.Second, "a rotation after the outage", func(st entraredis.Status) bool { return st.Rotations > rot && st.ConsecutiveFailures == 0 })
	p, st = check("outage")
	if p[entraredisotel.MetricRefreshFailures][string(entratoken.FailureTimeout)] < 2 {
		t.Fatalf("after the outage: %v", p[entraredisotel.MetricRefreshFailures])
	}

	// 3. A refused re-AUTH: the access policy is removed for one rotation.
	refused0 := st.ReauthFailures
	srv.Revoke(cred.ObjectID())
	waitUntil(20*time.Second, "a refused re-AUTH", func(st entraredis.Status) bool { return st.ReauthFailures > refused0 })
	srv.Allow(cred.ObjectID(), entraredistest.RoleOwner)
	p, st = check("refused re-AUTH")
	if p[entraredisotel.MetricReauthRefusals][""] < float64(refused0+1) || srv.Stats().RefusedAuths < 1 {
		t.Fatalf("after the refusal: %v refused (emulator %+v)", p[entraredisotel.MetricReauthRefusals], srv.Stats())
	}

	// 4. Maintenance events: two Start, one of a new type, one malformed.
	// The subscriber's connection that lived through the refused re-AUTH is
	// closed by the server at its token's expiry, and its replacement may
	// subscribe before that: wait until exactly one is subscribed.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.WaitMaintenanceSubscribersExactly(wctx, 1); err != nil {
		t.Fatal(err)
	}
	// Each event is distinct (its own start time): across a move of the
	// subscription the library drops a message that the old connection
	// delivered already, which it recognises by its text.
	for i, typ := range []azevents.Type{azevents.Start, azevents.Start, "NodeMaintenanceSomethingNew"} {
		if n, err := srv.PublishMaintenance(ctx, srv.MaintenanceEvent(typ, time.Now().Add(time.Duration(i)*time.Minute))); err != nil || n != 1 {
			t.Fatalf("publish %s: %d, %v", typ, n, err)
		}
	}
	if n, err := srv.PublishMaintenanceMessage(ctx, "NotificationType|NodeMaintenanceStart|SSLPort|x"); err != nil || n != 1 {
		t.Fatalf("publish malformed: %d, %v", n, err)
	}
	waitUntil(5*time.Second, "4 messages", func(st entraredis.Status) bool { return st.Maintenance.Total()+st.Maintenance.Malformed == 4 })
	p, _ = check("maintenance")
	want := map[string]float64{string(azevents.Start): 2, "other": 1}
	if got := p[entraredisotel.MetricMaintenance]; len(got) != 2 || got[string(azevents.Start)] != 2 || got["other"] != 1 {
		t.Fatalf("maintenance events %v, want %v", got, want)
	}
	if got := p[entraredisotel.MetricMaintenanceWrong][""]; got != 1 {
		t.Fatalf("malformed %v, want 1", got)
	}

	// 5. Unregistered: nothing more is reported.
	if err := unregister(); err != nil {
		t.Fatal(err)
	}
	if p := collect(t, reader); len(p) != 0 {
		t.Fatalf("after unregister: %v", p)
	}
	if _, err := entraredisotel.InstrumentMetrics[entraredis.Status](nil, nil); err == nil {
		t.Fatal("InstrumentMetrics(nil): no error")
	}
}

// What InstrumentMetrics takes: the clients, Credentials and a StatusFunc.
var (
	_ entraredisotel.Source[entraredis.Status] = (*entraredis.Client)(nil)
	_ entraredisotel.Source[entraredis.Status] = (*entraredis.ClusterClient)(nil)
	_ entraredisotel.Source[entraredis.Status] = (*entraredis.Credentials)(nil)
	_ entraredisotel.Source[entraredis.Status] = entraredisotel.StatusFunc[entraredis.Status](nil)
)
