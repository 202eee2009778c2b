package entraredisotel_test

import (
	"context"
	"log"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredisotel"
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
