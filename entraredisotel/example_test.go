package entraredisotel_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredisotel"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// A client's token health and maintenance events, on the MeterProvider the
// service already exports with (here a bare SDK one; nil Options use the
// global provider).
func ExampleInstrumentMetrics() {
	ctx := context.Background()
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	rdb, err := entraredis.NewClient(ctx, cred, &redis.Options{Addr: "NAME.redis.cache.windows.net:6380"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()

	mp := sdkmetric.NewMeterProvider( /* sdkmetric.WithReader(your exporter's reader) */ )
	unregister, err := entraredisotel.InstrumentMetrics(rdb, &entraredisotel.Options{
		MeterProvider: mp,
		Attributes:    []attribute.KeyValue{attribute.String("cache", "NAME")},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer unregister()
}

// The metrics of a client on the project's emulator, read with the SDK's
// ManualReader (a service would register its exporter's reader instead).
func ExampleInstrumentMetrics_emulator() {
	srv, err := entraredistest.Start(entraredistest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	rdb, err := entraredis.NewClient(ctx, srv.Credential(), &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig()},
		&entraredis.Options{Options: entratoken.Options{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	unregister, err := entraredisotel.InstrumentMetrics(rdb, &entraredisotel.Options{MeterProvider: mp})
	if err != nil {
		log.Fatal(err)
	}
	defer unregister()

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "entraredis.token.requests" {
				fmt.Println(m.Name, m.Unit, sum.DataPoints[0].Value)
			}
			if g, ok := m.Data.(metricdata.Gauge[float64]); ok && m.Name == "entraredis.token.remaining" {
				fmt.Println(m.Name, m.Unit, g.DataPoints[0].Value > 3500) // of a 1-hour token
			}
		}
	}
	// Output:
	// entraredis.token.remaining s true
	// entraredis.token.requests {request} 1
}
