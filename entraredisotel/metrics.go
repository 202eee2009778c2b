package entraredisotel

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/entratoken"
)

// Snapshot is what InstrumentMetrics reads of a client: the token's status
// and the maintenance events'. It is the underlying type of
// entraredis.Status and of rueidisentra.ClientStatus.
type Snapshot = struct {
	entratoken.Status
	Maintenance azevents.Status
}

// Source is what InstrumentMetrics reads: an *entraredis.Client,
// *entraredis.ClusterClient or *entraredis.Credentials, or a StatusFunc.
type Source[S ~Snapshot] interface {
	Status() S
}

// StatusFunc adapts a function to Source, for a client whose status comes
// from a function, such as rueidisentra.Status:
//
//	entraredisotel.InstrumentMetrics(entraredisotel.StatusFunc[rueidisentra.ClientStatus](func() rueidisentra.ClientStatus {
//		st, _ := rueidisentra.Status(client)
//		return st
//	}), nil)
type StatusFunc[S ~Snapshot] func() S

// Status calls f.
func (f StatusFunc[S]) Status() S { return f() }

// Options configures InstrumentMetrics. nil means all defaults.
type Options struct {
	// MeterProvider creates the meter (scope ScopeName).
	// default: the global one, otel.GetMeterProvider()
	MeterProvider metric.MeterProvider
	// Attributes are added to every measurement, to tell several clients
	// apart (the cache's name, say). Never put a secret here.
	// default: none
	Attributes []attribute.KeyValue
}

// InstrumentMetrics registers the instruments of the package doc for src:
// one callback, run by the MeterProvider's reader at each collection, reads
// src.Status() once and reports every instrument from it; nothing runs on
// the command path. unregister stops the reporting (call it when src is
// closed); it is safe to call more than once.
func InstrumentMetrics[S ~Snapshot](src Source[S], opts *Options) (unregister func() error, err error) {
	if src == nil {
		return nil, fmt.Errorf("entraredis: metrics: InstrumentMetrics needs a client or a Source")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	return instruments(o.MeterProvider, o.Attributes, func() snapshot { return snapshotOf(Snapshot(src.Status())) })
}

// snapshotOf maps a Status to what the instruments report.
func snapshotOf(st Snapshot) snapshot {
	s := snapshot{
		hasToken:       !st.ExpiresOn.IsZero() && !st.Closed,
		expiresOn:      st.ExpiresOn,
		rotations:      st.Rotations,
		requests:       st.TokenRequests,
		reauths:        st.Reauths,
		reauthRefusals: st.ReauthFailures,
		current:        st.Conns.Current,
		older:          st.Conns.Older,
		maintenance:    st.Maintenance,
	}
	if len(st.RefreshFailures) > 0 {
		s.failures = make(map[string]int64, len(st.RefreshFailures))
		for k, n := range st.RefreshFailures {
			s.failures[string(k)] = n
		}
	}
	return s
}

// ScopeName is the instrumentation scope of the meter.
const ScopeName = "github.com/entraredis/entraredis/entraredisotel"

// Instrument names, units and attribute keys. They follow the OpenTelemetry
// semantic conventions: dot-separated namespaces, UCUM units, "{thing}"
// annotations for counts, no "_total" suffix.
const (
	MetricTokenRemaining   = "entraredis.token.remaining"           // gauge, s
	MetricTokenRotations   = "entraredis.token.rotations"           // counter, {rotation}
	MetricTokenRequests    = "entraredis.token.requests"            // counter, {request}
	MetricRefreshFailures  = "entraredis.token.refresh.failures"    // counter, {failure}, error.type
	MetricReauths          = "entraredis.connection.reauths"        // counter, {reauth}
	MetricReauthRefusals   = "entraredis.connection.reauth.refused" // counter, {reauth}
	MetricConnections      = "entraredis.connection.count"          // up-down counter, {connection}, entraredis.connection.token
	MetricMaintenance      = "entraredis.maintenance.events"        // counter, {event}, entraredis.maintenance.type
	MetricMaintenanceWrong = "entraredis.maintenance.malformed"     // counter, {message}

	// AttrErrorType is the kind of a refresh failure (semantic conventions' error.type).
	AttrErrorType = attribute.Key("error.type")
	// AttrConnectionToken says which token a connection is on: "current" or "older".
	AttrConnectionToken = attribute.Key("entraredis.connection.token")
	// AttrMaintenanceType is a maintenance event's NotificationType, or
	// "other" for a type azevents does not know (bounded cardinality).
	AttrMaintenanceType = attribute.Key("entraredis.maintenance.type")
)

// snapshot is what one collection reports, read from the source once.
type snapshot struct {
	hasToken       bool
	expiresOn      time.Time
	rotations      int64
	requests       int64
	failures       map[string]int64 // refresh failures by kind
	reauths        int64
	reauthRefusals int64
	current, older int
	maintenance    azevents.Status
}

// instruments registers the observable instruments on mp and one callback
// that reads a snapshot per collection. It returns the unregister function.
func instruments(mp metric.MeterProvider, attrs []attribute.KeyValue, read func() snapshot) (func() error, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName)
	var errs []error
	i64c := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	remaining, err := m.Float64ObservableGauge(MetricTokenRemaining, metric.WithUnit("s"),
		metric.WithDescription("Time until the token in use expires; absent before the first token and after Close."))
	errs = append(errs, err)
	rotations := i64c(MetricTokenRotations, "{rotation}", "Tokens installed after the first one.")
	requests := i64c(MetricTokenRequests, "{request}", "Token requests to the credential (GetToken calls), retries included.")
	failures := i64c(MetricRefreshFailures, "{failure}", "Failed token refresh attempts, by kind (error.type).")
	reauths := i64c(MetricReauths, "{reauth}", "In-place re-authentications of live connections that the server accepted.")
	refusals := i64c(MetricReauthRefusals, "{reauth}", "In-place re-authentications that the server refused.")
	conns, err := m.Int64ObservableUpDownCounter(MetricConnections, metric.WithUnit("{connection}"),
		metric.WithDescription("Live connections, on the current token or on an older one (entraredis.connection.token)."))
	errs = append(errs, err)
	maint := i64c(MetricMaintenance, "{event}", "Azure maintenance notifications received, by type (entraredis.maintenance.type).")
	wrong := i64c(MetricMaintenanceWrong, "{message}", "Messages on AzureRedisEvents that did not parse (dropped and logged).")
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("entraredis: metrics: %w", err)
		}
	}
	base := metric.WithAttributes(attrs...)
	with := func(kv ...attribute.KeyValue) metric.ObserveOption {
		return metric.WithAttributes(append(append([]attribute.KeyValue(nil), attrs...), kv...)...)
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := read()
		if s.hasToken {
			o.ObserveFloat64(remaining, max(0, time.Until(s.expiresOn).Seconds()), base)
		}
		o.ObserveInt64(rotations, s.rotations, base)
		o.ObserveInt64(requests, s.requests, base)
		for kind, n := range s.failures {
			o.ObserveInt64(failures, n, with(AttrErrorType.String(kind)))
		}
		o.ObserveInt64(reauths, s.reauths, base)
		o.ObserveInt64(refusals, s.reauthRefusals, base)
		o.ObserveInt64(conns, int64(s.current), with(AttrConnectionToken.String("current")))
		o.ObserveInt64(conns, int64(s.older), with(AttrConnectionToken.String("older")))
		{
			st := s.maintenance
			other := int64(0)
			for typ, n := range st.Counts {
				if typ.Known() {
					o.ObserveInt64(maint, n, with(AttrMaintenanceType.String(string(typ))))
				} else {
					other += n
				}
			}
			if other > 0 {
				o.ObserveInt64(maint, other, with(AttrMaintenanceType.String("other")))
			}
			o.ObserveInt64(wrong, st.Malformed, base)
		}
		return nil
	}, remaining, rotations, requests, failures, reauths, refusals, conns, maint, wrong)
	if err != nil {
		return nil, fmt.Errorf("entraredis: metrics: %w", err)
	}
	return reg.Unregister, nil
}
