package entraredisotel

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Collection is what one collection reported: per instrument name, the
// value of each point by its attribute other than "service" ("" when it has
// none), and the instrument's unit.
type Collection struct {
	Values map[string]map[string]float64
	Units  map[string]string
}

// Collect reads every instrument of r once. Every point must be of this
// package's scope and carry the attribute service=<service>.
func Collect(t *testing.T, r *sdkmetric.ManualReader, service string) Collection {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	c := Collection{Values: map[string]map[string]float64{}, Units: map[string]string{}}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, ScopeName)
		}
		for _, m := range sm.Metrics {
			vals := map[string]float64{}
			key := func(s attribute.Set) string {
				if v, ok := s.Value("service"); !ok || v.AsString() != service {
					t.Errorf("%s: attributes %v lack service=%s", m.Name, s.ToSlice(), service)
				}
				for _, kv := range s.ToSlice() {
					if kv.Key != "service" {
						return kv.Value.Emit()
					}
				}
				return ""
			}
			switch d := m.Data.(type) {
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					vals[key(p.Attributes)] = p.Value
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					vals[key(p.Attributes)] = float64(p.Value)
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
			c.Values[m.Name], c.Units[m.Name] = vals, m.Unit
		}
	}
	return c
}
