package entraredisotel_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredisotel"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// processCPU is the CPU time this process (clients and the in-process
// emulator) has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMetricsOverhead measures the CPU per command (sequential SETs,
// through the emulator in front of redis-server) of one client with the
// instruments off and on, in 20 interleaved rounds (the order alternates
// within each round's pair), and reports in "summary" the median of each,
// the ratio of the medians and the median of the rounds' on/off ratios. "On" registers
// every instrument and collects every 100 ms: 600 times more often than the
// SDK's default export interval of a minute. The instruments are
// observable: the command path does nothing for them, so the ratio should
// be within noise (2%).
//
//	go test -run '^$' -bench MetricsOverhead -benchtime 5000x ./entraredisotel/
func BenchmarkMetricsOverhead(b *testing.B) {
	entraredistest.RequireRedisServer(b)
	srv, err := entraredistest.Start(entraredistest.Options{Backend: entraredistest.BackendRedisServer, TokenLifetime: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	rdb, err := entraredis.NewClient(ctx, srv.Credential(), &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), PoolSize: 8},
		&entraredis.Options{Options: entratoken.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, MaintenanceEvents: entraredis.MaintenanceOn})
	if err != nil {
		b.Fatal(err)
	}
	defer rdb.Close()
	const rounds, workers = 20, 1
	cpu := map[bool][]float64{}
	var ratios []float64 // on/off of each round's pair
	run := func(b *testing.B, on bool) {
		if on {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			defer mp.Shutdown(ctx)
			unregister, err := entraredisotel.InstrumentMetrics(rdb, &entraredisotel.Options{MeterProvider: mp})
			if err != nil {
				b.Fatal(err)
			}
			defer unregister()
			done := make(chan struct{})
			defer close(done)
			go func() {
				var rm metricdata.ResourceMetrics
				for {
					select {
					case <-done:
						return
					case <-time.After(100 * time.Millisecond):
						reader.Collect(ctx, &rm)
					}
				}
			}()
		}
		per := b.N / workers
		var wg sync.WaitGroup
		runtime.GC()
		cpu0 := processCPU(b)
		b.ResetTimer()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := "k" + strconv.Itoa(w)
				for i := 0; i < per; i++ {
					if err := rdb.Set(ctx, key, i, 0).Err(); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		perOp := float64((processCPU(b) - cpu0).Nanoseconds()) / float64(per*workers)
		b.ReportMetric(perOp, "cpu-ns/op")
		if b.N >= 1000 { // not the b.N=1 probe run before the measured one
			cpu[on] = append(cpu[on], perOp)
		}
	}
	for r := range rounds {
		for _, on := range []bool{r%2 == 1, r%2 == 0} {
			b.Run(fmt.Sprintf("round=%02d/metrics=%v", r, on), func(b *testing.B) { run(b, on) })
		}
		if len(cpu[true]) == r+1 && len(cpu[false]) == r+1 {
			ratios = append(ratios, cpu[true][r]/cpu[false][r])
		}
	}
	// Each sub-benchmark runs with b.N=1 first, then with the measured b.N
	// (-benchtime Nx, N >= 1000); only the measured runs count.
	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		if len(v) == 0 {
			return 0
		}
		return v[len(v)/2]
	}
	if len(ratios) != rounds {
		b.Fatalf("%d measured rounds of %d: use -benchtime Nx with N >= 1000", len(ratios), rounds)
	}
	b.Run("summary", func(b *testing.B) {
		b.ReportMetric(median(cpu[false]), "off-cpu-ns/op")
		b.ReportMetric(median(cpu[true]), "on-cpu-ns/op")
		b.ReportMetric(median(cpu[true])/median(cpu[false]), "on/off-of-medians")
		b.ReportMetric(median(ratios), "median-on/off-per-round")
	})
}
