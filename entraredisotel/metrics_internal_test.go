package entraredisotel

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/entraredis/entraredis/azevents"
)

// collect reads every instrument once, keyed "name unit".
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]map[string]float64 {
	t.Helper()
	c := Collect(t, r, "s1")
	out := map[string]map[string]float64{}
	for name, vals := range c.Values {
		out[name+" "+c.Units[name]] = vals
	}
	return out
}

func TestInstrumentsReportTheSnapshot(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	var mu sync.Mutex
	snap := snapshot{}
	unregister, err := instruments(mp, []attribute.KeyValue{attribute.String("service", "s1")}, func() snapshot {
		mu.Lock()
		defer mu.Unlock()
		return snap
	})
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, reader)
	if _, ok := got[MetricTokenRemaining+" s"]; ok {
		t.Error("remaining reported before the first token")
	}
	if v, ok := got[MetricMaintenance+" {event}"]; ok {
		t.Errorf("maintenance events reported before any: %v", v)
	}
	var tr azevents.Tracker
	for _, msg := range []string{"NotificationType|NodeMaintenanceStart", "NotificationType|NodeMaintenanceStart", "NotificationType|Brand new", "bad"} {
		tr.Observe(msg, time.Now())
	}
	ts := tr.Status()
	mu.Lock()
	snap = snapshot{
		hasToken: true, expiresOn: time.Now().Add(time.Hour), rotations: 3, requests: 7,
		failures: map[string]int64{"timeout": 2, "credential": 1}, reauths: 40, reauthRefusals: 1,
		current: 9, older: 1, maintenance: ts,
	}
	mu.Unlock()
	got = collect(t, reader)
	want := map[string]map[string]float64{
		MetricTokenRotations + " {rotation}":  {"": 3},
		MetricTokenRequests + " {request}":    {"": 7},
		MetricRefreshFailures + " {failure}":  {"timeout": 2, "credential": 1},
		MetricReauths + " {reauth}":           {"": 40},
		MetricReauthRefusals + " {reauth}":    {"": 1},
		MetricConnections + " {connection}":   {"current": 9, "older": 1},
		MetricMaintenance + " {event}":        {"NodeMaintenanceStart": 2, "other": 1},
		MetricMaintenanceWrong + " {message}": {"": 1},
	}
	for name, vals := range want {
		for k, v := range vals {
			if got[name][k] != v {
				t.Errorf("%s[%q] = %v, want %v (all: %v)", name, k, got[name][k], v, got[name])
			}
		}
		if len(got[name]) != len(vals) {
			t.Errorf("%s: %v, want %v", name, got[name], vals)
		}
	}
	if r := got[MetricTokenRemaining+" s"][""]; r < 3590 || r > 3600 {
		t.Errorf("remaining = %v, want about 3600", r)
	}
	mu.Lock()
	snap.expiresOn = time.Now().Add(-time.Minute)
	mu.Unlock()
	if r := collect(t, reader)[MetricTokenRemaining+" s"][""]; r != 0 {
		t.Errorf("remaining after expiry = %v, want 0", r)
	}
	if err := unregister(); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, reader); len(got) != 0 {
		t.Errorf("after unregister: %v", got)
	}
}
